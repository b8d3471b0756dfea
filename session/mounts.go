package session

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pelagos-containers/pelagos/container"
	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// validVolumeName is Docker's rule for named volumes.
var validVolumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// volumeDir is where a named volume keeps its data.
func (p Paths) volumeDir(name string) string {
	return filepath.Join(p.Data, "volumes", name, "_data")
}

// checkDestination accepts an absolute path other than /, cleaned.
func checkDestination(flag, spec, dst string) (string, error) {
	if !path.IsAbs(dst) {
		return "", pdbus.Errorf(pdbus.ErrInvalidArgument, "%s %q: the container path %q must be absolute", flag, spec, dst)
	}
	clean := path.Clean(dst)
	if clean == "/" {
		return "", pdbus.Errorf(pdbus.ErrInvalidArgument, "%s %q: cannot mount over the container's root", flag, spec)
	}
	return clean, nil
}

// parseVolume reads -v SRC:DST[:OPTS]: SRC is an absolute host path or
// the name of a volume (created on first use).
func (m *Manager) parseVolume(spec string) (container.Mount, error) {
	const flag = "-v/--volume"
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
		return container.Mount{}, pdbus.Errorf(pdbus.ErrInvalidArgument, "%s %q: use /host/path:/container/path[:ro] or NAME:/container/path[:ro]", flag, spec)
	}
	dst, err := checkDestination(flag, spec, parts[1])
	if err != nil {
		return container.Mount{}, err
	}
	mnt := container.Mount{Type: "bind", Destination: dst}
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				mnt.ReadOnly = true
			case "rw", "z", "Z", "":
				// z/Z relabel for SELinux, which is not active here.
			case "noexec":
				mnt.Flags |= unix.MS_NOEXEC
			case "nosuid":
				mnt.Flags |= unix.MS_NOSUID
			case "nodev":
				mnt.Flags |= unix.MS_NODEV
			default:
				return container.Mount{}, pdbus.Errorf(pdbus.ErrInvalidArgument, "%s %q: unknown option %q; use ro, rw, z, Z, noexec, nosuid or nodev", flag, spec, o)
			}
		}
	}
	src := parts[0]
	switch {
	case strings.HasPrefix(src, "/"):
		if _, err := os.Stat(src); err != nil {
			return container.Mount{}, pdbus.Errorf(pdbus.ErrInvalidArgument, "%s %q: host path %s: %v", flag, spec, src, unwrapPathErr(err))
		}
		mnt.Source = filepath.Clean(src)
	case validVolumeName.MatchString(src):
		dir := m.paths.volumeDir(src)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return container.Mount{}, fmt.Errorf("create volume %s: %w", src, err)
		}
		mnt.Source = dir
	default:
		return container.Mount{}, pdbus.Errorf(pdbus.ErrInvalidArgument, "%s %q: %q is neither an absolute host path nor a volume name; give the full path (e.g. $PWD/%s)", flag, spec, src, strings.TrimPrefix(src, "./"))
	}
	return mnt, nil
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// parseTmpfs reads --tmpfs /path[:opts] with mount(8) tmpfs options.
func parseTmpfs(spec string) (container.Mount, error) {
	const flag = "--tmpfs"
	dst, opts, _ := strings.Cut(spec, ":")
	clean, err := checkDestination(flag, spec, dst)
	if err != nil {
		return container.Mount{}, err
	}
	// Docker's defaults for a tmpfs.
	mnt := container.Mount{Type: "tmpfs", Destination: clean, Flags: unix.MS_NOEXEC | unix.MS_NOSUID | unix.MS_NODEV}
	var data []string
	for _, o := range strings.Split(opts, ",") {
		key, _, _ := strings.Cut(o, "=")
		switch key {
		case "":
		case "size", "mode", "uid", "gid", "nr_inodes", "nr_blocks":
			if !strings.Contains(o, "=") || strings.ContainsAny(o, " \t") {
				return container.Mount{}, pdbus.Errorf(pdbus.ErrInvalidArgument, "%s %q: option %q needs a value, e.g. size=64m", flag, spec, o)
			}
			data = append(data, o)
		case "ro":
			mnt.ReadOnly = true
		case "rw":
			mnt.ReadOnly = false
		case "exec":
			mnt.Flags &^= unix.MS_NOEXEC
		case "noexec":
			mnt.Flags |= unix.MS_NOEXEC
		case "suid":
			mnt.Flags &^= unix.MS_NOSUID
		case "nosuid":
			mnt.Flags |= unix.MS_NOSUID
		case "dev":
			mnt.Flags &^= unix.MS_NODEV
		case "nodev":
			mnt.Flags |= unix.MS_NODEV
		default:
			return container.Mount{}, pdbus.Errorf(pdbus.ErrInvalidArgument, "%s %q: unknown option %q; use size=, mode=, uid=, gid=, nr_inodes=, ro, rw, exec, noexec, suid, nosuid, dev, nodev", flag, spec, o)
		}
	}
	mnt.Data = strings.Join(data, ",")
	return mnt, nil
}

// buildMounts validates every mount of a create request and orders them
// so that a parent is mounted before what lies below it.
func (m *Manager) buildMounts(cfg pdbus.ContainerConfig) ([]container.Mount, error) {
	var out []container.Mount
	seen := map[string]string{}
	add := func(mnt container.Mount, spec string) error {
		if prev, ok := seen[mnt.Destination]; ok {
			return pdbus.Errorf(pdbus.ErrInvalidArgument, "%q and %q both mount on %s: choose one", prev, spec, mnt.Destination)
		}
		seen[mnt.Destination] = spec
		out = append(out, mnt)
		return nil
	}
	for _, v := range cfg.Volumes {
		mnt, err := m.parseVolume(v)
		if err != nil {
			return nil, err
		}
		if err := add(mnt, v); err != nil {
			return nil, err
		}
	}
	for _, t := range cfg.Tmpfs {
		mnt, err := parseTmpfs(t)
		if err != nil {
			return nil, err
		}
		if err := add(mnt, t); err != nil {
			return nil, err
		}
	}
	if cfg.ReadOnly && cfg.ReadOnlyTmpfs {
		// A read-only root still needs scratch space, as podman gives.
		for _, d := range []string{"/tmp", "/var/tmp", "/run"} {
			if _, ok := seen[d]; !ok {
				out = append(out, container.Mount{Type: "tmpfs", Destination: d, Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=1777"})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i].Destination, "/") < strings.Count(out[j].Destination, "/")
	})
	return out, nil
}
