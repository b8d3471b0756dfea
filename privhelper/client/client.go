// Package client is a typed Go client for pelagos-privhelper
// (io.pelagos.PrivHelper1 on the system bus), for the session service and
// tests. D-Bus errors come back as *Error values that match the package's
// sentinels with errors.Is.
package client

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/godbus/dbus/v5"

	"github.com/pelagos-containers/pelagos/privhelper/api"
)

// Sentinels for the helper's D-Bus errors, for errors.Is.
var (
	ErrNotAuthorized   = errors.New("not authorized")
	ErrInvalidArgument = errors.New("invalid argument")
	ErrNotFound        = errors.New("not found")
	ErrExists          = errors.New("already exists")
	ErrBusy            = errors.New("busy")
	ErrPortInUse       = errors.New("port in use")
	ErrAddressInUse    = errors.New("address in use")
	ErrFailed          = errors.New("failed")
)

var sentinels = map[string]error{
	api.ErrorNotAuthorized:   ErrNotAuthorized,
	api.ErrorInvalidArgument: ErrInvalidArgument,
	api.ErrorNotFound:        ErrNotFound,
	api.ErrorExists:          ErrExists,
	api.ErrorBusy:            ErrBusy,
	api.ErrorPortInUse:       ErrPortInUse,
	api.ErrorAddressInUse:    ErrAddressInUse,
	api.ErrorFailed:          ErrFailed,
}

// Error is an error the helper (or the bus) returned.
type Error struct {
	Name    string // the D-Bus error name
	Message string // the helper's one-line explanation
}

func (e *Error) Error() string { return e.Message }

// Is matches the sentinel for e's D-Bus name.
func (e *Error) Is(target error) bool { return sentinels[e.Name] == target }

// Client calls the helper over one bus connection.
type Client struct {
	conn *dbus.Conn
	obj  dbus.BusObject
	// Interactive lets polkit ask the user for a password (through their
	// authentication agent) instead of refusing outright.
	Interactive bool
}

// Connect opens a private connection to the system bus
// ($DBUS_SYSTEM_BUS_ADDRESS honoured).
func Connect(ctx context.Context) (*Client, error) {
	conn, err := dbus.ConnectSystemBus(dbus.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("connect to the system bus: %w", err)
	}
	return New(conn), nil
}

// New returns a Client using conn, which the Client then owns.
func New(conn *dbus.Conn) *Client {
	return &Client{conn: conn, obj: conn.Object(api.BusName, api.ObjectPath)}
}

// Close closes the bus connection.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) call(ctx context.Context, method string, args ...any) *dbus.Call {
	var flags dbus.Flags
	if c.Interactive {
		flags |= dbus.FlagAllowInteractiveAuthorization
	}
	call := c.obj.CallWithContext(ctx, api.Interface+"."+method, flags, args...)
	if call.Err != nil {
		call.Err = mapErr(method, call.Err)
	}
	return call
}

func mapErr(method string, err error) error {
	var de dbus.Error
	if errors.As(err, &de) {
		msg := de.Name
		if len(de.Body) > 0 {
			if s, ok := de.Body[0].(string); ok {
				msg = s
			}
		}
		return &Error{Name: de.Name, Message: msg}
	}
	var dep *dbus.Error
	if errors.As(err, &dep) {
		return mapErr(method, *dep)
	}
	return fmt.Errorf("%s: %w", method, err)
}

// Network is one of the caller's networks.
type Network struct {
	Name     string
	Subnet   netip.Prefix
	Gateway  netip.Addr
	Bridge   string
	Internal bool
}

// NetworkOptions are CreateNetwork's options; zero values are left out.
type NetworkOptions struct {
	Subnet   string
	Gateway  string
	Internal bool
}

// CreateNetwork creates a network owned by the caller.
func (c *Client) CreateNetwork(ctx context.Context, name string, o NetworkOptions) (Network, error) {
	opts := map[string]dbus.Variant{}
	if o.Subnet != "" {
		opts["subnet"] = dbus.MakeVariant(o.Subnet)
	}
	if o.Gateway != "" {
		opts["gateway"] = dbus.MakeVariant(o.Gateway)
	}
	if o.Internal {
		opts["internal"] = dbus.MakeVariant(true)
	}
	var subnet, gw, bridge string
	if err := c.call(ctx, "CreateNetwork", name, opts).Store(&subnet, &gw, &bridge); err != nil {
		return Network{}, err
	}
	n := Network{Name: name, Bridge: bridge, Internal: o.Internal}
	var err error
	if n.Subnet, err = netip.ParsePrefix(subnet); err != nil {
		return Network{}, fmt.Errorf("CreateNetwork: subnet %q: %w", subnet, err)
	}
	if n.Gateway, err = netip.ParseAddr(gw); err != nil {
		return Network{}, fmt.Errorf("CreateNetwork: gateway %q: %w", gw, err)
	}
	return n, nil
}

// RemoveNetwork removes one of the caller's networks.
func (c *Client) RemoveNetwork(ctx context.Context, name string) error {
	return c.call(ctx, "RemoveNetwork", name).Err
}

// ListNetworks lists the caller's networks.
func (c *Client) ListNetworks(ctx context.Context) ([]Network, error) {
	var raw []struct {
		Name, Subnet, Gateway, Bridge string
		Internal                      bool
	}
	if err := c.call(ctx, "ListNetworks").Store(&raw); err != nil {
		return nil, err
	}
	out := make([]Network, 0, len(raw))
	for _, r := range raw {
		n := Network{Name: r.Name, Bridge: r.Bridge, Internal: r.Internal}
		n.Subnet, _ = netip.ParsePrefix(r.Subnet)
		n.Gateway, _ = netip.ParseAddr(r.Gateway)
		out = append(out, n)
	}
	return out, nil
}

// AttachOptions are Attach's options; zero values are left out.
type AttachOptions struct {
	IP        string // an address in the network's subnet
	Ifname    string // default eth0
	Container string // a label for listings
}

// Lease is one container's link into a network.
type Lease struct {
	ID        string
	Network   string
	Address   netip.Prefix // the container's address with the subnet's length
	Gateway   netip.Addr
	Ifname    string
	MAC       string
	Container string
}

// Attach wires the network namespace netns (an open /proc/PID/ns/net) into
// the caller's network. The file stays open; the caller closes it.
func (c *Client) Attach(ctx context.Context, netns *os.File, network string, o AttachOptions) (Lease, error) {
	opts := map[string]dbus.Variant{}
	if o.IP != "" {
		opts["ip"] = dbus.MakeVariant(o.IP)
	}
	if o.Ifname != "" {
		opts["ifname"] = dbus.MakeVariant(o.Ifname)
	}
	if o.Container != "" {
		opts["container"] = dbus.MakeVariant(o.Container)
	}
	var id, addr, gw, ifname, mac string
	err := c.call(ctx, "Attach", dbus.UnixFD(netns.Fd()), network, opts).Store(&id, &addr, &gw, &ifname, &mac)
	if err != nil {
		return Lease{}, err
	}
	l := Lease{ID: id, Network: network, Ifname: ifname, MAC: mac, Container: o.Container}
	if l.Address, err = netip.ParsePrefix(addr); err != nil {
		return Lease{}, fmt.Errorf("Attach: address %q: %w", addr, err)
	}
	if l.Gateway, err = netip.ParseAddr(gw); err != nil {
		return Lease{}, fmt.Errorf("Attach: gateway %q: %w", gw, err)
	}
	return l, nil
}

// Detach removes one of the caller's leases and its forwards.
func (c *Client) Detach(ctx context.Context, lease string) error {
	return c.call(ctx, "Detach", lease).Err
}

// ListLeases lists the caller's leases. Gateway and MAC are not listed.
func (c *Client) ListLeases(ctx context.Context) ([]Lease, error) {
	var raw []struct{ Lease, Network, Address, Container, Ifname string }
	if err := c.call(ctx, "ListLeases").Store(&raw); err != nil {
		return nil, err
	}
	out := make([]Lease, 0, len(raw))
	for _, r := range raw {
		l := Lease{ID: r.Lease, Network: r.Network, Container: r.Container, Ifname: r.Ifname}
		if a, err := netip.ParseAddr(r.Address); err == nil {
			l.Address = netip.PrefixFrom(a, 32)
		}
		out = append(out, l)
	}
	return out, nil
}

// Forward is a published host port.
type Forward struct {
	ID            string
	Lease         string
	Proto         string // tcp or udp
	HostIP        string // "" or 0.0.0.0: every IPv4 address of the host
	HostPort      uint16
	ContainerPort uint16
}

// AddForward publishes hostIP:hostPort to the lease's containerPort and
// returns the forward's id.
func (c *Client) AddForward(ctx context.Context, lease, proto, hostIP string, hostPort, containerPort uint16) (string, error) {
	var id string
	err := c.call(ctx, "AddForward", lease, proto, hostIP, hostPort, containerPort).Store(&id)
	return id, err
}

// RemoveForward removes one of the caller's forwards.
func (c *Client) RemoveForward(ctx context.Context, forward string) error {
	return c.call(ctx, "RemoveForward", forward).Err
}

// ListForwards lists the caller's forwards.
func (c *Client) ListForwards(ctx context.Context) ([]Forward, error) {
	var raw []struct {
		Forward, Lease, Proto, HostIP string
		HostPort, ContainerPort       uint16
	}
	if err := c.call(ctx, "ListForwards").Store(&raw); err != nil {
		return nil, err
	}
	out := make([]Forward, 0, len(raw))
	for _, r := range raw {
		out = append(out, Forward{r.Forward, r.Lease, r.Proto, r.HostIP, r.HostPort, r.ContainerPort})
	}
	return out, nil
}
