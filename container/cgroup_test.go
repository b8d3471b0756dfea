package container

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCreateCgroupFiles checks what is written where. This machine has no
// delegated cgroup v2 tree (hybrid v1), so a directory stands in for one:
// the kernel's own checks are not exercised here.
func TestCreateCgroupFiles(t *testing.T) {
	parent := t.TempDir()
	os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), nil, 0o644)
	r := Resources{MemoryMax: 1 << 30, MemorySwap: -1, CPUQuota: 150000, CPUPeriod: 100000, CPUWeight: 200, CpusetCPUs: "0-1", PidsMax: 100}
	dir, err := CreateCgroup(parent, "ctr", r, 4242)
	if err != nil {
		t.Fatal(err)
	}
	read := func(p string) string { b, _ := os.ReadFile(filepath.Join(p)); return strings.TrimSpace(string(b)) }
	for file, want := range map[string]string{
		"memory.max": "1073741824", "memory.swap.max": "max", "cpu.max": "150000 100000",
		"cpu.weight": "200", "cpuset.cpus": "0-1", "pids.max": "100", "cgroup.procs": "4242",
	} {
		if got := read(filepath.Join(dir, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if got := read(filepath.Join(parent, "cgroup.subtree_control")); got != "+memory +cpu +cpuset +pids" {
		t.Errorf("subtree_control = %q", got)
	}
}
