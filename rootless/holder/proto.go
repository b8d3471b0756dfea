// Package holder is pelagos-holder, the small long-lived process that
// keeps a user's namespaces alive between service instances, and the
// client the service uses to find, start and talk to it.
//
// Every pelagosd of a user runs in one user namespace and one mount
// namespace. Namespaces live as long as a process is in them, and the
// service may die at any time (a crash, an upgrade, kill -9): so the
// holder, which does nothing else, keeps them. A new service joins the
// holder's namespaces instead of making new ones, and so it can manage
// every container an earlier instance started.
//
// The holder is also the parent of the per-container monitors
// (pelagos-monitor) and a child subreaper: a container whose monitor
// died becomes its child, and the holder records that container's exit
// code for the service (ExitRecord). The holder spawns nothing but the
// monitor program installed beside it, and only for its own user.
package holder

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pelagos-containers/pelagos/fdpass"
)

// Name is the holder's program name, as ps shows it.
const Name = "pelagos-holder"

// MonitorName is the one program the holder starts.
const MonitorName = "pelagos-monitor"

// Files of the holder in the user's runtime directory.
const (
	recordFile = "holder.json"
	socketFile = "holder.sock"
	lockFile   = "holder.lock"
)

// maxMessage bounds one request or reply on the socket.
const maxMessage = 64 << 10

// maxFiles bounds the descriptors one spawn request may pass.
const maxFiles = 8

// request is one message to the holder; spawn requests carry their
// descriptors as SCM_RIGHTS.
type request struct {
	Op string `json:"op"` // "hello" or "spawn"
	// Args are the monitor's arguments after its name.
	Args []string `json:"args,omitempty"`
	// Env is the monitor's environment.
	Env []string `json:"env,omitempty"`
}

// reply answers a request.
type reply struct {
	Pid   int    `json:"pid,omitempty"`
	Start uint64 `json:"start,omitempty"`
	Error string `json:"error,omitempty"`
}

// Record is what the holder writes to holder.json once it serves: the
// process that a new service must verify before trusting it.
type Record struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"` // field 22 of /proc/PID/stat
}

func recordPath(runtimeDir string) string { return filepath.Join(runtimeDir, recordFile) }
func socketPath(runtimeDir string) string { return filepath.Join(runtimeDir, socketFile) }

// readRecord reads holder.json; a missing file is (nil, nil).
func readRecord(runtimeDir string) (*Record, error) {
	b, err := os.ReadFile(recordPath(runtimeDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil || r.Pid <= 0 {
		return nil, fmt.Errorf("malformed %s", recordPath(runtimeDir))
	}
	return &r, nil
}

func writeRecord(runtimeDir string, r Record) error {
	b, _ := json.Marshal(r)
	tmp := recordPath(runtimeDir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, recordPath(runtimeDir))
}

// StartTime is field 22 of /proc/PID/stat, which tells a process from a
// later one that reuses its pid; 0 when the process is gone.
func StartTime(pid int) uint64 {
	v, _ := strconv.ParseUint(statField(pid, 22), 10, 64)
	return v
}

// statField is field n (counted from 1, as proc(5) does) of
// /proc/PID/stat; "" when the process is gone. The name (field 2) may
// hold spaces and parentheses: fields are counted after its last ')'.
func statField(pid, n int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || n < 3 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < n-2 {
		return ""
	}
	return f[n-3]
}

// Comm is the process's name as ps and pgrep show it.
func Comm(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSpace(string(b))
}

// ExitRecord names the file in which the holder records the exit code
// of a container that became its child (its monitor died): the pid and
// its start time, so a reused pid cannot be mistaken for it.
func ExitRecord(dir string, pid int, start uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%d-%d", pid, start))
}

// ReadExitRecord waits up to patience for the exit record of a process
// and returns its code and when it was written; the record is removed.
func ReadExitRecord(dir string, pid int, start uint64, patience time.Duration) (code int, at time.Time, ok bool) {
	p := ExitRecord(dir, pid, start)
	deadline := time.Now().Add(patience)
	for {
		b, err := os.ReadFile(p)
		if err == nil {
			fi, _ := os.Stat(p)
			os.Remove(p)
			code, err = strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				return 0, time.Time{}, false
			}
			if fi != nil {
				at = fi.ModTime()
			}
			return code, at, true
		}
		if time.Now().After(deadline) {
			return 0, time.Time{}, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeExitRecord(dir string, pid int, start uint64, code int) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp := ExitRecord(dir, pid, start) + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(code)+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, ExitRecord(dir, pid, start))
}

func send(fd int, v any, files []int) error { return fdpass.SendMessage(fd, v, files...) }

func receive(fd int, v any) ([]int, error) {
	return fdpass.ReceiveMessage(fd, v, maxMessage, maxFiles)
}

var errClosed = fdpass.ErrClosed

func closeFDs(fds []int) { fdpass.CloseAll(fds) }
