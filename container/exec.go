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
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	execProcessArgv0 = "pelagos-exec"
	execConsoleFD    = 5
)

// IsExec reports whether this process was started by Exec and must call
// ExecInit.
func IsExec() bool {
	return len(os.Args) > 0 && os.Args[0] == execProcessArgv0 && os.Getenv("_PELAGOS_NSENTER") != ""
}

// ExecInit is the child half of Exec: the C constructor has already put
// this process into the container's namespaces.
func ExecInit() {
	runtime.LockOSThread()
	status := os.NewFile(initStatusFD, "status")
	code, err := func() (int, error) {
		spec, err := readSpec()
		if err != nil {
			return ExitSetupFailed, err
		}
		os.Unsetenv("_PELAGOS_NSENTER")
		unix.CloseOnExec(initStatusFD)
		var tty *os.File
		if spec.Terminal {
			// A session of our own, so the terminal can be ours; it is
			// made in the container's devpts and its master goes to the
			// caller's console socket (fd 5).
			if _, err := unix.Setsid(); err != nil {
				return ExitSetupFailed, fmt.Errorf("new session: %w", err)
			}
			if tty, err = openTerminal(spec.Rows, spec.Cols, execConsoleFD); err != nil {
				return ExitSetupFailed, err
			}
		}
		return enterCommand(spec, tty)
	}()
	b, _ := json.Marshal(message{Stage: "error", Error: err.Error(), Code: code})
	status.Write(append(b, '\n'))
	os.Exit(code)
}

// Exec runs spec.Args in the namespaces of the running container whose
// first process is pid, with the container's user, capabilities,
// no_new_privs and seccomp as spec gives them. With spec.Terminal the
// command gets a new terminal, whose master is sent over console (a unix
// socket) with SCM_RIGHTS. It returns once the command runs, or a
// *StartError.
func Exec(ctx context.Context, pid int, spec *Spec, stdio Stdio, console *os.File) (*Process, error) {
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode exec spec: %w", err)
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer specR.Close()
	defer specW.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer statusR.Close()
	defer statusW.Close()
	cmd := exec.Command(initBinary(spec))
	cmd.Args = []string{execProcessArgv0}
	cmd.Env = []string{"_PELAGOS_NSENTER=" + strconv.Itoa(pid)}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	cmd.ExtraFiles = []*os.File{specR, statusW}
	if spec.Terminal {
		if console == nil {
			return nil, &StartError{Code: ExitSetupFailed, Msg: "a terminal needs a console socket"}
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, console)
	}
	if err := cmd.Start(); err != nil {
		return nil, &StartError{Code: ExitSetupFailed, Msg: fmt.Sprintf("start exec: %v", err)}
	}
	specR.Close()
	statusW.Close()
	if _, err := specW.Write(specJSON); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, &StartError{Code: ExitSetupFailed, Msg: fmt.Sprintf("send exec spec: %v", err)}
	}
	specW.Close()
	msg, err := readMessage(bufio.NewReader(statusR))
	switch {
	case errors.Is(err, io.EOF):
		return &Process{cmd: cmd, Pid: cmd.Process.Pid}, nil
	case err != nil:
		cmd.Process.Kill()
		cmd.Wait()
		return nil, &StartError{Code: ExitSetupFailed, Msg: fmt.Sprintf("exec: %v", err)}
	default:
		cmd.Wait()
		return nil, msg.asError()
	}
}

// KillTree kills an exec'd command: the process inside the container,
// the child of the one Exec started, which reaps it and exits. That one
// must outlive its child: an orphan would be reparented outside the
// container's PID namespace, and an unreaped zombie there keeps the
// container's first process from ever being reported dead.
func (p *Process) KillTree() {
	pid := p.cmd.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if child, err := strconv.Atoi(f); err == nil {
			syscall.Kill(child, syscall.SIGKILL)
		}
	}
}
