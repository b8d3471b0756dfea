package session

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/pelagos-containers/pelagos/container"
	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// execOptions are the caller's overrides for one exec.
type execOptions struct {
	Env        []string
	WorkingDir string
	User       string
	// Detach returns once the command runs; it is reaped in the
	// background.
	Detach bool
}

// exec runs a command in the running container on stdio (or, with
// console, on a new terminal whose master goes to that socket) and
// returns its exit code when it exits.
func (c *ctr) exec(ctx context.Context, args []string, o execOptions, stdio container.Stdio, console *os.File, size *terminalSize) (int, error) {
	c.mu.Lock()
	if c.rec.State != pdbus.StateRunning || c.rec.Pid == 0 {
		name := c.rec.Name
		c.mu.Unlock()
		return 0, pdbus.Errorf(pdbus.ErrContainerNotRunning, "container %s is not running: start it first (`pelagos start %s`)", name, name)
	}
	spec := &container.Spec{
		Hostname: c.rec.Hostname,
		Args:     args,
		Env:      mergeEnv(c.rec.Env, o.Env),
		Cwd:      c.rec.WorkingDir,
		User:     c.rec.User,
		Rlimits:  c.rec.Process.Rlimits,
		GroupAdd: c.rec.Process.GroupAdd,

		InitBinary: c.m.initBinary,
	}
	if o.WorkingDir != "" {
		spec.Cwd = o.WorkingDir
	}
	if o.User != "" {
		spec.User = o.User
	}
	if console != nil {
		spec.Terminal = true
		if size != nil {
			spec.Rows, spec.Cols = size.Rows, size.Cols
		}
	}
	pid := c.rec.Pid
	err := c.rec.Security.apply(spec, c.dir, &c.m.seccomp)
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	proc, err := container.Exec(ctx, pid, spec, stdio, console)
	if err == nil && o.Detach {
		go proc.Wait()
		return 0, nil
	}
	if err == nil {
		// A cancelled caller (a health check's timeout) kills the
		// command inside the container too.
		waited := make(chan struct{})
		defer close(waited)
		go func() {
			select {
			case <-ctx.Done():
			case <-waited:
				return
			}
			// Again until it is gone: the command may not have been
			// forked yet the first time.
			for {
				proc.KillTree()
				select {
				case <-waited:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
	}
	if err != nil {
		var se *container.StartError
		if errors.As(err, &se) {
			switch se.Code {
			case container.ExitNotFound:
				return 0, pdbus.Errorf(pdbus.ErrCommandNotFound, "%s", se.Msg)
			case container.ExitCannotInvoke:
				return 0, pdbus.Errorf(pdbus.ErrCommandNotExecutable, "%s", se.Msg)
			}
			return 0, pdbus.Errorf(pdbus.ErrStartFailed, "exec in %s: %s", c.name(), se.Msg)
		}
		return 0, err
	}
	return proc.Wait()
}
