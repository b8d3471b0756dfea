package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fileOutput is a CLI's output, in a file: a container that outlives
// the CLI holds a pipe open, a file it may.
type fileOutput struct{ path string }

func (f fileOutput) String() string {
	b, _ := os.ReadFile(f.path)
	return string(b)
}

// startCLI starts pelagos as the session user with its stdout and
// stderr going to one file; the process is killed at the end of the
// test if it still runs.
func startCLI(t *testing.T, s *userSession, args ...string) (*exec.Cmd, fileOutput) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(filepath.Join(S.bin, "pelagos"), args...)
	cmd.Env = s.env()
	cmd.Dir = S.work
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred()}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, fileOutput{f.Name()}
}

// killService kills the process that owns the service's bus name with
// SIGKILL, as a crash would, and waits until it is gone. It returns when
// it sent the signal.
func killService(t *testing.T, s *userSession) time.Time {
	t.Helper()
	pid := s.servicePid(t)
	if pid == 0 {
		t.Fatal("no process owns io.pelagos.Pelagos1")
	}
	killed := time.Now()
	if err := killAndWait(pid); err != nil {
		t.Fatal(err)
	}
	return killed
}

// reaped waits for cmd in the background; the channel closes when it
// ended.
func reaped(cmd *exec.Cmd) chan struct{} {
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	return done
}

// exitWithin waits at most d for cmd to end and returns its exit code
// (128+N for a death by signal N) and how long it took.
func exitWithin(t *testing.T, cmd *exec.Cmd, d time.Duration, out fmt.Stringer) (int, time.Duration) {
	t.Helper()
	return exitWithinOf(t, cmd, reaped(cmd), d, out)
}

func exitWithinOf(t *testing.T, cmd *exec.Cmd, done chan struct{}, d time.Duration, out fmt.Stringer) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	select {
	case <-done:
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		t.Fatalf("pelagos %v still ran %v later; output %q", cmd.Args[1:], d, out.String())
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal()), time.Since(start)
	}
	return ws.ExitStatus(), time.Since(start)
}

// blocked gives a just started CLI a moment to reach its long call.
func blocked() { time.Sleep(700 * time.Millisecond) }

// wantGone checks the CLI ended promptly with 125 and a message naming
// what happened and what to do.
func wantGone(t *testing.T, what string, code int, took time.Duration, out string, hints ...string) {
	t.Helper()
	if code != 125 || took > 5*time.Second || !strings.Contains(out, "pelagosd went away") {
		t.Fatalf("%s with the service killed: exit %d after %v, output %q", what, code, took, out)
	}
	for _, h := range hints {
		if !strings.Contains(out, h) {
			t.Errorf("%s: the message does not say %q: %q", what, h, out)
		}
	}
	t.Logf("%s: %v: %s", what, took.Round(time.Millisecond), strings.TrimSpace(out))
}

// stillRunning checks that a container survived the CLI's end (a new
// service is activated by the question).
func wantStillRunning(t *testing.T, s *userSession, name string) {
	t.Helper()
	if st := strings.TrimSpace(s.mustPelagos(t, "inspect", "-f", "{{.State.Status}}", name)); st != "running" {
		t.Fatalf("container %s is %s after its CLI left, want running", name, st)
	}
}

// TestServiceGoneWait: `pelagos wait` returns with a clear error when the
// service is killed under it; the container runs on.
func TestServiceGoneWait(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	s.mustPelagos(t, "run", "-d", "--name", "gonewait", "--network", "none", "localhost/busybox", "sleep", "300")
	defer s.pelagos(t, "rm", "-f", "gonewait")
	cmd, out := startCLI(t, s, "wait", "gonewait")
	blocked()
	killed := killService(t, s)
	code, _ := exitWithin(t, cmd, 10*time.Second, out)
	took := time.Since(killed)
	wantGone(t, "wait", code, took, out.String(), "container gonewait", "restarted or crashed", "pelagos wait gonewait")
	wantStillRunning(t, s, "gonewait")
}

// TestServiceGoneForeground: a foreground run, a foreground exec and
// `start -a` end with a clear error when the service is killed; their
// containers run on.
func TestServiceGoneForeground(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	defer s.pelagos(t, "rm", "-f", "gonerun", "goneexec", "gonestart")

	cmd, out := startCLI(t, s, "run", "--name", "gonerun", "--network", "none", "localhost/busybox", "sh", "-c", "echo ready; sleep 30")
	waitRunning(t, s, "gonerun", out)
	killed := killService(t, s)
	code, _ := exitWithin(t, cmd, 10*time.Second, out)
	took := time.Since(killed)
	wantGone(t, "run", code, took, out.String(), "container gonerun", "pelagos logs -f gonerun")
	wantStillRunning(t, s, "gonerun")

	s.mustPelagos(t, "run", "-d", "--name", "goneexec", "--network", "none", "localhost/busybox", "sleep", "300")
	cmd, out = startCLI(t, s, "exec", "goneexec", "sh", "-c", "echo ready; sleep 30")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "ready") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	killed = killService(t, s)
	code, _ = exitWithin(t, cmd, 10*time.Second, out)
	took = time.Since(killed)
	wantGone(t, "exec", code, took, out.String(), "goneexec")
	wantStillRunning(t, s, "goneexec")

	// The first run only leaves a mark; start -a runs it again.
	s.mustPelagos(t, "run", "--name", "gonestart", "--network", "none", "localhost/busybox", "sh", "-c", "test -e /mark || { touch /mark; exit 0; }; echo ready; sleep 30")
	cmd, out = startCLI(t, s, "start", "-a", "gonestart")
	waitRunning(t, s, "gonestart", out)
	killed = killService(t, s)
	code, _ = exitWithin(t, cmd, 10*time.Second, out)
	took = time.Since(killed)
	wantGone(t, "start -a", code, took, out.String(), "container gonestart")
	wantStillRunning(t, s, "gonestart")
}

// TestServiceGoneTerminal: `run -it` on a real terminal needs no service
// while the session lasts, and its master may be the container's last:
// the session goes on (hanging up would harm the container), the user
// is told, and the exit code comes from the next service.
func TestServiceGoneTerminal(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	defer s.pelagos(t, "rm", "-f", "goneterm")
	ts := newTmux(t, s, "goneterm", 120, 30, filepath.Join(S.bin, "pelagos")+" run -it --name goneterm --network none localhost/busybox sh")
	ts.waitFor("/ #")
	killService(t, s)
	ts.waitFor("pelagosd went away during this terminal session")
	ts.send("echo still-$((6*7))")
	ts.waitFor("still-42")
	ts.send("exit 3")
	ts.waitFor("EXIT=3")
}

// TestServiceGonePull: a pull stalled on a slow registry ends with an
// error saying to pull again when the service is killed.
func TestServiceGonePull(t *testing.T) {
	r := testRegistry(t)
	s := S.main
	if err := r.seed("oci:"+bigImage(t, 71)+":big", "gonepull:1", false); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, r.addr)
	p.slow(50 * time.Millisecond) // 25 MiB in 64 KiB steps: 20 s
	ref := p.addr + "/gonepull:1"
	defer s.pelagos(t, "rmi", "-f", ref)
	cmd, out := startCLI(t, s, "pull", "--tls-verify=false", ref)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "Copying blob") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	killed := killService(t, s)
	code, _ := exitWithin(t, cmd, 10*time.Second, out)
	took := time.Since(killed)
	wantGone(t, "pull", code, took, out.String(), "interrupted", "pelagos pull "+ref+"` again")
	p.slow(0)
	// The next service is usable and pulls the image.
	if res := s.pelagos(t, "pull", "--tls-verify=false", ref); res.Code != 0 {
		t.Fatalf("pull after the crash: %s", res)
	}
}

// TestSignalsEndBlockedCalls: SIGINT and SIGTERM end a CLI blocked in a
// call at once, with the shells' 130 and 143; a second SIGINT ends a
// foreground run whose container ignores the first.
func TestSignalsEndBlockedCalls(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	s.mustPelagos(t, "run", "-d", "--name", "sigwait", "--network", "none", "localhost/busybox", "sleep", "300")
	defer s.pelagos(t, "rm", "-f", "sigwait", "sigignore")
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		cmd, out := startCLI(t, s, "wait", "sigwait")
		blocked()
		cmd.Process.Signal(tc.sig)
		code, took := exitWithin(t, cmd, 5*time.Second, out)
		if code != tc.code || took > 2*time.Second || cmd.ProcessState.Sys().(syscall.WaitStatus).Signaled() {
			t.Fatalf("wait on %v: exit %d (%v) after %v, want exit %d; output %q", tc.sig, code, cmd.ProcessState, took, tc.code, out.String())
		}
	}
	wantStillRunning(t, s, "sigwait")

	// The container ignores SIGINT, so the forwarded signal does
	// nothing: the second one ends the CLI, not the container.
	cmd, out := startCLI(t, s, "run", "--name", "sigignore", "--network", "none", "localhost/busybox", "sh", "-c", `trap "" INT; echo ready; while :; do sleep 0.1; done`)
	waitRunning(t, s, "sigignore", out)
	done := reaped(cmd)
	cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
		t.Fatalf("the first SIGINT ended the CLI: %v, %q", cmd.ProcessState, out.String())
	case <-time.After(500 * time.Millisecond):
	}
	cmd.Process.Signal(os.Interrupt)
	if code, took := exitWithinOf(t, cmd, done, 5*time.Second, out); code != 130 || took > 2*time.Second {
		t.Fatalf("second SIGINT: exit %d after %v, output %q", code, took, out.String())
	}
	wantStillRunning(t, s, "sigignore")
}

// TestSignalEndsTerminalSession: SIGTERM to `run -it` ends the CLI with
// 143 and gives the terminal back in its normal mode.
func TestSignalEndsTerminalSession(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	defer s.pelagos(t, "rm", "-f", "termsig")
	ts := newTmux(t, s, "termsig", 120, 30, filepath.Join(S.bin, "pelagos")+
		" run -it --name termsig --network none localhost/busybox sh; echo CODE=$?; stty -a | grep -q ' icanon' && echo COOKED")
	ts.waitFor("/ #")
	out, err := exec.Command("pgrep", "-u", s.u.Name, "-f", "pelagos run -it --name termsig").Output()
	pids := strings.Fields(string(out))
	if err != nil || len(pids) != 1 {
		t.Fatalf("find the CLI: %v %q", err, out)
	}
	exec.Command("kill", "-TERM", pids[0]).Run()
	if sc := ts.waitFor("COOKED"); !strings.Contains(sc, "CODE=143") {
		t.Fatalf("SIGTERM to run -it:\n%s", sc)
	}
}

// TestEventsFollowTheNextService: `events` subscribes to the well-known
// name, so it goes on across a crash (or an idle exit) of the service and
// prints what the next one does.
func TestEventsFollowTheNextService(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	cmd, out := startCLI(t, s, "events", "--filter", "type=container")
	done := reaped(cmd)
	time.Sleep(500 * time.Millisecond) // subscribed
	killService(t, s)
	time.Sleep(300 * time.Millisecond)
	id := strings.TrimSpace(s.mustPelagos(t, "run", "-d", "--name", "afterkill", "--network", "none", "localhost/busybox", "true"))
	defer s.pelagos(t, "rm", "-f", "afterkill")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "create "+id) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-done:
		t.Fatalf("events ended when the service was killed: %v, %q", cmd.ProcessState, out.String())
	default:
	}
	if !strings.Contains(out.String(), "create "+id) {
		t.Fatalf("events did not show the next service's events: %q", out.String())
	}
	cmd.Process.Signal(os.Interrupt)
	if code, _ := exitWithinOf(t, cmd, done, 5*time.Second, out); code != 0 {
		t.Fatalf("events on SIGINT: exit %d, want 0", code)
	}
}
