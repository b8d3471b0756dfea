package privhelper

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"github.com/pelagos-containers/pelagos/privhelper/api"
)

// service is the exported io.pelagos.PrivHelper1 object. Each method finds
// the caller's uid from the bus, asks polkit, checks its arguments and hands
// over to the Manager; it never trusts an identity the caller states.
type service struct {
	ctx  context.Context
	conn *dbus.Conn
	m    *Manager

	mu       sync.Mutex
	inflight int
	last     time.Time // end of the latest call, for the idle timer
}

func (s *service) begin() {
	s.mu.Lock()
	s.inflight++
	s.mu.Unlock()
}

func (s *service) end() {
	s.mu.Lock()
	s.inflight--
	s.last = time.Now()
	s.mu.Unlock()
}

// idleFor reports how long no call has been running.
func (s *service) idleFor() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight > 0 {
		return 0
	}
	return time.Since(s.last)
}

// caller checks the message's signature, authorises its sender for
// actions and returns the sender's uid. The signature is checked here
// because godbus converts between integer types when it decodes arguments,
// so an (i) would otherwise pass for a (q).
func (s *service) caller(sender dbus.Sender, msg dbus.Message, sig string, actions ...string) (uint32, error) {
	got, _ := msg.Headers[dbus.FieldSignature].Value().(dbus.Signature)
	if got.String() != sig {
		return 0, invalidf("wrong argument types (%.40s), want (%s)", got.String(), sig)
	}
	uid, err := callerUID(s.ctx, s.conn, string(sender))
	if err != nil {
		return 0, err
	}
	interactive := msg.Flags&dbus.FlagAllowInteractiveAuthorization != 0
	for _, a := range actions {
		if err := authorize(s.ctx, s.conn, string(sender), a, interactive); err != nil {
			return 0, err
		}
	}
	return uid, nil
}

// CreateNetwork creates a network owned by the caller.
func (s *service) CreateNetwork(sender dbus.Sender, msg dbus.Message, name string, options map[string]dbus.Variant) (subnet, gateway, bridge string, derr *dbus.Error) {
	s.begin()
	defer s.end()
	n, err := func() (Network, error) {
		uid, err := s.caller(sender, msg, "sa{sv}", api.ActionNetwork)
		if err != nil {
			return Network{}, err
		}
		if err := ValidateName(name); err != nil {
			return Network{}, err
		}
		o, err := ParseNetworkOptions(options)
		if err != nil {
			return Network{}, err
		}
		return s.m.CreateNetwork(uid, name, o)
	}()
	if err != nil {
		return "", "", "", toDBus(err)
	}
	return n.Subnet.String(), n.Gateway.String(), n.Bridge, nil
}

// RemoveNetwork removes one of the caller's networks.
func (s *service) RemoveNetwork(sender dbus.Sender, msg dbus.Message, name string) *dbus.Error {
	s.begin()
	defer s.end()
	uid, err := s.caller(sender, msg, "s", api.ActionNetwork)
	if err == nil {
		err = ValidateName(name)
	}
	if err == nil {
		err = s.m.RemoveNetwork(uid, name)
	}
	return toDBus(err)
}

// NetworkInfo is ListNetworks' (ssssb).
type NetworkInfo struct {
	Name, Subnet, Gateway, Bridge string
	Internal                      bool
}

// ListNetworks lists the caller's networks.
func (s *service) ListNetworks(sender dbus.Sender, msg dbus.Message) ([]NetworkInfo, *dbus.Error) {
	s.begin()
	defer s.end()
	uid, err := s.caller(sender, msg, "", api.ActionNetwork)
	if err != nil {
		return nil, toDBus(err)
	}
	out := []NetworkInfo{}
	for _, n := range s.m.Networks(uid) {
		out = append(out, NetworkInfo{n.Name, n.Subnet.String(), n.Gateway.String(), n.Bridge, n.Internal})
	}
	return out, nil
}

// Attach wires the namespace fd into one of the caller's networks.
func (s *service) Attach(sender dbus.Sender, msg dbus.Message, netns dbus.UnixFD, network string, options map[string]dbus.Variant) (lease, address, gateway, ifname, mac string, derr *dbus.Error) {
	defer unix.Close(int(netns))
	s.begin()
	defer s.end()
	l, n, err := func() (Lease, Network, error) {
		uid, err := s.caller(sender, msg, "hsa{sv}", api.ActionNetwork)
		if err != nil {
			return Lease{}, Network{}, err
		}
		if err := ValidateName(network); err != nil {
			return Lease{}, Network{}, err
		}
		o, err := ParseAttachOptions(options)
		if err != nil {
			return Lease{}, Network{}, err
		}
		return s.m.Attach(s.ctx, uid, int(netns), network, o)
	}()
	if err != nil {
		return "", "", "", "", "", toDBus(err)
	}
	cidr := netip.PrefixFrom(l.Addr, n.Subnet.Bits()).String()
	return l.ID, cidr, n.Gateway.String(), l.Ifname, l.MAC, nil
}

// Detach removes one of the caller's leases.
func (s *service) Detach(sender dbus.Sender, msg dbus.Message, lease string) *dbus.Error {
	s.begin()
	defer s.end()
	uid, err := s.caller(sender, msg, "s", api.ActionNetwork)
	if err == nil {
		err = ValidateID(lease)
	}
	if err == nil {
		err = s.m.Detach(uid, lease)
	}
	return toDBus(err)
}

// LeaseInfo is ListLeases' (sssss).
type LeaseInfo struct {
	Lease, Network, Address, Container, Ifname string
}

// ListLeases lists the caller's leases.
func (s *service) ListLeases(sender dbus.Sender, msg dbus.Message) ([]LeaseInfo, *dbus.Error) {
	s.begin()
	defer s.end()
	uid, err := s.caller(sender, msg, "", api.ActionNetwork)
	if err != nil {
		return nil, toDBus(err)
	}
	out := []LeaseInfo{}
	for _, l := range s.m.Leases(uid) {
		out = append(out, LeaseInfo{l.ID, l.Network, l.Addr.String(), l.Container, l.Ifname})
	}
	return out, nil
}

// AddForward publishes a host port to one of the caller's leases. Ports
// below 1024 need the stricter action as well.
func (s *service) AddForward(sender dbus.Sender, msg dbus.Message, lease, proto, hostIP string, hostPort, containerPort uint16) (string, *dbus.Error) {
	s.begin()
	defer s.end()
	id, err := func() (string, error) {
		actions := []string{api.ActionNetwork}
		if hostPort < 1024 {
			actions = append(actions, api.ActionPrivilegedPort)
		}
		uid, err := s.caller(sender, msg, "sssqq", actions...)
		if err != nil {
			return "", err
		}
		if err := ValidateID(lease); err != nil {
			return "", err
		}
		if err := ValidateProto(proto); err != nil {
			return "", err
		}
		ip, err := ParseHostIP(hostIP)
		if err != nil {
			return "", err
		}
		if err := ValidatePort("host port", hostPort); err != nil {
			return "", err
		}
		if err := ValidatePort("container port", containerPort); err != nil {
			return "", err
		}
		return s.m.AddForward(s.ctx, uid, lease, proto, ip, hostPort, containerPort)
	}()
	return id, toDBus(err)
}

// RemoveForward removes one of the caller's forwards.
func (s *service) RemoveForward(sender dbus.Sender, msg dbus.Message, forward string) *dbus.Error {
	s.begin()
	defer s.end()
	uid, err := s.caller(sender, msg, "s", api.ActionNetwork)
	if err == nil {
		err = ValidateID(forward)
	}
	if err == nil {
		err = s.m.RemoveForward(uid, forward)
	}
	return toDBus(err)
}

// ForwardInfo is ListForwards' (ssssqq).
type ForwardInfo struct {
	Forward, Lease, Proto, HostIP string
	HostPort, ContainerPort       uint16
}

// ListForwards lists the caller's forwards.
func (s *service) ListForwards(sender dbus.Sender, msg dbus.Message) ([]ForwardInfo, *dbus.Error) {
	s.begin()
	defer s.end()
	uid, err := s.caller(sender, msg, "", api.ActionNetwork)
	if err != nil {
		return nil, toDBus(err)
	}
	out := []ForwardInfo{}
	for _, f := range s.m.Forwards(uid) {
		out = append(out, ForwardInfo{f.ID, f.Lease, f.Proto, f.HostIP.String(), f.HostPort, f.ContainerPort})
	}
	return out, nil
}

// closeStrayFDs closes the file descriptors that arrive with any message
// other than a well-formed Attach call. godbus hands received fds to the
// method that takes them; a call to another method, or an Attach with the
// wrong signature, would otherwise leak them into the helper for ever.
func closeStrayFDs(msg *dbus.Message) {
	if msg.Type == dbus.TypeMethodCall {
		member, _ := msg.Headers[dbus.FieldMember].Value().(string)
		sig, _ := msg.Headers[dbus.FieldSignature].Value().(dbus.Signature)
		iface, _ := msg.Headers[dbus.FieldInterface].Value().(string)
		path, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
		if member == "Attach" && sig.String() == "hsa{sv}" && path == api.ObjectPath && (iface == "" || iface == api.Interface) {
			return
		}
	}
	for _, v := range msg.Body {
		switch fd := v.(type) {
		case dbus.UnixFD:
			unix.Close(int(fd))
		case []dbus.UnixFD:
			for _, f := range fd {
				unix.Close(int(f))
			}
		}
	}
}
