package tests

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSignalsAndExitCodes covers the sig-proxy of a foreground run and
// the 128+N exit code of a container killed by a signal.
func TestSignalsAndExitCodes(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)

	// SIGTERM to `pelagos run` reaches the container, whose trap decides
	// the exit code.
	cmd, out := s.startPelagos(t, "run", "--rm", "--name", "sigproxy", "localhost/busybox", "sh", "-c",
		`trap "echo got-term; exit 42" TERM; echo ready; while :; do sleep 0.1; done`)
	waitRunning(t, s, "sigproxy", out)
	cmd.Process.Signal(syscall.SIGTERM)
	if code := waitExit(t, cmd); code != 42 || !strings.Contains(out.String(), "got-term") {
		t.Fatalf("sig-proxy: exit %d, output %q", code, out.String())
	}

	// SIGKILL through the API: the foreground run reports 137.
	cmd, out = s.startPelagos(t, "run", "--rm", "--name", "victim", "localhost/busybox", "sh", "-c", "echo ready; sleep 60")
	path := waitRunning(t, s, "victim", out)
	if r := s.busctl(t, "call", "io.pelagos.Pelagos1", path, "io.pelagos.Pelagos1.Container", "Kill", "s", "KILL"); r.Code != 0 {
		t.Fatalf("Kill: %s", r)
	}
	if code := waitExit(t, cmd); code != 137 {
		t.Fatalf("killed container: exit %d, want 137", code)
	}
	if r := s.busctl(t, "call", "io.pelagos.Pelagos1", "/io/pelagos/Pelagos1", "io.pelagos.Pelagos1.Manager", "GetContainer", "s", "victim"); r.Code == 0 {
		t.Fatalf("--rm container still exists after being killed: %s", r)
	}
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

func (s *userSession) startPelagos(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(filepath.Join(S.bin, "pelagos"), args...)
	cmd.Env = s.env()
	cmd.Dir = S.work
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred()}
	out := newSyncBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, out
}

// waitRunning waits until the container prints "ready" and returns its
// object path.
func waitRunning(t *testing.T, s *userSession, name string, out fmt.Stringer) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(out.String(), "ready") {
			r := s.busctl(t, "call", "io.pelagos.Pelagos1", "/io/pelagos/Pelagos1", "io.pelagos.Pelagos1.Manager", "GetContainer", "s", name)
			if f := strings.Fields(r.Stdout); r.Code == 0 && len(f) == 2 {
				return strings.Trim(f[1], `"`)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("container %s did not get ready: %q", name, out.String())
	return ""
}

func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("pelagos run did not exit")
		return -1
	}
}
