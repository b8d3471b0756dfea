package tests

import (
	"strings"
	"testing"
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
