package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	godbus "github.com/godbus/dbus/v5"
	"github.com/spf13/pflag"

	"github.com/pelagos-containers/pelagos/ctrlog"
	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// eachContainer runs fn for every named container, printing failures
// podman's way, and returns 0, or 125 if any failed.
func (e *env) eachContainer(c *pdbus.Client, names []string, fn func(path godbus.ObjectPath, name string) error) int {
	code := exitOK
	for _, name := range names {
		path, err := c.GetContainer(e.ctx, name)
		if err == nil {
			err = fn(path, name)
		}
		if err != nil {
			e.callErr(err)
			code = exitFailure
		}
	}
	return code
}

// onContainers is the body of the commands that act on each container
// named: parse, require one, connect, then fn for each.
func (e *env) onContainers(fs *pflag.FlagSet, args []string, fn func(c *pdbus.Client, path godbus.ObjectPath, name string) error) int {
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		usage := fs.Name()
		for _, c := range commands() {
			if c.name == fs.Name() {
				usage = c.usage
			}
		}
		e.errorf("\"pelagos %s\" requires at least 1 argument: %s", fs.Name(), usage)
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	return e.eachContainer(c, fs.Args(), func(path godbus.ObjectPath, name string) error {
		return fn(c, path, name)
	})
}

func stopCmd(e *env, args []string) int {
	fs := e.flags("stop")
	timeout := fs.UintP("time", "t", 10, "seconds to wait for the container to stop before killing it")
	return e.onContainers(fs, args, func(c *pdbus.Client, path godbus.ObjectPath, name string) error {
		if err := c.Stop(e.ctx, path, uint32(*timeout)); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, name)
		return nil
	})
}

func killCmd(e *env, args []string) int {
	fs := e.flags("kill")
	sig := fs.StringP("signal", "s", "KILL", "signal to send (name or number)")
	return e.onContainers(fs, args, func(c *pdbus.Client, path godbus.ObjectPath, name string) error {
		if err := c.Kill(e.ctx, path, *sig); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, name)
		return nil
	})
}

func startCmd(e *env, args []string) int {
	fs := e.flags("start")
	attach := fs.BoolP("attach", "a", false, "attach stdout/stderr and wait; the exit code is the container's")
	interactive := fs.BoolP("interactive", "i", false, "attach stdin (with -a)")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 || (*attach && fs.NArg() > 1) {
		e.errorf("\"pelagos start\" requires 1 argument with -a, at least 1 without: pelagos start [-a] CONTAINER [CONTAINER...]")
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	if *attach {
		path, err := c.GetContainer(e.ctx, fs.Arg(0))
		if err != nil {
			e.callErr(err)
			return exitFailure
		}
		stdin := e.stdin
		if !*interactive {
			devnull, err := os.Open(os.DevNull)
			if err != nil {
				e.errorf("%v", err)
				return exitFailure
			}
			defer devnull.Close()
			stdin = devnull
		}
		return e.foreground(c, path, fs.Arg(0), true, stdin, e.stdout, e.stderr)
	}
	return e.eachContainer(c, fs.Args(), func(path godbus.ObjectPath, name string) error {
		if err := c.Start(e.ctx, path); err != nil && pdbus.CodeOf(err) != pdbus.ErrContainerRunning {
			return err
		}
		fmt.Fprintln(e.stdout, name)
		return nil
	})
}

func restartCmd(e *env, args []string) int {
	fs := e.flags("restart")
	timeout := fs.UintP("time", "t", 10, "seconds to wait for the container to stop before killing it")
	return e.onContainers(fs, args, func(c *pdbus.Client, path godbus.ObjectPath, name string) error {
		if err := c.Stop(e.ctx, path, uint32(*timeout)); err != nil {
			return err
		}
		if err := c.Start(e.ctx, path); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, name)
		return nil
	})
}

func waitCmd(e *env, args []string) int {
	return e.onContainers(e.flags("wait"), args, func(c *pdbus.Client, path godbus.ObjectPath, name string) error {
		ctx, stop, err := c.Watch(e.ctx)
		if err != nil {
			return err
		}
		defer stop()
		code, err := c.Wait(ctx, path)
		if err != nil {
			return ifGone(err, "while waiting for container "+name, keepsRunning(name))
		}
		fmt.Fprintln(e.stdout, code)
		return nil
	})
}

func logsCmd(e *env, args []string) int {
	fs := e.flags("logs")
	follow := fs.BoolP("follow", "f", false, "keep printing output until the container stops")
	tail := fs.Int("tail", -1, "print only the last N lines")
	stamps := fs.BoolP("timestamps", "t", false, "show when each line was written")
	since := fs.String("since", "", "only lines since a time (RFC 3339, Unix seconds) or a duration ago (10m)")
	until := fs.String("until", "", "only lines before a time (RFC 3339, Unix seconds) or a duration ago (10m)")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		e.errorf("\"pelagos logs\" requires exactly 1 argument: pelagos logs [-f] [-t] [--tail N] [--since T] [--until T] CONTAINER")
		return exitFailure
	}
	now := time.Now()
	var from, to time.Time
	var err error
	if *since != "" {
		if from, err = parseLogTime(*since, now); err != nil {
			e.errorf("--since: %v", err)
			return exitFailure
		}
	}
	if *until != "" {
		if to, err = parseLogTime(*until, now); err != nil {
			e.errorf("--until: %v", err)
			return exitFailure
		}
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	path, ok := e.lookupContainer(c, fs.Arg(0))
	if !ok {
		return exitFailure
	}
	props, err := c.Properties(e.ctx, path, pdbus.ContainerIface)
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	logPath, _ := props["LogPath"].Value().(string)
	f, err := os.Open(logPath)
	if os.IsNotExist(err) {
		return exitOK // never started in the background: no output yet
	}
	if err != nil {
		e.errorf("open log: %v", err)
		return exitFailure
	}
	defer f.Close()
	if *tail >= 0 {
		if err := seekTail(f, *tail); err != nil {
			e.errorf("read log: %v", err)
			return exitFailure
		}
	}
	w := logWriter{e: e, stamps: *stamps, from: from, to: to}
	r := bufio.NewReader(f)
	var pending []byte // a record not yet complete in the file
	for {
		for {
			chunk, err := r.ReadSlice('\n')
			pending = append(pending, chunk...)
			if err == nil {
				w.record(pending)
				pending = pending[:0]
				continue
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if !errors.Is(err, io.EOF) {
				e.errorf("read log: %v", err)
				return exitFailure
			}
			break
		}
		if !*follow || (!to.IsZero() && time.Now().After(to)) {
			return exitOK
		}
		running, err := stillRunning(e, c, path)
		if isInterrupted(err) {
			return exitFailure // the signal's code
		}
		if err != nil || !running {
			// One more pass for what was written before it stopped.
			*follow = false
			continue
		}
		if !e.sleep(100 * time.Millisecond) {
			return exitFailure
		}
	}
}

// logWriter prints log records: stdout's to stdout, stderr's to stderr.
type logWriter struct {
	e        *env
	stamps   bool
	from, to time.Time
	midLine  bool // the last record printed was partial
}

func (w *logWriter) record(line []byte) {
	rec, ok := ctrlog.Parse(line)
	if ok && (!w.from.IsZero() && rec.Time.Before(w.from) || !w.to.IsZero() && rec.Time.After(w.to)) {
		return
	}
	out := w.e.stdout
	if rec.Stream == ctrlog.Stderr {
		out = w.e.stderr
	}
	if w.stamps && ok && !w.midLine {
		fmt.Fprint(out, rec.Time.Local().Format(time.RFC3339Nano)+" ")
	}
	out.Write(rec.Data)
	w.midLine = rec.Partial
}

// parseLogTime reads --since/--until: RFC 3339, Unix seconds, or a
// duration before now.
func parseLogTime(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Unix(0, int64(secs*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("%q: use a time (2026-01-02T15:04:05Z, 2026-01-02, Unix seconds) or a duration such as 10m", s)
}

// seekTail positions f at the start of its last n lines.
func seekTail(f *os.File, n int) error {
	b, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	skip := 0
	if len(lines) > n {
		for _, l := range lines[:len(lines)-n] {
			skip += len(l)
		}
	}
	_, err = f.Seek(int64(skip), io.SeekStart)
	return err
}

// inspectCmd prints podman-style JSON built from the container's D-Bus
// properties.
func inspectCmd(e *env, args []string) int {
	fs := e.flags("inspect")
	kind := fs.StringP("type", "t", "all", "what to inspect: container, image or all (containers first)")
	format := fs.StringP("format", "f", "", "a Go template applied to each object, e.g. '{{.State.Pid}}', or json")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	tmpl, err := parseFormat(*format)
	if err != nil {
		e.errorf("--format: %v", err)
		return exitFailure
	}
	if fs.NArg() == 0 {
		e.errorf("\"pelagos inspect\" requires at least 1 argument: pelagos inspect [--type container|image] NAME [NAME...]")
		return exitFailure
	}
	if *kind != "all" && *kind != "container" && *kind != "image" {
		e.errorf("--type %q: use container, image or all", *kind)
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	var out []any
	code := exitOK
	for _, name := range fs.Args() {
		v, err := e.inspectOne(c, name, *kind)
		if err != nil {
			e.callErr(err)
			code = exitFailure
			continue
		}
		out = append(out, v)
	}
	if tmpl != nil {
		// Templates see the JSON names ({{.NetworkSettings.IPAddress}}),
		// as podman's and Docker's do.
		for i, v := range out {
			var m map[string]any
			if b, err := json.Marshal(v); err == nil && json.Unmarshal(b, &m) == nil {
				out[i] = m
			}
		}
		if c, _ := printFormatted(e, *format, tmpl, out); c != exitOK {
			return c
		}
		return code
	}
	printInspect(e, out)
	return code
}

// inspectOne finds name as a container, then (for kind all) as an image,
// as podman inspect does.
func (e *env) inspectOne(c *pdbus.Client, name, kind string) (any, error) {
	if kind != "image" {
		path, err := c.GetContainer(e.ctx, name)
		if err == nil {
			p, err := c.Properties(e.ctx, path, pdbus.ContainerIface)
			if err != nil {
				return nil, err
			}
			return inspectJSON(p), nil
		}
		var pe *pdbus.Error
		if kind == "container" || !errors.As(err, &pe) || pe.Code != pdbus.ErrNoSuchContainer {
			return nil, err
		}
	}
	path, err := c.GetImage(e.ctx, name)
	if err != nil {
		var pe *pdbus.Error
		if kind == "all" && errors.As(err, &pe) && pe.Code == pdbus.ErrNoSuchImage {
			return nil, fmt.Errorf("no such object: %q is neither a container nor an image", name)
		}
		return nil, err
	}
	js, err := c.InspectImage(e.ctx, path)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(js), nil
}

// inspectOutput follows the field order and names of podman inspect.
type inspectOutput struct {
	ID           string         `json:"Id"`
	Created      string         `json:"Created"`
	Path         string         `json:"Path"`
	Args         []string       `json:"Args"`
	State        inspectState   `json:"State"`
	Image        any            `json:"Image"`
	ImageName    any            `json:"ImageName"`
	Name         any            `json:"Name"`
	LogPath      any            `json:"LogPath"`
	BoundingCaps any            `json:"BoundingCaps"`
	Config       inspectConfig  `json:"Config"`
	HostConfig   inspectHost    `json:"HostConfig"`
	Mounts       []inspectMount `json:"Mounts"`
	Network      inspectNetwork `json:"NetworkSettings"`
}

type inspectState struct {
	Status     string         `json:"Status"`
	Running    bool           `json:"Running"`
	Pid        any            `json:"Pid"`
	ExitCode   any            `json:"ExitCode"`
	Error      any            `json:"Error"`
	StartedAt  string         `json:"StartedAt"`
	FinishedAt string         `json:"FinishedAt"`
	OOMKilled  bool           `json:"OOMKilled"`
	Paused     any            `json:"Paused"`
	Health     *inspectHealth `json:"Health,omitempty"`
}

// inspectHealth is podman's State.Health.
type inspectHealth struct {
	Status        any                `json:"Status"`
	FailingStreak any                `json:"FailingStreak"`
	Log           []inspectHealthLog `json:"Log"`
}

type inspectHealthLog struct {
	Start    string `json:"Start"`
	End      string `json:"End"`
	ExitCode int32  `json:"ExitCode"`
	Output   string `json:"Output"`
}

type inspectConfig struct {
	Hostname   any `json:"Hostname"`
	User       any `json:"User"`
	Env        any `json:"Env"`
	Cmd        any `json:"Cmd"`
	WorkingDir any `json:"WorkingDir"`
	Labels     any `json:"Labels"`
	StopSignal any `json:"StopSignal"`
}

type inspectHost struct {
	AutoRemove      any                      `json:"AutoRemove"`
	Privileged      any                      `json:"Privileged"`
	ReadonlyRootfs  any                      `json:"ReadonlyRootfs"`
	NoNewPrivileges any                      `json:"NoNewPrivileges"`
	Seccomp         any                      `json:"SeccompProfile"`
	NetworkMode     any                      `json:"NetworkMode"`
	UsernsMode      any                      `json:"UsernsMode"`
	PortBindings    map[string][]inspectPort `json:"PortBindings"`
}

// inspectNetwork is podman's NetworkSettings, for pasta's one network.
type inspectNetwork struct {
	IPAddress   any                      `json:"IPAddress"`
	Gateway     string                   `json:"Gateway"`
	IPPrefixLen int                      `json:"IPPrefixLen"`
	MacAddress  string                   `json:"MacAddress,omitempty"`
	Ports       map[string][]inspectPort `json:"Ports"`
	// Networks are a bridge container's networks, by name, as podman's.
	Networks map[string]inspectEndpoint `json:"Networks,omitempty"`
}

// inspectEndpoint is a container's place on one bridge network.
type inspectEndpoint struct {
	NetworkID     string `json:"NetworkID"`
	IPAddress     string `json:"IPAddress"`
	IPPrefixLen   int    `json:"IPPrefixLen"`
	Gateway       string `json:"Gateway"`
	MacAddress    string `json:"MacAddress"`
	InterfaceName string `json:"InterfaceName"`
}

// inspectPort is one host side of a published port.
type inspectPort struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// portRow is one element of the container's Ports property.
type portRow struct {
	HostIP            string
	HostPort, CtrPort uint16
	Proto             string
}

// containerPorts reads the Ports property.
func containerPorts(p map[string]godbus.Variant) []portRow {
	var rows []portRow
	if v, ok := p["Ports"]; ok {
		v.Store(&rows)
	}
	return rows
}

// portMap groups published ports by "CTRPORT/PROTO", as podman shows them.
func portMap(rows []portRow) map[string][]inspectPort {
	m := map[string][]inspectPort{}
	for _, r := range rows {
		k := fmt.Sprintf("%d/%s", r.CtrPort, r.Proto)
		m[k] = append(m[k], inspectPort{HostIP: r.HostIP, HostPort: strconv.Itoa(int(r.HostPort))})
	}
	return m
}

type inspectMount struct {
	Type        any  `json:"Type"`
	Source      any  `json:"Source"`
	Destination any  `json:"Destination"`
	RW          bool `json:"RW"`
}

func inspectJSON(p map[string]godbus.Variant) inspectOutput {
	v := func(k string) any { return p[k].Value() }
	ts := func(k string) string {
		if us, ok := p[k].Value().(uint64); ok && us > 0 {
			return time.UnixMicro(int64(us)).UTC().Format(time.RFC3339Nano)
		}
		return "0001-01-01T00:00:00Z"
	}
	state, _ := v("State").(string)
	cmd, _ := v("Command").([]string)
	out := inspectOutput{
		ID: fmt.Sprint(v("Id")), Created: ts("CreatedAt"),
		State: inspectState{
			Status: state, Running: state == pdbus.StateRunning, Pid: v("Pid"), ExitCode: v("ExitCode"),
			Error: v("Error"), StartedAt: ts("StartedAt"), FinishedAt: ts("FinishedAt"), Paused: v("Paused"),
		},
		Image: v("ImageId"), ImageName: v("Image"), Name: v("Name"), LogPath: v("LogPath"),
		BoundingCaps: v("Capabilities"),
		Config:       inspectConfig{Hostname: v("Hostname"), User: v("User"), Env: v("Env"), Cmd: cmd, WorkingDir: v("WorkingDir"), Labels: v("Labels"), StopSignal: v("StopSignal")},
		HostConfig: inspectHost{
			AutoRemove: v("AutoRemove"), Privileged: v("Privileged"), ReadonlyRootfs: v("ReadOnly"),
			NoNewPrivileges: v("NoNewPrivileges"), Seccomp: v("Seccomp"),
			NetworkMode: v("NetworkMode"), UsernsMode: v("UsernsMode"), PortBindings: portMap(containerPorts(p)),
		},
		Mounts:  []inspectMount{},
		Network: inspectNetwork{IPAddress: v("IPAddress"), Ports: portMap(containerPorts(p))},
	}
	var leases []struct{ Network, Ifname, Address, Gateway, MAC string }
	if n, ok := p["Networks"]; ok {
		n.Store(&leases)
	}
	for i, l := range leases {
		ip, bits, _ := strings.Cut(l.Address, "/")
		n, _ := strconv.Atoi(bits)
		if out.Network.Networks == nil {
			out.Network.Networks = map[string]inspectEndpoint{}
		}
		out.Network.Networks[l.Network] = inspectEndpoint{NetworkID: l.Network, IPAddress: ip, IPPrefixLen: n, Gateway: l.Gateway, MacAddress: l.MAC, InterfaceName: l.Ifname}
		if i == 0 {
			out.Network.Gateway, out.Network.IPPrefixLen, out.Network.MacAddress = l.Gateway, n, l.MAC
		}
	}
	if ip, _ := v("IPAddress").(string); ip != "" && len(leases) == 0 {
		out.Network.Gateway, out.Network.IPPrefixLen = "10.0.2.2", 24
	}
	if h, _ := v("Health").(string); h != "" {
		var rows []struct {
			Start, End uint64
			ExitCode   int32
			Output     string
		}
		p["HealthLog"].Store(&rows)
		hs := &inspectHealth{Status: h, FailingStreak: v("HealthFailingStreak"), Log: []inspectHealthLog{}}
		for _, r := range rows {
			hs.Log = append(hs.Log, inspectHealthLog{
				Start: time.UnixMicro(int64(r.Start)).UTC().Format(time.RFC3339Nano), End: time.UnixMicro(int64(r.End)).UTC().Format(time.RFC3339Nano),
				ExitCode: r.ExitCode, Output: r.Output,
			})
		}
		out.State.Health = hs
	}
	if len(cmd) > 0 {
		out.Path, out.Args = cmd[0], cmd[1:]
	}
	if rows, ok := v("Mounts").([][]any); ok {
		for _, r := range rows {
			if len(r) == 4 {
				ro, _ := r[3].(bool)
				out.Mounts = append(out.Mounts, inspectMount{Type: r[0], Source: r[1], Destination: r[2], RW: !ro})
			}
		}
	}
	return out
}

func portCmd(e *env, args []string) int {
	fs := e.flags("port")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		e.errorf("\"pelagos port\" requires 1 or 2 arguments: pelagos port CONTAINER [PRIVATE_PORT[/PROTO]]")
		return exitFailure
	}
	want, wantProto := "", ""
	if fs.NArg() == 2 {
		want, wantProto, _ = strings.Cut(fs.Arg(1), "/")
		if _, err := strconv.ParseUint(want, 10, 16); err != nil || (wantProto != "" && wantProto != "tcp" && wantProto != "udp") {
			e.errorf("%q: give a container port as PORT or PORT/tcp or PORT/udp", fs.Arg(1))
			return exitFailure
		}
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	path, err := c.GetContainer(e.ctx, fs.Arg(0))
	var p map[string]godbus.Variant
	if err == nil {
		p, err = c.Properties(e.ctx, path, pdbus.ContainerIface)
	}
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	found := false
	for _, r := range containerPorts(p) {
		if want != "" && (strconv.Itoa(int(r.CtrPort)) != want || wantProto != "" && wantProto != r.Proto) {
			continue
		}
		found = true
		ip := r.HostIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		host := net.JoinHostPort(ip, strconv.Itoa(int(r.HostPort)))
		if want != "" {
			fmt.Fprintln(e.stdout, host)
		} else {
			fmt.Fprintf(e.stdout, "%d/%s -> %s\n", r.CtrPort, r.Proto, host)
		}
	}
	if want != "" && !found {
		e.errorf("no public port %s published for %s", fs.Arg(1), fs.Arg(0))
		return exitFailure
	}
	return exitOK
}

func topCmd(e *env, args []string) int {
	fs := e.flags("top")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() < 1 {
		e.errorf("\"pelagos top\" requires at least 1 argument: pelagos top CONTAINER")
		return exitFailure
	}
	if fs.NArg() > 1 {
		e.errorf("pelagos top shows its own columns (USER PID PPID %%CPU ELAPSED TTY TIME COMMAND); ps options are not supported")
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	path, err := c.GetContainer(e.ctx, fs.Arg(0))
	var rows []pdbus.TopRow
	if err == nil {
		rows, err = c.Top(e.ctx, path)
	}
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "USER\tPID\tPPID\t%CPU\tELAPSED\tTTY\tTIME\tCOMMAND")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.3f\t%s\t%s\t%s\t%s\n", r.User, r.Pid, r.PPid, r.CPU,
			time.Duration(r.Elapsed)*time.Second, r.TTY, time.Duration(r.Time)*time.Second, r.Command)
	}
	tw.Flush()
	return exitOK
}

func healthcheckCmd(e *env, args []string) int {
	fs := e.flags("healthcheck")
	if len(args) > 0 && args[0] == "run" {
		args = args[1:]
	} else if len(args) == 0 || (args[0] != "--help" && args[0] != "-h") {
		e.errorf("usage: pelagos healthcheck run CONTAINER")
		return exitFailure
	}
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		e.errorf("\"pelagos healthcheck run\" requires exactly 1 argument: pelagos healthcheck run CONTAINER")
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	path, err := c.GetContainer(e.ctx, fs.Arg(0))
	var health string
	if err == nil {
		health, err = c.RunHealthcheck(e.ctx, path)
	}
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	fmt.Fprintln(e.stdout, health)
	if health == "unhealthy" {
		return 1
	}
	return exitOK
}

func pauseCmd(e *env, args []string) int   { return e.setPaused("pause", args, true) }
func unpauseCmd(e *env, args []string) int { return e.setPaused("unpause", args, false) }

// setPaused is the body of pause and unpause.
func (e *env) setPaused(cmd string, args []string, pause bool) int {
	return e.onContainers(e.flags(cmd), args, func(c *pdbus.Client, path godbus.ObjectPath, name string) error {
		if err := c.Pause(e.ctx, path, pause); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, name)
		return nil
	})
}

// stillRunning asks whether a followed container still runs. The
// service may be restarting (a crash, an idle exit): the log file is
// still written meanwhile, so keep asking for a while — the next call
// starts the service again.
func stillRunning(e *env, c *pdbus.Client, path godbus.ObjectPath) (bool, error) {
	var err error
	for try := 0; try < 50; try++ {
		var props map[string]godbus.Variant
		props, err = c.Properties(e.ctx, path, pdbus.ContainerIface)
		if err == nil {
			return props["State"].Value() == pdbus.StateRunning, nil
		}
		if pdbus.CodeOf(err) == pdbus.ErrNoSuchContainer {
			return false, err
		}
		if !e.sleep(100 * time.Millisecond) {
			return false, context.Cause(e.ctx)
		}
	}
	return false, err
}

// sleep waits for d, or less when the command's context ends (then
// false).
func (e *env) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-e.ctx.Done():
		return false
	}
}
