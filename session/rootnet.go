package session

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	godbus "github.com/godbus/dbus/v5"

	"github.com/pelagos-containers/pelagos/container"
	pdbus "github.com/pelagos-containers/pelagos/dbus"
	"github.com/pelagos-containers/pelagos/network"
	"github.com/pelagos-containers/pelagos/privhelper/client"
)

// Root networking: a container on a bridge network gets its own network
// namespace, which pelagos-privhelper (root, on the system bus, after
// polkit says yes) wires to the user's bridge with a veth pair, an
// address, NAT and port forwards. The service keeps the helper's lease
// and forward ids with the container, and gives the containers of a
// named network each other's names in /etc/hosts.

// bridgeState is what the helper made for a container's current run.
type bridgeState struct {
	Leases   []bridgeLease `json:"leases,omitempty"`
	Forwards []string      `json:"forwards,omitempty"`
}

// bridgeLease is one link of the container into a network; the first is
// the primary one.
type bridgeLease struct {
	ID      string `json:"id"`
	Network string `json:"network"`
	Address string `json:"address"` // CIDR
	Gateway string `json:"gateway"`
	Ifname  string `json:"ifname"`
	MAC     string `json:"mac"`
}

// leaseRow is one row of the Networks property: network, interface,
// address (CIDR), gateway, MAC address.
type leaseRow struct{ Network, Ifname, Address, Gateway, MAC string }

func leaseRows(ls []bridgeLease) []leaseRow {
	rows := []leaseRow{}
	for _, l := range ls {
		rows = append(rows, leaseRow{l.Network, l.Ifname, l.Address, l.Gateway, l.MAC})
	}
	return rows
}

// IP is the lease's address without its prefix length.
func (l bridgeLease) IP() string {
	ip, _, _ := strings.Cut(l.Address, "/")
	return ip
}

// privhelper holds the connection to pelagos-privhelper, made on first
// use and made again after a failure.
type privhelper struct {
	mu   sync.Mutex
	conn *client.Client
}

// client returns a connection to the helper.
func (p *privhelper) client(ctx context.Context) (*client.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		return p.conn, nil
	}
	c, err := client.Connect(ctx)
	if err != nil {
		return nil, pdbus.Errorf(pdbus.ErrFailed, "root networking needs pelagos-privhelper on the system bus, which cannot be reached (%v): install pelagos's system files (meson install), or use the default network (pasta)", err)
	}
	p.conn = c
	return c, nil
}

// drop forgets a connection that failed, so the next call reconnects.
func (p *privhelper) drop(c *client.Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == c {
		p.conn.Close()
		p.conn = nil
	}
}

// call runs f with a helper connection and turns the helper's errors into
// the service's named errors, keeping its one-line message.
func (p *privhelper) call(ctx context.Context, f func(*client.Client) error) error {
	c, err := p.client(ctx)
	if err != nil {
		return err
	}
	err = f(c)
	var he *client.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &he) && strings.HasPrefix(he.Name, "org.freedesktop.DBus.Error."):
		p.drop(c)
		if he.Name == "org.freedesktop.DBus.Error.ServiceUnknown" || he.Name == "org.freedesktop.DBus.Error.NameHasNoOwner" {
			return pdbus.Errorf(pdbus.ErrFailed, "root networking needs pelagos-privhelper, which is not installed on the system bus (%s): install pelagos's system files, or use the default network (pasta)", he.Message)
		}
		return pdbus.Errorf(pdbus.ErrFailed, "pelagos-privhelper: %s", he.Message)
	case errors.Is(err, client.ErrNotAuthorized):
		return pdbus.Errorf(pdbus.ErrPermissionDenied, "%v", err)
	case errors.Is(err, client.ErrInvalidArgument), errors.Is(err, client.ErrPortInUse), errors.Is(err, client.ErrAddressInUse), errors.Is(err, client.ErrExists):
		return pdbus.Errorf(pdbus.ErrInvalidArgument, "%v", err)
	case errors.Is(err, client.ErrNotFound):
		return pdbus.Errorf(pdbus.ErrNoSuchNetwork, "%v", err)
	case errors.Is(err, client.ErrBusy):
		return pdbus.Errorf(pdbus.ErrNetworkInUse, "%v", err)
	case he != nil:
		return pdbus.Errorf(pdbus.ErrFailed, "pelagos-privhelper: %v", err)
	}
	p.drop(c)
	return pdbus.Errorf(pdbus.ErrFailed, "pelagos-privhelper: %v", err)
}

// checkBridge makes sure, at create time, that the helper answers, that
// the user may use it, and that every named network exists; the default
// network "bridge" is made on first use (with --default-subnet if given).
func (m *Manager) checkBridge(ctx context.Context, mode network.Mode, defaultSubnet string) error {
	var nets []client.Network
	if err := m.priv.call(ctx, func(c *client.Client) (err error) {
		nets, err = c.ListNetworks(ctx)
		return err
	}); err != nil {
		return err
	}
	have := map[string]bool{}
	for _, n := range nets {
		have[n.Name] = true
	}
	seen := map[string]bool{}
	for _, name := range mode.Networks {
		if seen[name] {
			return pdbus.Errorf(pdbus.ErrInvalidArgument, "--network %s is given twice", name)
		}
		seen[name] = true
		switch {
		case have[name]:
		case name == network.DefaultBridge:
			if defaultSubnet != "" {
				if err := m.priv.call(ctx, func(c *client.Client) error {
					_, err := c.CreateNetwork(ctx, name, client.NetworkOptions{Subnet: defaultSubnet})
					return err
				}); err != nil {
					return err
				}
			}
		default:
			return pdbus.Errorf(pdbus.ErrNoSuchNetwork, "network %q not found: create it with `pelagos network create %s` (see `pelagos network ls`)", name, name)
		}
	}
	return nil
}

// startBridge wires the new network namespace of the container's first
// process (pid) into its networks and publishes its ports. It runs in
// the background while the child prepares its root filesystem (see
// launchPasta); on failure it undoes what it made.
func (c *ctr) startBridge(ctx context.Context, pid int) error {
	fail := func(err error) error {
		c.stopBridgeLocked()
		var pe *pdbus.Error
		if errors.As(err, &pe) {
			return &container.StartError{Code: container.ExitSetupFailed, Msg: pe.Message}
		}
		return &container.StartError{Code: container.ExitSetupFailed, Msg: err.Error()}
	}
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return fail(fmt.Errorf("open the container's network namespace: %w", err))
	}
	defer ns.Close()
	n := c.rec.Network
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i, name := range n.Mode.Networks {
		opts := client.AttachOptions{Ifname: fmt.Sprintf("eth%d", i), Container: c.rec.ID[:12]}
		if i == 0 {
			opts.IP = n.IP
		}
		var l client.Lease
		err := c.m.priv.call(ctx, func(cl *client.Client) (err error) {
			l, err = cl.Attach(ctx, ns, name, opts)
			return err
		})
		if err != nil {
			return fail(err)
		}
		c.rec.Bridge.Leases = append(c.rec.Bridge.Leases, bridgeLease{
			ID: l.ID, Network: name, Address: l.Address.String(), Gateway: l.Gateway.String(), Ifname: l.Ifname, MAC: l.MAC,
		})
	}
	primary := c.rec.Bridge.Leases[0]
	for _, p := range n.Ports {
		var id string
		err := c.m.priv.call(ctx, func(cl *client.Client) (err error) {
			id, err = cl.AddForward(ctx, primary.ID, p.Proto, p.HostIP, p.HostPort, p.CtrPort)
			return err
		})
		if err != nil {
			return fail(fmt.Errorf("publish %s: %w", p, err))
		}
		c.rec.Bridge.Forwards = append(c.rec.Bridge.Forwards, id)
	}
	c.m.hosts.set(c.rec.ID, c.bridgeHostsEntry())
	return nil
}

// bridgeHostsEntry is the container's part of the bridge networks'
// names, with the addresses of its leases.
func (c *ctr) bridgeHostsEntry() hostsEntry {
	e := hostsEntry{name: c.rec.Name, file: filepath.Join(c.dir, "hosts"), base: c.etcHosts(), links: c.rec.Network.Links, nets: map[string]string{}}
	for _, l := range c.rec.Bridge.Leases {
		e.nets[l.Network] = l.IP()
	}
	return e
}

// stopBridgeLocked gives the container's leases back (the helper removes
// their forwards with them) and takes its names out of the other
// containers' /etc/hosts. A lease the helper already dropped (its
// namespace died first) is fine. Call with c.mu held or before sharing c.
func (c *ctr) stopBridgeLocked() {
	c.m.hosts.remove(c.rec.ID)
	if len(c.rec.Bridge.Leases) == 0 {
		c.rec.Bridge = bridgeState{}
		return
	}
	ctx, cancel := context.WithTimeout(c.m.ctx, 10*time.Second)
	defer cancel()
	for _, l := range c.rec.Bridge.Leases {
		err := c.m.priv.call(ctx, func(cl *client.Client) error { return cl.Detach(ctx, l.ID) })
		var pe *pdbus.Error
		if err != nil && !(errors.As(err, &pe) && pe.Code == pdbus.ErrNoSuchNetwork) {
			c.m.log.Warn("detach from network", "id", c.rec.ID, "network", l.Network, "err", err)
		}
	}
	c.rec.Bridge = bridgeState{}
}

// hostsEntry is what one running container on a bridge network adds to
// the /etc/hosts of the others, and its own file's fixed part.
type hostsEntry struct {
	name  string
	file  string            // the container's hosts file
	base  string            // its own lines: localhost, itself, --add-host
	nets  map[string]string // network → its address there
	links map[string]string // --link target name → alias
}

// hostsIndex keeps the running bridge containers' names and addresses
// and rewrites their /etc/hosts when one comes or goes. Its lock is a
// leaf: nothing else is locked while it is held.
type hostsIndex struct {
	mu      sync.Mutex
	entries map[string]hostsEntry
}

func (h *hostsIndex) set(id string, e hostsEntry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.entries == nil {
		h.entries = map[string]hostsEntry{}
	}
	h.entries[id] = e
	h.rewriteLocked()
}

func (h *hostsIndex) remove(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.entries[id]; !ok {
		return
	}
	delete(h.entries, id)
	h.rewriteLocked()
}

// rewriteLocked writes every entry's file: its own lines, then the
// containers that share one of its named networks (the default network
// "bridge" gives no names, as podman's), then its --link aliases. The
// files are rewritten in place: they are bind-mounted into containers.
func (h *hostsIndex) rewriteLocked() {
	ids := make([]string, 0, len(h.entries))
	for id := range h.entries {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		e := h.entries[id]
		var b strings.Builder
		b.WriteString(e.base)
		for _, pid := range ids {
			p := h.entries[pid]
			if pid == id {
				continue
			}
			for net, ip := range e.nets {
				if net == network.DefaultBridge {
					continue
				}
				if pip, ok := p.nets[net]; ok && ip != "" {
					fmt.Fprintf(&b, "%s\t%s\n", pip, p.name)
					break
				}
			}
			if alias, ok := e.links[p.name]; ok {
				for net := range e.nets {
					if pip, ok := p.nets[net]; ok {
						fmt.Fprintf(&b, "%s\t%s\n", pip, alias)
						break
					}
				}
			}
		}
		os.WriteFile(e.file, []byte(b.String()), 0o644)
	}
}

// ConnectNetwork implements the method of the same name.
func (a *containerAPI) ConnectNetwork(name, ip string) *godbus.Error {
	defer a.c.m.track()()
	return asDBusErr(a.c.connectNetwork(name, ip))
}

// DisconnectNetwork implements the method of the same name.
func (a *containerAPI) DisconnectNetwork(name string) *godbus.Error {
	defer a.c.m.track()()
	return asDBusErr(a.c.disconnectNetwork(name))
}

// connectNetwork adds a bridge network to a container: to its
// configuration, and, while it runs, as one more interface.
func (c *ctr) connectNetwork(name, ip string) error {
	if !network.ValidNetworkName(name) {
		return pdbus.Errorf(pdbus.ErrInvalidArgument, "network name %q: use letters, digits, _, . and -", name)
	}
	if ip != "" {
		if a, err := netip.ParseAddr(ip); err != nil || !a.Is4() {
			return pdbus.Errorf(pdbus.ErrInvalidArgument, "--ip %q: give an IPv4 address in the network's subnet", ip)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	mode := c.rec.Network.Mode
	if mode.Kind != network.Bridge {
		return pdbus.Errorf(pdbus.ErrInvalidArgument, "container %s uses the %s network, not a bridge: only containers made with --network bridge (or a network of yours) can join more", c.rec.Name, mode)
	}
	for _, n := range mode.Networks {
		if n == name {
			return pdbus.Errorf(pdbus.ErrInvalidArgument, "container %s is already connected to network %s", c.rec.Name, name)
		}
	}
	if err := c.m.checkBridge(c.m.ctx, network.Mode{Kind: network.Bridge, Networks: []string{name}}, ""); err != nil {
		return err
	}
	if c.rec.State == pdbus.StateRunning && c.rec.Pid > 0 {
		ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", c.rec.Pid))
		if err != nil {
			return fmt.Errorf("open the network namespace of %s: %w", c.rec.Name, err)
		}
		defer ns.Close()
		opts := client.AttachOptions{IP: ip, Ifname: c.freeIfname(), Container: c.rec.ID[:12]}
		var l client.Lease
		err = c.m.priv.call(c.m.ctx, func(cl *client.Client) (err error) {
			l, err = cl.Attach(c.m.ctx, ns, name, opts)
			return err
		})
		if err != nil {
			return err
		}
		c.rec.Bridge.Leases = append(c.rec.Bridge.Leases, bridgeLease{
			ID: l.ID, Network: name, Address: l.Address.String(), Gateway: l.Gateway.String(), Ifname: l.Ifname, MAC: l.MAC,
		})
		c.m.hosts.set(c.rec.ID, c.bridgeHostsEntry())
	}
	c.rec.Network.Mode.Networks = append(append([]string(nil), mode.Networks...), name)
	c.publishNetworkLocked()
	return nil
}

// disconnectNetwork takes a bridge network from a container.
func (c *ctr) disconnectNetwork(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	mode := c.rec.Network.Mode
	idx := -1
	for i, n := range mode.Networks {
		if n == name {
			idx = i
		}
	}
	if mode.Kind != network.Bridge || idx < 0 {
		return pdbus.Errorf(pdbus.ErrNoSuchNetwork, "container %s is not connected to network %s", c.rec.Name, name)
	}
	if idx == 0 && len(c.rec.Network.Ports) > 0 {
		return pdbus.Errorf(pdbus.ErrInvalidArgument, "container %s publishes ports on %s, its primary network: remove the container to drop them", c.rec.Name, name)
	}
	if len(mode.Networks) == 1 {
		return pdbus.Errorf(pdbus.ErrInvalidArgument, "%s is the only network of container %s: a container keeps at least one", name, c.rec.Name)
	}
	for i, l := range c.rec.Bridge.Leases {
		if l.Network != name {
			continue
		}
		err := c.m.priv.call(c.m.ctx, func(cl *client.Client) error { return cl.Detach(c.m.ctx, l.ID) })
		var pe *pdbus.Error
		if err != nil && !(errors.As(err, &pe) && pe.Code == pdbus.ErrNoSuchNetwork) {
			return err
		}
		c.rec.Bridge.Leases = append(c.rec.Bridge.Leases[:i:i], c.rec.Bridge.Leases[i+1:]...)
		c.m.hosts.set(c.rec.ID, c.bridgeHostsEntry())
		break
	}
	nets := append([]string(nil), mode.Networks[:idx]...)
	c.rec.Network.Mode.Networks = append(nets, mode.Networks[idx+1:]...)
	c.publishNetworkLocked()
	return nil
}

// freeIfname is the first ethN the running container does not use.
func (c *ctr) freeIfname() string {
	used := map[string]bool{}
	for _, l := range c.rec.Bridge.Leases {
		used[l.Ifname] = true
	}
	for i := 0; ; i++ {
		if n := fmt.Sprintf("eth%d", i); !used[n] {
			return n
		}
	}
}

// publishNetworkLocked saves the record and shows the new networks.
func (c *ctr) publishNetworkLocked() {
	if err := c.rec.save(c.dir); err != nil {
		c.m.log.Error("save container state", "id", c.rec.ID, "err", err)
	}
	if c.obj != nil {
		setProp(c.obj.Props, pdbus.ContainerIface, "NetworkMode", c.rec.Network.Mode.String())
		setProp(c.obj.Props, pdbus.ContainerIface, "Networks", leaseRows(c.rec.Bridge.Leases))
	}
}
