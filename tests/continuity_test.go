package tests

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pidsNamed lists the user's processes whose name (comm) is name.
func pidsNamed(uid int, name string) []int {
	var pids []int
	for _, pid := range userProcesses(uid) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(b)) == name {
			pids = append(pids, pid)
		}
	}
	return pids
}

func signalAll(pids []int, sig syscall.Signal) {
	for _, p := range pids {
		syscall.Kill(p, sig)
	}
	for _, p := range pids {
		for i := 0; i < 300; i++ {
			if _, err := os.Stat("/proc/" + strconv.Itoa(p)); os.IsNotExist(err) {
				break
			}
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
			if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
				break // a zombie: gone, waiting for its parent
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// numbered checks that the log of name holds lines "n 1", "n 2", ...
// with no gap and returns the last number.
func numbered(t *testing.T, s *userSession, name string) int {
	t.Helper()
	out := s.mustPelagos(t, "logs", name)
	last := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 || f[0] != "n" {
			t.Fatalf("log of %s: unexpected line %q", name, l)
		}
		n, _ := strconv.Atoi(f[1])
		if n != last+1 {
			t.Fatalf("log of %s: line %d follows line %d: output was lost", name, n, last)
		}
		last = n
	}
	return last
}

// TestServiceContinuity kills each of pelagos's processes in turn (and
// all of them, and stops and upgrades the service) while containers run,
// and checks after each that everything still works through the next
// service: run, exec, top, logs with no gap, a published port, a health
// check that stays healthy, and the real exit code of a container that
// ended while no service ran.
func TestServiceContinuity(t *testing.T) {
	needPasta(t)
	s := S.main
	withBusybox(t, s)
	uid := s.u.UID
	port := freeTCPPort(t)
	names := []string{"tick", "cweb", "chc"}
	defer func() {
		for _, n := range append(names, "ender") {
			s.pelagos(t, "rm", "-f", n)
		}
	}()
	s.mustPelagos(t, "run", "-d", "--name", "tick", "--network", "none", "localhost/busybox", "sh", "-c",
		"i=0; while :; do i=$((i+1)); echo n $i; sleep 0.2; done")
	s.mustPelagos(t, "run", "-d", "--name", "cweb", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "localhost/busybox", "sh", "-c", httpdCmd)
	s.mustPelagos(t, "run", "-d", "--name", "chc", "--network", "none", "--health-cmd", "true",
		"--health-interval", "300ms", "localhost/busybox", "sleep", "1d")
	var ids []string
	for _, n := range names {
		ids = append(ids, strings.TrimSpace(s.mustPelagos(t, "inspect", "--format", "{{.Id}}", n)))
	}
	healthy := func(when string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			out := s.mustPelagos(t, "ps", "--filter", "name=chc", "--format", "{{.Status}}")
			if strings.Contains(out, "(healthy)") {
				return
			}
			if strings.Contains(out, "(unhealthy)") || time.Now().After(deadline) {
				t.Fatalf("%s: health of chc: %q", when, out)
			}
		}
	}
	healthy("before")
	// The first status after a restart must already be the old one.
	immediatelyHealthy := func(when string) {
		t.Helper()
		if out := s.mustPelagos(t, "ps", "--filter", "name=chc", "--format", "{{.Status}}"); !strings.Contains(out, "(healthy)") {
			t.Fatalf("%s: chc is no longer healthy: %q", when, out)
		}
	}
	newBinary := func() {
		// An upgrade: a new file is renamed over the installed one, as
		// dpkg does, while the old program still runs.
		src, err := os.Open(filepath.Join(S.bin, "pelagosd"))
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		tmp := filepath.Join(S.bin, ".pelagosd.new")
		dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		dst.Close()
		if err := os.Rename(tmp, filepath.Join(S.bin, "pelagosd")); err != nil {
			t.Fatal(err)
		}
	}
	scenarios := []struct {
		name string
		do   func()
		// enderKnown: a container that ends during the scenario has its
		// real code. Not so when every pelagos process was killed: then
		// nobody was its parent when it ended.
		enderKnown bool
	}{
		{"kill -9 pelagosd", func() { signalAll(pidsNamed(uid, "pelagosd"), syscall.SIGKILL) }, true},
		{"kill -9 pelagos-holder", func() { signalAll(pidsNamed(uid, "pelagos-holder"), syscall.SIGKILL) }, true},
		{"kill -9 every pelagos-monitor", func() { signalAll(pidsNamed(uid, "pelagos-monitor"), syscall.SIGKILL) }, true},
		{"kill -9 of all of them", func() {
			var all []int
			for _, n := range []string{"pelagosd", "pelagos-holder", "pelagos-monitor"} {
				all = append(all, pidsNamed(uid, n)...)
			}
			signalAll(all, syscall.SIGKILL)
		}, false},
		{"SIGTERM to pelagosd", func() { signalAll(pidsNamed(uid, "pelagosd"), syscall.SIGTERM) }, true},
		{"upgrade of pelagosd, then SIGTERM", func() { newBinary(); signalAll(pidsNamed(uid, "pelagosd"), syscall.SIGTERM) }, true},
	}
	lastLine := numbered(t, s, "tick")
	for _, sc := range scenarios {
		if sc.enderKnown {
			s.mustPelagos(t, "run", "-d", "--name", "ender", "--network", "none", "localhost/busybox", "sh", "-c", "sleep 1; exit 7")
		}
		if len(pidsNamed(uid, "pelagosd")) != 1 || len(pidsNamed(uid, "pelagos-holder")) != 1 {
			t.Fatalf("%s: want one pelagosd and one pelagos-holder, have %v and %v", sc.name, pidsNamed(uid, "pelagosd"), pidsNamed(uid, "pelagos-holder"))
		}
		sc.do()
		time.Sleep(2 * time.Second) // no service runs; ender ends, tick writes on
		immediatelyHealthy(sc.name)
		if out := s.mustPelagos(t, "run", "--rm", "--network", "none", "localhost/busybox", "echo", "ran"); out != "ran\n" {
			t.Fatalf("%s: run: %q", sc.name, out)
		}
		if out := s.mustPelagos(t, "exec", "tick", "echo", "exec-ok"); out != "exec-ok\n" {
			t.Fatalf("%s: exec: %q", sc.name, out)
		}
		if out := s.mustPelagos(t, "top", "tick"); !strings.Contains(out, "while") {
			t.Fatalf("%s: top:\n%s", sc.name, out)
		}
		if body, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil || body != "hello-from-cweb\n" {
			t.Fatalf("%s: published port: %q %v", sc.name, body, err)
		}
		if n := numbered(t, s, "tick"); n < lastLine+5 {
			t.Fatalf("%s: the log of tick grew from %d lines to %d in over 2s", sc.name, lastLine, n)
		} else {
			lastLine = n
		}
		healthy(sc.name)
		if sc.enderKnown {
			out := s.mustPelagos(t, "ps", "-a", "--filter", "name=ender", "--format", "{{.Status}}")
			if !strings.HasPrefix(out, "Exited (7)") {
				t.Fatalf("%s: a container that ended while no service ran: %q", sc.name, out)
			}
			s.mustPelagos(t, "rm", "ender")
		}
		for _, pid := range userProcesses(uid) {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(b)) == "exe" {
				cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				t.Fatalf("%s: a process shows as exe: %q", sc.name, cmd)
			}
		}
	}
	// A stop through a later service records the signal's code, never -1
	// (tick was not our child any more after every process was killed).
	s.mustPelagos(t, "stop", "-t", "1", "tick")
	if out := s.mustPelagos(t, "ps", "-a", "--filter", "name=tick", "--format", "{{.Status}}"); !regexp.MustCompile(`^Exited \((137|143)\)`).MatchString(out) {
		t.Fatalf("stop of tick: %q", out)
	}
	for _, n := range names {
		s.mustPelagos(t, "rm", "-f", n)
	}
	// Nothing is left of the containers: no monitor, no pasta, no
	// mount, no exit record, no network directory.
	time.Sleep(500 * time.Millisecond)
	if p := pidsNamed(uid, "pelagos-monitor"); len(p) != 0 {
		t.Errorf("monitors left: %v", p)
	}
	if n := pastaProcesses(uid); n != 0 {
		t.Errorf("%d pasta processes left", n)
	}
	rt := filepath.Join(s.runtimeDir, "pelagos")
	if n := countEntriesOf(filepath.Join(rt, "exits")); n != 0 {
		t.Errorf("%d exit records left", n)
	}
	if n := countEntriesOf(filepath.Join(rt, "net")); n != 0 {
		t.Errorf("%d network directories left", n)
	}
	for _, pid := range append(pidsNamed(uid, "pelagosd"), pidsNamed(uid, "pelagos-holder")...) {
		mi, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
		for _, id := range ids {
			if strings.Contains(string(mi), id) {
				t.Errorf("a mount of container %s is left in the namespace of pid %d", id, pid)
			}
		}
	}
}

// TestAttachAfterServiceRestart: the terminal of a `run -it` container
// lives in its monitor, so a later service can hand it to `attach`.
func TestAttachAfterServiceRestart(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	defer s.pelagos(t, "rm", "-f", "termkeep")
	ts := newTmux(t, s, "termkeep", 100, 30, filepath.Join(S.bin, "pelagos")+" run -it --name termkeep --network none localhost/busybox sh")
	ts.waitFor("/ #")
	exec.Command("tmux", "-L", "pelagos-test", "send-keys", "-t", "termkeep", "C-p", "C-q").Run()
	ts.waitFor("EXIT=0")
	signalAll(pidsNamed(s.u.UID, "pelagosd"), syscall.SIGKILL)
	ta := newTmux(t, s, "termback", 100, 30, filepath.Join(S.bin, "pelagos")+" attach termkeep")
	time.Sleep(300 * time.Millisecond)
	ta.send("echo back-$((5*5))")
	ta.waitFor("back-25")
	ta.send("exit 3")
	ta.waitFor("EXIT=3")
	if out := s.mustPelagos(t, "ps", "-a", "--filter", "name=termkeep", "--format", "{{.Status}}"); !strings.HasPrefix(out, "Exited (3)") {
		t.Fatalf("after exit: %q", out)
	}
}
