package tests

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBusyboxScriptImage: the image scripts/mkbusybox-rootfs.sh makes (the
// one the demo runs, and that users copy) serves a non-root user too.
func TestBusyboxScriptImage(t *testing.T) {
	needRoot(t)
	s := S.main
	tarball := filepath.Join(S.work, "script-busybox.tar")
	if out, err := exec.Command("bash", filepath.Join(repoRoot(), "scripts", "mkbusybox-rootfs.sh"), tarball).CombinedOutput(); err != nil {
		t.Fatalf("mkbusybox-rootfs.sh: %v\n%s", err, out)
	}
	if out, err := exec.Command("chmod", "0644", tarball).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v %s", err, out)
	}
	s.mustPelagos(t, "import", tarball, "localhost/scriptbox")
	defer s.pelagos(t, "rmi", "localhost/scriptbox")
	for _, user := range []string{"0", "1000", "alice", "65534"} {
		if out := s.mustPelagos(t, "run", "--rm", "--network", "none", "-u", user, "localhost/scriptbox", "sh", "-c", "ls / >/dev/null && echo ok"); out != "ok\n" {
			t.Fatalf("-u %s: %q", user, out)
		}
	}
}
