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

// service is the exported io.pelagos.PrivHelper1 object. Every method goes
// through call, which finds the caller's uid from the bus and asks polkit
// before the arguments are even looked at; it never trusts an identity the
// caller states.
type service struct {
	ctx  context.Context
	conn *dbus.Conn
	m    *Manager

	mu       sync.Mutex
	inflight int
	last     time.Time // end of the latest call, for the idle timer
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

// call runs f for the sender of msg once the message's signature is exactly
// sig and polkit authorises the sender for api.ActionNetwork. The signature
// is checked here because godbus converts between integer types when it
// decodes arguments, so an (i) would otherwise pass for a (q).
func (s *service) call(sender dbus.Sender, msg dbus.Message, sig string, f func(uid uint32) error) *dbus.Error {
	s.mu.Lock()
	s.inflight++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.last = time.Now()
		s.mu.Unlock()
	}()
	got, _ := msg.Headers[dbus.FieldSignature].Value().(dbus.Signature)
	if got.String() != sig {
		return toDBus(invalidf("wrong argument types (%.40s), want (%s)", got.String(), sig))
	}
	uid, err := callerUID(s.ctx, s.conn, string(sender))
	if err == nil {
		err = s.authorize(sender, msg, api.ActionNetwork)
	}
	if err == nil {
		err = f(uid)
	}
	return toDBus(err)
}

// authorize asks polkit about sender and action, allowing interaction only
// if the caller allowed it on its message.
func (s *service) authorize(sender dbus.Sender, msg dbus.Message, action string) error {
	interactive := msg.Flags&dbus.FlagAllowInteractiveAuthorization != 0
	return authorize(s.ctx, s.conn, string(sender), action, interactive)
}

// firstErr returns the first non-nil error of errs. The validators it is
// used with have no side effects, so running them all does no harm.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// CreateNetwork creates a network owned by the caller.
func (s *service) CreateNetwork(sender dbus.Sender, msg dbus.Message, name string, options map[string]dbus.Variant) (subnet, gateway, bridge string, derr *dbus.Error) {
	derr = s.call(sender, msg, "sa{sv}", func(uid uint32) error {
		o, err := ParseNetworkOptions(options)
		if err = firstErr(ValidateName(name), err); err != nil {
			return err
		}
		n, err := s.m.CreateNetwork(uid, name, o)
		if err == nil {
			subnet, gateway, bridge = n.Subnet.String(), n.Gateway.String(), n.Bridge
		}
		return err
	})
	return
}

// RemoveNetwork removes one of the caller's networks.
func (s *service) RemoveNetwork(sender dbus.Sender, msg dbus.Message, name string) *dbus.Error {
	return s.call(sender, msg, "s", func(uid uint32) error {
		if err := ValidateName(name); err != nil {
			return err
		}
		return s.m.RemoveNetwork(uid, name)
	})
}

// NetworkInfo is ListNetworks' (ssssb).
type NetworkInfo struct {
	Name, Subnet, Gateway, Bridge string
	Internal                      bool
}

// ListNetworks lists the caller's networks.
func (s *service) ListNetworks(sender dbus.Sender, msg dbus.Message) (out []NetworkInfo, derr *dbus.Error) {
	derr = s.call(sender, msg, "", func(uid uint32) error {
		out = []NetworkInfo{}
		for _, n := range s.m.Networks(uid) {
			out = append(out, NetworkInfo{n.Name, n.Subnet.String(), n.Gateway.String(), n.Bridge, n.Internal})
		}
		return nil
	})
	return
}

// Attach wires the namespace fd into one of the caller's networks. The fd
// is closed on every path, refusals included.
func (s *service) Attach(sender dbus.Sender, msg dbus.Message, netns dbus.UnixFD, network string, options map[string]dbus.Variant) (lease, address, gateway, ifname, mac string, derr *dbus.Error) {
	defer unix.Close(int(netns))
	derr = s.call(sender, msg, "hsa{sv}", func(uid uint32) error {
		o, err := ParseAttachOptions(options)
		if err = firstErr(ValidateName(network), err); err != nil {
			return err
		}
		l, n, err := s.m.Attach(s.ctx, uid, int(netns), network, o)
		if err == nil {
			lease, gateway, ifname, mac = l.ID, n.Gateway.String(), l.Ifname, l.MAC
			address = netip.PrefixFrom(l.Addr, n.Subnet.Bits()).String()
		}
		return err
	})
	return
}

// Detach removes one of the caller's leases.
func (s *service) Detach(sender dbus.Sender, msg dbus.Message, lease string) *dbus.Error {
	return s.call(sender, msg, "s", func(uid uint32) error {
		if err := ValidateID(lease); err != nil {
			return err
		}
		return s.m.Detach(uid, lease)
	})
}

// LeaseInfo is ListLeases' (sssss).
type LeaseInfo struct {
	Lease, Network, Address, Container, Ifname string
}

// ListLeases lists the caller's leases.
func (s *service) ListLeases(sender dbus.Sender, msg dbus.Message) (out []LeaseInfo, derr *dbus.Error) {
	derr = s.call(sender, msg, "", func(uid uint32) error {
		out = []LeaseInfo{}
		for _, l := range s.m.Leases(uid) {
			out = append(out, LeaseInfo{l.ID, l.Network, l.Addr.String(), l.Container, l.Ifname})
		}
		return nil
	})
	return
}

// AddForward publishes a host port to one of the caller's leases. Ports
// below 1024 need the stricter action as well.
func (s *service) AddForward(sender dbus.Sender, msg dbus.Message, lease, proto, hostIP string, hostPort, containerPort uint16) (id string, derr *dbus.Error) {
	derr = s.call(sender, msg, "sssqq", func(uid uint32) error {
		if hostPort < 1024 {
			if err := s.authorize(sender, msg, api.ActionPrivilegedPort); err != nil {
				return err
			}
		}
		ip, err := ParseHostIP(hostIP)
		err = firstErr(ValidateID(lease), ValidateProto(proto), err,
			ValidatePort("host port", hostPort), ValidatePort("container port", containerPort))
		if err == nil {
			id, err = s.m.AddForward(s.ctx, uid, lease, proto, ip, hostPort, containerPort)
		}
		return err
	})
	return
}

// RemoveForward removes one of the caller's forwards.
func (s *service) RemoveForward(sender dbus.Sender, msg dbus.Message, forward string) *dbus.Error {
	return s.call(sender, msg, "s", func(uid uint32) error {
		if err := ValidateID(forward); err != nil {
			return err
		}
		return s.m.RemoveForward(uid, forward)
	})
}

// ForwardInfo is ListForwards' (ssssqq).
type ForwardInfo struct {
	Forward, Lease, Proto, HostIP string
	HostPort, ContainerPort       uint16
}

// ListForwards lists the caller's forwards.
func (s *service) ListForwards(sender dbus.Sender, msg dbus.Message) (out []ForwardInfo, derr *dbus.Error) {
	derr = s.call(sender, msg, "", func(uid uint32) error {
		out = []ForwardInfo{}
		for _, f := range s.m.Forwards(uid) {
			out = append(out, ForwardInfo{f.ID, f.Lease, f.Proto, f.HostIP.String(), f.HostPort, f.ContainerPort})
		}
		return nil
	})
	return
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
