package rootless

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pelagos-containers/pelagos/rootless/holder"
	"github.com/pelagos-containers/pelagos/rootless/nsjoin"
)

// The bootstrap passes its progress to the re-executed service through
// these variables. The two containers/storage variables tell that library
// it runs rootless inside a configured namespace (it then mounts overlay
// with userxattr and does not try to create a namespace itself).
const (
	envStage         = "_PELAGOS_USERNS_STAGE"
	envHolder        = "_PELAGOS_HOLDER"     // FD:PID:START of the holder connection
	envHolderNew     = "_PELAGOS_HOLDER_NEW" // "1": this service started the holder
	envStorageUserns = "_CONTAINERS_USERNS_CONFIGURED"
	envStorageUID    = "_CONTAINERS_ROOTLESS_UID"
	envStorageGID    = "_CONTAINERS_ROOTLESS_GID"

	stageJoined = "joined"
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
	// Holder is the connection to pelagos-holder, which keeps these
	// namespaces and parents the containers' monitors.
	Holder *holder.Client
	// HolderIsNew is true when this service started the holder.
	HolderIsNew bool
}

// Door is a process that may still be in the user's namespaces when no
// holder is left (a container's monitor, or a container): a new holder
// joins its namespaces instead of making new ones, so the containers that
// still run stay manageable.
type Door struct {
	Pid   int
	Start uint64
}

// EnterOptions configure Enter.
type EnterOptions struct {
	// RuntimeDir is where the holder keeps its socket and record
	// ($XDG_RUNTIME_DIR/pelagos), as the user sees it.
	RuntimeDir string
	// ExitsDir is where the holder records orphans' exit codes.
	ExitsDir string
	// Doors lists processes to look for when no holder is found.
	Doors func() []Door
	// Warn gets one-line warnings for the user (the service's log).
	Warn io.Writer
	// Log gets what the bootstrap did (a stale holder replaced...).
	Log func(msg string, args ...any)
}

// Enter makes sure the calling program runs inside the user's user and
// mount namespaces, those pelagos-holder keeps. It must be called early
// in main.
//
// Outside (the first image of the program, with the user's own ids), it
// finds the holder or starts one, then executes the program again with
// the holder's namespaces named in the environment: the nsjoin
// constructor enters them before the Go runtime starts, as setns(2) of a
// user namespace requires. Enter does not return there. In that second
// image, Enter returns the Namespace.
func Enter(ctx context.Context, o EnterOptions) (*Namespace, error) {
	if os.Getenv(envStage) == stageJoined {
		return joined()
	}
	if os.Geteuid() == 0 {
		return rootful(ctx, o)
	}
	lock, err := holder.Lock(ctx, o.RuntimeDir)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", o.RuntimeDir, err)
	}
	defer lock.Close()
	h, isNew, err := findOrStartHolder(ctx, o)
	if err != nil {
		return nil, err
	}
	return nil, execJoined(h, isNew)
}

// findOrStartHolder returns a live, verified holder: the recorded one,
// or a new one in the namespaces of a door, or a new one in new
// namespaces. Call with the lock held.
func findOrStartHolder(ctx context.Context, o EnterOptions) (*holder.Client, bool, error) {
	h, err := holder.Dial(o.RuntimeDir)
	if err == nil {
		return h, false, nil
	}
	if err != holder.ErrNoHolder {
		o.Log("not trusting the recorded holder", "reason", err)
	}
	prog, err := holder.Program()
	if err != nil {
		return nil, false, err
	}
	start := holder.StartOptions{Program: prog, RuntimeDir: o.RuntimeDir, ExitsDir: o.ExitsDir, InUserNS: true}
	var doors []Door
	if o.Doors != nil {
		doors = o.Doors()
	}
	userNS, mountNS, via := openDoor(doors)
	if userNS != nil {
		defer userNS.Close()
		if mountNS != nil {
			defer mountNS.Close()
		}
		o.Log("no holder left: starting one in the namespaces of a running container", "via", via)
		start.UserNS, start.MountNS = userNS, mountNS
	} else {
		uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
		name := strconv.FormatUint(uint64(uid), 10)
		if u, err := user.LookupId(name); err == nil {
			name = u.Username
		}
		subUIDs, err := LookupSubIDs("/etc/subuid", name, uid)
		if err != nil {
			return nil, false, err
		}
		subGIDs, err := LookupSubIDs("/etc/subgid", name, uid)
		if err != nil {
			return nil, false, err
		}
		single := len(subUIDs) == 0 || len(subGIDs) == 0
		if single {
			fmt.Fprintf(o.Warn, "pelagos: warning: no subordinate id range for user %q in /etc/subuid and /etc/subgid; "+
				"running with only your own uid mapped, so images with files of other owners will lose those owners. "+
				"Fix: ask an administrator to run `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s`\n", name, name)
		}
		start.Fresh = true
		start.MapIDs = func(pid int) error { return writeMaps(pid, uid, gid, subUIDs, subGIDs, single) }
	}
	if err := holder.StartHolder(ctx, start); err != nil {
		return nil, false, err
	}
	h, err = holder.Dial(o.RuntimeDir)
	if err != nil {
		return nil, false, fmt.Errorf("reach the new %s: %w", holder.Name, err)
	}
	return h, true, nil
}

// openDoor returns the user and mount namespaces of the first door that
// is still the process it was and whose user namespace is the user's,
// a child of ours owned by our uid. A container's own mount namespace
// is not the service's: for a container (rather than a monitor) the
// mount namespace is nil, and a new one is made.
func openDoor(doors []Door) (userNS, mountNS *os.File, via string) {
	self, err := os.Stat("/proc/self/ns/user")
	if err != nil {
		return nil, nil, ""
	}
	for _, d := range doors {
		if d.Pid <= 0 || holder.StartTime(d.Pid) != d.Start {
			continue
		}
		ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", d.Pid))
		if err != nil {
			continue
		}
		// A container with a user namespace of its own is nested in
		// the service's: climb to the one whose parent is ours.
		for i := 0; i < 4 && ns != nil; i++ {
			pfd, err := unix.IoctlRetInt(int(ns.Fd()), unix.NS_GET_PARENT)
			if err != nil {
				ns.Close()
				ns = nil
				break
			}
			parent := os.NewFile(uintptr(pfd), "userns-parent")
			if pi, err := parent.Stat(); err == nil && os.SameFile(pi, self) {
				parent.Close()
				break
			}
			ns.Close()
			ns = parent
		}
		if ns == nil {
			continue
		}
		owner, err := unix.IoctlGetUint32(int(ns.Fd()), unix.NS_GET_OWNER_UID)
		if err != nil || owner != uint32(os.Getuid()) || holder.StartTime(d.Pid) != d.Start {
			ns.Close()
			continue
		}
		comm := holder.Comm(d.Pid)
		if comm == holder.MonitorName {
			mnt, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", d.Pid))
			if err == nil && holder.StartTime(d.Pid) == d.Start {
				return ns, mnt, fmt.Sprintf("%s %d", comm, d.Pid)
			}
			if mnt != nil {
				mnt.Close()
			}
		}
		return ns, nil, fmt.Sprintf("%s %d", comm, d.Pid)
	}
	return nil, nil, ""
}

// execJoined executes the program again, asking the nsjoin constructor
// to enter the holder's namespaces. It returns only on failure.
func execJoined(h *holder.Client, isNew bool) error {
	pid := h.Pid()
	userNS, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", pid))
	if err != nil {
		return fmt.Errorf("open the user namespace of %s %d: %w", holder.Name, pid, err)
	}
	mountNS, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", pid))
	if err != nil {
		return fmt.Errorf("open the mount namespace of %s %d: %w", holder.Name, pid, err)
	}
	// Opened, then checked: the descriptors name the holder's
	// namespaces, not those of a later process with its pid.
	if holder.StartTime(pid) != h.Start() {
		return fmt.Errorf("%s %d exited while this service joined it: start pelagosd again", holder.Name, pid)
	}
	conn, err := h.File()
	if err != nil {
		return err
	}
	for _, f := range []*os.File{userNS, mountNS, conn} {
		if _, err := unix.FcntlInt(f.Fd(), unix.F_SETFD, 0); err != nil {
			return fmt.Errorf("pass namespaces across exec: %w", err)
		}
	}
	env := append(os.Environ(),
		envStage+"="+stageJoined,
		envStorageUserns+"=done",
		envStorageUID+"="+strconv.Itoa(os.Getuid()),
		envStorageGID+"="+strconv.Itoa(os.Getgid()),
		fmt.Sprintf("%s=%d:%d", nsjoin.Env, userNS.Fd(), mountNS.Fd()),
		fmt.Sprintf("%s=%d:%d:%d", envHolder, conn.Fd(), pid, h.Start()),
	)
	if isNew {
		env = append(env, envHolderNew+"=1")
	}
	exe, err := Executable()
	if err != nil {
		return err
	}
	err = syscall.Exec(exe, os.Args, env)
	return fmt.Errorf("re-execute %s in the user namespace: %w", exe, err)
}

// Executable is the running program's path, also after it was replaced
// on disk by an upgrade (then the new program at that path). Executing
// it by name, rather than /proc/self/exe, keeps the name ps shows.
func Executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own program: %w", err)
	}
	return strings.TrimSuffix(exe, " (deleted)"), nil
}

// joined runs in the re-executed service, inside the holder's
// namespaces.
func joined() (*Namespace, error) {
	uid, err1 := strconv.ParseUint(os.Getenv(envStorageUID), 10, 32)
	gid, err2 := strconv.ParseUint(os.Getenv(envStorageGID), 10, 32)
	if err1 != nil || err2 != nil {
		return nil, errors.New("user namespace bootstrap lost the caller's uid/gid")
	}
	ns := &Namespace{UID: uint32(uid), GID: uint32(gid), HolderIsNew: os.Getenv(envHolderNew) == "1"}
	os.Unsetenv(envHolderNew)
	os.Unsetenv(envStage)
	var fd, pid int
	var start uint64
	if _, err := fmt.Sscanf(os.Getenv(envHolder), "%d:%d:%d", &fd, &pid, &start); err != nil || fd < 3 {
		return nil, errors.New("user namespace bootstrap lost the holder connection")
	}
	os.Unsetenv(envHolder)
	ns.Holder = holder.FromFile(os.NewFile(uintptr(fd), "holder"), pid, start)
	for _, p := range []struct {
		file string
		dst  *[]IDMap
	}{{"/proc/self/uid_map", &ns.UIDMap}, {"/proc/self/gid_map", &ns.GIDMap}} {
		b, err := os.ReadFile(p.file)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p.file, err)
		}
		if *p.dst, err = ParseProcMap(string(b)); err != nil {
			return nil, err
		}
	}
	ns.SingleMapping = MappedCount(ns.UIDMap) <= 1 || MappedCount(ns.GIDMap) <= 1
	return ns, nil
}

// rootful runs the service as real root: no user namespace, but the
// holder still parents the monitors, so containers outlive the service
// the same way.
func rootful(ctx context.Context, o EnterOptions) (*Namespace, error) {
	lock, err := holder.Lock(ctx, o.RuntimeDir)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", o.RuntimeDir, err)
	}
	defer lock.Close()
	h, err := holder.Dial(o.RuntimeDir)
	isNew := false
	if err != nil {
		prog, perr := holder.Program()
		if perr != nil {
			return nil, perr
		}
		if err := holder.StartHolder(ctx, holder.StartOptions{Program: prog, RuntimeDir: o.RuntimeDir, ExitsDir: o.ExitsDir}); err != nil {
			return nil, err
		}
		if h, err = holder.Dial(o.RuntimeDir); err != nil {
			return nil, err
		}
		isNew = true
	}
	return &Namespace{Rootful: true, Holder: h, HolderIsNew: isNew}, nil
}

// ReplaceHolder starts a new holder from inside the namespaces, for a
// service whose holder died while it ran: the new one is in the same
// namespaces (this process's), so nothing changes for the containers.
func ReplaceHolder(ctx context.Context, ns *Namespace, runtimeDir, exitsDir string) error {
	lock, err := holder.Lock(ctx, runtimeDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	h, err := holder.Dial(runtimeDir)
	if err != nil {
		prog, perr := holder.Program()
		if perr != nil {
			return perr
		}
		if err := holder.StartHolder(ctx, holder.StartOptions{Program: prog, RuntimeDir: runtimeDir, ExitsDir: exitsDir, InUserNS: !ns.Rootful}); err != nil {
			return err
		}
		if h, err = holder.Dial(runtimeDir); err != nil {
			return err
		}
		ns.HolderIsNew = true
	}
	old := ns.Holder
	ns.Holder = h
	if old != nil {
		old.Close()
	}
	return nil
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
