package tests

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestExec(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	defer s.pelagos(t, "rm", "-f", "ex")
	s.mustPelagos(t, "run", "-d", "--name", "ex", "-e", "FROMRUN=yes", "localhost/busybox", "sh", "-c", "echo marker > /tmp/m; sleep 300")
	// Same namespaces (hostname, /tmp of the container, its PID 1), same
	// environment and the same security settings as the container.
	r := s.pelagos(t, "exec", "ex", "sh", "-c", "hostname; cat /tmp/m; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $FROMRUN; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status")
	want := regexp.MustCompile(`^ex\nmarker\nsleep 300 \nyes\nCapEff:\s+00000000800405fb\nNoNewPrivs:\s+1\nSeccomp:\s+2\n$`)
	if r.Code != 0 || !want.MatchString(r.Stdout) {
		t.Fatalf("exec: %s", r)
	}
	if r := s.pelagos(t, "exec", "ex", "sh", "-c", "exit 5"); r.Code != 5 {
		t.Fatalf("exec exit code: %s", r)
	}
	if r := s.pelagos(t, "exec", "-u", "1000", "-w", "/tmp/newdir", "-e", "X=1", "ex", "sh", "-c", "id -u; pwd; echo $X"); r.Stdout != "1000\n/tmp/newdir\n1\n" {
		t.Fatalf("exec -u -w -e: %s", r)
	}
	r = s.runIn(t, []byte("typed\n"), nil, filepath.Join(S.bin, "pelagos"), "exec", "-i", "ex", "cat")
	if r.Stdout != "typed\n" {
		t.Fatalf("exec -i: %s", r)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"exec", "ex", "nosuchcmd"}, 127, "executable file not found"},
		{[]string{"exec", "ex", "/etc/passwd"}, 126, "permission denied"},
		{[]string{"exec", "nosuch", "true"}, 125, "no such container"},
		{[]string{"exec", "ex"}, 125, "requires at least 2 arguments"},
		{[]string{"exec", "-u", "nobodyhere", "ex", "true"}, 125, "unable to find user"},
	} {
		if r := s.pelagos(t, tc.args...); r.Code != tc.code || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%v: want exit %d and %q, got %s", tc.args, tc.code, tc.want, r)
		}
	}
	s.mustPelagos(t, "stop", "-t", "0", "ex")
	if r := s.pelagos(t, "exec", "ex", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "is not running") {
		t.Fatalf("exec into a stopped container: %s", r)
	}
}

// TestExecDetach: exec -d returns at once while the command goes on.
func TestExecDetach(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	s.mustPelagos(t, "run", "-d", "--name", "execd", "--network", "none", "localhost/busybox", "sleep", "60")
	defer s.pelagos(t, "rm", "-f", "execd")
	start := time.Now()
	if res := s.pelagos(t, "exec", "-d", "execd", "sh", "-c", "sleep 1; touch /tmp/done-late"); res.Code != 0 || res.Stdout != "" {
		t.Fatalf("exec -d: %s", res)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Fatalf("exec -d took %v: it waited for the command", d)
	}
	if res := s.pelagos(t, "exec", "execd", "test", "-e", "/tmp/done-late"); res.Code != 1 {
		t.Fatalf("the detached command finished too early: %s", res)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if s.pelagos(t, "exec", "execd", "test", "-e", "/tmp/done-late").Code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the detached command never finished")
		}
	}
	if res := s.pelagos(t, "exec", "-d", "execd", "nosuchcmd"); res.Code != 127 {
		t.Fatalf("exec -d of a missing command: %s", res)
	}
	if res := s.pelagos(t, "exec", "-dt", "execd", "true"); res.Code != 125 || !strings.Contains(res.Stderr, "drop -t") {
		t.Fatalf("exec -dt: %s", res)
	}
}
