package holder

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The variables through which a starter passes the holder its stage.
const (
	envStage  = "_PELAGOS_HOLDER_STAGE"
	envReady  = "_PELAGOS_HOLDER_READY"  // descriptor to write 'r' on once serving
	envUserns = "_PELAGOS_HOLDER_USERNS" // "1": runs in the user's namespace

	stageWaitMaps = "wait-maps"
)

// idleGrace is how long the holder stays with no service connected and
// no child left before it exits.
const idleGrace = time.Second

// Main runs the holder and returns its exit code.
func Main(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet(Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	runtimeDir := fs.String("runtime-dir", "", "the user's pelagos runtime directory")
	exitsDir := fs.String("exits", "", "where exit codes of orphaned containers are recorded")
	if err := fs.Parse(args); err != nil || *runtimeDir == "" || *exitsDir == "" {
		fmt.Fprintf(stderr, "%s: pelagosd starts this program; it is not meant to be run by hand\n", Name)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("program", Name)
	if os.Getenv(envStage) == stageWaitMaps {
		// Cloned into a new user namespace before its ids were mapped,
		// this process lost its capabilities at execve. Once the
		// starter has written the maps, executing again as uid 0 of the
		// namespace gives them back.
		if err := waitForMaps(); err != nil {
			log.Error("wait for id maps", "err", err)
			return 1
		}
		os.Unsetenv(envStage)
		// The program's own path, not /proc/self/exe: ps shows the name
		// of what was executed.
		exe, err := os.Executable()
		if err != nil {
			exe = "/proc/self/exe"
		}
		err = syscall.Exec(strings.TrimSuffix(exe, " (deleted)"), append([]string{Name}, args...), os.Environ())
		log.Error("re-execute in the user namespace", "err", err)
		return 1
	}
	h := &holder{runtimeDir: *runtimeDir, exitsDir: *exitsDir, log: log, spawned: map[int]bool{}}
	if err := h.serve(); err != nil {
		log.Error("holder failed", "err", err)
		return 1
	}
	return 0
}

func waitForMaps() error {
	f := os.NewFile(3, "userns-sync")
	defer f.Close()
	var b [1]byte
	n, err := f.Read(b[:])
	if n != 1 || b[0] != 'm' {
		return fmt.Errorf("the starter did not map our ids (read %d bytes: %v)", n, err)
	}
	return nil
}

type holder struct {
	runtimeDir, exitsDir string
	log                  *slog.Logger
	monitor              string // the program spawn runs
	listen               int

	mu       sync.Mutex
	conns    int
	spawned  map[int]bool // monitors started and not yet reaped
	lastBusy time.Time
}

func (h *holder) serve() error {
	if os.Getenv(envUserns) == "1" {
		// Mounts made in here (image layers, container roots) must not
		// reach the host, while the host's later mounts (a USB disk)
		// should still appear here: a recursive slave tree gives both.
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
			return fmt.Errorf("make / a slave mount in the user's mount namespace: %w", err)
		}
	}
	os.Unsetenv(envUserns)
	// Containers whose monitor dies become our children, so their exit
	// codes are not lost.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become a child subreaper: %w", err)
	}
	// Out of the starter's session: a terminal's hangup must not reach us.
	unix.Setsid()
	signal.Ignore(unix.SIGHUP, unix.SIGINT, unix.SIGPIPE, unix.SIGQUIT)
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own program: %w", err)
	}
	h.monitor = filepath.Join(filepath.Dir(strings.TrimSuffix(exe, " (deleted)")), MonitorName)

	sock := socketPath(h.runtimeDir)
	if len(sock) >= len(unix.RawSockaddrUnix{}.Path) {
		return fmt.Errorf("socket path %s is too long for a unix socket: use a shorter XDG_RUNTIME_DIR", sock)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("create socket: %w", err)
	}
	h.listen = fd
	// The starter holds the lock: a socket file found here is stale.
	os.Remove(sock)
	old := unix.Umask(0o077)
	err = unix.Bind(fd, &unix.SockaddrUnix{Name: sock})
	unix.Umask(old)
	if err != nil {
		return fmt.Errorf("bind %s: %w", sock, err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		return fmt.Errorf("listen on %s: %w", sock, err)
	}
	if err := writeRecord(h.runtimeDir, Record{Pid: os.Getpid(), Start: StartTime(os.Getpid())}); err != nil {
		return fmt.Errorf("write %s: %w", recordPath(h.runtimeDir), err)
	}
	h.lastBusy = time.Now()
	if n, err := strconv.Atoi(os.Getenv(envReady)); err == nil && n > 2 {
		ready := os.NewFile(uintptr(n), "ready")
		ready.Write([]byte{'r'})
		ready.Close()
	}
	os.Unsetenv(envReady)

	sigchld := make(chan os.Signal, 8)
	signal.Notify(sigchld, unix.SIGCHLD)
	go h.acceptLoop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-sigchld:
			h.reap()
		case <-tick.C:
			h.reap() // a signal may have been coalesced
			if h.idleExit() {
				return nil
			}
		}
	}
}

// idleExit leaves when no service is connected and no child is left;
// it decides under the starters' lock, so that a service that found us
// and is about to join is never left with a holder that is gone.
func (h *holder) idleExit() bool {
	h.mu.Lock()
	busy := h.conns > 0 || len(h.spawned) > 0 || time.Since(h.lastBusy) < idleGrace
	h.mu.Unlock()
	if busy || hasChildren() {
		return false
	}
	lock, err := tryLock(h.runtimeDir)
	if err != nil {
		return false // a service is starting
	}
	defer lock.Close()
	// A connection waiting to be accepted counts too.
	p := []unix.PollFd{{Fd: int32(h.listen), Events: unix.POLLIN}}
	if n, _ := unix.Poll(p, 0); n > 0 {
		return false
	}
	h.mu.Lock()
	busy = h.conns > 0
	h.mu.Unlock()
	if busy {
		return false
	}
	if r, _ := readRecord(h.runtimeDir); r != nil && r.Pid == os.Getpid() {
		os.Remove(recordPath(h.runtimeDir))
		os.Remove(socketPath(h.runtimeDir))
	}
	h.log.Debug("exiting: no service and no container")
	return true
}

func (h *holder) acceptLoop() {
	for {
		fd, _, err := unix.Accept4(h.listen, unix.SOCK_CLOEXEC)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECONNABORTED) {
			continue
		}
		if err != nil {
			h.log.Error("accept", "err", err)
			return
		}
		if !h.trusted(fd) {
			unix.Close(fd)
			continue
		}
		h.mu.Lock()
		h.conns++
		h.mu.Unlock()
		go func() {
			h.serveConn(fd)
			unix.Close(fd)
			h.mu.Lock()
			h.conns--
			h.lastBusy = time.Now()
			h.mu.Unlock()
		}()
	}
}

// trusted admits only our own user: uid 0 of our user namespace (the
// socket's directory is the user's and 0700 too).
func (h *holder) trusted(fd int) bool {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil || cred.Uid != uint32(os.Getuid()) {
		h.log.Warn("refused a connection from another user", "uid", cred.Uid)
		return false
	}
	return true
}

func (h *holder) serveConn(fd int) {
	for {
		var req request
		files, err := receive(fd, &req)
		if err != nil {
			return
		}
		var rep reply
		switch req.Op {
		case "hello":
			rep = reply{Pid: os.Getpid(), Start: StartTime(os.Getpid())}
		case "spawn":
			rep = h.spawn(req, files)
		default:
			rep = reply{Error: fmt.Sprintf("unknown request %q", req.Op)}
		}
		closeFDs(files)
		if err := send(fd, rep, nil); err != nil {
			return
		}
	}
}

// spawn starts the monitor with the request's arguments, environment and
// descriptors (as fds 3, 4, ...); its stdin and stdout are /dev/null and
// its stderr is ours (the service's log).
func (h *holder) spawn(req request, files []int) reply {
	if len(req.Args) > 64 || len(req.Env) > 64 || len(files) > maxFiles {
		return reply{Error: "spawn request too large"}
	}
	null, err := unix.Open(os.DevNull, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return reply{Error: err.Error()}
	}
	defer unix.Close(null)
	fds := []uintptr{uintptr(null), uintptr(null), 2}
	for _, f := range files {
		fds = append(fds, uintptr(f))
	}
	// Held across fork so that the reaper cannot take the child's exit
	// before it is counted as ours.
	h.mu.Lock()
	defer h.mu.Unlock()
	pid, err := syscall.ForkExec(h.monitor, append([]string{MonitorName}, req.Args...), &syscall.ProcAttr{
		Env:   req.Env,
		Files: fds,
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return reply{Error: fmt.Sprintf("start %s: %v", h.monitor, err)}
	}
	h.spawned[pid] = true
	h.lastBusy = time.Now()
	return reply{Pid: pid, Start: StartTime(pid)}
}

// reap collects every child that has exited. A child we did not spawn is
// a container whose monitor died: its exit code is kept for the service.
func (h *holder) reap() {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		pid := siginfoPid(&info)
		if err != nil || pid == 0 {
			return
		}
		start := StartTime(pid) // still readable: the child is a zombie
		h.mu.Lock()
		var ws unix.WaitStatus
		_, werr := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		mine := h.spawned[pid]
		delete(h.spawned, pid)
		h.lastBusy = time.Now()
		h.mu.Unlock()
		if werr != nil || mine || start == 0 {
			continue
		}
		code := ws.ExitStatus()
		if ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		if err := writeExitRecord(h.exitsDir, pid, start, code); err != nil {
			h.log.Warn("record the exit of an orphaned container", "pid", pid, "code", code, "err", err)
		}
	}
}

// siginfoPid reads si_pid, the first field of the union that follows
// three ints (and padding) in a 64-bit siginfo_t.
func siginfoPid(info *unix.Siginfo) int {
	return int(*(*int32)(unsafe.Add(unsafe.Pointer(info), 16)))
}

func hasChildren() bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return !errors.Is(err, unix.ECHILD)
}
