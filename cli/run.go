package cli

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"

	godbus "github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// runOptions are the flags of `pelagos run`.
type runOptions struct {
	name        string
	rm          bool
	detach      bool
	interactive bool
	tty         bool
	env         []string
	envFiles    []string
	workdir     string
	user        string
	hostname    string
	entrypoint  string
	sigProxy    bool
	network     []string
	nat, noNAT  bool
	publishAll  bool
	logDriver   string
	links       []string
	dnsBackend  string
	defSubnet   string
	publish     []string
	dns         []string
	dnsSearch   []string
	dnsOption   []string
	addHost     []string
	macAddress  string
	ip          string
	labels      []string
	stopSignal  string
	detachKeys  []byte
	detachSpec  string
	attach      []string
	mounts      []string
	binds       []string
	bindsRO     []string
	masked      []string
	userns      string
	uidmap      []string
	gidmap      []string
	apparmor    string
	selinux     string
	health      pdbus.ContainerConfig // only its Health* fields
	capAdd      []string
	capDrop     []string
	securityOpt []string
	privileged  bool
	readOnly    bool
	roTmpfs     bool
	volumes     []string
	tmpfs       []string
	ulimits     []string
	sysctls     []string
	groupAdd    []string
	devices     []string
	memory      string
	memorySwap  string
	cpus        string
	cpuShares   uint64
	cpusetCPUs  string
	pidsLimit   int64
	cgroups     string
	restart     string
	init        bool
}

func runCmd(e *env, args []string) int {
	var o runOptions
	fs := e.flags("run")
	fs.SetInterspersed(false) // flags after the image belong to the command
	fs.StringVar(&o.name, "name", "", "assign a name to the container (default pelagos-N)")
	fs.BoolVar(&o.rm, "rm", false, "remove the container when it exits")
	fs.BoolVarP(&o.detach, "detach", "d", false, "run in the background and print the container ID")
	fs.BoolVarP(&o.interactive, "interactive", "i", false, "keep stdin attached")
	fs.BoolVarP(&o.tty, "tty", "t", false, "allocate a pseudo-TTY")
	fs.StringArrayVarP(&o.env, "env", "e", nil, "set an environment variable (KEY=VALUE, or KEY to pass yours)")
	fs.StringArrayVar(&o.envFiles, "env-file", nil, "read environment variables from a file")
	fs.StringVarP(&o.workdir, "workdir", "w", "", "working directory inside the container")
	fs.StringVarP(&o.user, "user", "u", "", "user[:group] to run as, names or ids")
	fs.StringVarP(&o.hostname, "hostname", "h", "", "container hostname (default: its name)")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "override the image's entrypoint")
	fs.BoolVar(&o.sigProxy, "sig-proxy", true, "pass signals received by pelagos to the container")
	fs.StringArrayVar(&o.network, "network", nil, "pasta[:OPTIONS] (default), none, host, container:NAME, or bridge / NAME (root networking; repeat for more networks)")
	fs.StringArrayVar(&o.network, "net", nil, "same as --network")
	fs.StringVar(&o.logDriver, "log-driver", "", "k8s-file (default: output kept for `pelagos logs`), passthrough (attached output straight to you, unlogged) or none")
	fs.BoolVarP(&o.publishAll, "publish-all", "P", false, "publish every port the image exposes on a free host port")
	fs.BoolVar(&o.nat, "nat", false, "use the default bridge network (root networking, with NAT)")
	fs.BoolVar(&o.noNAT, "no-nat", false, "not available: use an --internal network instead")
	fs.StringArrayVar(&o.links, "link", nil, "NAME[:ALIAS]: name another container of a shared bridge network in /etc/hosts")
	fs.StringVar(&o.dnsBackend, "dns-backend", "", "builtin (container names in /etc/hosts)")
	fs.StringVar(&o.defSubnet, "default-subnet", "", "the subnet of the default bridge network when this run creates it")
	fs.StringArrayVarP(&o.publish, "publish", "p", nil, "publish a port: [[HOSTIP:][HOSTPORT]:]CTRPORT[/tcp|udp|both]")
	fs.StringArrayVar(&o.dns, "dns", nil, "DNS server for the container's resolv.conf")
	fs.StringArrayVar(&o.dnsSearch, "dns-search", nil, "DNS search domain (. for none)")
	fs.StringArrayVar(&o.dnsOption, "dns-option", nil, "resolv.conf option, e.g. ndots:2")
	fs.StringArrayVar(&o.addHost, "add-host", nil, "add NAME:IP to the container's /etc/hosts")
	fs.StringVar(&o.macAddress, "mac-address", "", "not available rootless (pasta cannot set it)")
	fs.StringArrayVarP(&o.labels, "label", "l", nil, "set metadata on the container: KEY=VALUE")
	fs.StringVar(&o.health.HealthCmd, "health-cmd", "", "health check: a shell command, or a JSON array of arguments")
	fs.StringVar(&o.health.HealthInterval, "health-interval", "", "time between health checks (default 30s; disable: only `healthcheck run`)")
	fs.StringVar(&o.health.HealthTimeout, "health-timeout", "", "how long a health check may take (default 30s)")
	fs.StringVar(&o.health.HealthStartPeriod, "health-start-period", "", "time to start up, when failures do not count")
	fs.Int64Var(&o.health.HealthRetries, "health-retries", 0, "consecutive failures that make the container unhealthy (default 3)")
	fs.BoolVar(&o.health.NoHealthcheck, "no-healthcheck", false, "turn the image's health check off")
	fs.StringArrayVarP(&o.attach, "attach", "a", nil, "attach only these streams: stdin, stdout, stderr (default: stdout and stderr)")
	fs.StringVar(&o.detachSpec, "detach-keys", "ctrl-p,ctrl-q", "keys that detach from -it and leave the container running")
	fs.StringVar(&o.stopSignal, "stop-signal", "", "signal stop sends first (default: the image's, or SIGTERM)")
	fs.StringVar(&o.ip, "ip", "", "the container's address on its bridge network (pasta gives every container 10.0.2.100)")
	fs.StringArrayVar(&o.capAdd, "cap-add", nil, "add a capability (NET_RAW, SYS_PTRACE, ..., ALL)")
	fs.StringArrayVar(&o.capDrop, "cap-drop", nil, "drop a capability (CHOWN, ..., ALL)")
	fs.StringArrayVar(&o.securityOpt, "security-opt", nil, "no-new-privileges[=false], seccomp=default|minimal|iouring|unconfined|PROFILE.json, mask=/a:/b, unmask=/p|ALL, label=disable")
	fs.BoolVar(&o.privileged, "privileged", false, "all capabilities of your user namespace, no seccomp, no masked paths")
	fs.BoolVar(&o.readOnly, "read-only", false, "mount the container's root filesystem read-only")
	fs.BoolVar(&o.roTmpfs, "read-only-tmpfs", true, "with --read-only, writable tmpfs on /tmp, /var/tmp and /run")
	fs.StringArrayVarP(&o.volumes, "volume", "v", nil, "bind a host path or a named volume: SRC:DST[:ro]")
	fs.StringArrayVar(&o.mounts, "mount", nil, "type=bind|volume|tmpfs,source=SRC,target=DST[,readonly][,tmpfs-size=64m][,tmpfs-mode=1777]")
	fs.StringArrayVar(&o.binds, "bind", nil, "bind a host path: SRC:DST (as -v)")
	fs.StringArrayVar(&o.bindsRO, "bind-ro", nil, "bind a host path read-only: SRC:DST")
	fs.StringArrayVar(&o.masked, "masked-path", nil, "hide a path in the container (on top of the default masks)")
	fs.StringVar(&o.userns, "userns", "", "user namespace: keep-id[:uid=U,gid=G] (your uid inside), auto[:size=N] (a private id range), host")
	fs.StringArrayVar(&o.uidmap, "uidmap", nil, "CONTAINER_ID:HOST_ID:SIZE uid map of a private user namespace (host ids: 0 is you, 1... your subuids)")
	fs.StringArrayVar(&o.gidmap, "gidmap", nil, "CONTAINER_ID:HOST_ID:SIZE gid map (default: as --uidmap)")
	fs.StringVar(&o.apparmor, "apparmor-profile", "", "run the command under this AppArmor profile (AppArmor must be active)")
	fs.StringVar(&o.selinux, "selinux-label", "", "run the command with this SELinux process label (SELinux must be active)")
	fs.StringArrayVar(&o.tmpfs, "tmpfs", nil, "mount a tmpfs: DST[:size=64m,mode=1777,...]")
	fs.StringArrayVar(&o.ulimits, "ulimit", nil, "resource limit NAME=SOFT[:HARD], e.g. nofile=1024:2048")
	fs.StringArrayVar(&o.sysctls, "sysctl", nil, "namespaced kernel parameter KEY=VALUE (net.*, kernel.shm*, ...)")
	fs.StringArrayVar(&o.groupAdd, "group-add", nil, "add a supplementary group (id or name in the image)")
	fs.StringArrayVar(&o.devices, "device", nil, "add a host device: /dev/X[:/dev/Y][:rwm]")
	fs.StringVarP(&o.memory, "memory", "m", "", "memory limit, e.g. 512m (cgroup v2, delegated)")
	fs.StringVar(&o.memorySwap, "memory-swap", "", "memory plus swap limit, or -1 for unlimited swap")
	fs.StringVar(&o.cpus, "cpus", "", "number of CPUs, e.g. 1.5")
	fs.Uint64VarP(&o.cpuShares, "cpu-shares", "c", 0, "relative CPU weight (default 1024)")
	fs.StringVar(&o.cpusetCPUs, "cpuset-cpus", "", "CPUs allowed, e.g. 0-2,4")
	fs.Int64Var(&o.pidsLimit, "pids-limit", 0, "maximum number of processes (-1: none)")
	fs.StringVar(&o.cgroups, "cgroups", "enabled", "enabled, or disabled to run without resource limits")
	fs.StringVar(&o.restart, "restart", "no", "restart policy: no, on-failure[:MAX], always, unless-stopped")
	fs.BoolVar(&o.init, "init", false, "run a minimal init as PID 1 that forwards signals and reaps orphans")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	rest := fs.Args()
	if len(rest) == 0 {
		e.errorf("\"pelagos run\" requires at least 1 argument: pelagos run [OPTIONS] IMAGE [COMMAND [ARG...]]")
		return exitFailure
	}
	if o.detach && o.rm && o.interactive {
		e.errorf("--detach and --interactive cannot be combined")
		return exitFailure
	}
	attached := map[string]bool{"stdout": true, "stderr": true}
	if len(o.attach) > 0 {
		if o.detach {
			e.errorf("--attach and --detach cannot be combined: a detached container's output goes to its log (pelagos logs)")
			return exitFailure
		}
		attached = map[string]bool{}
		for _, a := range o.attach {
			a = strings.ToLower(a)
			if a != "stdin" && a != "stdout" && a != "stderr" {
				e.errorf("--attach %q: use stdin, stdout or stderr", a)
				return exitFailure
			}
			attached[a] = true
		}
		if attached["stdin"] {
			o.interactive = true
		}
	}
	o.volumes = append(o.volumes, o.binds...)
	for _, b := range o.bindsRO {
		o.volumes = append(o.volumes, b+":ro")
	}
	for _, m := range o.mounts {
		vol, tmpfs, err := parseMount(m)
		if err != nil {
			e.errorf("%v", err)
			return exitFailure
		}
		if vol != "" {
			o.volumes = append(o.volumes, vol)
		} else {
			o.tmpfs = append(o.tmpfs, tmpfs)
		}
	}
	if o.noNAT {
		e.errorf("--no-nat is not available: for a network without a way out, create one with `pelagos network create NAME --internal` and use --network NAME")
		return exitFailure
	}
	keys, err := parseDetachKeys(o.detachSpec)
	if err != nil {
		e.errorf("%v", err)
		return exitFailure
	}
	o.detachKeys = keys
	envs, err := buildEnv(o.envFiles, o.env, os.LookupEnv)
	if err != nil {
		e.errorf("%v", err)
		return exitFailure
	}
	cfg := pdbus.ContainerConfig{
		Image: rest[0], Name: o.name, Env: envs, WorkingDir: o.workdir, User: o.user,
		Hostname: o.hostname, AutoRemove: o.rm,
		CapAdd: o.capAdd, CapDrop: o.capDrop, Privileged: o.privileged, ReadOnly: o.readOnly,
		ReadOnlyTmpfs: o.roTmpfs, Volumes: o.volumes, Tmpfs: o.tmpfs,
		Ulimits: o.ulimits, Sysctls: o.sysctls, GroupAdd: o.groupAdd, Devices: o.devices,
		Memory: o.memory, MemorySwap: o.memorySwap, CPUs: o.cpus, CPUShares: o.cpuShares,
		CpusetCPUs: o.cpusetCPUs, PidsLimit: o.pidsLimit, Cgroups: o.cgroups, Restart: o.restart, Init: o.init,
		Network: firstOf(o.network), Networks: restOf(o.network), NAT: o.nat, PublishAll: o.publishAll, LogDriver: o.logDriver, Links: o.links, DNSBackend: o.dnsBackend, DefaultSubnet: o.defSubnet,
		Publish: o.publish, DNS: o.dns, DNSSearch: o.dnsSearch, DNSOptions: o.dnsOption,
		UserNS: o.userns, UIDMap: o.uidmap, GIDMap: o.gidmap, AppArmorProfile: o.apparmor, SELinuxLabel: o.selinux,
		MaskedPaths: o.masked, AddHosts: o.addHost, MacAddress: o.macAddress, IP: o.ip, Labels: o.labels, StopSignal: o.stopSignal,
		HealthCmd: o.health.HealthCmd, HealthInterval: o.health.HealthInterval, HealthTimeout: o.health.HealthTimeout,
		HealthStartPeriod: o.health.HealthStartPeriod, HealthRetries: o.health.HealthRetries, NoHealthcheck: o.health.NoHealthcheck,
	}
	for _, opt := range o.securityOpt {
		// A profile path is the caller's: the service needs it absolute.
		if k, v, ok := strings.Cut(opt, "="); ok && k == "seccomp" && v != "" && !filepath.IsAbs(v) &&
			v != "default" && v != "unconfined" && v != "none" && v != "minimal" && v != "iouring" {
			abs, err := filepath.Abs(v)
			if err == nil {
				opt = "seccomp=" + abs
			}
		}
		cfg.SecurityOpt = append(cfg.SecurityOpt, opt)
	}
	if len(rest) > 1 {
		cfg.Command = rest[1:]
	}
	if fs.Changed("entrypoint") {
		cfg.Entrypoint = []string{o.entrypoint}
	}

	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	path, id, err := c.CreateContainer(e.ctx, cfg)
	if pdbus.CodeOf(err) == pdbus.ErrNoSuchImage {
		if perr := e.pullForRun(c, cfg.Image); perr != nil {
			e.callErr(perr)
			return exitFailure
		}
		path, id, err = c.CreateContainer(e.ctx, cfg)
	}
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	e.printWarnings(c, path)
	if o.detach {
		if err := c.Start(e.ctx, path); err != nil {
			e.callErr(err)
			return exitCodeFor(err)
		}
		fmt.Fprintln(e.stdout, id)
		return exitOK
	}

	ref := o.name
	if ref == "" {
		ref = shortID(id, false)
	}
	if o.tty {
		return e.runTerminal(c, path, ref, o)
	}
	stdin := e.stdin
	if !o.interactive {
		devnull, err := os.Open(os.DevNull)
		if err != nil {
			e.errorf("open %s: %v", os.DevNull, err)
			return exitFailure
		}
		defer devnull.Close()
		stdin = devnull
	}
	stdout, stderr := e.stdout, e.stderr
	if !attached["stdout"] || !attached["stderr"] {
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			e.errorf("open %s: %v", os.DevNull, err)
			return exitFailure
		}
		defer devnull.Close()
		if !attached["stdout"] {
			stdout = devnull
		}
		if !attached["stderr"] {
			stderr = devnull
		}
	}
	return e.foreground(c, path, ref, o.sigProxy, stdin, stdout, stderr)
}

// foreground starts a container on the given files and waits for it, as
// `run` and `start -a` do: the exit code is the container's. Signals go
// to the container with sigProxy; a second SIGINT or SIGTERM, or the
// service going away, ends the wait and leaves the container running.
func (e *env) foreground(c *pdbus.Client, path godbus.ObjectPath, ref string, sigProxy bool, stdin, stdout, stderr *os.File) int {
	ctx, stop, ok := e.watch(c)
	if !ok {
		return exitFailure
	}
	defer stop()
	if sigProxy {
		stopProxy := proxySignals(e, c, path)
		defer stopProxy()
	}
	code, err := c.StartWithStdio(ctx, path, stdin, stdout, stderr)
	if err != nil {
		e.leftRunning(err, ref, keepsRunning(ref))
		return exitCodeFor(err)
	}
	return int(code)
}

// leftRunning prints why the CLI stopped waiting for container ref: the
// service went away (next says what to do), or a signal ended the CLI.
func (e *env) leftRunning(err error, ref, next string) {
	if isInterrupted(err) {
		fmt.Fprintf(e.stderr, "pelagos: %v: container %s keeps running (`pelagos stop %s` stops it)\n", err, ref, ref)
		return
	}
	e.callErr(ifGone(err, "while waiting for container "+ref, next))
}

// exitCodeFor maps a failed start to Docker's codes: 127 for a missing
// command, 126 for one that cannot run, 125 for everything else.
func exitCodeFor(err error) int {
	switch pdbus.CodeOf(err) {
	case pdbus.ErrCommandNotFound:
		return 127
	case pdbus.ErrCommandNotExecutable:
		return 126
	}
	return exitFailure
}

// proxySignals forwards the signals a terminal or a script sends to
// `pelagos run` to the container, as docker run's sig-proxy does. Of
// SIGINT and SIGTERM only the first goes: a second one ends the CLI
// (see interrupts), so a container that ignores them cannot hold it.
func proxySignals(e *env, c *pdbus.Client, path godbus.ObjectPath) func() {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	release := e.signals.take(func(s os.Signal) {
		select {
		case ch <- s:
		default: // a burst: the container has enough of them
		}
	})
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				if err := c.Kill(e.ctx, path, fmt.Sprint(int(s.(unix.Signal)))); err != nil &&
					pdbus.CodeOf(err) != pdbus.ErrContainerNotRunning && !isInterrupted(err) {
					fmt.Fprintf(e.stderr, "pelagos: forward signal %v: %v\n", s, err)
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		release()
		signal.Stop(ch)
		close(done)
	}
}

// buildEnv reads env files, then -e flags, in Docker's order. "KEY" alone
// takes the caller's value and is dropped when the caller has none.
func buildEnv(files, flags []string, lookup func(string) (string, bool)) ([]string, error) {
	var out []string
	add := func(entry, where string) error {
		k, _, hasValue := strings.Cut(entry, "=")
		if k == "" || strings.ContainsAny(k, " \t") {
			return fmt.Errorf("invalid environment variable %q in %s: use KEY=VALUE or KEY", entry, where)
		}
		if hasValue {
			out = append(out, entry)
		} else if v, ok := lookup(k); ok {
			out = append(out, k+"="+v)
		}
		return nil
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("--env-file: %w", err)
		}
		sc := bufio.NewScanner(fh)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if err := add(line, fmt.Sprintf("%s line %d", f, n)); err != nil {
				fh.Close()
				return nil, err
			}
		}
		err = sc.Err()
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("--env-file %s: %w", f, err)
		}
	}
	for _, e := range flags {
		if err := add(e, "-e"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// printWarnings shows what the service noted about how the container
// will run (loopback only because pasta cannot run, ...).
func (e *env) printWarnings(c *pdbus.Client, path godbus.ObjectPath) {
	v, err := c.Property(e.ctx, path, pdbus.ContainerIface, "Warnings")
	if err != nil {
		return
	}
	ws, _ := v.Value().([]string)
	for _, w := range ws {
		fmt.Fprintf(e.stderr, "WARN[0000] %s\n", w)
	}
}

// parseMount turns a --mount spec into the -v or --tmpfs spec it means.
func parseMount(spec string) (volume, tmpfs string, err error) {
	bad := func(why string) error {
		return fmt.Errorf("--mount %q: %s (use type=bind|volume|tmpfs,source=SRC,target=DST[,readonly])", spec, why)
	}
	var typ, src, dst string
	ro := false
	var tmpOpts []string
	for _, kv := range strings.Split(spec, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "type":
			typ = v
		case "source", "src":
			src = v
		case "target", "destination", "dst":
			dst = v
		case "readonly", "ro":
			ro = v == "" || v == "true" || v == "1"
		case "tmpfs-size":
			tmpOpts = append(tmpOpts, "size="+v)
		case "tmpfs-mode":
			tmpOpts = append(tmpOpts, "mode="+v)
		case "bind-propagation", "relabel", "z", "Z", "consistency":
			// Accepted for podman compatibility; binds are private here.
		default:
			return "", "", bad("unknown option " + strconv.Quote(k))
		}
	}
	if dst == "" {
		return "", "", bad("no target")
	}
	if strings.ContainsAny(src+dst, ":,") {
		return "", "", bad("paths with ':' or ',' are not supported")
	}
	switch typ {
	case "bind", "volume":
		if src == "" {
			return "", "", bad("no source")
		}
		v := src + ":" + dst
		if ro {
			v += ":ro"
		}
		return v, "", nil
	case "tmpfs":
		if src != "" {
			return "", "", bad("a tmpfs has no source")
		}
		t := dst
		if ro {
			tmpOpts = append(tmpOpts, "ro")
		}
		if len(tmpOpts) > 0 {
			t += ":" + strings.Join(tmpOpts, ",")
		}
		return "", t, nil
	}
	return "", "", bad("type must be bind, volume or tmpfs")
}

// firstOf and restOf split a repeated flag's values.
func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func restOf(v []string) []string {
	if len(v) < 2 {
		return nil
	}
	return v[1:]
}
