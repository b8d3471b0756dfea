package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pelagos-containers/pelagos/container"
	"github.com/pelagos-containers/pelagos/ctrlog"
	"github.com/pelagos-containers/pelagos/rootless/holder"
)

// drainLimit bounds how long the monitor waits, once the container has
// exited, for the last output to reach the log.
const drainLimit = 10 * time.Second

// Main runs the monitor of the container named in args and returns its
// exit code (which nobody reads: the exit file tells how the run ended).
func Main(args []string, stderr io.Writer) int {
	// One of these runs per container: keep it small. It has little to
	// do in parallel (two copies and a wait).
	runtime.GOMAXPROCS(1)
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("program", Name)
	if len(args) != 1 {
		fmt.Fprintf(stderr, "%s: pelagos-holder starts this program for pelagosd; it is not meant to be run by hand\n", Name)
		return 2
	}
	log = log.With("id", args[0])
	// A terminal's hangup or a Ctrl-C meant for a client must not end
	// the watch; SIGTERM (a logout's) may.
	signal.Ignore(unix.SIGHUP, unix.SIGINT, unix.SIGPIPE, unix.SIGQUIT)
	var l Launch
	files, err := Receive(ctlFD, &l)
	closeAll(files)
	if err != nil {
		log.Error("read the launch request", "err", err)
		return 1
	}
	if l.Adopt != nil {
		unix.Close(ctlFD)
		adopt(log, &l)
		return 0
	}
	run(log, &l)
	return 0
}

// run starts the container and watches it to its end.
func run(log *slog.Logger, l *Launch) {
	out, err := newOutput(l)
	if err != nil {
		Send(ctlFD, Event{Failed: &Failure{Code: container.ExitSetupFailed, Msg: err.Error()}})
		return
	}
	spec := l.Spec
	spec.InitBinary, spec.UIDMappings, spec.GIDMappings = l.InitBinary, l.UIDMappings, l.GIDMappings
	hooks := container.Hooks{
		AfterClone: func(pid int) { Send(ctlFD, Event{Cloned: pid}) },
		BeforeExec: func(pid int) error {
			if err := Send(ctlFD, Event{Ready: pid}); err != nil {
				return &container.StartError{Code: container.ExitSetupFailed, Msg: fmt.Sprintf("the service went away during the start: %v", err)}
			}
			var v Verdict
			fds, err := Receive(ctlFD, &v)
			closeAll(fds)
			switch {
			case err != nil:
				return &container.StartError{Code: container.ExitSetupFailed, Msg: fmt.Sprintf("the service went away during the start: %v", err)}
			case v.Abort != nil:
				return &container.StartError{Code: v.Abort.Code, Msg: v.Abort.Msg}
			}
			return nil
		},
	}
	proc, err := container.Start(context.Background(), &spec, out.stdio, hooks)
	out.containerHasIt()
	if err != nil {
		f := &Failure{Code: container.ExitSetupFailed, Msg: err.Error()}
		var se *container.StartError
		if errors.As(err, &se) {
			f.Code = se.Code
		}
		Send(ctlFD, Event{Failed: f})
		out.wait(time.Second)
		return
	}
	r := &Running{Pid: proc.Pid, Start: holder.StartTime(proc.Pid), StdoutPipe: out.pipeIno[0], StderrPipe: out.pipeIno[1], TerminalFD: -1}
	var master []int
	if proc.Terminal != nil {
		r.TerminalFD = int(proc.Terminal.Fd())
		master = []int{r.TerminalFD}
	}
	if err := Send(ctlFD, Event{Running: r}, master...); err != nil {
		log.Warn("tell the service the container runs", "err", err)
	}
	unix.Close(ctlFD)
	// What the start needed (the launch request, the spec) is garbage
	// now: give it back for the container's lifetime.
	debug.FreeOSMemory()
	code, err := proc.Wait()
	e := Exit{Pid: proc.Pid, Code: code, FinishedAt: time.Now()}
	if err != nil {
		e.Error = err.Error()
	}
	out.wait(drainLimit)
	if proc.Terminal != nil {
		proc.Terminal.Close()
	}
	if err := writeExit(l.ExitFile, e); err != nil {
		log.Error("write the exit file", "code", code, "err", err)
	}
}

// adopt watches a running container whose monitor died: it copies the
// output that waits in the container's pipes, and records the exit code
// the holder collected when the container ends.
func adopt(log *slog.Logger, l *Launch) {
	a := l.Adopt
	pidfd, err := unix.PidfdOpen(a.Pid, 0)
	if err != nil || holder.StartTime(a.Pid) != a.Start {
		writeExit(l.ExitFile, exitOfOrphan(a))
		return
	}
	defer unix.Close(pidfd)
	var copies sync.WaitGroup
	for i, ino := range []uint64{a.StdoutPipe, a.StderrPipe} {
		if ino == 0 || l.LogDriver != LogFile {
			continue
		}
		stream := []string{ctrlog.Stdout, ctrlog.Stderr}[i]
		r, err := openPipeOf(a.Pid, ino)
		if err != nil {
			log.Warn("find the output pipe of the container", "stream", stream, "err", err)
			continue
		}
		copies.Add(1)
		go func() {
			defer copies.Done()
			copyToLog(l.LogPath, stream, r, nil)
			r.Close()
		}()
	}
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); !errors.Is(err, unix.EINTR) {
			break
		}
	}
	done := make(chan struct{})
	go func() { copies.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainLimit):
	}
	writeExit(l.ExitFile, exitOfOrphan(a))
}

// exitOfOrphan is how a container that was not our child ended: the
// holder's record when it was the holder's, else unknown.
func exitOfOrphan(a *Adopt) Exit {
	if code, at, ok := holder.ReadExitRecord(a.ExitsDir, a.Pid, a.Start, 3*time.Second); ok {
		return Exit{Pid: a.Pid, Code: code, FinishedAt: at}
	}
	return Exit{Pid: a.Pid, Code: -1, FinishedAt: time.Now(),
		Error: "exit status unknown: the container ended while no pelagos process was its parent"}
}

// openPipeOf opens, for reading, the pipe with inode ino that process
// pid holds: a new reader of the same pipe.
func openPipeOf(pid int, ino uint64) (*os.File, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	want := fmt.Sprintf("pipe:[%d]", ino)
	for _, e := range entries {
		if target, err := os.Readlink(dir + "/" + e.Name()); err != nil || target != want {
			continue
		}
		// Non-blocking for the open (a FIFO open waits for a writer),
		// blocking for the reads.
		fd, err := unix.Open(dir+"/"+e.Name(), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		if err := unix.SetNonblock(fd, false); err != nil {
			unix.Close(fd)
			return nil, err
		}
		return os.NewFile(uintptr(fd), want), nil
	}
	return nil, fmt.Errorf("process %d holds no %s", pid, want)
}

// output is the container's stdio and the copies of its output.
type output struct {
	stdio   container.Stdio
	mine    []*os.File // closed once the container has its own copies
	pipeIno [2]uint64
	copies  sync.WaitGroup
}

func newOutput(l *Launch) (*output, error) {
	o := &output{}
	o.stdio.Stdin = os.NewFile(stdinFD, "stdin")
	o.mine = append(o.mine, o.stdio.Stdin)
	var tee [2]*os.File
	if l.Tee {
		tee = [2]*os.File{os.NewFile(teeStdoutFD, "client-stdout"), os.NewFile(teeStderrFD, "client-stderr")}
	}
	switch l.LogDriver {
	case LogPassthrough, LogNone:
		// Both keep nothing; a foreground client still gets the output.
		for i := range tee {
			f := tee[i]
			if f == nil {
				null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
				if err != nil {
					return nil, err
				}
				f = null
			}
			o.mine = append(o.mine, f)
			if i == 0 {
				o.stdio.Stdout = f
			} else {
				o.stdio.Stderr = f
			}
		}
		return o, nil
	}
	for i, stream := range []string{ctrlog.Stdout, ctrlog.Stderr} {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("create %s pipe: %w", stream, err)
		}
		// The container's end is open for reading too: with no
		// monitor reading, its writes then wait in the pipe instead
		// of failing with EPIPE.
		rw, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(w.Fd())), os.O_RDWR, 0)
		w.Close()
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("open the %s pipe for the container: %w", stream, err)
		}
		var st unix.Stat_t
		if unix.Fstat(int(r.Fd()), &st) == nil {
			o.pipeIno[i] = st.Ino
		}
		o.mine = append(o.mine, rw)
		if i == 0 {
			o.stdio.Stdout = rw
		} else {
			o.stdio.Stderr = rw
		}
		o.copies.Add(1)
		go func(tee *os.File) {
			defer o.copies.Done()
			copyToLog(l.LogPath, stream, r, tee)
			r.Close()
			if tee != nil {
				tee.Close()
			}
		}(tee[i])
	}
	return o, nil
}

// containerHasIt closes the monitor's copies of the container's stdio:
// from now on only the container holds them, so the copies end when the
// container's processes are gone.
func (o *output) containerHasIt() {
	for _, f := range o.mine {
		f.Close()
	}
	o.mine = nil
}

// wait waits at most limit for the copies to end.
func (o *output) wait(limit time.Duration) {
	done := make(chan struct{})
	go func() { o.copies.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
	}
}

// copyToLog appends src's output to the log at path as CRI records and,
// with a tee, hands every byte to it as soon as it is read. Should the
// file be unwritable, the output is still drained, so the container never
// blocks on it.
func copyToLog(path, stream string, src, tee *os.File) {
	var r io.Reader = src
	if tee != nil {
		r = io.TeeReader(src, &bestEffort{w: tee})
	}
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		ctrlog.Copy(io.Discard, r, stream, time.Now)
		return
	}
	defer dst.Close()
	ctrlog.Copy(dst, r, stream, time.Now)
}

// bestEffort writes to w until a write fails (the client went away),
// then drops the rest: the log still gets everything.
type bestEffort struct {
	w      io.Writer
	failed bool
}

func (b *bestEffort) Write(p []byte) (int, error) {
	if !b.failed {
		if _, err := b.w.Write(p); err != nil {
			b.failed = true
		}
	}
	return len(p), nil
}
