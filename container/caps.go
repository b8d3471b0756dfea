package container

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// capNames are the capabilities by number, as the kernel defines them.
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// DefaultCapabilities is the set a container's root gets, the same as
// podman's default, so software behaves as users know it there.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
	"CAP_SYS_CHROOT",
}

// AllCapabilities lists every capability this kernel build knows.
func AllCapabilities() []string { return append([]string(nil), capNames...) }

// NormalizeCapability turns "net_raw", "NET_RAW" or "CAP_NET_RAW" into
// "CAP_NET_RAW", or reports an unknown name.
func NormalizeCapability(name string) (string, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	for _, c := range capNames {
		if c == n {
			return n, nil
		}
	}
	return "", fmt.Errorf("unknown capability %q: use a name like NET_RAW or CAP_SYS_PTRACE (see capabilities(7)), or ALL", name)
}

// ApplyCapChanges adds and drops capabilities (ALL allowed in either) to
// base, returning a sorted set.
func ApplyCapChanges(base, add, drop []string) ([]string, error) {
	set := map[string]bool{}
	for _, c := range base {
		set[c] = true
	}
	expand := func(list []string, on bool) error {
		for _, c := range list {
			if strings.EqualFold(c, "ALL") {
				for _, n := range capNames {
					set[n] = on
				}
				continue
			}
			n, err := NormalizeCapability(c)
			if err != nil {
				return err
			}
			set[n] = on
		}
		return nil
	}
	// Docker's order: drops first, then adds, so "--cap-drop ALL
	// --cap-add NET_RAW" keeps NET_RAW.
	if err := expand(drop, false); err != nil {
		return nil, err
	}
	if err := expand(add, true); err != nil {
		return nil, err
	}
	out := []string{}
	for c, on := range set {
		if on {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out, nil
}

// capMask is the 64-bit mask of a capability set, as /proc/PID/status
// shows CapEff.
func capMask(names []string) uint64 {
	var m uint64
	for _, n := range names {
		for i, c := range capNames {
			if c == n {
				m |= 1 << uint(i)
			}
		}
	}
	return m
}

// CapMask exposes capMask for tests and inspect output.
func CapMask(names []string) uint64 { return capMask(names) }

func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return len(capNames) - 1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return len(capNames) - 1
	}
	return n
}

// limitCapabilities drops everything outside keep from the bounding set
// of this thread (the one that executes the command) and clears the
// inheritable and ambient sets. After execve a root command has exactly
// the bounding set; a non-root one has none.
func limitCapabilities(keep []string) error {
	mask := capMask(keep)
	for c := 0; c <= lastCap(); c++ {
		if mask&(1<<uint(c)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clear inheritable capabilities: %w", err)
	}
	return nil
}
