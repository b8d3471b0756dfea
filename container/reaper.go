package container

import (
	"errors"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// runAsInit is --init: PID 1 stays a small init. The bounding set,
// no_new_privs and seccomp are already in place on this thread and pass
// to the child at fork; the child gets the user's credentials and execs
// the command. PID 1 forwards every signal it gets to the command, reaps
// whatever orphans the container leaves, and exits with the command's
// status. It returns only if the command could not be started. (A fork
// and exec of the command itself, not of this binary: the image may
// lack the libraries this binary needs.)
func runAsInit(path string, args, env []string, cred credential, tty *os.File) error {
	groups := make([]uint32, len(cred.Groups))
	copy(groups, cred.Groups)
	attr := &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: cred.UID, Gid: cred.GID, Groups: groups},
		},
	}
	if tty != nil {
		fd := tty.Fd()
		attr.Files = []uintptr{fd, fd, fd}
		attr.Sys.Setsid, attr.Sys.Setctty, attr.Sys.Ctty = true, true, 0
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	child, err := syscall.ForkExec(path, args, attr)
	if err != nil {
		signal.Stop(sigs)
		return err
	}
	// The command runs: EOF on the status pipe tells the service so.
	unix.Close(initStatusFD)
	if tty != nil {
		tty.Close()
	}
	for {
		if s := <-sigs; s != unix.SIGCHLD {
			unix.Kill(child, s.(syscall.Signal))
			continue
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if errors.Is(err, unix.ECHILD) {
				os.Exit(0)
			}
			if err != nil || pid <= 0 {
				break
			}
			if pid == child {
				if ws.Signaled() {
					os.Exit(ExitSignalBase + int(ws.Signal()))
				}
				os.Exit(ws.ExitStatus())
			}
		}
	}
}
