package session

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pelagos-containers/pelagos/container"
	pdbus "github.com/pelagos-containers/pelagos/dbus"
	"github.com/pelagos-containers/pelagos/network"
)

// netConfig is a container's network as created.
type netConfig struct {
	Mode       network.Mode          `json:"mode"`
	Ports      []network.PortMapping `json:"ports,omitempty"`
	DNS        []string              `json:"dns,omitempty"`
	DNSSearch  []string              `json:"dnsSearch,omitempty"`
	DNSOptions []string              `json:"dnsOptions,omitempty"`
	// Hosts are extra /etc/hosts lines (--add-host).
	Hosts []string `json:"hosts,omitempty"`
	// Warning says why the container got loopback only instead of pasta.
	Warning string `json:"warning,omitempty"`
	// IP is the address asked for on the primary bridge network (--ip);
	// Links are --link NAME[:ALIAS] of bridge containers.
	IP    string            `json:"ip,omitempty"`
	Links map[string]string `json:"links,omitempty"`
}

// pastaState is the pasta serving a running container, kept in the
// record so that a restarted service can still stop it.
type pastaState struct {
	Pid   int    `json:"pid,omitempty"`
	Start uint64 `json:"start,omitempty"`
}

// parseNetwork checks the network options of a new container and
// chooses the host ports left open.
func (m *Manager) parseNetwork(cfg pdbus.ContainerConfig) (netConfig, error) {
	invalid := func(err error) error { return pdbus.Errorf(pdbus.ErrInvalidArgument, "%v", err) }
	netArg := cfg.Network
	// Asking for what only a bridge has (--nat, --ip, --link) without a
	// network chooses the default bridge, as the seed does.
	if netArg == "" && len(cfg.Networks) == 0 && (cfg.NAT || cfg.IP != "" || len(cfg.Links) > 0) {
		netArg = network.DefaultBridge
	}
	mode, err := network.ParseMode(netArg)
	if err != nil {
		return netConfig{}, invalid(err)
	}
	for _, extra := range cfg.Networks {
		more, err := network.ParseMode(extra)
		if err != nil {
			return netConfig{}, invalid(err)
		}
		if mode.Kind != network.Bridge || more.Kind != network.Bridge {
			return netConfig{}, invalid(fmt.Errorf("%w: several --network values must all be bridge networks (%s, %s)", network.ErrInvalid, mode, more))
		}
		mode.Networks = append(mode.Networks, more.Networks...)
	}
	bridge := mode.Kind == network.Bridge
	if cfg.MacAddress != "" {
		return netConfig{}, invalid(fmt.Errorf("%w: --mac-address: choosing the MAC address is not supported in this version", network.ErrInvalid))
	}
	if cfg.IP != "" && !bridge {
		return netConfig{}, invalid(fmt.Errorf("%w: --ip: with pasta every container has %s; a chosen address needs a bridge network (--network bridge)", network.ErrInvalid, network.ContainerIP))
	}
	if cfg.IP != "" {
		if a, err := netip.ParseAddr(cfg.IP); err != nil || !a.Is4() {
			return netConfig{}, invalid(fmt.Errorf("%w: --ip %q: give an IPv4 address in the network's subnet", network.ErrInvalid, cfg.IP))
		}
	}
	if cfg.DNSBackend != "" && cfg.DNSBackend != "builtin" {
		return netConfig{}, invalid(fmt.Errorf("%w: --dns-backend %q: only builtin (names in /etc/hosts, kept current as containers come and go) is available", network.ErrInvalid, cfg.DNSBackend))
	}
	if cfg.DefaultSubnet != "" {
		if p, err := netip.ParsePrefix(cfg.DefaultSubnet); err != nil || !p.Addr().Is4() {
			return netConfig{}, invalid(fmt.Errorf("%w: --default-subnet %q: give an IPv4 CIDR such as 10.89.5.0/24", network.ErrInvalid, cfg.DefaultSubnet))
		}
	}
	nc := netConfig{Mode: mode, DNS: cfg.DNS, DNSSearch: cfg.DNSSearch, DNSOptions: cfg.DNSOptions, IP: cfg.IP}
	for _, l := range cfg.Links {
		if !bridge {
			return netConfig{}, invalid(fmt.Errorf("%w: --link %s: links are names on a bridge network (--network bridge or a network of yours)", network.ErrInvalid, l))
		}
		name, alias, _ := strings.Cut(l, ":")
		if alias == "" {
			alias = name
		}
		if checkName(name) != nil || checkHostname(alias) != nil {
			return netConfig{}, invalid(fmt.Errorf("%w: --link %q: use NAME[:ALIAS] with a container name and a host name", network.ErrInvalid, l))
		}
		if nc.Links == nil {
			nc.Links = map[string]string{}
		}
		nc.Links[name] = alias
	}
	if err := network.CheckDNS(cfg.DNS, cfg.DNSSearch, cfg.DNSOptions); err != nil {
		return netConfig{}, invalid(err)
	}
	for _, h := range cfg.AddHosts {
		line, err := network.ParseAddHost(h)
		if err != nil {
			return netConfig{}, invalid(err)
		}
		nc.Hosts = append(nc.Hosts, line)
	}
	for _, p := range cfg.Publish {
		ports, err := network.ParsePublish(p)
		if err != nil {
			return netConfig{}, invalid(err)
		}
		nc.Ports = append(nc.Ports, ports...)
	}
	if len(nc.Ports) > 0 && mode.Kind != network.Pasta && !bridge {
		return netConfig{}, invalid(fmt.Errorf("%w: -p publishes ports of the pasta network (the default) or of a bridge network, not of --network %s", network.ErrInvalid, mode))
	}
	if bridge {
		if err := m.checkBridge(m.ctx, mode, cfg.DefaultSubnet); err != nil {
			return netConfig{}, err
		}
		// Ports below 1024 are the helper's to allow (a stricter polkit
		// action); only the free ones are chosen here.
		if err := network.PrepareHostPorts(nc.Ports, network.HostPortRules{Privileged: true}); err != nil {
			return netConfig{}, invalid(err)
		}
		return nc, nil
	}
	if mode.Kind == network.Pasta {
		if why := network.Unavailable(); why != nil {
			if len(nc.Ports) > 0 {
				return netConfig{}, pdbus.Errorf(pdbus.ErrInvalidArgument, "cannot publish ports: %v", why)
			}
			nc.Mode, nc.Warning = network.Mode{Kind: network.None}, why.Error()
			// Logged once per service; every run tells its user.
			m.pastaWarnOnce.Do(func() { m.log.Warn("no pasta networking", "why", why) })
		}
	}
	if len(nc.Ports) == 0 {
		return nc, nil
	}
	// A pasta that cannot move UDP to another port gets, for a UDP port
	// with no host port given (-p 53/udp, -P), the same number.
	m.pastaVersionOnce.Do(func() { m.pastaVersion = network.PastaVersion() })
	rules := network.HostPortRules{SameUDP: !network.CanRemapUDP(m.pastaVersion)}
	if err := network.PrepareHostPorts(nc.Ports, rules); err != nil {
		return netConfig{}, invalid(err)
	}
	if err := network.CheckUDPRemap(nc.Ports, m.pastaVersion); err != nil {
		return netConfig{}, invalid(err)
	}
	return nc, nil
}

// netDir holds a running container's network namespace handle and
// pasta's pid file; it goes with the container's run.
func (c *ctr) netDir() string { return filepath.Join(c.m.paths.Runtime, "net", c.rec.ID) }

// networkNamespace says how the container's init gets its network
// namespace: "" for a new one, container.NetNSHost, or the namespace of
// the running container it shares (returned too). Call without c.mu:
// it looks other containers up.
func (c *ctr) networkNamespace() (string, *ctr, error) {
	mode := c.rec.Network.Mode // fixed at create
	switch mode.Kind {
	case network.Host:
		return container.NetNSHost, nil, nil
	case network.Container:
		target, err := c.m.lookup(mode.Target)
		if err != nil {
			return "", nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "--network container:%s: %v", mode.Target, err)
		}
		if target == c {
			return "", nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "--network container:%s names the container itself", mode.Target)
		}
		target.mu.Lock()
		pid, start, running := target.rec.Pid, target.rec.PidStart, target.rec.State == pdbus.StateRunning
		target.mu.Unlock()
		if !running || pid == 0 || processStartTime(pid) != start {
			return "", nil, pdbus.Errorf(pdbus.ErrContainerNotRunning, "--network container:%s: that container is not running: start it first", mode.Target)
		}
		return fmt.Sprintf("/proc/%d/ns/net", pid), target, nil
	}
	return "", nil, nil
}

// launchPasta starts connecting the new network namespace of the
// container's first process (pid) in the background, while the process
// still prepares its root filesystem; joinPasta waits for it. Call both
// with c.mu held (the background work touches only this run's fields,
// and joinPasta orders it before anything else reads them).
func (c *ctr) launchPasta(ctx context.Context, pid int) {
	switch c.rec.Network.Mode.Kind {
	case network.Pasta:
		done := make(chan error, 1)
		c.pastaLaunch = done
		go func() { done <- c.startPasta(ctx, pid) }()
	case network.Bridge:
		done := make(chan error, 1)
		c.pastaLaunch = done
		go func() { done <- c.startBridge(ctx, pid) }()
	}
}

// joinPasta waits for launchPasta and returns its outcome.
func (c *ctr) joinPasta() error {
	if c.pastaLaunch == nil {
		return nil
	}
	err := <-c.pastaLaunch
	c.pastaLaunch = nil
	return err
}

// startPasta connects the network namespace of pid with pasta.
func (c *ctr) startPasta(ctx context.Context, pid int) error {
	dir := c.netDir()
	os.RemoveAll(dir) // what a crashed run may have left
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	nsFile := filepath.Join(dir, "netns")
	fail := func(err error) error {
		network.ReleaseNetNS(nsFile)
		os.RemoveAll(dir)
		return &container.StartError{Code: container.ExitSetupFailed, Msg: err.Error()}
	}
	if err := c.waitPortsFree(ctx); err != nil {
		return fail(err)
	}
	if err := network.BindNetNS(pid, nsFile); err != nil {
		return fail(err)
	}
	ppid, err := network.StartPasta(ctx, network.PastaConfig{
		NetNS: nsFile, PidFile: filepath.Join(dir, "pasta.pid"),
		Ports: c.rec.Network.Ports, Mode: c.rec.Network.Mode,
	})
	if err != nil {
		return fail(err)
	}
	c.rec.Pasta = pastaState{Pid: ppid, Start: processStartTime(ppid)}
	// pasta went to the background: as a child subreaper the service
	// inherited it, and reaps it here when it ends.
	exited := make(chan struct{})
	c.pastaExited = exited
	go func() {
		defer close(exited)
		var ws unix.WaitStatus
		for {
			if _, err := unix.Wait4(ppid, &ws, 0, nil); !errors.Is(err, unix.EINTR) {
				return
			}
		}
	}()
	return nil
}

// stopNetwork ends the container's pasta and removes its files, on every
// path a run ends: exit, kill, removal, or a restart of the service that
// finds the container gone. The pasta is ended in the background; the
// next start waits for the host ports it held, whichever service started
// it. Call with c.mu held or before sharing c.
func (c *ctr) stopNetwork() {
	c.joinPasta() // a start that failed early may still be launching it
	c.stopBridgeLocked()
	dir := c.netDir()
	// pasta watches the handle's directory and quits when it goes.
	if err := network.ReleaseNetNS(filepath.Join(dir, "netns")); err != nil {
		c.m.log.Warn("release network namespace", "id", c.rec.ID, "err", err)
	}
	if p := c.rec.Pasta; p.Pid > 0 {
		// In the background: pasta takes tens of milliseconds to exit
		// (it tears down large buffers), and a run's end (the reply to
		// `run --rm`) must not wait for it. A next start that needs
		// its ports waits for them instead (waitPortsFree). Not the
		// service's context: a stopping service still ends it.
		same := func() bool { return p.Start != 0 && processStartTime(p.Pid) == p.Start }
		stopped := make(chan struct{})
		c.pastaStopped = stopped
		go func(id string) {
			defer close(stopped)
			if err := network.StopPasta(context.Background(), p.Pid, same); err != nil {
				c.m.log.Warn("stop pasta", "id", id, "pid", p.Pid, "err", err)
			}
		}(c.rec.ID)
	}
	c.pastaExited = nil
	os.RemoveAll(dir)
	c.rec.Pasta = pastaState{}
}

// waitNetworkReleased waits, at most portReleaseWait, until the pasta
// of the run that ended is gone and its host ports are free: `stop` and
// `rm` return with them released, while a run's own end does not wait.
func (c *ctr) waitNetworkReleased() {
	c.mu.Lock()
	stopped := c.pastaStopped
	c.mu.Unlock()
	if stopped == nil {
		return
	}
	select {
	case <-stopped:
	case <-time.After(portReleaseWait):
	}
}

// portReleaseWait is how long a start waits for a host port that a pasta
// of this user, one no running container uses any more, still holds
// while it exits (one a service of another version left, say).
const portReleaseWait = 5 * time.Second

// waitPortsFree checks that the container's host ports are free, waiting
// up to portReleaseWait for those an exiting pasta of ours still holds.
// A port something else holds fails at once, naming the holder.
func (c *ctr) waitPortsFree(ctx context.Context) error {
	t0 := time.Now()
	for {
		err := network.CheckPortsFree(c.rec.Network.Ports)
		var pe *network.PortInUseError
		if !errors.As(err, &pe) {
			return err
		}
		id, serving := c.pastaServes(pe.Holder)
		if !pe.Holder.Pasta || serving {
			return c.portTaken(pe, id)
		}
		if time.Since(t0) >= portReleaseWait {
			owner := "an earlier run of " + c.rec.Name
			if id != c.rec.ID {
				owner = c.containerName(id) + ", which no longer runs"
			}
			if id == "" {
				owner = "no container of yours"
			}
			return fmt.Errorf("%w: %s is still held by pasta (pid %d), the network helper of %s, which did not exit within %s: try again, or end it (kill %d)",
				network.ErrPortInUse, pe.Addr(), pe.Holder.Pid, owner, portReleaseWait, pe.Holder.Pid)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pastaServes tells which of our containers a pasta holding a port was
// started for ("" for none) and whether it still serves that container:
// its namespace handle exists. The previous run of this container is
// never served: its start is this one.
func (c *ctr) pastaServes(h network.PortHolder) (id string, serving bool) {
	if !h.Pasta || h.NetNS == "" {
		return "", false
	}
	root := filepath.Join(c.m.paths.Runtime, "net") + string(filepath.Separator)
	rest, ok := strings.CutPrefix(h.NetNS, root)
	if !ok {
		return "", false
	}
	id, _, _ = strings.Cut(rest, string(filepath.Separator))
	if id == c.rec.ID {
		return id, false
	}
	_, err := os.Stat(h.NetNS)
	return id, err == nil
}

// portTaken is the error of a start whose host port is held by something
// that is not about to let it go.
func (c *ctr) portTaken(pe *network.PortInUseError, id string) error {
	if id != "" {
		return fmt.Errorf("%w: %s is taken by container %s, which publishes it: choose another host port", network.ErrPortInUse, pe.Addr(), c.containerName(id))
	}
	return pe
}

// containerName is the name of container id, read from its record on
// disk (no lock taken: the caller may hold its own container's), or the
// short id.
func (c *ctr) containerName(id string) string {
	if r, err := loadRecord(filepath.Join(c.m.paths.Containers(), id)); err == nil && r.Name != "" {
		return r.Name
	}
	return id[:min(12, len(id))]
}

// sweepNetDirs removes network handles of containers that no longer
// exist (a crash between removal and cleanup).
func (m *Manager) sweepNetDirs() {
	entries, _ := os.ReadDir(filepath.Join(m.paths.Runtime, "net"))
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range entries {
		if _, ok := m.containers[e.Name()]; !ok {
			p := filepath.Join(m.paths.Runtime, "net", e.Name())
			network.ReleaseNetNS(filepath.Join(p, "netns"))
			os.RemoveAll(p)
		}
	}
}

// etcHosts is the container's /etc/hosts.
func (c *ctr) etcHosts() string {
	n := c.rec.Network
	h := c.rec.Hostname
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost localhost.localdomain\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	switch n.Mode.Kind {
	case network.Pasta:
		fmt.Fprintf(&b, "%s\t%s\n", network.ContainerIP, h)
		hostIP := network.HostAddress()
		if n.Mode.HostLoopback {
			hostIP = network.Gateway
		}
		if hostIP != "" {
			fmt.Fprintf(&b, "%s\thost.containers.internal host.docker.internal\n", hostIP)
		}
	case network.Bridge:
		// Its own address once the helper gave one; the host is the
		// gateway, its side of the bridge.
		if ls := c.rec.Bridge.Leases; len(ls) > 0 {
			fmt.Fprintf(&b, "%s\t%s\n%s\thost.containers.internal host.docker.internal\n", ls[0].IP(), h, ls[0].Gateway)
		} else {
			fmt.Fprintf(&b, "127.0.1.1\t%s\n", h)
		}
	default:
		fmt.Fprintf(&b, "127.0.1.1\t%s\n", h)
	}
	for _, l := range n.Hosts {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// resolvConf is the container's /etc/resolv.conf: pasta's DNS forwarder
// (or --dns servers), the host's search domains unless --dns-search.
func (c *ctr) resolvConf() []byte {
	n := c.rec.Network
	host, _ := os.ReadFile("/etc/resolv.conf")
	var servers, search, options []string
	for _, line := range strings.Split(string(host), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			servers = append(servers, f[1])
		case "search", "domain":
			search = append(search, f[1:]...)
		case "options":
			options = append(options, f[1:]...)
		}
	}
	switch n.Mode.Kind {
	case network.Pasta:
		servers = []string{network.DNSForwarder}
	case network.Bridge:
		// A loopback resolver of the host (systemd-resolved's stub) is
		// out of the container's reach: use its upstream servers.
		servers = reachableServers(servers)
	}
	if len(n.DNS) > 0 {
		servers = n.DNS
	}
	if len(n.DNSSearch) > 0 {
		search = n.DNSSearch
		if len(search) == 1 && search[0] == "." {
			search = nil
		}
	}
	if len(n.DNSOptions) > 0 {
		options = n.DNSOptions
	}
	var b strings.Builder
	if len(search) > 0 {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	for _, s := range servers {
		b.WriteString("nameserver " + s + "\n")
	}
	if len(options) > 0 {
		b.WriteString("options " + strings.Join(options, " ") + "\n")
	}
	return []byte(b.String())
}

// reachableServers drops loopback name servers, falling back to the
// upstream ones systemd-resolved lists when nothing else is left.
func reachableServers(servers []string) []string {
	keep := func(list []string) []string {
		var out []string
		for _, s := range list {
			if a, err := netip.ParseAddr(s); err == nil && !a.IsLoopback() {
				out = append(out, s)
			}
		}
		return out
	}
	out := keep(servers)
	if len(out) == 0 {
		b, _ := os.ReadFile("/run/systemd/resolve/resolv.conf")
		var up []string
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
				up = append(up, f[1])
			}
		}
		out = keep(up)
	}
	return out
}

// portRows are the published ports for the bus: (host ip, host port,
// container port, protocol).
type portRow struct {
	HostIP   string
	HostPort uint16
	CtrPort  uint16
	Proto    string
}

func portRows(ps []network.PortMapping) []portRow {
	rows := make([]portRow, 0, len(ps))
	for _, p := range ps {
		rows = append(rows, portRow{p.HostIP, p.HostPort, p.CtrPort, p.Proto})
	}
	return rows
}

// ipAddress is the container's address on its (primary) network, ""
// without one; a bridge container has one only while it runs.
func (r *record) ipAddress() string {
	switch {
	case r.Network.Mode.Kind == network.Pasta:
		return network.ContainerIP
	case len(r.Bridge.Leases) > 0:
		return r.Bridge.Leases[0].IP()
	}
	return ""
}

// warnings are what the user should know about how the container will
// run, shown once by the CLI after creating it.
func (r *record) warnings() []string {
	w := []string{}
	if r.Network.Warning != "" {
		w = append(w, r.Network.Warning)
	}
	return w
}

// portsText is the PORTS column of ps: 127.0.0.1:8080->80/tcp, ...
func portsText(ps []network.PortMapping) string {
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		parts = append(parts, p.String())
	}
	return strings.Join(parts, ", ")
}

// stopSignalName is the signal Stop sends first, as a name.
func stopSignalName(s string) string {
	if s == "" {
		return "SIGTERM"
	}
	if sig, err := parseSignal(s); err == nil {
		return unix.SignalName(sig)
	}
	return s
}
