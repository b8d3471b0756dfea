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

// logStdio makes the stdio of a detached run: stdin from /dev/null,
// and stdout and stderr into the container's log (logPipes), or nowhere
// under --log-driver none/passthrough. release closes the service's
// copies once the container has its own.
func (c *ctr) logStdio() (stdio container.Stdio, release func(), err error) {
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return stdio, nil, err
	}
	if c.rec.LogDriver != "" {
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			stdin.Close()
			return stdio, nil, err
		}
		return container.Stdio{Stdin: stdin, Stdout: devnull, Stderr: devnull}, func() { stdin.Close(); devnull.Close() }, nil
	}
	stdout, stderr, releasePipes, _, err := c.logPipes(nil)
	if err != nil {
		stdin.Close()
		return stdio, nil, err
	}
	return container.Stdio{Stdin: stdin, Stdout: stdout, Stderr: stderr}, func() { stdin.Close(); releasePipes() }, nil
}

// teeStdio makes the stdio of a run attached to a client (StartWithStdio):
// stdin is the client's, and stdout and stderr reach the client's files
// as they come and the container's log as well (logPipes), so `pelagos
// logs` shows a foreground run too; --log-driver passthrough or none
// hand the client's files over as they are. drained waits, at most
// limit, until the output has arrived, so that a client that exits when
// the container does has seen all of it.
func (c *ctr) teeStdio(client container.Stdio) (stdio container.Stdio, release func(), drained func(limit time.Duration), err error) {
	if c.rec.LogDriver != "" {
		return client, func() {}, func(time.Duration) {}, nil
	}
	stdout, stderr, release, drained, err := c.logPipes(&client)
	if err != nil {
		return stdio, nil, nil, err
	}
	return container.Stdio{Stdin: client.Stdin, Stdout: stdout, Stderr: stderr}, release, drained, nil
}

// logPipes makes the container's stdout and stderr: pipes whose read
// ends the outer process copies into the log as CRI records, stream by
// stream (see ctrlog), and, with tee, to tee's Stdout and Stderr as the
// bytes come. Without an outer process this service copies them.
// release closes the service's write ends; drained waits, at most
// limit, until both copies have ended (it knows of tee copies only).
func (c *ctr) logPipes(tee *container.Stdio) (stdout, stderr *os.File, release func(), drained func(limit time.Duration), err error) {
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
	for _, stream := range []string{ctrlog.Stdout, ctrlog.Stderr} {
		r, w, err := os.Pipe()
		if err != nil {
			release()
			return nil, nil, nil, nil, fmt.Errorf("create %s pipe: %w", stream, err)
		}
		mine = append(mine, w)
		if stream == ctrlog.Stdout {
			stdout = w
		} else {
			stderr = w
		}
		var to *os.File
		if tee != nil {
			to = tee.Stdout
			if stream == ctrlog.Stderr {
				to = tee.Stderr
			}
		}
		done := make(chan struct{})
		if c.m.logSink != nil {
			var id uint64
			if to != nil {
				id = c.m.logDone.add(done)
				dones = append(dones, done)
			}
			err = rootless.SendLog(c.m.logSink, c.logPath(), stream, r, to, id)
			r.Close()
			if err != nil {
				c.m.logDone.forget(id)
				release()
				return nil, nil, nil, nil, err
			}
			continue
		}
		// No outer process: copy here, to a copy of the client's file
		// that outlives the call.
		if to != nil {
			if to, err = dupFile(to); err != nil {
				r.Close()
				release()
				return nil, nil, nil, nil, err
			}
			dones = append(dones, done)
		}
		go c.copyToLog(stream, r, to, done)
	}
	return stdout, stderr, release, drained, nil
}

// copyToLog is the service's own copier, for when there is no outer
// process: it appends r to the log (and, with to, hands every byte to
// to), then closes r, to and done.
func (c *ctr) copyToLog(stream string, r, to *os.File, done chan struct{}) {
	defer close(done)
	defer r.Close()
	var src io.Reader = r
	if to != nil {
		defer to.Close()
		src = io.TeeReader(r, to)
	}
	f, err := os.OpenFile(c.logPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		c.m.log.Warn("open log", "id", c.rec.ID, "err", err)
		ctrlog.Copy(discard{}, src, stream, time.Now)
		return
	}
	defer f.Close()
	ctrlog.Copy(f, src, stream, time.Now)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

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
