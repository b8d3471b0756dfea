package rootless

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The bootstrap passes its progress to the re-executed copies of the program
// through these variables. The two containers/storage variables tell that
// library it runs rootless inside a configured namespace (it then mounts
// overlay with userxattr and does not try to create a namespace itself).
const (
	envStage         = "_PELAGOS_USERNS_STAGE"
	envSingle        = "_PELAGOS_USERNS_SINGLE"
	envStorageUserns = "_CONTAINERS_USERNS_CONFIGURED"
	envStorageUID    = "_CONTAINERS_ROOTLESS_UID"
	envStorageGID    = "_CONTAINERS_ROOTLESS_GID"

	stageWaitMaps = "wait-maps"
	stageReady    = "ready"
)

// Namespace describes the user namespace the service runs in.
type Namespace struct {
	// UID and GID are the user's ids on the host: the owner of
	// $XDG_RUNTIME_DIR and of the bus connection. Inside, os.Getuid() is 0.
	UID, GID uint32
	// UIDMap and GIDMap are the maps in force.
	UIDMap, GIDMap []IDMap
	// SingleMapping is true when no /etc/subuid or /etc/subgid range was
	// available and only the user's own id is mapped.
	SingleMapping bool
	// Rootful is true when the service runs as real root and no user
	// namespace was created.
	Rootful bool
}

// Enter makes sure the calling program runs inside the user's user
// namespace with its own mount namespace. It must be called early in main,
// before any goroutine depends on the process identity.
//
// The first run of the program (outside) creates the namespaced copy,
// writes its id maps with newuidmap/newgidmap and waits for it: Enter then
// returns a nil Namespace and the copy's exit code, which the caller should
// exit with. Inside the copy Enter returns the Namespace.
//
// exitDir is where the outer process records the exit codes of
// containers that outlive a crashed service (see ExitRecord).
func Enter(ctx context.Context, warn io.Writer, exitDir string) (*Namespace, int, error) {
	switch os.Getenv(envStage) {
	case stageWaitMaps:
		// We were cloned into a fresh user namespace while our ids were
		// still unmapped, so execve dropped every capability. Wait until
		// the parent has written the maps, then execute ourselves once
		// more: as uid 0 of the namespace the new image gets a full
		// capability set in it.
		if err := waitForMaps(); err != nil {
			return nil, 1, err
		}
		os.Setenv(envStage, stageReady)
		exe, err := os.Executable()
		if err != nil {
			exe = "/proc/self/exe"
		}
		err = syscall.Exec("/proc/self/exe", append([]string{exe}, os.Args[1:]...), os.Environ())
		return nil, 1, fmt.Errorf("re-execute in user namespace: %w", err)
	case stageReady:
		return insideNamespace()
	}
	if os.Geteuid() == 0 {
		return &Namespace{Rootful: true}, 0, nil
	}
	code, err := runNamespacedCopy(ctx, warn, exitDir)
	return nil, code, err
}

func waitForMaps() error {
	f := os.NewFile(3, "userns-sync")
	defer f.Close()
	var b [1]byte
	n, err := f.Read(b[:])
	if n != 1 || b[0] != 'm' {
		return fmt.Errorf("user namespace setup failed in the parent (read %d bytes: %v)", n, err)
	}
	return nil
}

func insideNamespace() (*Namespace, int, error) {
	// Mounts made here (image layers, container roots) must not leak to
	// the host; mounts the host makes later (a USB disk to bind) should
	// still appear here. A recursive slave mount tree gives both.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return nil, 1, fmt.Errorf("make / a slave mount in the service namespace: %w", err)
	}
	uid, err1 := strconv.ParseUint(os.Getenv(envStorageUID), 10, 32)
	gid, err2 := strconv.ParseUint(os.Getenv(envStorageGID), 10, 32)
	if err1 != nil || err2 != nil {
		return nil, 1, errors.New("user namespace bootstrap lost the caller's uid/gid")
	}
	ns := &Namespace{UID: uint32(uid), GID: uint32(gid), SingleMapping: os.Getenv(envSingle) == "1"}
	for _, p := range []struct {
		file string
		dst  *[]IDMap
	}{{"/proc/self/uid_map", &ns.UIDMap}, {"/proc/self/gid_map", &ns.GIDMap}} {
		b, err := os.ReadFile(p.file)
		if err != nil {
			return nil, 1, fmt.Errorf("read %s: %w", p.file, err)
		}
		if *p.dst, err = ParseProcMap(string(b)); err != nil {
			return nil, 1, err
		}
	}
	return ns, 0, nil
}

// runNamespacedCopy starts this program again in new user and mount
// namespaces, maps the user's ids into it and waits for it to finish.
func runNamespacedCopy(ctx context.Context, warn io.Writer, exitDir string) (int, error) {
	// Containers are children of the service. Should it die, they become
	// ours (a subreaper), and reapOrphans keeps their exit codes.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return 1, fmt.Errorf("become a child subreaper: %w", err)
	}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	name := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	subUIDs, err := LookupSubIDs("/etc/subuid", name, uid)
	if err != nil {
		return 1, err
	}
	subGIDs, err := LookupSubIDs("/etc/subgid", name, uid)
	if err != nil {
		return 1, err
	}
	single := len(subUIDs) == 0 || len(subGIDs) == 0
	if single {
		fmt.Fprintf(warn, "pelagos: warning: no subordinate id range for user %q in /etc/subuid and /etc/subgid; "+
			"running with only your own uid mapped, so images with files of other owners will lose those owners. "+
			"Fix: ask an administrator to run `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s`\n", name, name)
	}

	syncR, syncW, err := os.Pipe()
	if err != nil {
		return 1, fmt.Errorf("create user namespace sync pipe: %w", err)
	}
	sinkOuter, sinkInner, err := logSinkPair()
	if err != nil {
		syncR.Close()
		syncW.Close()
		return 1, err
	}
	defer sinkInner.Close()
	cmd := exec.CommandContext(ctx, "/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{syncR, sinkInner}
	cmd.Env = append(os.Environ(),
		envStage+"="+stageWaitMaps,
		envStorageUserns+"=done",
		envStorageUID+"="+strconv.FormatUint(uint64(uid), 10),
		envStorageGID+"="+strconv.FormatUint(uint64(gid), 10),
		envLogSink+"=4",
	)
	if single {
		cmd.Env = append(cmd.Env, envSingle+"=1")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS}
	if err := cmd.Start(); err != nil {
		syncR.Close()
		syncW.Close()
		sinkOuter.Close()
		return 1, fmt.Errorf("create user namespace: %w (unprivileged user namespaces may be disabled: check sysctl kernel.unprivileged_userns_clone and user.max_user_namespaces)", err)
	}
	syncR.Close()
	sinkInner.Close()
	pid := cmd.Process.Pid
	// Container output goes through us to the log files (serveLogs).
	var copies sync.WaitGroup
	go serveLogs(sinkOuter, &copies)

	if err := writeMaps(pid, uid, gid, subUIDs, subGIDs, single); err != nil {
		syncW.Close() // the child sees EOF and exits
		cmd.Wait()
		return 1, err
	}
	if _, err := syncW.Write([]byte{'m'}); err != nil {
		syncW.Close()
		cmd.Wait()
		return 1, fmt.Errorf("release user namespace child: %w", err)
	}
	syncW.Close()

	// The outer process only relays signals: a service manager or a
	// terminal talks to it, while the work happens in the child.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT)
	defer signal.Stop(sigs)
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	signal.Stop(sigs)
	reapOrphans(exitDir)
	// The containers are gone; let their last output reach the logs.
	copies.Wait()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exitErr.ExitCode(), nil
	}
	if err != nil {
		return 1, err
	}
	return 0, nil
}

func writeMaps(pid int, uid, gid uint32, subUIDs, subGIDs []SubIDRange, single bool) error {
	p := strconv.Itoa(pid)
	if single {
		// Without a delegated range the kernel lets us map our own id
		// directly, provided setgroups is denied first.
		if err := os.WriteFile("/proc/"+p+"/setgroups", []byte("deny"), 0); err != nil {
			return fmt.Errorf("deny setgroups for the user namespace: %w", err)
		}
		if err := os.WriteFile("/proc/"+p+"/uid_map", []byte(fmt.Sprintf("0 %d 1\n", uid)), 0); err != nil {
			return fmt.Errorf("write uid map: %w", err)
		}
		if err := os.WriteFile("/proc/"+p+"/gid_map", []byte(fmt.Sprintf("0 %d 1\n", gid)), 0); err != nil {
			return fmt.Errorf("write gid map: %w", err)
		}
		return nil
	}
	for _, m := range []struct {
		tool   string
		own    uint32
		ranges []SubIDRange
		file   string
	}{{"newuidmap", uid, subUIDs, "/etc/subuid"}, {"newgidmap", gid, subGIDs, "/etc/subgid"}} {
		args := append([]string{p}, FormatMapArgs(BuildMaps(m.own, m.ranges))...)
		out, err := exec.Command(m.tool, args...).CombinedOutput()
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("%s is not installed: install the uidmap package (apt-get install uidmap)", m.tool)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %v: %s (check the ranges in %s and that %s is setuid root or has file capabilities)",
				m.tool, strings.Join(args, " "), err, strings.TrimSpace(string(out)), m.file, m.tool)
		}
	}
	return nil
}
