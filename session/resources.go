package session

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/pelagos-containers/pelagos/container"
	pdbus "github.com/pelagos-containers/pelagos/dbus"
	"github.com/pelagos-containers/pelagos/rootless"
)

// parseBytes reads Docker's sizes: 1024, 512k, 64m, 1g (binary units).
func parseBytes(flag, s string) (int64, error) {
	m := regexp.MustCompile(`^(\d+)([bkmg]?)b?$`).FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return 0, pdbus.Errorf(pdbus.ErrInvalidArgument, "%s %q: use a size like 512m or 2g (b, k, m, g)", flag, s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, pdbus.Errorf(pdbus.ErrInvalidArgument, "%s %q: %v", flag, s, err)
	}
	shift := map[string]uint{"": 0, "b": 0, "k": 10, "m": 20, "g": 30}[m[2]]
	return n << shift, nil
}

var cpusetPattern = regexp.MustCompile(`^\d+(-\d+)?(,\d+(-\d+)?)*$`)

// parseResources validates the limit options of a create request.
func parseResources(cfg pdbus.ContainerConfig) (container.Resources, error) {
	var r container.Resources
	var err error
	if cfg.Memory != "" {
		if r.MemoryMax, err = parseBytes("--memory", cfg.Memory); err != nil {
			return r, err
		}
		if r.MemoryMax < 6<<20 {
			return r, pdbus.Errorf(pdbus.ErrInvalidArgument, "--memory %s: the minimum is 6m", cfg.Memory)
		}
	}
	if cfg.MemorySwap != "" {
		if cfg.MemorySwap == "-1" {
			r.MemorySwap = -1
		} else {
			total, err := parseBytes("--memory-swap", cfg.MemorySwap)
			if err != nil {
				return r, err
			}
			if r.MemoryMax == 0 || total < r.MemoryMax {
				return r, pdbus.Errorf(pdbus.ErrInvalidArgument, "--memory-swap %s: it is memory plus swap, so it needs --memory and must be at least that", cfg.MemorySwap)
			}
			r.MemorySwap = total - r.MemoryMax
		}
	}
	if cfg.CPUs != "" {
		f, err := strconv.ParseFloat(cfg.CPUs, 64)
		if err != nil || f <= 0 || f > 1024 {
			return r, pdbus.Errorf(pdbus.ErrInvalidArgument, "--cpus %q: use a positive number of CPUs, e.g. 1.5", cfg.CPUs)
		}
		r.CPUPeriod, r.CPUQuota = 100000, int64(f*100000)
	}
	if cfg.CPUShares != 0 {
		if cfg.CPUShares < 2 || cfg.CPUShares > 262144 {
			return r, pdbus.Errorf(pdbus.ErrInvalidArgument, "--cpu-shares %d: use 2 to 262144 (default 1024)", cfg.CPUShares)
		}
		// The kernel's own conversion from v1 shares to v2 weight.
		r.CPUWeight = 1 + ((cfg.CPUShares-2)*9999)/262142
	}
	if cfg.CpusetCPUs != "" {
		if !cpusetPattern.MatchString(cfg.CpusetCPUs) {
			return r, pdbus.Errorf(pdbus.ErrInvalidArgument, "--cpuset-cpus %q: use a list like 0-2,4", cfg.CpusetCPUs)
		}
		r.CpusetCPUs = cfg.CpusetCPUs
	}
	if cfg.PidsLimit != 0 {
		if cfg.PidsLimit < -1 {
			return r, pdbus.Errorf(pdbus.ErrInvalidArgument, "--pids-limit %d: use a positive number, or -1 for none", cfg.PidsLimit)
		}
		if cfg.PidsLimit > 0 {
			r.PidsMax = cfg.PidsLimit
		}
	}
	switch cfg.Cgroups {
	case "", "enabled", "disabled":
	default:
		return r, pdbus.Errorf(pdbus.ErrInvalidArgument, "--cgroups %q: use enabled or disabled", cfg.Cgroups)
	}
	return r, nil
}

// cgroups applies container limits in the user's delegated cgroup v2
// subtree, probed once.
type cgroups struct {
	once  sync.Once
	probe rootless.Cgroup
	leaf  error
}

func (c *cgroups) get() rootless.Cgroup {
	c.once.Do(func() { c.probe = rootless.ProbeCgroup() })
	return c.probe
}

// check refuses limits that cannot be enforced, naming the fix.
func (c *cgroups) check(r container.Resources) error {
	if r.Empty() {
		return nil
	}
	p := c.get()
	if p.Reason != "" {
		return pdbus.Errorf(pdbus.ErrInvalidArgument, "resource limits (--memory, --cpus, --pids-limit, ...) cannot be applied: %s", p.Reason)
	}
	for _, ctl := range r.Controllers() {
		if !p.Has(ctl) {
			return pdbus.Errorf(pdbus.ErrInvalidArgument, "the %s controller is not delegated to you (have: %s): enable it for user@.service, or use --cgroups=disabled", ctl, strings.Join(p.Controllers, " "))
		}
	}
	return nil
}

// apply creates the container's cgroup and moves pid into it. The
// service's own processes move into a leaf first: cgroup v2 lets only
// leaves hold processes once controllers are enabled below.
func (c *cgroups) apply(id string, r container.Resources, pid int) (string, error) {
	p := c.get()
	c.leafOnce(p.Dir)
	if c.leaf != nil {
		return "", c.leaf
	}
	return container.CreateCgroup(p.Dir, "pelagos-"+id[:12], r, pid)
}

func (c *cgroups) leafOnce(dir string) {
	if c.leaf != nil {
		return
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil || strings.TrimSpace(string(b)) == "" {
		return
	}
	leaf := filepath.Join(dir, "service")
	if err := os.MkdirAll(leaf, 0o755); err != nil {
		c.leaf = fmt.Errorf("create %s: %w", leaf, err)
		return
	}
	for _, pid := range strings.Fields(string(b)) {
		os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(pid), 0)
	}
}
