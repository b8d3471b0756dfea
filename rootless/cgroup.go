package rootless

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Cgroup tells whether this process can give containers resource limits:
// a cgroup v2 hierarchy with a subtree delegated to the user.
type Cgroup struct {
	// Dir is where container cgroups are created, "" when unusable.
	Dir string
	// Controllers are those the delegated subtree may enable.
	Controllers []string
	// Reason says why limits cannot be applied, with the fix.
	Reason string
}

// ProbeCgroup inspects /sys/fs/cgroup and the process's own cgroup. It
// never changes anything: the machine's hierarchies are not ours.
func ProbeCgroup() Cgroup {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return Cgroup{Reason: fmt.Sprintf("cannot read /sys/fs/cgroup: %v", err)}
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return Cgroup{Reason: "this machine runs cgroups v1 (or hybrid): rootless limits need the unified cgroup v2 hierarchy " +
			"(boot with systemd.unified_cgroup_hierarchy=1), or run with --cgroups=disabled to go without limits"}
	}
	own, err := ownCgroup()
	if err != nil {
		return Cgroup{Reason: err.Error()}
	}
	dir := filepath.Join("/sys/fs/cgroup", own)
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return Cgroup{Reason: fmt.Sprintf("read the controllers of %s: %v", dir, err)}
	}
	if unix.Access(filepath.Join(dir, "cgroup.subtree_control"), unix.W_OK) != nil {
		return Cgroup{Reason: fmt.Sprintf("cgroup %s is not delegated to you: run pelagosd from its systemd user unit (it sets Delegate=yes), or use --cgroups=disabled", own)}
	}
	return Cgroup{Dir: dir, Controllers: strings.Fields(string(b))}
}

func ownCgroup() (string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return p, nil
		}
	}
	return "", errors.New("this process has no cgroup v2 path")
}

// Has reports whether a controller can be enabled below Dir.
func (c Cgroup) Has(controller string) bool {
	for _, x := range c.Controllers {
		if x == controller {
			return true
		}
	}
	return false
}
