package session

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	seccompprofiles "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/pelagos-containers/pelagos/container"
	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// security is the isolation a container gets, decided at create time
// and saved with the container.
type security struct {
	Capabilities    []string `json:"capabilities"`
	NoNewPrivileges bool     `json:"noNewPrivileges"`
	// Seccomp is "default", "unconfined" or "custom" (seccomp.json in
	// the container's directory, copied at create time).
	Seccomp        string `json:"seccomp"`
	Masked         bool   `json:"masked"`
	ReadonlyRootfs bool   `json:"readonlyRootfs"`
	Privileged     bool   `json:"privileged"`
	// ExtraMasked are hidden on top of the defaults (--masked-path,
	// --security-opt mask=); Unmasked are defaults shown after all
	// (--security-opt unmask=PATH|ALL).
	ExtraMasked []string `json:"extraMasked,omitempty"`
	Unmasked    []string `json:"unmasked,omitempty"`
	// AppArmor is the profile the command runs under, SELinux its
	// process label; both empty unless asked for and the module is on.
	AppArmor string `json:"apparmor,omitempty"`
	SELinux  string `json:"selinux,omitempty"`
}

const customSeccompFile = "seccomp.json"

// decideSecurity turns the caller's options into a security setting:
// secure by default (podman's capabilities, no_new_privs, Docker's
// seccomp profile, masked kernel paths), loosened only on request. A
// custom profile's bytes are returned for the caller to save.
func decideSecurity(cfg pdbus.ContainerConfig) (security, []byte, error) {
	sec := security{Seccomp: "default", NoNewPrivileges: true, Masked: true, ReadonlyRootfs: cfg.ReadOnly}
	base := container.DefaultCapabilities
	if cfg.Privileged {
		// Everything the user namespace can give; still rootless.
		sec = security{Seccomp: "unconfined", Privileged: true, ReadonlyRootfs: cfg.ReadOnly}
		base = container.AllCapabilities()
	}
	for _, p := range cfg.MaskedPaths {
		clean, err := maskPath(p)
		if err != nil {
			return sec, nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "--masked-path: %v", err)
		}
		sec.ExtraMasked = append(sec.ExtraMasked, clean)
	}
	caps, err := container.ApplyCapChanges(base, cfg.CapAdd, cfg.CapDrop)
	if err != nil {
		return sec, nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "--cap-add/--cap-drop: %v", err)
	}
	sec.Capabilities = caps
	var custom []byte
	for _, opt := range cfg.SecurityOpt {
		key, value, hasValue := strings.Cut(opt, "=")
		if !hasValue {
			key, value, hasValue = strings.Cut(opt, ":") // Docker's older spelling
		}
		switch key {
		case "no-new-privileges":
			switch value {
			case "", "true":
				sec.NoNewPrivileges = true
			case "false":
				sec.NoNewPrivileges = false
			default:
				return sec, nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "--security-opt %s: use no-new-privileges, no-new-privileges=true or no-new-privileges=false", opt)
			}
		case "seccomp":
			switch value {
			case "default", "minimal", "iouring":
				sec.Seccomp = value
			case "unconfined", "none":
				sec.Seccomp = "unconfined"
			case "":
				return sec, nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "--security-opt %s: use seccomp=default, minimal, iouring, unconfined or /path/to/profile.json", opt)
			default:
				if !filepath.IsAbs(value) {
					return sec, nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "--security-opt %s: a profile must be an absolute path to a JSON file (or default, unconfined)", opt)
				}
				b, err := os.ReadFile(value)
				if err != nil {
					return sec, nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "--security-opt %s: %v", opt, err)
				}
				if _, err := seccompprofiles.LoadProfile(string(b), specWithCaps(caps)); err != nil {
					return sec, nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "--security-opt %s: not a valid seccomp profile: %v", opt, err)
				}
				sec.Seccomp, custom = "custom", b
			}
		case "mask", "unmask":
			for _, path := range strings.Split(value, ":") {
				if key == "unmask" && path == "ALL" {
					sec.Unmasked = append(sec.Unmasked, "ALL")
					continue
				}
				clean, err := maskPath(path)
				if err != nil {
					return sec, nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "--security-opt %s: %v", opt, err)
				}
				if key == "mask" {
					sec.ExtraMasked = append(sec.ExtraMasked, clean)
				} else {
					sec.Unmasked = append(sec.Unmasked, clean)
				}
			}
		case "label":
			if value == "disable" {
				sec.SELinux = ""
				continue
			}
			if !lsmEnabled("selinux") {
				return sec, nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "--security-opt %s: SELinux is not enabled on this host; only label=disable applies", opt)
			}
			return sec, nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "--security-opt %s: give the whole process label with --selinux-label USER:ROLE:TYPE:LEVEL", opt)
		case "apparmor":
			if value == "unconfined" {
				sec.AppArmor = ""
				continue
			}
			if err := checkAppArmor(value); err != nil {
				return sec, nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "--security-opt %s: %v", opt, err)
			}
			sec.AppArmor = value
		default:
			return sec, nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "--security-opt %q: unknown option; use no-new-privileges[=true|false], seccomp=default|unconfined|/path.json, label=disable or apparmor=unconfined", opt)
		}
	}
	if cfg.AppArmorProfile != "" && cfg.AppArmorProfile != "unconfined" {
		if err := checkAppArmor(cfg.AppArmorProfile); err != nil {
			return sec, nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "--apparmor-profile %s: %v", cfg.AppArmorProfile, err)
		}
		sec.AppArmor = cfg.AppArmorProfile
	}
	if cfg.SELinuxLabel != "" {
		if err := checkSELinuxLabel(cfg.SELinuxLabel); err != nil {
			return sec, nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "--selinux-label %s: %v", cfg.SELinuxLabel, err)
		}
		sec.SELinux = cfg.SELinuxLabel
	}
	return sec, custom, nil
}

// checkAppArmor accepts the name of a loaded AppArmor profile.
func checkAppArmor(name string) error {
	if !lsmEnabled("apparmor") {
		return fmt.Errorf("AppArmor is not enabled on this host (see /sys/module/apparmor/parameters/enabled): drop the option, or boot with AppArmor")
	}
	if name == "" || len(name) > 255 || strings.ContainsAny(name, " \t\n\x00") {
		return fmt.Errorf("not a profile name: give the name of a loaded profile (see aa-status)")
	}
	b, err := os.ReadFile("/sys/kernel/security/apparmor/profiles")
	if err == nil && !profileLoaded(b, name) {
		return fmt.Errorf("no AppArmor profile of that name is loaded (see aa-status; load it with apparmor_parser -r FILE)")
	}
	return nil
}

// profileLoaded looks for name in the kernel's list of profiles, lines
// of "NAME (MODE)".
func profileLoaded(list []byte, name string) bool {
	for _, line := range strings.Split(string(list), "\n") {
		if n, _, ok := strings.Cut(line, " ("); ok && n == name {
			return true
		}
	}
	return false
}

// checkSELinuxLabel accepts a full process context USER:ROLE:TYPE:LEVEL.
func checkSELinuxLabel(label string) error {
	if !lsmEnabled("selinux") {
		return fmt.Errorf("SELinux is not enabled on this host (no /sys/fs/selinux): drop the option, or boot with SELinux")
	}
	if parts := strings.SplitN(label, ":", 4); len(parts) < 4 || len(label) > 1024 || strings.ContainsAny(label, " \t\n\x00") {
		return fmt.Errorf("not a process label: use USER:ROLE:TYPE:LEVEL, e.g. system_u:system_r:container_t:s0")
	}
	return nil
}

func lsmEnabled(name string) bool {
	b, err := os.ReadFile("/sys/kernel/security/lsm")
	if err == nil {
		return bytes.Contains(b, []byte(name))
	}
	if name == "selinux" {
		_, err := os.Stat("/sys/fs/selinux/enforce")
		return err == nil
	}
	b, _ = os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return bytes.HasPrefix(b, []byte("Y"))
}

// specWithCaps is the little of an OCI spec the profile library reads:
// rules that depend on capabilities follow the container's set.
func specWithCaps(caps []string) *specs.Spec {
	c := append([]string{}, caps...)
	return &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{
		Bounding: c, Effective: c, Permitted: c,
	}}}
}

// apply fills the security part of a container spec, compiling the
// seccomp profile (cached: the default profile is the same for every
// container with the same capabilities).
func (s security) apply(spec *container.Spec, dir string, cache *seccompCache) error {
	spec.Capabilities = s.Capabilities
	spec.NoNewPrivileges = s.NoNewPrivileges
	spec.ReadonlyRootfs = s.ReadonlyRootfs
	if s.Masked {
		spec.MaskedPaths = unmask(container.DefaultMaskedPaths, s.Unmasked)
		spec.ReadonlyPaths = unmask(container.DefaultReadonlyPaths, s.Unmasked)
	}
	spec.MaskedPaths = append(append([]string(nil), spec.MaskedPaths...), s.ExtraMasked...)
	spec.AppArmorProfile, spec.ProcessLabel = s.AppArmor, s.SELinux
	switch s.Seccomp {
	case "default", "minimal", "iouring":
		bpf, err := cache.profile(s.Seccomp, s.Capabilities)
		if err != nil {
			return err
		}
		spec.SeccompBPF = bpf
	case "custom":
		b, err := os.ReadFile(filepath.Join(dir, customSeccompFile))
		if err != nil {
			return fmt.Errorf("read the container's seccomp profile: %w", err)
		}
		p, err := seccompprofiles.LoadProfile(string(b), specWithCaps(s.Capabilities))
		if err != nil {
			return fmt.Errorf("seccomp profile: %w", err)
		}
		if spec.SeccompBPF, err = container.CompileSeccomp(p); err != nil {
			return err
		}
	}
	return nil
}

// seccompCache keeps compiled default profiles by capability set.
type seccompCache struct {
	mu       sync.Mutex
	compiled map[string][]byte
}

// profile compiles a built-in profile for a capability set:
//   - default: Docker's profile;
//   - iouring: Docker's, plus the io_uring calls it refuses (they have
//     been a rich source of kernel bugs: ask for them only when needed);
//   - minimal: allow everything but the calls that change the kernel or
//     the machine (modules, kexec, swap, clock, accounting, keyrings, ...)
//     for programs the default profile breaks.
func (c *seccompCache) profile(name string, caps []string) ([]byte, error) {
	key := name + ":" + strings.Join(caps, ",")
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.compiled[key]; ok {
		return b, nil
	}
	var p *specs.LinuxSeccomp
	var err error
	switch name {
	case "minimal":
		p = minimalSeccomp()
	default:
		if p, err = seccompprofiles.GetDefaultProfile(specWithCaps(caps)); err != nil {
			return nil, fmt.Errorf("default seccomp profile: %w", err)
		}
		if name == "iouring" {
			p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{
				Names:  []string{"io_uring_setup", "io_uring_enter", "io_uring_register"},
				Action: specs.ActAllow,
			})
		}
	}
	b, err := container.CompileSeccomp(p)
	if err != nil {
		return nil, err
	}
	if c.compiled == nil {
		c.compiled = map[string][]byte{}
	}
	c.compiled[key] = b
	return b, nil
}

// maskPath checks a path to hide: absolute, clean, not the root.
func maskPath(p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%q is not an absolute path", p)
	}
	clean := filepath.Clean(p)
	if clean == "/" || clean != p && clean+"/" != p {
		return "", fmt.Errorf("%q: give a clean path other than / (e.g. /proc/acpi)", p)
	}
	return clean, nil
}

// unmask drops the paths the user asked to see from a default list.
func unmask(paths, shown []string) []string {
	var out []string
	for _, p := range paths {
		keep := true
		for _, u := range shown {
			if u == "ALL" || u == p {
				keep = false
			}
		}
		if keep {
			out = append(out, p)
		}
	}
	return out
}

// minimalSeccomp allows every call but those that act on the kernel or
// the whole machine, which no container has business making.
func minimalSeccomp() *specs.LinuxSeccomp {
	eperm := uint(unix.EPERM)
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchARM},
		Syscalls: []specs.LinuxSyscall{{
			Names: []string{
				"acct", "add_key", "adjtimex", "bpf", "clock_adjtime", "clock_settime", "create_module",
				"delete_module", "finit_module", "get_kernel_syms", "init_module", "ioperm", "iopl",
				"kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "nfsservctl", "open_by_handle_at",
				"perf_event_open", "query_module", "quotactl", "reboot", "request_key", "settimeofday",
				"stime", "swapoff", "swapon", "syslog", "_sysctl", "uselib", "userfaultfd", "vm86", "vm86old",
			},
			Action:   specs.ActErrno,
			ErrnoRet: &eperm,
		}},
	}
}
