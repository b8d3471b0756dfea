package monitor

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The container's end of an output pipe is open for reading too, so a
// write never fails with EPIPE once every monitor is gone: the bytes wait
// in the pipe, and an adopting monitor finds the pipe by its inode.
func TestOutputPipeSurvivesItsReader(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	rw, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(w.Fd())), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	w.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(r.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	r.Close() // the monitor dies
	if _, err := rw.Write([]byte("line 1\n")); err != nil {
		t.Fatalf("write with no monitor reading: %v", err)
	}
	again, err := openPipeOf(os.Getpid(), st.Ino)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	buf := make([]byte, 64)
	n, err := again.Read(buf)
	if err != nil || string(buf[:n]) != "line 1\n" {
		t.Fatalf("adopted pipe read %q, %v", buf[:n], err)
	}
	if _, err := openPipeOf(os.Getpid(), st.Ino+1000000); err == nil {
		t.Fatal("openPipeOf found a pipe the process does not hold")
	}
}

func TestControlMessagesCarryLargeLaunchesAndFiles(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := Launch{LogPath: "/log", Spec: specWithBPF(100 << 10)}
	if err := Send(fds[0], l, int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	var got Launch
	files, err := Receive(fds[1], &got)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || got.LogPath != "/log" || !bytes.Equal(got.Spec.SeccompBPF, l.Spec.SeccompBPF) {
		t.Fatalf("received %d files, %+v", len(files), got.LogPath)
	}
	unix.Close(files[0])
	unix.Close(fds[0])
	if _, err := Receive(fds[1], &got); !errors.Is(err, ErrClosed) {
		t.Fatalf("receive after close: %v", err)
	}
}

func TestReadExitChecksThePid(t *testing.T) {
	p := filepath.Join(t.TempDir(), "exit.json")
	if _, ok := ReadExit(p, 10); ok {
		t.Fatal("an exit read from no file")
	}
	if err := writeExit(p, Exit{Pid: 10, Code: 7, FinishedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if e, ok := ReadExit(p, 10); !ok || e.Code != 7 {
		t.Fatalf("ReadExit = %+v, %v", e, ok)
	}
	if _, ok := ReadExit(p, 11); ok {
		t.Fatal("the exit of an earlier run was taken for this one")
	}
	os.WriteFile(p, []byte("{garbage"), 0o600)
	if _, ok := ReadExit(p, 10); ok {
		t.Fatal("a corrupt exit file was believed")
	}
	if entries, _ := os.ReadDir(filepath.Dir(p)); len(entries) != 1 || strings.HasPrefix(entries[0].Name(), ".") {
		t.Fatalf("temporary files left: %v", entries)
	}
}
