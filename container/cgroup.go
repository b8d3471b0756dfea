package container

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Resources are the cgroup v2 limits of a container.
type Resources struct {
	MemoryMax  int64  `json:"memoryMax,omitempty"`  // bytes, 0: none
	MemorySwap int64  `json:"memorySwap,omitempty"` // bytes of swap, -1: unlimited, 0: unset
	CPUQuota   int64  `json:"cpuQuota,omitempty"`   // µs per CPUPeriod, 0: none
	CPUPeriod  int64  `json:"cpuPeriod,omitempty"`  // µs
	CPUWeight  uint64 `json:"cpuWeight,omitempty"`  // 1-10000, 0: unset
	CpusetCPUs string `json:"cpusetCpus,omitempty"` // "0-2,4"
	PidsMax    int64  `json:"pidsMax,omitempty"`    // 0: none
}

// Empty reports whether no limit is set.
func (r Resources) Empty() bool { return r == Resources{} }

// Controllers lists the cgroup controllers r needs.
func (r Resources) Controllers() []string {
	var out []string
	if r.MemoryMax != 0 || r.MemorySwap != 0 {
		out = append(out, "memory")
	}
	if r.CPUQuota != 0 || r.CPUWeight != 0 {
		out = append(out, "cpu")
	}
	if r.CpusetCPUs != "" {
		out = append(out, "cpuset")
	}
	if r.PidsMax != 0 {
		out = append(out, "pids")
	}
	return out
}

// files renders r as the cgroup v2 interface files to write.
func (r Resources) files() map[string]string {
	f := map[string]string{}
	if r.MemoryMax > 0 {
		f["memory.max"] = strconv.FormatInt(r.MemoryMax, 10)
	}
	switch {
	case r.MemorySwap > 0:
		f["memory.swap.max"] = strconv.FormatInt(r.MemorySwap, 10)
	case r.MemorySwap < 0:
		f["memory.swap.max"] = "max"
	}
	if r.CPUQuota > 0 {
		f["cpu.max"] = fmt.Sprintf("%d %d", r.CPUQuota, r.CPUPeriod)
	}
	if r.CPUWeight > 0 {
		f["cpu.weight"] = strconv.FormatUint(r.CPUWeight, 10)
	}
	if r.CpusetCPUs != "" {
		f["cpuset.cpus"] = r.CpusetCPUs
	}
	if r.PidsMax > 0 {
		f["pids.max"] = strconv.FormatInt(r.PidsMax, 10)
	}
	return f
}

// CreateCgroup makes the container's cgroup below parent with r's
// limits, enabling the controllers it needs, and moves pid into it. The
// caller removes it (RemoveCgroup) when the container is gone.
func CreateCgroup(parent, name string, r Resources, pid int) (string, error) {
	if want := r.Controllers(); len(want) > 0 {
		enable := "+" + strings.Join(want, " +")
		if err := os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte(enable), 0); err != nil {
			return "", fmt.Errorf("enable %s in %s: %w", enable, parent, err)
		}
	}
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return "", fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	for file, val := range r.files() {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(val), 0); err != nil {
			os.Remove(dir)
			return "", fmt.Errorf("set %s=%s: %w", file, val, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("move the container into %s: %w", dir, err)
	}
	return dir, nil
}

// RemoveCgroup removes an empty container cgroup; a missing one is fine.
func RemoveCgroup(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.Remove(dir); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	return nil
}
