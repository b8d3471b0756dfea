package tests

import (
	"strings"
	"testing"
	"time"
)

// TestWithoutSubordinateIDs runs as a user with no /etc/subuid range: the
// service falls back to mapping only the user's uid and says so.
func TestWithoutSubordinateIDs(t *testing.T) {
	needRoot(t)
	f := images(t)
	u, err := ensureUser("pelagos-nosub", false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := startSession(u, "nosub")
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	out := s.mustPelagos(t, "info")
	if !strings.Contains(out, "uidsMapped: 1\n") || !strings.Contains(out, "/etc/subuid") {
		t.Fatalf("info without subuids:\n%s", out)
	}
	s.mustPelagos(t, "load", "-i", f.ociArchive)
	r := s.pelagos(t, "run", "--rm", "localhost/busybox", "sh", "-c", "id -u; echo ok")
	if r.Code != 0 || r.Stdout != "0\nok\n" {
		t.Fatalf("run without subuids: %s", r)
	}
	// A uid that is not mapped cannot be used: a clear error, not a hang.
	r = s.pelagos(t, "run", "--rm", "-u", "1000", "localhost/busybox", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "/etc/sub") {
		t.Fatalf("unmapped uid: %s", r)
	}
}

// TestServiceCannotStart: when pelagosd cannot be started the CLI says so
// in one line with where to look, instead of hanging.
func TestServiceCannotStart(t *testing.T) {
	needRoot(t)
	u, err := ensureUser("pelagos-broken", true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := startSessionExec(u, "broken", "/nonexistent/pelagosd")
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	r := s.pelagos(t, "ps")
	if r.Code != 125 || !strings.Contains(r.Stderr, "cannot reach pelagosd") || strings.Count(r.Stderr, "\n") != 1 {
		t.Fatalf("service that cannot start: %s", r)
	}
	// A service that starts and exits at once is reported the same way.
	s2, err := startSessionExec(u, "broken2", "/bin/false")
	if err != nil {
		t.Fatal(err)
	}
	defer s2.stop()
	if r := s2.pelagos(t, "images"); r.Code != 125 || !strings.Contains(r.Stderr, "cannot reach pelagosd") {
		t.Fatalf("service that exits at once: %s", r)
	}
}

// TestIdleExitAndReactivation: the service exits when idle with nothing
// running, and the next call starts it again.
func TestIdleExitAndReactivation(t *testing.T) {
	needRoot(t)
	u, err := ensureUser("pelagos-idle", true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := startSessionExec(u, "idle", S.bin+"/pelagosd --idle-timeout 2s")
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	s.mustPelagos(t, "ps")
	first := s.servicePid(t)
	if first == 0 {
		t.Fatal("no service after a call")
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.servicePid(t) != 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if s.servicePid(t) != 0 {
		t.Fatal("the service did not exit when idle")
	}
	s.mustPelagos(t, "ps")
	if second := s.servicePid(t); second == 0 || second == first {
		t.Fatalf("not re-activated: %d then %d", first, second)
	}
}
