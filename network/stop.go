package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Grace periods of StopPasta.
const (
	pastaTermGrace = 2 * time.Second // from SIGTERM to SIGKILL
	pastaKillGrace = time.Second     // from SIGKILL to giving up
)

// StopPasta ends the pasta pid and returns once it has exited, so that
// the host ports it held are free again. same tells whether pid is still
// the pasta meant (by its start time); it is asked once a pidfd pins the
// process, and every signal goes through that pidfd, so a pid that was
// reused by another process is never signalled. A pasta that is gone
// already is fine. It waits pastaTermGrace after SIGTERM, then sends
// SIGKILL, and gives up pastaKillGrace later (or when ctx ends).
func StopPasta(ctx context.Context, pid int, same func() bool) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open a pidfd for pasta %d: %w", pid, err)
	}
	defer unix.Close(fd)
	// The pidfd was opened first: if pid is still the pasta now, the
	// pidfd refers to it, whatever happens to the number afterwards.
	if !same() || notPasta(pid) {
		return nil
	}
	if exited(fd) {
		return nil
	}
	for _, step := range []struct {
		sig   unix.Signal
		grace time.Duration
	}{{unix.SIGTERM, pastaTermGrace}, {unix.SIGKILL, pastaKillGrace}} {
		if err := unix.PidfdSendSignal(fd, step.sig, nil, 0); err != nil {
			if errors.Is(err, unix.ESRCH) {
				return nil
			}
			return fmt.Errorf("signal pasta %d: %w", pid, err)
		}
		gone, err := waitExit(ctx, fd, step.grace)
		if gone || err != nil {
			return err
		}
	}
	return fmt.Errorf("pasta %d did not exit %s after SIGKILL", pid, pastaKillGrace)
}

// notPasta tells whether pid runs a program other than pasta. A process
// whose program cannot be read (one exiting, whose memory is gone while
// its sockets may not be yet) counts as pasta: the caller has checked
// its identity by start time.
func notPasta(pid int) bool {
	if _, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); err != nil {
		return false
	}
	return !IsPasta(pid)
}

// exited tells whether the process of a pidfd has exited.
func exited(fd int) bool {
	gone, _ := waitExit(context.Background(), fd, 0)
	return gone
}

// waitExit waits up to d for the process of pidfd fd to exit: the pidfd
// becomes readable once the whole process has exited, after it closed
// its files (it may not be reaped yet).
func waitExit(ctx context.Context, fd int, d time.Duration) (bool, error) {
	deadline := time.Now().Add(d)
	for {
		// Short polls, so that ctx is looked at now and then.
		wait := min(time.Until(deadline), 100*time.Millisecond)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(max(wait, 0)/time.Millisecond))
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return false, fmt.Errorf("poll pidfd: %w", err)
		case n > 0:
			return true, nil
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if !time.Now().Before(deadline) {
			return false, nil
		}
	}
}
