package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pelagos-containers/pelagos/container"
	"github.com/pelagos-containers/pelagos/monitor"
	"github.com/pelagos-containers/pelagos/rootless"
	"github.com/pelagos-containers/pelagos/rootless/holder"
)

// monitorState is what the record keeps of a run's monitor, so that any
// later service can watch the run, copy its terminal or adopt it.
type monitorState struct {
	Pid   int    `json:"pid,omitempty"`
	Start uint64 `json:"start,omitempty"`
	// StdoutPipe and StderrPipe are the inodes of the container's output
	// pipes; TerminalFD is the monitor's descriptor of the terminal's
	// master (-1: none).
	StdoutPipe uint64 `json:"stdoutPipe,omitempty"`
	StderrPipe uint64 `json:"stderrPipe,omitempty"`
	TerminalFD int    `json:"terminalFd,omitempty"`
}

// exitPath is where the monitor writes how the current run ended.
func (c *ctr) exitPath() string { return filepath.Join(c.dir, "exit.json") }

// spawnMonitor asks the holder to start a monitor for container id with
// files as its descriptors 3, 4, .... A holder that died is replaced
// (in this service's namespaces) and asked again, once.
func (m *Manager) spawnMonitor(id string, files []*os.File) (int, uint64, error) {
	m.holderMu.Lock()
	defer m.holderMu.Unlock()
	pid, start, err := m.ns.Holder.Spawn([]string{id}, []string{}, files)
	if err == nil || !holder.Gone(err) {
		return pid, start, err
	}
	m.log.Warn("pelagos-holder went away: starting a new one", "err", err)
	if rerr := rootless.ReplaceHolder(m.ctx, m.ns, m.paths.Runtime, m.paths.Exits()); rerr != nil {
		return 0, 0, fmt.Errorf("%v; and a new holder could not be started: %w", err, rerr)
	}
	m.moveHolderToScope()
	return m.ns.Holder.Spawn([]string{id}, []string{}, files)
}

// launch starts the container through a new monitor: the monitor is its
// parent, while the service's part of a start (networking, resource
// limits, the state record) runs in hooks at the same two moments as
// before. stdio.Stdout nil means a detached run: output goes only to
// the log.
func (c *ctr) launch(ctx context.Context, spec *container.Spec, stdio container.Stdio, hooks container.Hooks) (*runProc, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("create monitor socket: %w", err)
	}
	ctl := fds[0]
	defer unix.Close(ctl)
	theirs := os.NewFile(uintptr(fds[1]), "monitor-ctl")
	files := []*os.File{theirs, stdio.Stdin}
	tee := stdio.Stdout != nil
	if tee {
		files = append(files, stdio.Stdout, stdio.Stderr)
	}
	l := monitor.Launch{
		Spec: *spec, InitBinary: spec.InitBinary, UIDMappings: spec.UIDMappings, GIDMappings: spec.GIDMappings,
		LogPath: c.logPath(), LogDriver: c.rec.LogDriver, ExitFile: c.exitPath(), Tee: tee,
	}
	os.Remove(c.exitPath())
	monPid, monStart, err := c.m.spawnMonitor(c.rec.ID, files)
	theirs.Close()
	if err != nil {
		return nil, &container.StartError{Code: container.ExitSetupFailed, Msg: err.Error()}
	}
	// Recorded at once: the record saved as the run begins names it.
	c.rec.Monitor = monitorState{Pid: monPid, Start: monStart, TerminalFD: -1}
	fail := func(code int, msg string) (*runProc, error) {
		// A monitor that lost its service during the start ends the
		// container itself (the init has a parent-death signal).
		unix.Kill(monPid, unix.SIGKILL)
		return nil, &container.StartError{Code: code, Msg: msg}
	}
	if err := monitor.Send(ctl, l); err != nil {
		return fail(container.ExitSetupFailed, fmt.Sprintf("send the container to its monitor: %v", err))
	}
	for {
		var ev monitor.Event
		got, err := monitor.Receive(ctl, &ev)
		if err != nil {
			for _, fd := range got {
				unix.Close(fd)
			}
			return fail(container.ExitSetupFailed, fmt.Sprintf("the container's monitor (pid %d) ended during the start: %v", monPid, err))
		}
		switch {
		case ev.Cloned > 0:
			if hooks.AfterClone != nil {
				hooks.AfterClone(ev.Cloned)
			}
		case ev.Ready > 0:
			var v monitor.Verdict
			if err := hooks.BeforeExec(ev.Ready); err != nil {
				f := &monitor.Failure{Code: container.ExitSetupFailed, Msg: err.Error()}
				var se *container.StartError
				if errors.As(err, &se) {
					f.Code, f.Msg = se.Code, se.Msg
				}
				v.Abort = f
			} else {
				v.Go = true
			}
			if err := monitor.Send(ctl, v); err != nil {
				return fail(container.ExitSetupFailed, fmt.Sprintf("release the container: %v", err))
			}
		case ev.Failed != nil:
			return nil, &container.StartError{Code: ev.Failed.Code, Msg: ev.Failed.Msg}
		case ev.Running != nil:
			r := ev.Running
			p := &runProc{Pid: r.Pid, Start: r.Start}
			c.rec.Monitor = monitorState{Pid: monPid, Start: monStart, StdoutPipe: r.StdoutPipe, StderrPipe: r.StderrPipe, TerminalFD: r.TerminalFD}
			if len(got) > 0 {
				p.Terminal = os.NewFile(uintptr(got[0]), "pty-master")
				for _, fd := range got[1:] {
					unix.Close(fd)
				}
			}
			return p, nil
		}
		for _, fd := range got {
			unix.Close(fd)
		}
	}
}

// runProc is a running container as this service knows it.
type runProc struct {
	Pid   int
	Start uint64
	// Terminal is the terminal's master when this service started the
	// run with one (a later service copies it from the monitor).
	Terminal *os.File
}

// watch follows a run to its end, whichever service started it: it waits
// for the run's monitor to exit and reads the exit file the monitor
// wrote. A monitor that died before the container is replaced by an
// adopting one; a container that ended with no monitor has the code the
// holder recorded, or -1 with the reason.
func (c *ctr) watch(pid int, start uint64) monitor.Exit {
	for {
		c.mu.Lock()
		mon := c.rec.Monitor
		c.mu.Unlock()
		waitExit(mon.Pid, mon.Start)
		if e, ok := monitor.ReadExit(c.exitPath(), pid); ok {
			return e
		}
		if holder.StartTime(pid) != start {
			// Gone with no monitor left to say how: the holder was its
			// parent last, if anyone.
			if code, at, ok := holder.ReadExitRecord(c.m.paths.Exits(), pid, start, 2*time.Second); ok {
				return monitor.Exit{Pid: pid, Code: code, FinishedAt: at}
			}
			return monitor.Exit{Pid: pid, Code: -1, FinishedAt: time.Now(),
				Error: "exit status unknown: the container ended while no pelagos process was its parent"}
		}
		c.m.log.Warn("the monitor of a running container is gone: adopting the container", "id", c.rec.ID, "pid", pid)
		if err := c.adopt(pid, start); err != nil {
			c.m.log.Error("adopt container", "id", c.rec.ID, "err", err)
			time.Sleep(time.Second)
		}
	}
}

// adopt starts a monitor that watches the running container pid again.
func (c *ctr) adopt(pid int, start uint64) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fds[0])
	theirs := os.NewFile(uintptr(fds[1]), "monitor-ctl")
	null, err := os.Open(os.DevNull)
	if err != nil {
		theirs.Close()
		return err
	}
	defer null.Close()
	c.mu.Lock()
	mon := c.rec.Monitor
	l := monitor.Launch{LogPath: c.logPath(), LogDriver: c.rec.LogDriver, ExitFile: c.exitPath(),
		Adopt: &monitor.Adopt{Pid: pid, Start: start, StdoutPipe: mon.StdoutPipe, StderrPipe: mon.StderrPipe, ExitsDir: c.m.paths.Exits()}}
	c.mu.Unlock()
	monPid, monStart, err := c.m.spawnMonitor(c.rec.ID, []*os.File{theirs, null})
	theirs.Close()
	if err != nil {
		return err
	}
	if err := monitor.Send(fds[0], l); err != nil {
		return err
	}
	c.mu.Lock()
	c.rec.Monitor.Pid, c.rec.Monitor.Start, c.rec.Monitor.TerminalFD = monPid, monStart, -1
	if err := c.rec.save(c.dir); err != nil {
		c.m.log.Error("save container state", "id", c.rec.ID, "err", err)
	}
	c.mu.Unlock()
	return nil
}

// waitExit returns once the process pid (started at start) is gone.
func waitExit(pid int, start uint64) {
	if pid <= 0 {
		return
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if holder.StartTime(pid) != start {
		return // the pid is another process's now
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// terminalCopy returns a new descriptor of the running container's
// terminal master: this service's own copy, or one taken from the
// monitor of a run an earlier service started.
func (c *ctr) terminalCopyLocked() (int, error) {
	if c.run != nil && c.run.Terminal != nil {
		return unix.FcntlInt(c.run.Terminal.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	}
	mon := c.rec.Monitor
	if mon.Pid <= 0 || mon.TerminalFD < 0 {
		return -1, errors.New("no terminal")
	}
	pidfd, err := unix.PidfdOpen(mon.Pid, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pidfd)
	if holder.StartTime(mon.Pid) != mon.Start {
		return -1, errors.New("its monitor is gone")
	}
	return unix.PidfdGetfd(pidfd, mon.TerminalFD, 0)
}
