package privhelper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"syscall"

	"github.com/pelagos-containers/pelagos/privhelper/api"
)

// reservePort binds proto hostIP:port in the host's namespace and returns
// the socket, which the helper holds for as long as the forward exists. The
// DNAT rule steers the traffic before it reaches the socket; the socket is
// there so that nothing else can take the port meanwhile, and so that a port
// something else already uses is refused rather than silently stolen.
func reservePort(ctx context.Context, proto string, hostIP netip.Addr, port uint16) (io.Closer, error) {
	addr := net.JoinHostPort(hostIP.String(), strconv.Itoa(int(port)))
	var lc net.ListenConfig
	var c io.Closer
	var err error
	if proto == "tcp" {
		c, err = lc.Listen(ctx, "tcp4", addr)
	} else {
		c, err = lc.ListenPacket(ctx, "udp4", addr)
	}
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, newError(api.ErrorPortInUse, "host port %s/%s is already in use", addr, proto)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return nil, invalidf("host address %s is not an address of this host", hostIP)
	default:
		return nil, fmt.Errorf("reserve host port %s/%s: %w", addr, proto, err)
	}
}
