package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelagos-containers/pelagos/tests/imagetest"
)

// TestGlibcUserland runs dynamically linked host programs (bash, coreutils,
// getent through NSS) in a container: the dynamic loader, shared
// libraries and name service switch must work, not only a static busybox.
func TestGlibcUserland(t *testing.T) {
	needRoot(t)
	s := S.main
	dir := filepath.Join(S.work, "glibc")
	root := filepath.Join(dir, "rootfs")
	progs := []string{"/bin/bash", "/usr/bin/id", "/usr/bin/env", "/usr/bin/getent", "/usr/bin/ls"}
	if err := imagetest.GlibcRootfs(root, progs...); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(dir, "glibc.tar")
	if err := imagetest.WriteRootfsTar(root, tarball); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	os.Chmod(tarball, 0o644)
	s.mustPelagos(t, "import", tarball, "localhost/glibc")
	defer s.pelagos(t, "rmi", "-f", "localhost/glibc")
	r := s.pelagos(t, "run", "--rm", "-u", "daemon", "localhost/glibc", "/bin/bash", "-c",
		`echo "bash $BASH_VERSINFO"; id -un; getent passwd root | cut -d: -f1 2>/dev/null || getent passwd root; ls /`)
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "bash 5\ndaemon\nroot") {
		t.Fatalf("glibc userland: %s", r)
	}
}
