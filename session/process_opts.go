package session

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pelagos-containers/pelagos/container"
	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// processOptions are the per-process settings of a create request,
// validated.
type processOptions struct {
	Rlimits  []container.Rlimit `json:"rlimits,omitempty"`
	Sysctls  map[string]string  `json:"sysctls,omitempty"`
	GroupAdd []string           `json:"groupAdd,omitempty"`
	Devices  []container.Device `json:"devices,omitempty"`
	Init     bool               `json:"init,omitempty"`
}

var sysctlKey = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_-]+)+$`)

// namespacedSysctl reports whether a key belongs to a namespace the
// container owns (IPC, network); the others would change the host.
func namespacedSysctl(key string) bool {
	for _, p := range []string{"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
		"kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"} {
		if key == p {
			return true
		}
	}
	return strings.HasPrefix(key, "fs.mqueue.") || strings.HasPrefix(key, "net.")
}

func parseProcessOptions(cfg pdbus.ContainerConfig) (processOptions, error) {
	o := processOptions{Init: cfg.Init}
	for _, u := range cfg.Ulimits {
		rl, err := container.ParseUlimit(u)
		if err != nil {
			return o, pdbus.Errorf(pdbus.ErrInvalidArgument, "%v", err)
		}
		o.Rlimits = append(o.Rlimits, rl)
	}
	for _, kv := range cfg.Sysctls {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !sysctlKey.MatchString(k) || strings.ContainsAny(v, "\n\x00") {
			return o, pdbus.Errorf(pdbus.ErrInvalidArgument, "--sysctl %q: use KEY=VALUE, e.g. net.ipv4.ping_group_range=0 0", kv)
		}
		if !namespacedSysctl(k) {
			return o, pdbus.Errorf(pdbus.ErrInvalidArgument, "--sysctl %s: not a namespaced parameter, it would change the host; allowed: net.*, kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*", k)
		}
		if o.Sysctls == nil {
			o.Sysctls = map[string]string{}
		}
		o.Sysctls[k] = v
	}
	for _, g := range cfg.GroupAdd {
		if g == "" || strings.ContainsAny(g, ":\n\x00") {
			return o, pdbus.Errorf(pdbus.ErrInvalidArgument, "--group-add %q: give a group id or name", g)
		}
		o.GroupAdd = append(o.GroupAdd, g)
	}
	for _, d := range cfg.Devices {
		dev, err := parseDevice(d)
		if err != nil {
			return o, err
		}
		o.Devices = append(o.Devices, dev)
	}
	return o, nil
}

// parseDevice reads /dev/X[:/dev/Y][:rwm] and checks the device exists
// and that the user may open it.
func parseDevice(spec string) (container.Device, error) {
	parts := strings.Split(spec, ":")
	if len(parts) > 3 || parts[0] == "" {
		return container.Device{}, pdbus.Errorf(pdbus.ErrInvalidArgument, "--device %q: use /dev/X[:/dev/Y][:rwm]", spec)
	}
	d := container.Device{Source: filepath.Clean(parts[0]), Destination: filepath.Clean(parts[0])}
	perms := "rwm"
	switch len(parts) {
	case 2:
		if strings.HasPrefix(parts[1], "/") {
			d.Destination = filepath.Clean(parts[1])
		} else {
			perms = parts[1]
		}
	case 3:
		d.Destination, perms = filepath.Clean(parts[1]), parts[2]
	}
	if perms == "" || strings.Trim(perms, "rwm") != "" {
		return d, pdbus.Errorf(pdbus.ErrInvalidArgument, "--device %q: permissions are letters of rwm", spec)
	}
	if !strings.Contains(perms, "w") || !strings.Contains(perms, "r") {
		// A read-only mount does not stop writes to a device node; only a
		// device cgroup could, and a rootless container has none.
		return d, pdbus.Errorf(pdbus.ErrInvalidArgument, "--device %q: rootless containers cannot restrict a device to %q (that needs a device cgroup): give rw or rwm", spec, perms)
	}
	if !filepath.IsAbs(d.Source) || !strings.HasPrefix(d.Destination, "/dev/") {
		return d, pdbus.Errorf(pdbus.ErrInvalidArgument, "--device %q: the host path must be absolute and the container path under /dev", spec)
	}
	fi, err := os.Stat(d.Source)
	if err != nil {
		return d, pdbus.Errorf(pdbus.ErrInvalidArgument, "--device %s: %v", d.Source, unwrapPathErr(err))
	}
	if fi.Mode()&os.ModeDevice == 0 {
		return d, pdbus.Errorf(pdbus.ErrInvalidArgument, "--device %s: not a device node", d.Source)
	}
	if err := unix.Access(d.Source, unix.R_OK|unix.W_OK); err != nil {
		return d, pdbus.Errorf(pdbus.ErrInvalidArgument, "--device %s: you cannot open it (%v): ask for membership of its group (ls -l %s)", d.Source, err, d.Source)
	}
	return d, nil
}
