package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// devices are bind-mounted from the host: an unprivileged user namespace
// cannot mknod, and these are harmless to share.
var devices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// setupRootfs builds the container's mount tree in the new mount namespace
// and makes it the root. Every path taken from the image is resolved inside
// the root (securejoin), so a symlink in an image cannot send a mount onto
// the host.
func setupRootfs(spec *Spec) error {
	root := spec.Rootfs
	// Nothing mounted here may propagate back into the service namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	// pivot_root needs the new root to be a mount point of its own.
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs %s: %w", root, err)
	}
	if spec.PrivateUserNS {
		var sources []int
		var err error
		root, sources, err = leaveUserIDs(spec, root)
		// The sources are open until the user's mounts are made.
		defer func() {
			for _, fd := range sources {
				unix.Close(fd)
			}
		}()
		if err != nil {
			return err
		}
	}
	const nsd = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := mountIn(root, "/proc", "proc", "proc", nsd, ""); err != nil {
		return err
	}
	if err := mountIn(root, "/sys", "sysfs", "sysfs", nsd|unix.MS_RDONLY, ""); err != nil {
		// Without a network namespace of our own user namespace the
		// kernel refuses a fresh sysfs; fall back to the host's view.
		if err2 := bindIn(root, "/sys", "/sys", true, true); err2 != nil {
			return fmt.Errorf("%w (bind fallback: %v)", err, err2)
		}
	}
	if err := setupDev(root); err != nil {
		return err
	}
	// Sorted, so that a failure is reported the same way every time.
	targets := make([]string, 0, len(spec.Files))
	for t := range spec.Files {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	for _, t := range targets {
		if err := bindFileIn(root, t, spec.Files[t]); err != nil {
			return err
		}
	}
	for _, m := range spec.Mounts {
		if err := mountUser(root, m); err != nil {
			return err
		}
	}
	for _, d := range spec.Devices {
		if err := mountUser(root, Mount{Type: "bind", Source: d.Source, Destination: d.Destination}); err != nil {
			return fmt.Errorf("device %s: %w", d.Source, err)
		}
	}
	if err := pivotRoot(root); err != nil {
		return err
	}
	if err := writeSysctls(spec.Sysctls); err != nil {
		return err
	}
	if err := maskPaths(spec.MaskedPaths); err != nil {
		return err
	}
	if err := readonlyPaths(spec.ReadonlyPaths); err != nil {
		return err
	}
	if spec.ReadonlyRootfs {
		// Only / itself: /dev, /proc and the /etc files stay as mounted.
		var st unix.Statfs_t
		if err := unix.Statfs("/", &st); err != nil {
			return fmt.Errorf("make / read-only: %w", err)
		}
		keep := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		if err := unix.Mount("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|keep, ""); err != nil {
			return fmt.Errorf("make / read-only: %w", err)
		}
	}
	return nil
}

// leaveUserIDs ends the part of the setup that runs with the user's own
// ids in a container with a user namespace of its own (see Start). The
// service's directories (0700, the user's) are only open to those ids,
// and files can only be made by ids the namespace maps: so the root and
// every mount source are opened first, then the init becomes root of the
// namespace and goes on through the descriptors. It returns the path the
// root is reached by from then on, and the descriptors, for the caller
// to close once the mounts are made.
func leaveUserIDs(spec *Spec, root string) (string, []int, error) {
	if err := unix.Chdir(root); err != nil {
		return "", nil, fmt.Errorf("enter rootfs: %w", err)
	}
	var fds []int
	open := func(p string) (string, error) {
		fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", fmt.Errorf("open %s: %w", p, err)
		}
		fds = append(fds, fd)
		return fmt.Sprintf("/proc/self/fd/%d", fd), nil
	}
	files := make(map[string]string, len(spec.Files))
	for t, src := range spec.Files {
		p, err := open(src)
		if err != nil {
			return "", fds, err
		}
		files[t] = p
	}
	spec.Files = files
	for i, m := range spec.Mounts {
		if m.Type != "bind" {
			continue
		}
		p, err := open(m.Source)
		if err != nil {
			return "", fds, fmt.Errorf("bind %s: %w", m.Source, err)
		}
		spec.Mounts[i].Source = p
	}
	for i, d := range spec.Devices {
		p, err := open(d.Source)
		if err != nil {
			return "", fds, fmt.Errorf("device %s: %w", d.Source, err)
		}
		spec.Devices[i].Source = p
	}
	if err := becomeNamespaceRoot(); err != nil {
		return "", fds, err
	}
	// The working directory is the root's bind mount: reach it without
	// walking the user's directories again.
	return "/proc/self/cwd", fds, nil
}

func setupDev(root string) error {
	if err := mountIn(root, "/dev", "tmpfs", "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return err
	}
	dev := filepath.Join(root, "dev") // a fresh tmpfs: no symlinks below it
	for _, d := range devices {
		if err := bindFileIn(root, "/dev/"+d, "/dev/"+d); err != nil {
			return err
		}
	}
	for _, dir := range []string{"pts", "shm", "mqueue"} {
		if err := os.Mkdir(filepath.Join(dev, dir), 0o755); err != nil {
			return fmt.Errorf("create /dev/%s: %w", dir, err)
		}
	}
	ptsOpts := "newinstance,ptmxmode=0666,mode=0620,gid=5"
	if err := unix.Mount("devpts", filepath.Join(dev, "pts"), "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, ptsOpts); err != nil {
		// gid 5 (tty) is not mapped without a subordinate gid range.
		if err := unix.Mount("devpts", filepath.Join(dev, "pts"), "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
			return fmt.Errorf("mount /dev/pts: %w", err)
		}
	}
	if err := unix.Mount("shm", filepath.Join(dev, "shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
		return fmt.Errorf("mount /dev/shm: %w", err)
	}
	if err := unix.Mount("mqueue", filepath.Join(dev, "mqueue"), "mqueue", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /dev/mqueue: %w", err)
	}
	for name, target := range map[string]string{
		"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2", "core": "/proc/kcore",
	} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return fmt.Errorf("create /dev/%s: %w", name, err)
		}
	}
	return nil
}

// resolveIn returns the host path of the container path p, resolving
// symlinks as if root were /.
func resolveIn(root, p string) (string, error) {
	full, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return "", fmt.Errorf("resolve %s in rootfs: %w", p, err)
	}
	return full, nil
}

func mountIn(root, p, source, fstype string, flags uintptr, data string) error {
	target, err := resolveIn(root, p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("create mount point %s: %w", p, err)
	}
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", fstype, p, err)
	}
	return nil
}

func bindIn(root, p, source string, recursive, readonly bool) error {
	target, err := resolveIn(root, p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("create mount point %s: %w", p, err)
	}
	flags := uintptr(unix.MS_BIND)
	if recursive {
		flags |= unix.MS_REC
	}
	if err := unix.Mount(source, target, "", flags, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", source, p, err)
	}
	if readonly {
		if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("make %s read-only: %w", p, err)
		}
	}
	return nil
}

// bindFileIn bind-mounts the host file source over the container file p,
// creating an empty placeholder (and its directory) when the image lacks
// it.
func bindFileIn(root, p, source string) error {
	target, err := resolveIn(root, p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("create directory for %s: %w", p, err)
	}
	fi, err := os.Lstat(target)
	switch {
	case errors.Is(err, os.ErrNotExist):
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|unix.O_NOFOLLOW, 0o644)
		if err != nil {
			return fmt.Errorf("create mount point %s: %w", p, err)
		}
		f.Close()
	case err != nil:
		return fmt.Errorf("inspect %s: %w", p, err)
	case fi.IsDir():
		return fmt.Errorf("cannot mount file over %s: the image has a directory there", p)
	}
	if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", source, p, err)
	}
	return nil
}

// pivotRoot makes root the new / and detaches the old root, so nothing of
// the host stays reachable.
func pivotRoot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("enter rootfs: %w", err)
	}
	// Stacking the old root under the new one at "." avoids needing a
	// directory for it in the image.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("enter new root: %w", err)
	}
	return nil
}

// mountUser applies one of the user's mounts. The destination is
// resolved inside the root, so a symlink planted in an image cannot send
// it onto the host.
func mountUser(root string, m Mount) error {
	target, err := resolveIn(root, m.Destination)
	if err != nil {
		return err
	}
	switch m.Type {
	case "tmpfs":
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("create mount point %s: %w", m.Destination, err)
		}
		flags := m.Flags
		if m.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		if err := unix.Mount("tmpfs", target, "tmpfs", flags, m.Data); err != nil {
			return fmt.Errorf("mount tmpfs on %s (%s): %w", m.Destination, m.Data, err)
		}
		return nil
	case "bind":
		fi, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("bind %s: %w", m.Source, err)
		}
		if fi.IsDir() {
			err = os.MkdirAll(target, 0o755)
		} else {
			err = createFile(target)
		}
		if err != nil {
			return fmt.Errorf("create mount point %s: %w", m.Destination, err)
		}
		if err := unix.Mount(m.Source, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", m.Source, m.Destination, err)
		}
		if m.ReadOnly || m.Flags != 0 {
			// Keep the flags the host mount has: the kernel refuses to
			// drop locked ones (nosuid, nodev) in a user namespace.
			var st unix.Statfs_t
			if err := unix.Statfs(target, &st); err != nil {
				return fmt.Errorf("bind %s: %w", m.Destination, err)
			}
			flags := uintptr(st.Flags)&(unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_RDONLY) | m.Flags
			if m.ReadOnly {
				flags |= unix.MS_RDONLY
			}
			if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|flags, ""); err != nil {
				return fmt.Errorf("make %s read-only: %w", m.Destination, err)
			}
		}
		return nil
	}
	return fmt.Errorf("unknown mount type %q for %s", m.Type, m.Destination)
}

func createFile(p string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if fi, err := os.Lstat(p); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("a directory is in the way")
		}
		return nil
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// writeSysctls sets namespaced kernel parameters through /proc/sys, before
// it is made read-only. The service only lets namespaced keys through.
func writeSysctls(sysctls map[string]string) error {
	keys := make([]string, 0, len(sysctls))
	for k := range sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(p, []byte(sysctls[k]), 0); err != nil {
			return fmt.Errorf("--sysctl %s=%s: %w", k, sysctls[k], err)
		}
	}
	return nil
}
