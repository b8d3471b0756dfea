package tests

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pelagos-containers/pelagos/tests/imagetest"
)

// Image archives made once per run from Debian's static busybox.
type fixtures struct {
	rootfs     string // rootfs directory
	rootfsTar  string // plain rootfs tar, for import
	ociArchive string // localhost/busybox:latest, Cmd ["sh"]
	configured string // localhost/configured:1, with entrypoint, env, workdir, user
	dockerArch string // docker-archive, localhost/dockerbox:latest
	garbage    string // not an archive at all
}

var (
	fixOnce sync.Once
	fix     fixtures
	fixErr  error
)

func images(t *testing.T) fixtures {
	t.Helper()
	needRoot(t)
	fixOnce.Do(func() {
		dir := filepath.Join(S.work, "images")
		if fixErr = os.MkdirAll(dir, 0o755); fixErr != nil {
			return
		}
		fix.rootfs = filepath.Join(dir, "rootfs")
		if fixErr = imagetest.BusyboxRootfs(fix.rootfs); fixErr != nil {
			return
		}
		fix.rootfsTar = filepath.Join(dir, "rootfs.tar")
		if fixErr = imagetest.WriteRootfsTar(fix.rootfs, fix.rootfsTar); fixErr != nil {
			return
		}
		fix.ociArchive = filepath.Join(dir, "busybox-oci.tar")
		if _, fixErr = imagetest.WriteOCIArchive(fix.rootfs, "localhost/busybox:latest", imagetest.Config{Cmd: []string{"sh"}}, fix.ociArchive); fixErr != nil {
			return
		}
		fix.configured = filepath.Join(dir, "configured-oci.tar")
		cfg := imagetest.Config{
			Entrypoint: []string{"/bin/sh", "-c"},
			Cmd:        []string{"echo default-cmd"},
			Env:        []string{"GREETING=from-image", "PATH=/bin:/usr/bin"},
			WorkingDir: "/srv/app",
			User:       "alice",
		}
		if _, fixErr = imagetest.WriteOCIArchive(fix.rootfs, "localhost/configured:1", cfg, fix.configured); fixErr != nil {
			return
		}
		fix.dockerArch = filepath.Join(dir, "dockerbox.tar")
		if fixErr = imagetest.WriteDockerArchive(fix.rootfs, "localhost/dockerbox:latest", imagetest.Config{Cmd: []string{"sh"}}, fix.dockerArch); fixErr != nil {
			return
		}
		fix.garbage = filepath.Join(dir, "garbage.tar")
		fixErr = os.WriteFile(fix.garbage, []byte("this is not a tar archive, just text\n"), 0o644)
		if fixErr == nil {
			fixErr = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
				if err != nil || fi.Mode()&os.ModeSymlink != 0 {
					return err
				}
				return os.Chmod(p, fi.Mode().Perm()|0o044|map[bool]os.FileMode{true: 0o011, false: 0}[fi.IsDir()])
			})
		}
	})
	if fixErr != nil {
		t.Fatalf("make test images: %v", fixErr)
	}
	return fix
}

// withBusybox makes sure localhost/busybox is loaded for s.
func withBusybox(t *testing.T, s *userSession) {
	t.Helper()
	f := images(t)
	if r := s.pelagos(t, "images", "-q", "--no-trunc"); r.Code == 0 && len(r.Stdout) > 0 {
		if s.pelagos(t, "run", "--rm", "localhost/busybox", "true").Code == 0 {
			return
		}
	}
	s.mustPelagos(t, "load", "-i", f.ociArchive)
}
