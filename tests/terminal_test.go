package tests

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tmuxSession runs a command in a detached tmux window of a known size:
// a real terminal for `pelagos run -it`.
type tmuxSession struct {
	t    *testing.T
	name string
}

func newTmux(t *testing.T, s *userSession, name string, cols, rows int, cmdline string) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (scripts/test.sh installs it)")
	}
	env := strings.Join(s.env(), " ")
	full := "runuser -u " + s.u.Name + " -- env -i " + env + " " + cmdline + "; echo EXIT=$?; sleep 60"
	out, err := exec.Command("tmux", "-L", "pelagos-test", "new-session", "-d", "-s", name,
		"-x", strconv.Itoa(cols), "-y", strconv.Itoa(rows), full).CombinedOutput()
	if err != nil {
		t.Fatalf("tmux: %v: %s", err, out)
	}
	ts := &tmuxSession{t: t, name: name}
	t.Cleanup(func() { exec.Command("tmux", "-L", "pelagos-test", "kill-session", "-t", name).Run() })
	return ts
}

func (ts *tmuxSession) send(keys string) {
	exec.Command("tmux", "-L", "pelagos-test", "send-keys", "-t", ts.name, keys, "Enter").Run()
}

func (ts *tmuxSession) screen() string {
	out, _ := exec.Command("tmux", "-L", "pelagos-test", "capture-pane", "-p", "-t", ts.name).Output()
	return string(out)
}

// waitFor polls the screen until it contains want.
func (ts *tmuxSession) waitFor(want string) string {
	ts.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if sc := ts.screen(); strings.Contains(sc, want) {
			return sc
		}
		time.Sleep(50 * time.Millisecond)
	}
	ls, _ := exec.Command("tmux", "-L", "pelagos-test", "ls").CombinedOutput()
	ts.t.Fatalf("screen never showed %q:\n%s\n(tmux sessions: %s)", want, ts.screen(), ls)
	return ""
}

func TestInteractiveTerminal(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	ts := newTmux(t, s, "it", 100, 30, filepath.Join(S.bin, "pelagos")+" run --rm -it --name termbox localhost/busybox sh")
	ts.waitFor("/ #") // capture-pane drops trailing blanks
	ts.send("stty size; tty; echo computed-$((6*7))")
	sc := ts.waitFor("computed-42")
	if !strings.Contains(sc, "30 100") || !strings.Contains(sc, "/dev/pts/0") {
		t.Fatalf("terminal size or name wrong:\n%s", sc)
	}
	// The window shrinks: the container sees the new size.
	exec.Command("tmux", "-L", "pelagos-test", "resize-window", "-t", "it", "-x", "80", "-y", "20").Run()
	time.Sleep(200 * time.Millisecond)
	ts.send("stty size")
	ts.waitFor("20 80")
	ts.send("exit 7")
	ts.waitFor("EXIT=7")
	// The --rm container is gone once its exit code was read.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Contains(s.mustPelagos(t, "ps", "-a"), "termbox") {
		if time.Now().After(deadline) {
			t.Fatal("--rm container run on a terminal was not removed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTerminalWithoutTTY(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	// -t without -i, output to a pipe: the container still gets a
	// terminal; its output is copied to our stdout.
	r := s.pelagos(t, "run", "--rm", "-t", "localhost/busybox", "sh", "-c", "tty; exit 4")
	if r.Code != 4 || !strings.Contains(r.Stdout, "/dev/pts/0") {
		t.Fatalf("-t into a pipe: %s", r)
	}
	// -it from a pipe is refused, as docker does.
	before := s.mustPelagos(t, "ps", "-aq")
	r = s.pelagos(t, "run", "--rm", "-it", "localhost/busybox", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "not a TTY") {
		t.Fatalf("-it without a terminal: %s", r)
	}
	if after := s.mustPelagos(t, "ps", "-aq"); after != before {
		t.Fatalf("refused -it left a container: %q vs %q", before, after)
	}
}

func TestExecTerminal(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	s.mustPelagos(t, "run", "-d", "--name", "exterm", "localhost/busybox", "sleep", "300")
	defer s.pelagos(t, "rm", "-f", "exterm")
	if r := s.pelagos(t, "exec", "-t", "exterm", "sh", "-c", "tty; exit 3"); r.Code != 3 || !strings.Contains(r.Stdout, "/dev/pts/") {
		t.Fatalf("exec -t into a pipe: %s", r)
	}
	ts := newTmux(t, s, "exit", 90, 25, filepath.Join(S.bin, "pelagos")+" exec -it exterm sh")
	ts.waitFor("/ #")
	ts.send("stty size; echo product-$((6*7)); exit 4")
	sc := ts.waitFor("EXIT=4")
	if !strings.Contains(sc, "25 90") || !strings.Contains(sc, "product-42") {
		t.Fatalf("exec -it screen:\n%s", sc)
	}
	if r := s.pelagos(t, "exec", "-it", "exterm", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "not a TTY") {
		t.Fatalf("exec -it without a terminal: %s", r)
	}
}

// TestDetachAndAttach: Ctrl-P Ctrl-Q leaves `run -it` with the container
// running; `attach` brings its terminal back.
func TestDetachAndAttach(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	defer s.pelagos(t, "rm", "-f", "detachme")
	ts := newTmux(t, s, "detach", 100, 30, filepath.Join(S.bin, "pelagos")+" run -it --name detachme --network none localhost/busybox sh")
	ts.waitFor("/ #")
	ts.send("echo before-$((2*3))")
	ts.waitFor("before-6")
	exec.Command("tmux", "-L", "pelagos-test", "send-keys", "-t", "detach", "C-p", "C-q").Run()
	ts.waitFor("EXIT=0")
	if out := s.mustPelagos(t, "ps", "--filter", "name=detachme", "--format", "{{.State}}"); out != "running\n" {
		t.Fatalf("after detaching the container is %q", out)
	}
	ta := newTmux(t, s, "attach", 100, 30, filepath.Join(S.bin, "pelagos")+" attach detachme")
	time.Sleep(300 * time.Millisecond)
	ta.send("echo after-$((3*4))")
	ta.waitFor("after-12")
	ta.send("exit 3")
	ta.waitFor("EXIT=3")
	if out := s.mustPelagos(t, "ps", "-a", "--filter", "name=detachme", "--format", "{{.Status}}"); !strings.HasPrefix(out, "Exited (3)") {
		t.Fatalf("after exit: %q", out)
	}
	if res := s.pelagos(t, "attach", "detachme"); res.Code != 125 || !strings.Contains(res.Stderr, "not running") {
		t.Fatalf("attach to an exited container: %s", res)
	}
	if res := s.pelagos(t, "run", "--rm", "--detach-keys", "alt-x", "localhost/busybox", "true"); res.Code != 125 || !strings.Contains(res.Stderr, "--detach-keys") {
		t.Fatalf("bad --detach-keys: %s", res)
	}
}
