package container

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pelagos-containers/pelagos/fdpass"
)

// Stdio are the three files the command gets as fds 0, 1 and 2.
type Stdio struct {
	Stdin, Stdout, Stderr *os.File
}

// StartError reports a container that could not be started; Code is the
// Docker-compatible exit code for it (125, 126 or 127).
type StartError struct {
	Code int
	Msg  string
}

func (e *StartError) Error() string { return e.Msg }

// Process is a running container's first process as seen by its parent.
type Process struct {
	cmd *exec.Cmd
	// Pid is the process id in the service's PID namespace.
	Pid int
	// Terminal is the pseudo-terminal master when Spec.Terminal was set.
	Terminal *os.File
}

// Hooks let the caller act at two moments of a start.
type Hooks struct {
	// AfterClone runs as soon as the child's namespaces exist, while it
	// still prepares its root filesystem; it must not block (start slow
	// work, such as networking, in the background and finish it in
	// BeforeExec).
	AfterClone func(pid int)
	// BeforeExec runs once the child is ready, right before it executes
	// the command — so the caller can record the container as running
	// before the command can print a single byte. An error stops the
	// start.
	BeforeExec func(pid int) error
}

// Start creates the namespaces and the child, lets it prepare the root
// filesystem, calls the hooks and finally lets the child execute the
// command. It returns once the command runs, or a *StartError when it
// could not.
func Start(ctx context.Context, spec *Spec, stdio Stdio, hooks Hooks) (*Process, error) {
	spec.PrivateUserNS = len(spec.UIDMappings) > 0
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode container spec: %w", err)
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create spec pipe: %w", err)
	}
	defer specR.Close()
	defer specW.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create status pipe: %w", err)
	}
	defer statusR.Close()
	defer statusW.Close()
	goR, goW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create start pipe: %w", err)
	}
	defer goR.Close()
	defer goW.Close()

	cmd := exec.Command(initBinary(spec))
	cmd.Args = []string{initProcessArgv0}
	cmd.Env = []string{}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	cmd.ExtraFiles = []*os.File{specR, statusW, goR}
	var console *os.File
	if spec.Terminal {
		// The child opens the terminal inside the container, where its
		// devpts lives, and sends the master back over this socket.
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("create console socket: %w", err)
		}
		console = os.NewFile(uintptr(fds[0]), "console")
		child := os.NewFile(uintptr(fds[1]), "console-child")
		defer console.Close()
		defer child.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, child)
	}
	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWCGROUP)
	var userns bool
	if len(spec.UIDMappings) > 0 {
		// A user namespace of its own: the parent writes its maps
		// before the child goes on, and the child becomes root in it
		// so it keeps its capabilities over the namespaces it owns.
		flags |= unix.CLONE_NEWUSER
		userns = true
	}
	switch spec.NetNS {
	case "":
		flags |= unix.CLONE_NEWNET
	case NetNSHost:
	default:
		// Joined by the C constructor before the Go runtime starts:
		// setns of a network namespace applies to one thread only.
		ns, err := os.Open(spec.NetNS)
		if err != nil {
			return nil, &StartError{Code: ExitSetupFailed, Msg: fmt.Sprintf("open network namespace %s: %v", spec.NetNS, err)}
		}
		defer ns.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, ns)
		cmd.Env = append(cmd.Env, fmt.Sprintf("_PELAGOS_JOIN_NETNS=%d", 2+len(cmd.ExtraFiles)))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: flags,
		Setsid:     true,
		// The child must not outlive a service crash during setup; it
		// clears this right before it executes the command, so that a
		// running container survives a restart of the service.
		Pdeathsig: unix.SIGKILL,
	}
	if userns {
		if spec.NetNS != "" && spec.NetNS != NetNSHost {
			return nil, &StartError{Code: ExitSetupFailed, Msg: "a container with a user namespace of its own cannot join another container's network namespace"}
		}
		cmd.SysProcAttr.UidMappings = sysIDMaps(spec.UIDMappings)
		cmd.SysProcAttr.GidMappings = sysIDMaps(spec.GIDMappings)
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
		// The child keeps the user's own ids while it sets up the
		// root filesystem: the service's directories (0700, the
		// user's) stay open to it even when the maps leave the user
		// out (auto, --uidmap). Ambient capabilities carry its
		// capabilities in the new namespace across the exec of the
		// init; it becomes root of the namespace and drops them once
		// the mounts are done (becomeNamespaceRoot).
		for c := 0; c <= lastCap(); c++ {
			cmd.SysProcAttr.AmbientCaps = append(cmd.SysProcAttr.AmbientCaps, uintptr(c))
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, &StartError{Code: ExitSetupFailed, Msg: fmt.Sprintf("create container namespaces: %v", err)}
	}
	// Only the child may hold these ends, so that EOF means it is gone.
	specR.Close()
	statusW.Close()
	goR.Close()
	p := &Process{cmd: cmd, Pid: cmd.Process.Pid}
	if hooks.AfterClone != nil {
		hooks.AfterClone(p.Pid)
	}

	fail := func(err error) (*Process, error) {
		cmd.Process.Kill()
		cmd.Wait()
		if p.Terminal != nil {
			p.Terminal.Close()
		}
		return nil, err
	}
	if _, err := specW.Write(specJSON); err != nil {
		return fail(&StartError{Code: ExitSetupFailed, Msg: fmt.Sprintf("send container spec: %v", err)})
	}
	specW.Close()

	status := bufio.NewReader(statusR)
	msg, err := readMessage(status)
	if err != nil {
		return fail(&StartError{Code: ExitSetupFailed, Msg: fmt.Sprintf("container setup: %v", err)})
	}
	if msg.Stage != "ready" {
		return fail(msg.asError())
	}
	if console != nil {
		if p.Terminal, err = fdpass.Receive(console, "pty-master"); err != nil {
			return fail(&StartError{Code: ExitSetupFailed, Msg: fmt.Sprintf("receive terminal: %v", err)})
		}
	}
	if hooks.BeforeExec != nil {
		if err := hooks.BeforeExec(p.Pid); err != nil {
			return fail(err)
		}
	}
	if _, err := goW.Write([]byte{'g'}); err != nil {
		return fail(&StartError{Code: ExitSetupFailed, Msg: fmt.Sprintf("release container: %v", err)})
	}
	goW.Close()
	// The status pipe is close-on-exec in the child: EOF without a message
	// means the command is running.
	msg, err = readMessage(status)
	switch {
	case errors.Is(err, io.EOF):
		return p, nil
	case err != nil:
		return fail(&StartError{Code: ExitSetupFailed, Msg: fmt.Sprintf("container start: %v", err)})
	default:
		return fail(msg.asError())
	}
}

func sysIDMaps(maps []IDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(maps))
	for i, m := range maps {
		out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
	}
	return out
}

func readMessage(r *bufio.Reader) (*message, error) {
	line, err := r.ReadBytes('\n')
	if len(line) == 0 && err != nil {
		return nil, err
	}
	var m message
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, fmt.Errorf("malformed status from container init: %q", line)
	}
	return &m, nil
}

func (m *message) asError() error {
	code := m.Code
	if code == 0 {
		code = ExitSetupFailed
	}
	return &StartError{Code: code, Msg: m.Error}
}

// Signal sends sig to the container's first process.
func (p *Process) Signal(sig syscall.Signal) error {
	return p.cmd.Process.Signal(sig)
}

// Wait waits for the command to exit and returns its Docker-style exit
// code: the exit status, or 128+N when killed by signal N.
func (p *Process) Wait() (int, error) {
	err := p.cmd.Wait()
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return ExitSetupFailed, fmt.Errorf("wait for container: %w", err)
	}
	if ws.Signaled() {
		return ExitSignalBase + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}
