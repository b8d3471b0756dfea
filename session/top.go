package session

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	godbus "github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// topRow is one process of Top: (user, pid, ppid, %cpu, elapsed
// seconds, cpu seconds, tty, command), pids as the container sees them.
type topRow struct {
	User    string
	Pid     int32
	PPid    int32
	CPU     float64
	Elapsed uint64
	Time    uint64
	TTY     string
	Command string
}

// Top implements the method of the same name.
func (a *containerAPI) Top() ([]topRow, *godbus.Error) {
	defer a.c.m.track()()
	c := a.c
	c.mu.Lock()
	pid, start, running, id := c.rec.Pid, c.rec.PidStart, c.rec.State == pdbus.StateRunning, c.rec.ID
	c.mu.Unlock()
	if !running || pid == 0 || processStartTime(pid) != start {
		return nil, asDBusErr(pdbus.Errorf(pdbus.ErrContainerNotRunning, "container %s is not running", c.name()))
	}
	rows, err := containerProcesses(pid)
	if err != nil {
		return nil, asDBusErr(fmt.Errorf("list processes of %s: %w", id[:12], err))
	}
	return rows, nil
}

// containerProcesses lists the processes in the PID namespace of init.
func containerProcesses(init int) ([]topRow, error) {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init))
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var info unix.Sysinfo_t
	unix.Sysinfo(&info)
	uptime := float64(info.Uptime)
	const hz = 100 // USER_HZ on Linux
	var rows []topRow
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := "/proc/" + e.Name()
		if l, err := os.Readlink(dir + "/ns/pid"); err != nil || l != ns {
			continue
		}
		stat, err := os.ReadFile(dir + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 20 {
			continue
		}
		utime, _ := strconv.ParseUint(f[11], 10, 64)
		stime, _ := strconv.ParseUint(f[12], 10, 64)
		started, _ := strconv.ParseUint(f[19], 10, 64)
		ttyNr, _ := strconv.Atoi(f[4])
		row := topRow{TTY: "?", Time: (utime + stime) / hz}
		if elapsed := uptime - float64(started)/hz; elapsed > 0 {
			row.Elapsed = uint64(elapsed)
			row.CPU = float64(utime+stime) / hz / elapsed * 100
		}
		if ttyNr != 0 {
			row.TTY = fmt.Sprintf("pts/%d", unix.Minor(uint64(ttyNr)))
		}
		row.Pid, row.PPid, row.User = nsIDs(dir, pid)
		if cmd, err := os.ReadFile(dir + "/cmdline"); err == nil && len(cmd) > 0 {
			row.Command = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
		} else {
			comm, _ := os.ReadFile(dir + "/comm")
			row.Command = "[" + strings.TrimSpace(string(comm)) + "]"
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Pid < rows[j].Pid })
	return rows, nil
}

// nsIDs reads a process's pid and parent pid as its own namespace sees
// them, and its uid as the user namespace sees it.
func nsIDs(dir string, hostPid int) (pid, ppid int32, user string) {
	b, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return int32(hostPid), 0, "?"
	}
	var hostPPid int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		f := strings.Fields(v)
		switch k {
		case "NSpid":
			if n, err := strconv.Atoi(f[len(f)-1]); err == nil {
				pid = int32(n)
			}
		case "PPid":
			hostPPid, _ = strconv.Atoi(strings.TrimSpace(v))
		case "Uid":
			if len(f) > 1 {
				user = f[1] // effective uid, in the service's user namespace
			}
		}
	}
	// The parent's pid inside: read its NSpid (0 outside the container).
	if pb, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", hostPPid)); err == nil {
		for _, line := range strings.Split(string(pb), "\n") {
			if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
				f := strings.Fields(rest)
				if len(f) > 1 {
					n, _ := strconv.Atoi(f[len(f)-1])
					ppid = int32(n)
				}
			}
		}
	}
	return pid, ppid, user
}

// Size implements the method of the same name.
func (a *containerAPI) Size() (rw, rootfs int64, derr *godbus.Error) {
	defer a.c.m.track()()
	c := a.c
	c.mu.Lock()
	id, imageID := c.rec.ID, c.rec.ImageID
	c.mu.Unlock()
	rw, image, err := c.m.store.LayerSize(id, imageID)
	if err != nil {
		return 0, 0, asDBusErr(err)
	}
	if image < 0 {
		return rw, -1, nil
	}
	return rw, rw + image, nil
}
