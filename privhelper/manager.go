package privhelper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"github.com/pelagos-containers/pelagos/privhelper/api"
	"github.com/pelagos-containers/pelagos/privhelper/ipam"
)

// DefaultPool is where default networks (and networks created without a
// subnet) get their /24 from.
var defaultPool = netip.MustParsePrefix("10.89.0.0/16")

// Manager owns the helper's state and every change it makes to the host.
// One mutex serialises all changes: they are few, short, and each must see
// the state the previous one left.
type Manager struct {
	mu     sync.Mutex
	store  *Store
	state  *State
	held   map[string]io.Closer // forward id -> the socket reserving its host port
	hostNS map[uint64]bool      // inodes of the host's network namespace(s)
	log    *slog.Logger
}

// NewManager loads the persisted state from store. Call Reconcile before
// serving requests.
func NewManager(store *Store, log *slog.Logger) (*Manager, error) {
	s, err := store.Load()
	if err != nil {
		return nil, err
	}
	ino, err := hostNetnsInos()
	if err != nil {
		return nil, err
	}
	return &Manager{store: store, state: s, held: map[string]io.Closer{}, hostNS: ino, log: log}, nil
}

// LeaseCount returns how many leases exist; the helper stays up while any
// does, to watch their links.
func (m *Manager) LeaseCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.state.Leases)
}

// Close releases the held host ports. The kernel state (links, rules) stays,
// for the next start to reconcile.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, c := range m.held {
		c.Close()
		delete(m.held, id)
	}
}

// Reconcile makes the host match the persisted state after a start: leases
// whose veth is gone (or that were interrupted half-way) are dropped, links
// and bridges nobody owns are deleted, host ports are reserved again and the
// nftables table is rebuilt.
func (m *Manager) Reconcile(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	links, err := hostLinks()
	if err != nil {
		return err
	}
	s := m.state
	keep := map[string]bool{}
	for _, l := range slices.Clone(s.Leases) {
		n := s.network(l.UID, l.Network)
		if !l.Ready || !links[l.HostIf()] || n == nil {
			// Its veth, if any, goes below with the other leftovers.
			m.log.Info("dropping lease", "lease", l.ID, "uid", l.UID, "reason", "link gone or setup interrupted")
			s.removeLease(l.ID)
			continue
		}
		keep[l.HostIf()], keep[n.Bridge] = true, true
	}
	for name := range links {
		if !keep[name] {
			m.log.Info("deleting leftover link", "link", name)
			if err := deleteLink(name); err != nil {
				m.log.Warn("reconcile", "err", err)
			}
		}
	}
	for _, n := range s.Networks {
		if keep[n.Bridge] {
			if err := ensureBridge(n); err != nil {
				return err
			}
		}
	}
	for _, f := range slices.Clone(s.Forwards) {
		if m.held[f.ID] != nil {
			continue
		}
		c, err := reservePort(ctx, f.Proto, f.HostIP, f.HostPort)
		if err != nil {
			m.log.Warn("dropping forward whose host port cannot be reserved again", "forward", f.ID, "err", err)
			m.removeForward(f)
			continue
		}
		m.held[f.ID] = c
	}
	m.restoreIPForward()
	return m.commit()
}

// Sweep drops leases whose host veth has disappeared. Link notifications
// normally do this; the sweep covers notifications lost to a full socket
// buffer.
func (m *Manager) Sweep() {
	links, err := hostLinks()
	if err != nil {
		m.log.Warn("sweep", "err", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range slices.Clone(m.state.Leases) {
		if l.Ready && !links[l.HostIf()] {
			m.dropLease(l, false)
		}
	}
}

// LinkGone handles the deletion of host link name: if it was a lease's veth
// (its namespace died), the lease, its forwards and its rules go too.
func (m *Manager) LinkGone(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.state.Leases {
		if l.HostIf() == name && l.Ready {
			m.log.Info("namespace gone, dropping lease", "lease", l.ID, "uid", l.UID)
			m.dropLease(l, false)
			return
		}
	}
}

// CreateNetwork creates uid's network name.
func (m *Manager) CreateNetwork(uid uint32, name string, o NetworkOptions) (Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.createNetwork(uid, name, o)
	if err != nil {
		return Network{}, err
	}
	return *n, nil
}

func (m *Manager) createNetwork(uid uint32, name string, o NetworkOptions) (*Network, error) {
	s := m.state
	if s.network(uid, name) != nil {
		return nil, newError(api.ErrorExists, "network %s already exists", name)
	}
	routes, err := hostRoutes()
	if err != nil {
		return nil, err
	}
	var used []netip.Prefix
	for _, n := range s.Networks {
		used = append(used, n.Subnet)
	}
	subnet := o.Subnet
	if subnet.IsValid() {
		for _, u := range used {
			if u.Overlaps(subnet) {
				// Do not say whose: other users' networks are not visible.
				return nil, invalidf("subnet %s overlaps an existing pelagos network", subnet)
			}
		}
		for _, r := range routes {
			if r.Overlaps(subnet) {
				return nil, invalidf("subnet %s overlaps the host's route to %s", subnet, r)
			}
		}
	} else {
		subnet, err = ipam.NextSubnet(defaultPool, 24, append(used, routes...))
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", name, err)
		}
	}
	gw := o.Gateway
	if !gw.IsValid() {
		gw = ipam.Gateway(subnet)
	}
	n := &Network{UID: uid, Name: name, Subnet: subnet, Gateway: gw, Internal: o.Internal,
		Bridge: bridgePrefix + strconv.Itoa(s.NextBridge)}
	s.NextBridge++
	s.Networks = append(s.Networks, n)
	if err := m.save(); err != nil {
		s.Networks = s.Networks[:len(s.Networks)-1]
		return nil, err
	}
	return n, nil
}

// RemoveNetwork removes uid's network name; refused while it has leases.
func (m *Manager) RemoveNetwork(uid uint32, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.state
	n := s.network(uid, name)
	if n == nil {
		return notFoundf("no network %s", name)
	}
	if k := len(s.leasesOf(uid, name)); k > 0 {
		return newError(api.ErrorBusy, "network %s has %d attached container(s); detach them first", name, k)
	}
	if err := deleteLink(n.Bridge); err != nil {
		return err
	}
	s.Networks = slices.DeleteFunc(s.Networks, func(x *Network) bool { return x == n })
	return m.save()
}

// Networks returns copies of uid's networks.
func (m *Manager) Networks(uid uint32) []Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Network
	for _, n := range m.state.Networks {
		if n.UID == uid {
			out = append(out, *n)
		}
	}
	return out
}

// Attach wires the network namespace nsFD into uid's network: the lease is
// recorded (not ready) before any link exists, so a crash at any point
// leaves a record that the next start uses to undo the half-made link.
// The caller keeps ownership of nsFD.
func (m *Manager) Attach(ctx context.Context, uid uint32, nsFD int, network string, o AttachOptions) (Lease, Network, error) {
	if err := checkNetns(nsFD, uid, m.hostNS); err != nil {
		return Lease{}, Network{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.state
	n := s.network(uid, network)
	if n == nil {
		if network != api.DefaultNetwork {
			return Lease{}, Network{}, notFoundf("no network %s", network)
		}
		var err error
		if n, err = m.createNetwork(uid, network, NetworkOptions{}); err != nil {
			return Lease{}, Network{}, err
		}
	}
	addr, err := s.pickAddr(n, o.IP)
	if err != nil {
		return Lease{}, Network{}, err
	}
	id, err := newID()
	if err != nil {
		return Lease{}, Network{}, err
	}
	mac, err := newMAC()
	if err != nil {
		return Lease{}, Network{}, err
	}
	l := &Lease{ID: id, UID: uid, Network: n.Name, Addr: addr, MAC: mac, Ifname: o.Ifname, Container: o.Container}
	s.Leases = append(s.Leases, l)
	if err := m.save(); err != nil {
		s.removeLease(id)
		return Lease{}, Network{}, err
	}
	err = m.wire(nsFD, n, l)
	if err == nil {
		l.Ready = true
		err = m.commit()
	}
	if err != nil {
		if derr := m.dropLease(l, true); derr != nil {
			m.log.Warn("undo failed attach", "lease", l.ID, "err", derr)
		}
		return Lease{}, Network{}, err
	}
	return *l, *n, nil
}

// wire makes the links of a new lease.
func (m *Manager) wire(nsFD int, n *Network, l *Lease) error {
	if err := ensureBridge(n); err != nil {
		return err
	}
	if !n.Internal {
		if err := m.ensureIPForward(); err != nil {
			return err
		}
	}
	return addVeth(nsFD, n, l)
}

// Detach removes uid's lease id and everything made for it.
func (m *Manager) Detach(uid uint32, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.state.lease(uid, id)
	if l == nil {
		return notFoundf("no lease %s", id)
	}
	return m.dropLease(l, true)
}

// dropLease removes l, its forwards, its veth (when deleteVeth; a veth whose
// namespace died is already gone), its network's bridge when it was the last
// lease there, and then rewrites the rules and the state.
func (m *Manager) dropLease(l *Lease, deleteVeth bool) error {
	s := m.state
	var errs []error
	for _, f := range s.Forwards {
		if f.Lease == l.ID {
			m.release(f.ID)
		}
	}
	if deleteVeth {
		errs = append(errs, deleteLink(l.HostIf()))
	}
	s.removeLease(l.ID)
	if n := s.network(l.UID, l.Network); n != nil && len(s.leasesOf(n.UID, n.Name)) == 0 {
		errs = append(errs, deleteLink(n.Bridge))
	}
	m.restoreIPForward()
	errs = append(errs, m.commit())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("detach lease %s: %w", l.ID, err)
	}
	return nil
}

// Leases returns copies of uid's leases.
func (m *Manager) Leases(uid uint32) []Lease {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Lease
	for _, l := range m.state.Leases {
		if l.UID == uid {
			out = append(out, *l)
		}
	}
	return out
}

// AddForward publishes hostIP:hostPort (proto) to the lease's containerPort.
func (m *Manager) AddForward(ctx context.Context, uid uint32, lease, proto string, hostIP netip.Addr, hostPort, containerPort uint16) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.state
	l := s.lease(uid, lease)
	if l == nil {
		return "", notFoundf("no lease %s", lease)
	}
	if n := s.network(uid, l.Network); n == nil || n.Internal {
		return "", invalidf("network %s is internal: it cannot publish ports", l.Network)
	}
	for _, f := range s.Forwards {
		if f.Proto == proto && f.HostPort == hostPort &&
			(f.HostIP == hostIP || f.HostIP.IsUnspecified() || hostIP.IsUnspecified()) {
			return "", newError(api.ErrorPortInUse, "host port %d/%s is already in use", hostPort, proto)
		}
	}
	c, err := reservePort(ctx, proto, hostIP, hostPort)
	if err != nil {
		return "", err
	}
	id, err := newID()
	if err != nil {
		c.Close()
		return "", err
	}
	f := &Forward{ID: id, UID: uid, Lease: l.ID, Proto: proto, HostIP: hostIP, HostPort: hostPort, ContainerPort: containerPort}
	m.held[id] = c
	s.Forwards = append(s.Forwards, f)
	if err := m.commit(); err != nil {
		m.removeForward(f)
		if rerr := m.commit(); rerr != nil {
			m.log.Warn("undo failed forward", "forward", id, "err", rerr)
		}
		return "", err
	}
	return id, nil
}

// RemoveForward removes uid's forward id.
func (m *Manager) RemoveForward(uid uint32, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.state.Forwards {
		if f.UID == uid && f.ID == id {
			m.removeForward(f)
			return m.commit()
		}
	}
	return notFoundf("no forward %s", id)
}

// Forwards returns copies of uid's forwards.
func (m *Manager) Forwards(uid uint32) []Forward {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Forward
	for _, f := range m.state.Forwards {
		if f.UID == uid {
			out = append(out, *f)
		}
	}
	return out
}

func (m *Manager) removeForward(f *Forward) {
	m.release(f.ID)
	m.state.Forwards = slices.DeleteFunc(m.state.Forwards, func(x *Forward) bool { return x == f })
}

func (m *Manager) release(id string) {
	if c := m.held[id]; c != nil {
		c.Close()
		delete(m.held, id)
	}
}

const ipForward = "net/ipv4/ip_forward"

// ensureIPForward turns on net.ipv4.ip_forward, remembering (persistently)
// the value it found so the last lease's removal can put it back.
func (m *Manager) ensureIPForward() error {
	cur, err := readSysctl(ipForward)
	if err != nil || cur == "1" {
		return err
	}
	if m.state.IPForwardWas == "" {
		m.state.IPForwardWas = cur
		if err := m.save(); err != nil {
			return err
		}
	}
	return writeSysctl(ipForward, "1")
}

// restoreIPForward puts ip_forward back once no lease needs it, unless
// someone else changed it since.
func (m *Manager) restoreIPForward() {
	if len(m.state.Leases) > 0 || m.state.IPForwardWas == "" {
		return
	}
	if cur, err := readSysctl(ipForward); err == nil && cur == "1" {
		if err := writeSysctl(ipForward, m.state.IPForwardWas); err != nil {
			m.log.Warn("restore ip_forward", "err", err)
			return
		}
	}
	m.state.IPForwardWas = ""
}

// commit rewrites the nftables table from the state, then saves the state.
func (m *Manager) commit() error {
	errRules := applyRuleset(buildRuleset(m.state))
	return errors.Join(errRules, m.save())
}

func (m *Manager) save() error {
	return m.store.Save(m.state)
}
