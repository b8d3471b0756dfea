package session

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pelagos-containers/pelagos/container"
	"github.com/pelagos-containers/pelagos/ctrlog"
	pdbus "github.com/pelagos-containers/pelagos/dbus"
	"github.com/pelagos-containers/pelagos/rootless"
)

// parseLogDriver checks --log-driver; the default is stored as "".
func parseLogDriver(s string) (string, error) {
	switch s {
	case "", "k8s-file":
		return "", nil
	case "passthrough", "none":
		return s, nil
	}
	return "", pdbus.Errorf(pdbus.ErrInvalidArgument, "--log-driver %q: use k8s-file (the default), passthrough or none", s)
}

// logStdio makes the stdio of a run whose output goes to the container's
// log: stdin from /dev/null, stdout and stderr through pipes whose read
// ends the outer process copies into the log as CRI records, stream by
// stream (see ctrlog). Without an outer process this service copies
// them. release closes the service's copies once the container has its
// own.
func (c *ctr) logStdio() (stdio container.Stdio, release func(), err error) {
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return stdio, nil, err
	}
	var mine []*os.File
	release = func() {
		for _, f := range mine {
			f.Close()
		}
	}
	mine = append(mine, stdin)
	stdio.Stdin = stdin
	if c.rec.LogDriver != "" {
		// Nothing is kept: the output goes nowhere.
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			release()
			return stdio, nil, err
		}
		mine = append(mine, devnull)
		stdio.Stdout, stdio.Stderr = devnull, devnull
		return stdio, release, nil
	}
	for _, stream := range []string{ctrlog.Stdout, ctrlog.Stderr} {
		r, w, err := os.Pipe()
		if err != nil {
			release()
			return stdio, nil, fmt.Errorf("create %s pipe: %w", stream, err)
		}
		mine = append(mine, w)
		if stream == ctrlog.Stdout {
			stdio.Stdout = w
		} else {
			stdio.Stderr = w
		}
		if c.m.logSink != nil {
			err = rootless.SendLog(c.m.logSink, c.logPath(), stream, r)
			r.Close()
			if err != nil {
				release()
				return stdio, nil, err
			}
			continue
		}
		go func(stream string) {
			defer r.Close()
			f, err := os.OpenFile(c.logPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600)
			if err != nil {
				c.m.log.Warn("open log", "id", c.rec.ID, "err", err)
				ctrlog.Copy(discard{}, r, stream, time.Now)
				return
			}
			defer f.Close()
			ctrlog.Copy(f, r, stream, time.Now)
		}(stream)
	}
	return stdio, release, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// teeStdio makes the stdio of a run attached to a client (StartWithStdio):
// stdin is the client's, and stdout and stderr go through pipes whose
// output reaches the client's files as it comes and the container's log
// as well, so `pelagos logs` shows a foreground run too. release closes
// the service's copies once the container has its own; drained waits, at
// most limit, until both copies have ended, so that a client that exits
// when the container does has seen all of its output.
func (c *ctr) teeStdio(client container.Stdio) (stdio container.Stdio, release func(), drained func(limit time.Duration), err error) {
	var mine []*os.File
	release = func() {
		for _, f := range mine {
			f.Close()
		}
		mine = nil
	}
	var dones []chan struct{}
	drained = func(limit time.Duration) {
		deadline := time.After(limit)
		for _, d := range dones {
			select {
			case <-d:
			case <-deadline:
				return
			}
		}
	}
	stdio.Stdin = client.Stdin
	if c.rec.LogDriver != "" {
		// passthrough and none: straight to the caller, unlogged.
		stdio.Stdout, stdio.Stderr = client.Stdout, client.Stderr
		return stdio, release, drained, nil
	}
	for _, s := range []struct {
		stream string
		to     *os.File
		pipe   **os.File
	}{{ctrlog.Stdout, client.Stdout, &stdio.Stdout}, {ctrlog.Stderr, client.Stderr, &stdio.Stderr}} {
		r, w, err := os.Pipe()
		if err != nil {
			release()
			return stdio, nil, nil, fmt.Errorf("create %s pipe: %w", s.stream, err)
		}
		mine = append(mine, w)
		*s.pipe = w
		done := make(chan struct{})
		dones = append(dones, done)
		if c.m.logSink != nil {
			id := c.m.logDone.add(done)
			err = rootless.SendTeeLog(c.m.logSink, c.logPath(), s.stream, r, s.to, id)
			r.Close()
			if err != nil {
				c.m.logDone.forget(id)
				release()
				return stdio, nil, nil, err
			}
			continue
		}
		// No outer process: copy here, to a copy of the client's file
		// that outlives the call.
		to, err := dupFile(s.to)
		if err != nil {
			r.Close()
			release()
			return stdio, nil, nil, err
		}
		go func(stream string) {
			defer close(done)
			defer r.Close()
			defer to.Close()
			f, err := os.OpenFile(c.logPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600)
			if err != nil {
				io.Copy(to, r)
				return
			}
			defer f.Close()
			ctrlog.Copy(f, io.TeeReader(r, to), stream, time.Now)
		}(s.stream)
	}
	return stdio, release, drained, nil
}

func dupFile(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("duplicate %s: %w", f.Name(), err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// logDoneWaits are the foreground copies under way in the outer
// process, by id, each closed when the outer says it has ended.
type logDoneWaits struct {
	mu    sync.Mutex
	next  uint64
	waits map[uint64]chan struct{}
}

func (w *logDoneWaits) add(ch chan struct{}) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waits == nil {
		w.waits = map[uint64]chan struct{}{}
	}
	w.next++
	w.waits[w.next] = ch
	return w.next
}

func (w *logDoneWaits) forget(id uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.waits, id)
}

// serve closes the channel of each copy the outer process reports
// ended, until the sink fails; then it releases every waiter.
func (w *logDoneWaits) serve(sink *os.File) {
	for {
		id, err := rootless.ReadLogDone(sink)
		w.mu.Lock()
		if err != nil {
			for k, ch := range w.waits {
				close(ch)
				delete(w.waits, k)
			}
			w.mu.Unlock()
			return
		}
		if ch, ok := w.waits[id]; ok {
			close(ch)
			delete(w.waits, id)
		}
		w.mu.Unlock()
	}
}
