package privhelper

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/pelagos-containers/pelagos/privhelper/api"
)

// ensureBridge makes n's bridge exist, carry the gateway address and be up.
// route_localnet is enabled on this bridge only, so that connections the
// host makes to 127.0.0.1:<published port> may be DNATed out through it
// (see docs/privhelper.md); no other interface's setting changes.
func ensureBridge(n *Network) error {
	link, err := netlink.LinkByName(n.Bridge)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Bridge}}); err != nil {
			return fmt.Errorf("create bridge %s: %w", n.Bridge, err)
		}
		link, err = netlink.LinkByName(n.Bridge)
	}
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", n.Bridge, err)
	}
	if err := netlink.AddrReplace(link, addrOf(n.Gateway, n.Subnet)); err != nil {
		return fmt.Errorf("address bridge %s: %w", n.Bridge, err)
	}
	if err := writeSysctl("net/ipv4/conf/"+n.Bridge+"/route_localnet", "1"); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring up bridge %s: %w", n.Bridge, err)
	}
	return nil
}

// addrOf is address a with subnet's prefix length, as netlink wants it.
func addrOf(a netip.Addr, subnet netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(subnet.Bits(), 32)}}
}

// deleteLink removes the host link name; a link already gone is not an error.
func deleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// hostLinks returns the names of the host's links that the helper made.
func hostLinks() (map[string]bool, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	ours := map[string]bool{}
	for _, l := range links {
		if name := l.Attrs().Name; strings.HasPrefix(name, bridgePrefix) || strings.HasPrefix(name, vethPrefix) {
			ours[name] = true
		}
	}
	return ours, nil
}

// hostRoutes returns the destinations of the host's IPv4 routes other than
// the default route and those through the helper's own bridges, which a new
// network must not overlap.
func hostRoutes() ([]netip.Prefix, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	ours := map[int]bool{}
	if links, err := netlink.LinkList(); err == nil {
		for _, l := range links {
			if strings.HasPrefix(l.Attrs().Name, bridgePrefix) {
				ours[l.Attrs().Index] = true
			}
		}
	}
	var out []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil || ours[r.LinkIndex] {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		a, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if ok && ones > 0 {
			out = append(out, netip.PrefixFrom(a, ones).Masked())
		}
	}
	return out, nil
}

// addVeth creates the lease's veth pair with the peer born inside the
// namespace nsFD under its final name, plugs the host end into n's bridge,
// and configures the peer: address, link up, loopback up and (for networks
// with a way out) a default route via the gateway.
func addVeth(nsFD int, n *Network, l *Lease) error {
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", n.Bridge, err)
	}
	mac, err := net.ParseMAC(l.MAC)
	if err != nil {
		return fmt.Errorf("lease %s: mac: %w", l.ID, err)
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: l.HostIf(), MasterIndex: br.Attrs().Index, TxQLen: -1},
		PeerName:         l.Ifname,
		PeerHardwareAddr: mac,
		PeerNamespace:    netlink.NsFd(nsFD),
		PeerTxQLen:       -1,
	}
	if err := netlink.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return newError(api.ErrorExists, "interface %s already exists in the namespace", l.Ifname)
		}
		return fmt.Errorf("create veth %s: %w", l.HostIf(), err)
	}
	host, err := netlink.LinkByName(l.HostIf())
	if err != nil {
		return fmt.Errorf("look up %s: %w", l.HostIf(), err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("bring up %s: %w", l.HostIf(), err)
	}
	return configurePeer(nsFD, n, l)
}

// configurePeer sets up the container end through a netlink socket opened
// inside the namespace; the helper's own threads never stay in it.
func configurePeer(nsFD int, n *Network, l *Lease) error {
	h, err := netlink.NewHandleAt(netns.NsHandle(nsFD))
	if err != nil {
		return fmt.Errorf("open netlink in namespace: %w", err)
	}
	defer h.Close()
	peer, err := h.LinkByName(l.Ifname)
	if err != nil {
		return fmt.Errorf("look up %s in namespace: %w", l.Ifname, err)
	}
	if err := h.AddrAdd(peer, addrOf(l.Addr, n.Subnet)); err != nil {
		return fmt.Errorf("address %s in namespace: %w", l.Ifname, err)
	}
	if err := h.LinkSetUp(peer); err != nil {
		return fmt.Errorf("bring up %s in namespace: %w", l.Ifname, err)
	}
	if lo, err := h.LinkByName("lo"); err == nil {
		if err := h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("bring up lo in namespace: %w", err)
		}
	}
	if n.Internal {
		return nil
	}
	route := &netlink.Route{LinkIndex: peer.Attrs().Index, Gw: n.Gateway.AsSlice()}
	// A namespace on several networks keeps the first default route.
	if err := h.RouteAdd(route); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("default route in namespace: %w", err)
	}
	return nil
}

// newMAC returns a random locally administered unicast MAC address.
func newMAC() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random mac: %w", err)
	}
	b[0] = b[0]&0xfe | 0x02
	return net.HardwareAddr(b).String(), nil
}

func readSysctl(name string) (string, error) {
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func writeSysctl(name, value string) error {
	if err := os.WriteFile("/proc/sys/"+name, []byte(value), 0o644); err != nil {
		return fmt.Errorf("set sysctl %s=%s: %w", name, value, err)
	}
	return nil
}
