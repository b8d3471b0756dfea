package rootless

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ExitRecord names the file in which the outer process records the exit
// code of a container whose service died before it: the container's pid
// and its start time (field 22 of /proc/PID/stat), so a reused pid
// cannot be mistaken for it.
func ExitRecord(dir string, pid int, start uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%d-%d", pid, start))
}

// ReadExitRecord returns the exit code recorded for a container, if any,
// and removes the record.
func ReadExitRecord(dir string, pid int, start uint64) (code int, at time.Time, ok bool) {
	p := ExitRecord(dir, pid, start)
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, time.Time{}, false
	}
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

// ReadExitRecordWithin waits up to patience for the exit record of a
// process and returns its code; the record is removed.
func ReadExitRecordWithin(dir string, pid int, start uint64, patience time.Duration) (int, bool) {
	deadline := time.Now().Add(patience)
	for {
		if code, _, ok := ReadExitRecord(dir, pid, start); ok {
			return code, true
		}
		if time.Now().After(deadline) {
			return 0, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// reapOrphans runs in the outer process once the service has ended. The
// outer process is a child subreaper, so containers the service left
// running became its children; it waits for each, records its exit code
// for the next service, and returns when none is left.
func reapOrphans(dir string) {
	for {
		var info unix.Siginfo
		if err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
			if err == unix.EINTR {
				continue
			}
			return // ECHILD: nothing left
		}
		// siginfo_t for SIGCHLD: si_pid is the first field of the union,
		// 16 bytes in on 64-bit Linux.
		pid := int(*(*int32)(unsafe.Add(unsafe.Pointer(&info), 16)))
		start := procStartTime(pid) // still readable: the child is a zombie
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
			continue
		}
		code := ws.ExitStatus()
		if ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		if err := os.MkdirAll(dir, 0o700); err == nil && start != 0 {
			tmp := ExitRecord(dir, pid, start) + ".tmp"
			if os.WriteFile(tmp, []byte(strconv.Itoa(code)+"\n"), 0o600) == nil {
				os.Rename(tmp, ExitRecord(dir, pid, start))
			}
		}
	}
}

// procStartTime reads field 22 of /proc/PID/stat; 0 when it cannot.
func procStartTime(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}

// ProcessStartTime is procStartTime for the service.
func ProcessStartTime(pid int) uint64 { return procStartTime(pid) }
