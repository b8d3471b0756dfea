package holder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Lock takes the lock that orders the holder's start and exit against
// services that look for it. It is released when the file is closed
// (or the process execs: the descriptor is close-on-exec).
func Lock(ctx context.Context, runtimeDir string) (*os.File, error) {
	for {
		f, err := tryLock(runtimeDir)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func tryLock(runtimeDir string) (*os.File, error) {
	if err := os.MkdirAll(runtimeDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(runtimeDir, lockFile), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Client is a connection to the holder.
type Client struct {
	mu    sync.Mutex
	fd    int
	pid   int
	start uint64
}

// Pid is the holder's process id.
func (c *Client) Pid() int { return c.pid }

// Start is the holder's start time (StartTime).
func (c *Client) Start() uint64 { return c.start }

// ErrNoHolder is returned by Dial when no live holder is recorded.
var ErrNoHolder = errors.New("no pelagos-holder runs for this user")

// Dial connects to the holder recorded in runtimeDir after checking that
// the record is not stale: the pid must still be the process that wrote
// it (same start time, named pelagos-holder) and must answer on its
// socket with its own pid. A stale record is removed, with the reason
// in the error.
func Dial(runtimeDir string) (*Client, error) {
	r, err := readRecord(runtimeDir)
	if err != nil {
		os.Remove(recordPath(runtimeDir))
		return nil, fmt.Errorf("%w (%v: removed)", ErrNoHolder, err)
	}
	if r == nil {
		return nil, ErrNoHolder
	}
	stale := func(why string) (*Client, error) {
		os.Remove(recordPath(runtimeDir))
		return nil, fmt.Errorf("%w: the recorded holder (pid %d) %s; a new one is started", ErrNoHolder, r.Pid, why)
	}
	switch {
	case StartTime(r.Pid) == 0:
		return stale("is gone")
	case StartTime(r.Pid) != r.Start || Comm(r.Pid) != Name:
		return stale(fmt.Sprintf("is gone and its pid now belongs to %q", Comm(r.Pid)))
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("create socket: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: socketPath(runtimeDir)}); err != nil {
		unix.Close(fd)
		return stale(fmt.Sprintf("does not answer on %s (%v)", socketPath(runtimeDir), err))
	}
	c := &Client{fd: fd}
	var rep reply
	if err := c.roundTrip(request{Op: "hello"}, nil, &rep); err != nil || rep.Pid != r.Pid {
		unix.Close(fd)
		return stale(fmt.Sprintf("answered as pid %d (%v)", rep.Pid, err))
	}
	c.pid, c.start = rep.Pid, rep.Start
	return c, nil
}

// FromFile resumes a connection a previous image of this process opened
// (see File).
func FromFile(f *os.File, pid int, start uint64) *Client {
	unix.CloseOnExec(int(f.Fd()))
	fd, _ := unix.Dup(int(f.Fd()))
	unix.CloseOnExec(fd)
	f.Close()
	return &Client{fd: fd, pid: pid, start: start}
}

// File returns the connection's descriptor, open across exec, so that
// the service keeps its place with the holder when it re-executes
// itself into the holder's namespaces.
func (c *Client) File() (*os.File, error) {
	fd, err := unix.Dup(c.fd)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "holder"), nil
}

// Close closes the connection.
func (c *Client) Close() error { return unix.Close(c.fd) }

// Spawn asks the holder to start the monitor with args and env; files
// become its descriptors 3, 4, .... It returns the monitor's pid and
// start time.
func (c *Client) Spawn(args, env []string, files []*os.File) (int, uint64, error) {
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	var rep reply
	if err := c.roundTrip(request{Op: "spawn", Args: args, Env: env}, fds, &rep); err != nil {
		return 0, 0, fmt.Errorf("ask %s (pid %d) to start a monitor: %w", Name, c.pid, err)
	}
	if rep.Error != "" {
		return 0, 0, fmt.Errorf("%s: %s", Name, rep.Error)
	}
	return rep.Pid, rep.Start, nil
}

func (c *Client) roundTrip(req request, fds []int, rep *reply) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := send(c.fd, req, fds); err != nil {
		return err
	}
	got, err := receive(c.fd, rep)
	closeFDs(got)
	return err
}

// Gone reports whether err means the holder is no longer there.
func Gone(err error) bool {
	return errors.Is(err, errClosed) || errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) ||
		errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.ECONNREFUSED)
}

// StartOptions say how a new holder gets its namespaces.
type StartOptions struct {
	// Program is the holder binary.
	Program string
	// RuntimeDir and ExitsDir are passed to it.
	RuntimeDir, ExitsDir string
	// Fresh makes new user and mount namespaces; MapIDs is then called
	// with the child's pid to write its id maps.
	Fresh  bool
	MapIDs func(pid int) error
	// UserNS and MountNS, when set, are namespaces to join (MountNS nil
	// with UserNS set: a new mount namespace in that user namespace).
	UserNS, MountNS *os.File
	// InUserNS says the holder runs in the user's namespace (made or
	// joined here, or inherited from the starter).
	InUserNS bool
	// Env is the environment (nil: ours).
	Env []string
}

// StartHolder starts a holder and waits until it serves; the caller
// holds Lock. The holder is the caller's child: the caller should reap
// it (ReapChild) if it outlives it.
func StartHolder(ctx context.Context, o StartOptions) error {
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer readyR.Close()
	defer readyW.Close()
	cmd := exec.Command(o.Program, "--runtime-dir", o.RuntimeDir, "--exits", o.ExitsDir)
	cmd.Args[0] = Name
	cmd.Env = o.Env
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Stderr = os.Stderr
	var syncW *os.File
	switch {
	case o.Fresh:
		syncR, w, err := os.Pipe()
		if err != nil {
			return err
		}
		defer syncR.Close()
		defer w.Close()
		syncW = w
		cmd.ExtraFiles = []*os.File{syncR, readyW}
		cmd.Env = append(cmd.Env, envStage+"="+stageWaitMaps, envReady+"=4")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS}
	case o.UserNS != nil:
		cmd.ExtraFiles = []*os.File{readyW, o.UserNS}
		join := "4:-"
		if o.MountNS != nil {
			cmd.ExtraFiles = append(cmd.ExtraFiles, o.MountNS)
			join = "4:5"
		}
		cmd.Env = append(cmd.Env, envReady+"=3", "_PELAGOS_NSJOIN="+join)
	default:
		cmd.ExtraFiles = []*os.File{readyW}
		cmd.Env = append(cmd.Env, envReady+"=3")
	}
	if o.InUserNS || o.Fresh {
		cmd.Env = append(cmd.Env, envUserns+"=1")
	}
	if err := cmd.Start(); err != nil {
		if o.Fresh {
			return fmt.Errorf("create the user namespace: %w (unprivileged user namespaces may be disabled: check sysctl kernel.unprivileged_userns_clone and user.max_user_namespaces)", err)
		}
		return fmt.Errorf("start %s: %w", Name, err)
	}
	readyW.Close()
	pid := cmd.Process.Pid
	cmd.Process.Release() // reaped with ReapChild, not by os/exec
	fail := func(err error) error {
		unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
		return err
	}
	if o.Fresh {
		if err := o.MapIDs(pid); err != nil {
			return fail(err)
		}
		if _, err := syncW.Write([]byte{'m'}); err != nil {
			return fail(fmt.Errorf("release %s: %w", Name, err))
		}
	}
	got := make(chan error, 1)
	go func() {
		var b [1]byte
		n, err := readyR.Read(b[:])
		if n == 1 && b[0] == 'r' {
			got <- nil
			return
		}
		got <- fmt.Errorf("%s exited before it was ready (%v): see its message above", Name, err)
	}()
	select {
	case err := <-got:
		if err != nil {
			return fail(err)
		}
	case <-time.After(10 * time.Second):
		return fail(fmt.Errorf("%s did not become ready in 10s", Name))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	go ReapChild(pid)
	return nil
}

// ReapChild waits for pid if it is our child, so that it does not stay
// a zombie once it exits.
func ReapChild(pid int) {
	if ppid(pid) != os.Getpid() {
		return
	}
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, 0, nil); !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

func ppid(pid int) int {
	n, _ := strconv.Atoi(statField(pid, 4))
	return n
}

// Program finds the holder binary beside the running program.
func Program() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(strings.TrimSuffix(exe, " (deleted)")), Name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s is not installed beside %s: reinstall pelagos", Name, exe)
	}
	return p, nil
}
