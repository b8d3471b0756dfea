package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5/prop"
	"golang.org/x/sys/unix"

	"github.com/pelagos-containers/pelagos/container"
	pdbus "github.com/pelagos-containers/pelagos/dbus"
	"github.com/pelagos-containers/pelagos/rootless/holder"
	"github.com/pelagos-containers/pelagos/wasm"
)

// ctr is one container of the manager.
type ctr struct {
	m   *Manager
	dir string

	mu  sync.Mutex
	rec record
	obj *pdbus.Object
	run *runProc // the current run as this service knows it
	// lastSignal is the last ending signal this service sent the run.
	lastSignal unix.Signal
	done       chan struct{} // closed when the current run has ended
	removed    bool
	// collected, when set, delays the auto-removal of a container run
	// on a terminal until a Wait has read its exit code: that client
	// gets the terminal first and asks for the code afterwards.
	collected     chan struct{}
	collectedOnce sync.Once
	// attachFDs are terminal copies sent to AttachTerminal callers,
	// closed when the run ends.
	attachFDs []int
	// health is what the health checks of the current run found.
	health *healthState
	// pastaLaunch reports the outcome of a pasta start under way;
	// pastaExited is closed once the pasta this service started for the
	// current run has been reaped.
	pastaLaunch chan error
	pastaExited chan struct{}
	// pastaStopped is closed once the pasta of the last run that ended
	// has exited (stopNetwork ends it in the background).
	pastaStopped chan struct{}
	// replyFD is the copy of the terminal master that travels in the
	// StartWithTerminal reply. godbus sends it after the method returns,
	// so it may be closed only once the client has moved on (collected).
	replyFD int
}

// terminalSize asks Start for a pseudo-terminal of that size.
type terminalSize struct {
	Rows, Cols uint16
}

func (c *ctr) name() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.Name
}

func (c *ctr) running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.State == pdbus.StateRunning
}

func (c *ctr) export() error {
	r := &c.rec
	props := map[string]*prop.Prop{
		"Id":                  constProp(r.ID),
		"Name":                constProp(r.Name),
		"Image":               constProp(r.Image),
		"ImageId":             constProp(r.ImageID),
		"Command":             constProp(r.Args),
		"Hostname":            constProp(r.Hostname),
		"AutoRemove":          constProp(r.AutoRemove),
		"CreatedAt":           constProp(usec(r.CreatedAt)),
		"LogPath":             constProp(c.logPath()),
		"State":               {Value: r.State, Emit: prop.EmitTrue},
		"ExitCode":            {Value: int32(r.ExitCode), Emit: prop.EmitTrue},
		"Pid":                 {Value: uint32(r.Pid), Emit: prop.EmitTrue},
		"StartedAt":           {Value: usec(r.StartedAt), Emit: prop.EmitTrue},
		"FinishedAt":          {Value: usec(r.FinishedAt), Emit: prop.EmitTrue},
		"Error":               {Value: r.Error, Emit: prop.EmitTrue},
		"Env":                 constProp(nonNil(r.Env)),
		"WorkingDir":          constProp(r.WorkingDir),
		"User":                constProp(r.User),
		"Mounts":              constProp(mountRows(r.Mounts)),
		"Capabilities":        constProp(nonNil(r.Security.Capabilities)),
		"Privileged":          constProp(r.Security.Privileged),
		"ReadOnly":            constProp(r.Security.ReadonlyRootfs),
		"NoNewPrivileges":     constProp(r.Security.NoNewPrivileges),
		"Seccomp":             constProp(r.Security.Seccomp),
		"NetworkMode":         {Value: r.Network.Mode.String(), Emit: prop.EmitTrue},
		"UsernsMode":          constProp(r.UserNS.String()),
		"IPAddress":           {Value: r.ipAddress(), Emit: prop.EmitTrue},
		"Networks":            {Value: leaseRows(r.Bridge.Leases), Emit: prop.EmitTrue},
		"Ports":               constProp(portRows(r.Network.Ports)),
		"Warnings":            constProp(r.warnings()),
		"Labels":              constProp(nonNilMap(r.Labels)),
		"StopSignal":          constProp(stopSignalName(r.StopSignal)),
		"Health":              {Value: c.healthStatusLocked(), Emit: prop.EmitTrue},
		"Paused":              {Value: r.Paused, Emit: prop.EmitTrue},
		"HealthFailingStreak": {Value: int32(0), Emit: prop.EmitTrue},
		"HealthLog":           {Value: []healthLogRow{}, Emit: prop.EmitTrue},
	}
	obj, err := c.m.server.Export(pdbus.ContainerPath(r.ID), pdbus.ContainerIface, &containerAPI{c}, props)
	if err != nil {
		return err
	}
	c.obj = obj
	return nil
}

func (c *ctr) logPath() string { return filepath.Join(c.dir, "ctr.log") }

// publishLocked saves the record and announces the changed state. Call
// with c.mu held.
func (c *ctr) publishLocked() {
	if err := c.rec.save(c.dir); err != nil {
		c.m.log.Error("save container state", "id", c.rec.ID, "err", err)
	}
	if c.obj == nil {
		return
	}
	r := &c.rec
	set := func(name string, v any) { setProp(c.obj.Props, pdbus.ContainerIface, name, v) }
	set("Pid", uint32(r.Pid))
	set("ExitCode", int32(r.ExitCode))
	set("StartedAt", usec(r.StartedAt))
	set("FinishedAt", usec(r.FinishedAt))
	set("Error", r.Error)
	set("IPAddress", r.ipAddress())
	set("Networks", leaseRows(r.Bridge.Leases))
	// State last: a client that reacts to it sees the other values set.
	set("State", r.State)
	c.m.emit("ContainerStateChanged", c.obj.Path, r.ID, r.State, int32(r.ExitCode))
}

// recover fixes up the record of a container found on disk when the
// service starts. One still running is watched until it ends, as the
// service that started it would have (watch); one that ended while no
// service ran has the exit code its monitor (or the holder) recorded.
func (c *ctr) recover() {
	r := &c.rec
	if r.State != pdbus.StateRunning {
		return
	}
	if r.Pid > 0 && processStartTime(r.Pid) == r.PidStart {
		done := make(chan struct{})
		c.done = done
		go c.reap(r.Pid, r.PidStart, done)
		c.startHealth(true)
		if len(r.Bridge.Leases) > 0 {
			// Its names go back into the other containers' /etc/hosts.
			c.m.hosts.set(r.ID, c.bridgeHostsEntry())
		}
		return
	}
	e := c.watch(r.Pid, r.PidStart)
	r.State, r.ExitCode, r.Pid, r.FinishedAt, r.Error = pdbus.StateExited, e.Code, 0, e.FinishedAt, e.Error
	r.Monitor = monitorState{}
	c.releaseForeignCgroup()
	c.stopNetwork()
	if err := r.save(c.dir); err != nil {
		c.m.log.Error("save container state", "id", r.ID, "err", err)
	}
}

// releaseForeignCgroup removes the cgroup of a container an earlier
// service started. Call with c.mu held or before the container is shared.
func (c *ctr) releaseForeignCgroup() {
	if err := container.RemoveCgroup(c.rec.CgroupDir); err != nil {
		c.m.log.Warn("remove cgroup", "id", c.rec.ID, "err", err)
	}
	c.rec.CgroupDir = ""
}

// start runs the container on stdio and returns once its command runs.
//
// With tty, it returns a descriptor of the terminal's master for the
// caller's reply (otherwise -1). It is a raw descriptor on purpose: an
// *os.File would close it when garbage-collected, while reap closes it
// too — and a double close can hit a descriptor the image store reuses.
func (c *ctr) start(ctx context.Context, stdio container.Stdio, tty *terminalSize) (int, error) {
	netns, netTarget, err := c.networkNamespace()
	if err != nil {
		return -1, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return -1, pdbus.Errorf(pdbus.ErrNoSuchContainer, "no such container: %s", c.rec.ID)
	}
	if c.rec.State == pdbus.StateRunning {
		return -1, pdbus.Errorf(pdbus.ErrContainerRunning, "container %s is already running", c.rec.Name)
	}
	t0 := time.Now()
	rootfs, err := c.m.store.MountLayer(c.rec.ID)
	if err != nil {
		return -1, err
	}
	files, err := c.writeEtcFiles(netTarget)
	if err == nil {
		err = c.keepIDFiles(rootfs, files)
	}
	if err == nil {
		err = c.chownEmptyVolumes()
	}
	if err != nil {
		c.m.store.UnmountLayer(c.rec.ID)
		return -1, err
	}
	spec := &container.Spec{
		Rootfs:   rootfs,
		Hostname: c.rec.Hostname,
		Args:     c.rec.Args,
		Env:      c.rec.Env,
		Cwd:      c.rec.WorkingDir,
		User:     c.rec.User,
		Files:    files,
		Mounts:   c.rec.Mounts,
		Rlimits:  c.rec.Process.Rlimits,
		Sysctls:  c.rec.Process.Sysctls,
		GroupAdd: c.rec.Process.GroupAdd,
		Devices:  c.rec.Process.Devices,
		Init:     c.rec.Process.Init,

		InitBinary:  c.m.initBinary,
		UIDMappings: c.rec.UserNS.UIDMap,
		GIDMappings: c.rec.UserNS.GIDMap,
	}
	if tty != nil {
		spec.Terminal, spec.Rows, spec.Cols = true, tty.Rows, tty.Cols
	}
	if module, rest, ok, err := wasm.Detect(c.rec.ImageOS, c.rec.ImageArch, c.rec.Args, rootfs); err != nil {
		c.m.store.UnmountLayer(c.rec.ID)
		return -1, pdbus.Errorf(pdbus.ErrStartFailed, "start %s: %v", c.rec.Name, err)
	} else if ok {
		spec.Wasm, spec.Args = module, append([]string{module}, rest...)
		spec.WasmCache = filepath.Join(c.m.paths.Data, "wasm-cache")
	}
	if err := c.rec.Security.apply(spec, c.dir, &c.m.seccomp); err != nil {
		c.m.store.UnmountLayer(c.rec.ID)
		return -1, err
	}
	spec.NetNS = netns
	done := make(chan struct{})
	hooks := container.Hooks{
		// pasta comes up while the child prepares its root filesystem.
		AfterClone: func(pid int) { c.launchPasta(ctx, pid) },
	}
	hooks.BeforeExec = func(pid int) error {
		if err := c.joinPasta(); err != nil {
			return err
		}
		if !c.rec.Resources.Empty() {
			dir, err := c.m.cgroups.apply(c.rec.ID, c.rec.Resources, pid)
			if err != nil {
				return &container.StartError{Code: container.ExitSetupFailed, Msg: fmt.Sprintf("apply resource limits: %v", err)}
			}
			c.rec.CgroupDir = dir
		}
		// State is visible before the command can print anything.
		c.rec.State, c.rec.Pid, c.rec.PidStart = pdbus.StateRunning, pid, processStartTime(pid)
		c.rec.StartedAt, c.rec.FinishedAt, c.rec.ExitCode, c.rec.Error = time.Now(), time.Time{}, 0, ""
		c.done = done
		c.rec.HealthRun = nil
		c.publishLocked()
		c.startHealth(false)
		return nil
	}
	proc, err := c.launch(ctx, spec, stdio, hooks)
	if err != nil {
		c.m.store.UnmountLayer(c.rec.ID)
		container.RemoveCgroup(c.rec.CgroupDir)
		c.rec.CgroupDir = ""
		c.stopNetwork()
		code, msg := container.ExitSetupFailed, err.Error()
		var se *container.StartError
		if errors.As(err, &se) {
			code = se.Code
		}
		c.rec.State, c.rec.ExitCode, c.rec.Pid, c.rec.Error = pdbus.StateExited, code, 0, msg
		c.rec.Monitor = monitorState{}
		c.rec.FinishedAt = time.Now()
		if c.done == done {
			close(done)
		}
		c.publishLocked()
		switch code {
		case container.ExitNotFound:
			return -1, pdbus.Errorf(pdbus.ErrCommandNotFound, "%s", msg)
		case container.ExitCannotInvoke:
			return -1, pdbus.Errorf(pdbus.ErrCommandNotExecutable, "%s", msg)
		}
		return -1, pdbus.Errorf(pdbus.ErrStartFailed, "start %s: %s", c.rec.Name, msg)
	}
	c.run = proc
	// The record now names the run's monitor.
	if err := c.rec.save(c.dir); err != nil {
		c.m.log.Error("save container state", "id", c.rec.ID, "err", err)
	}
	reply := -1
	if tty != nil {
		fd := -1
		err := errors.New("the monitor sent no terminal")
		if proc.Terminal != nil {
			fd, err = unix.FcntlInt(proc.Terminal.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		}
		if err != nil {
			unix.Kill(proc.Pid, unix.SIGKILL)
			c.m.log.Error("duplicate terminal", "id", c.rec.ID, "err", err)
		} else {
			c.replyFD, reply = fd, fd
		}
		c.collected = make(chan struct{})
		c.collectedOnce = sync.Once{}
	}
	c.m.log.Debug("started container", "id", c.rec.ID, "took", time.Since(t0))
	go c.reap(proc.Pid, proc.Start, done)
	return reply, nil
}

// reap waits for the run of pid to end (watch), records the exit and
// releases the root filesystem (and the whole container with
// AutoRemove). It serves runs this service started and runs it found
// running alike.
func (c *ctr) reap(pid int, start uint64, done chan struct{}) {
	e := c.watch(pid, start)
	if c.m.stopping.Load() {
		// This service is on its way out: the next one reads the exit
		// file and does the rest, all of it.
		return
	}
	c.mu.Lock()
	if e.Code < 0 && c.lastSignal != 0 {
		// Nobody was its parent when it ended, but it ended on our
		// signal: say so, as a service that saw it would have.
		e.Code, e.Error = container.ExitSignalBase+int(c.lastSignal), ""
	}
	c.lastSignal = 0
	c.mu.Unlock()
	code := e.Code
	t0 := time.Now()
	if e.Error != "" {
		c.m.log.Warn("wait for container", "id", c.rec.ID, "err", e.Error)
	}
	c.mu.Lock()
	c.rec.State, c.rec.ExitCode, c.rec.Pid, c.rec.FinishedAt = pdbus.StateExited, code, 0, e.FinishedAt
	c.rec.Error = e.Error
	c.rec.Monitor = monitorState{}
	c.rec.Paused = false
	c.stopHealth()
	proc := c.run
	c.run = nil
	if proc != nil && proc.Terminal != nil {
		// The service kept its own copy of the master so the terminal
		// outlives a client that detaches; the run is over now.
		proc.Terminal.Close()
	}
	for _, fd := range c.attachFDs {
		unix.Close(fd)
	}
	c.attachFDs = nil
	c.publishLocked()
	autoRemove, collected := c.rec.AutoRemove, c.collected
	c.mu.Unlock()
	if err := c.m.store.UnmountLayer(c.rec.ID); err != nil {
		c.m.log.Warn("unmount container", "id", c.rec.ID, "err", err)
	}
	c.mu.Lock()
	if err := container.RemoveCgroup(c.rec.CgroupDir); err != nil {
		c.m.log.Warn("remove cgroup", "id", c.rec.ID, "err", err)
	}
	c.rec.CgroupDir = ""
	c.stopNetwork()
	if err := c.rec.save(c.dir); err != nil {
		c.m.log.Error("save container state", "id", c.rec.ID, "err", err)
	}
	c.mu.Unlock()
	if c.shouldRestart(code) {
		go c.restartLater()
	}
	switch {
	case collected != nil:
		go func() {
			select {
			case <-collected:
			case <-time.After(time.Minute):
			}
			c.mu.Lock()
			if c.replyFD > 0 {
				unix.Close(c.replyFD)
				c.replyFD = 0
			}
			c.mu.Unlock()
			if autoRemove {
				if err := c.m.removeContainer(c, false); err != nil {
					c.m.log.Error("auto-remove container", "id", c.rec.ID, "err", err)
				}
			}
		}()
	case autoRemove:
		if err := c.m.removeContainer(c, false); err != nil {
			c.m.log.Error("auto-remove container", "id", c.rec.ID, "err", err)
		}
	}
	c.m.log.Debug("reaped container", "id", c.rec.ID, "code", code, "took", time.Since(t0))
	close(done)
}

// wait blocks until the container is not running and returns its exit
// code.
func (c *ctr) wait(ctx context.Context) (int, error) {
	c.mu.Lock()
	done := c.done
	running := c.rec.State == pdbus.StateRunning
	c.mu.Unlock()
	if running && done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	c.mu.Lock()
	code := c.rec.ExitCode
	collect := c.collected != nil && c.rec.State == pdbus.StateExited
	autoRemove := c.rec.AutoRemove
	if collect {
		c.collectedOnce.Do(func() { close(c.collected) })
	}
	c.mu.Unlock()
	if collect && autoRemove {
		// The caller of a terminal run has its code: remove now, so that
		// `run --rm -t` returns with the container gone, as without -t.
		// (reap's goroutine does the same; removal is idempotent.)
		if err := c.m.removeContainer(c, false); err != nil {
			c.m.log.Warn("auto-remove container", "id", c.rec.ID, "err", err)
		}
	}
	return code, nil
}

// kill signals the container's first process.
func (c *ctr) kill(sig unix.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec.State != pdbus.StateRunning || c.rec.Pid == 0 {
		return pdbus.Errorf(pdbus.ErrContainerNotRunning, "container %s is not running", c.rec.Name)
	}
	c.thawLocked()
	// Through a pidfd checked against the start time: never a signal
	// to a process that reused the pid.
	fd, err := unix.PidfdOpen(c.rec.Pid, 0)
	if err != nil || processStartTime(c.rec.Pid) != c.rec.PidStart {
		if err == nil {
			unix.Close(fd)
		}
		return pdbus.Errorf(pdbus.ErrContainerNotRunning, "container %s is not running", c.rec.Name)
	}
	defer unix.Close(fd)
	if sig == unix.SIGKILL || sig == unix.SIGTERM || c.lastSignal == 0 {
		c.lastSignal = sig
	}
	return unix.PidfdSendSignal(fd, sig, nil, 0)
}

// writeEtcFiles writes the container's /etc/hosts, /etc/hostname and
// /etc/resolv.conf into its directory and returns what to mount where.
// A container in another's network namespace shares its hosts and DNS.
func (c *ctr) writeEtcFiles(netTarget *ctr) (map[string]string, error) {
	hosts, resolv := []byte(c.etcHosts()), c.resolvConf()
	if netTarget != nil {
		if b, err := os.ReadFile(filepath.Join(netTarget.dir, "hosts")); err == nil {
			hosts = b
		}
		if b, err := os.ReadFile(filepath.Join(netTarget.dir, "resolv.conf")); err == nil {
			resolv = b
		}
	}
	files := map[string]string{}
	for name, content := range map[string][]byte{
		"hosts":       hosts,
		"hostname":    []byte(c.rec.Hostname + "\n"),
		"resolv.conf": resolv,
	} {
		p := filepath.Join(c.dir, name)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", p, err)
		}
		files["/etc/"+name] = p
	}
	return files, nil
}

// processStartTime identifies a process across pid reuse; 0 when gone.
func processStartTime(pid int) uint64 { return holder.StartTime(pid) }

// parseSignal accepts "KILL", "SIGKILL", "kill" and "9".
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal number %d: use 1-64", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("invalid signal %q: use a name like TERM or KILL, or a number", s)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// mountRow is one entry of the Mounts property.
type mountRow struct {
	Type, Source, Destination string
	ReadOnly                  bool
}

func mountRows(ms []container.Mount) []mountRow {
	rows := []mountRow{}
	for _, m := range ms {
		rows = append(rows, mountRow{m.Type, m.Source, m.Destination, m.ReadOnly})
	}
	return rows
}

// stop sends SIGTERM, then SIGKILL after timeout, and waits for the end.
func (c *ctr) stop(ctx context.Context, timeout time.Duration) error {
	c.mu.Lock()
	running, done := c.rec.State == pdbus.StateRunning, c.done
	c.mu.Unlock()
	if !running || done == nil {
		return nil
	}
	defer c.waitNetworkReleased()
	// The image's or the user's StopSignal first (SIGTERM by default),
	// SIGKILL after the grace period.
	sig := unix.SIGTERM
	if c.rec.StopSignal != "" {
		if s, err := parseSignal(c.rec.StopSignal); err == nil {
			sig = s
		}
	}
	if err := c.kill(sig); err != nil && pdbus.CodeOf(err) != pdbus.ErrContainerNotRunning {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := c.kill(unix.SIGKILL); err != nil && pdbus.CodeOf(err) != pdbus.ErrContainerNotRunning {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
