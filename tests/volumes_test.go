package tests

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pelagos-containers/pelagos/tests/imagetest"
)

func TestVolumesAndTmpfs(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	host := filepath.Join(S.work, "hostdir")
	os.MkdirAll(host, 0o755)
	os.WriteFile(filepath.Join(host, "from-host"), []byte("hello\n"), 0o644)
	os.Chown(host, s.u.UID, s.u.GID)
	os.Chown(filepath.Join(host, "from-host"), s.u.UID, s.u.GID)

	// A bind mount: host files inside, container writes outside, owned
	// by the user (container root is the user).
	r := s.pelagos(t, "run", "--rm", "-v", host+":/data", "localhost/busybox", "sh", "-c", "cat /data/from-host; echo back > /data/from-ctr")
	if r.Code != 0 || r.Stdout != "hello\n" {
		t.Fatalf("bind mount: %s", r)
	}
	fi, err := os.Stat(filepath.Join(host, "from-ctr"))
	if err != nil || hostOwner(fi) != s.u.UID {
		t.Fatalf("file written through the bind: %v, owner %d", err, hostOwner(fi))
	}
	// :ro refuses writes.
	r = s.pelagos(t, "run", "--rm", "-v", host+":/data:ro", "localhost/busybox", "sh", "-c", "echo x > /data/nope")
	if r.Code == 0 || !strings.Contains(r.Stderr, "Read-only file system") {
		t.Fatalf("read-only bind: %s", r)
	}
	// A named volume outlives its containers.
	s.mustPelagos(t, "run", "--rm", "-v", "keep:/v", "localhost/busybox", "sh", "-c", "echo persisted > /v/f")
	if r := s.pelagos(t, "run", "--rm", "-v", "keep:/v:ro", "localhost/busybox", "cat", "/v/f"); r.Stdout != "persisted\n" {
		t.Fatalf("named volume: %s", r)
	}
	// tmpfs with options, and the scratch tmpfs of --read-only.
	r = s.pelagos(t, "run", "--rm", "--tmpfs", "/scratch:size=1m,mode=700", "localhost/busybox", "sh", "-c",
		"stat -c %a /scratch; grep ' /scratch ' /proc/mounts | grep -c 'size=1024k'")
	if r.Code != 0 || r.Stdout != "700\n1\n" {
		t.Fatalf("tmpfs: %s", r)
	}
	r = s.pelagos(t, "run", "--rm", "--read-only", "localhost/busybox", "sh", "-c",
		"touch /tmp/a /run/b /var/tmp/c && echo scratch-ok; touch /root/x 2>/dev/null || echo root-ro")
	if r.Stdout != "scratch-ok\nroot-ro\n" {
		t.Fatalf("--read-only with tmpfs: %s", r)
	}
	r = s.pelagos(t, "run", "--rm", "--read-only", "--read-only-tmpfs=false", "localhost/busybox", "sh", "-c", "touch /tmp/a 2>/dev/null || echo tmp-ro")
	if r.Stdout != "tmp-ro\n" {
		t.Fatalf("--read-only-tmpfs=false: %s", r)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-v", "rel/dir:/x"}, "neither an absolute host path nor a volume name"},
		{[]string{"-v", host + ":relative"}, "must be absolute"},
		{[]string{"-v", host + ":/"}, "over the container's root"},
		{[]string{"-v", host + ":/x:bogus"}, `unknown option "bogus"`},
		{[]string{"-v", "/no/such/dir:/x"}, "no such file or directory"},
		{[]string{"-v", host}, "use /host/path:/container/path"},
		{[]string{"-v", host + ":/x", "--tmpfs", "/x"}, "both mount on /x"},
		{[]string{"--tmpfs", "/t:size"}, "needs a value"},
		{[]string{"--tmpfs", "/t:bogus"}, `unknown option "bogus"`},
	} {
		before := s.mustPelagos(t, "ps", "-aq")
		args := append(append([]string{"run", "--rm"}, tc.args...), "localhost/busybox", "true")
		if r := s.pelagos(t, args...); r.Code != 125 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%v: want exit 125 and %q, got %s", tc.args, tc.want, r)
		}
		if after := s.mustPelagos(t, "ps", "-aq"); after != before {
			t.Errorf("%v left a container", tc.args)
		}
	}
}

func hostOwner(fi os.FileInfo) int {
	if fi == nil {
		return -1
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}

// TestSymlinksCannotEscape: an image whose paths are symlinks to host
// locations cannot redirect a volume, a tmpfs or the working directory
// out of its root.
func TestSymlinksCannotEscape(t *testing.T) {
	needRoot(t)
	s := S.main
	f := images(t)
	dir := filepath.Join(S.work, "evil")
	root := filepath.Join(dir, "rootfs")
	if err := imagetest.BusyboxRootfs(root); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(S.work, "escape-target")
	os.Symlink(outside, filepath.Join(root, "escape"))
	os.Symlink("../../../../../../../.."+outside+"-rel", filepath.Join(root, "relescape"))
	tarball := filepath.Join(dir, "evil.tar")
	if err := imagetest.WriteRootfsTar(root, tarball); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	os.Chmod(tarball, 0o644)
	s.mustPelagos(t, "import", tarball, "localhost/evil")
	defer s.pelagos(t, "rmi", "-f", "localhost/evil")
	host := filepath.Dir(f.ociArchive)
	r := s.pelagos(t, "run", "--rm", "-v", host+":/escape/sub", "--tmpfs", "/relescape/t", "-w", "/escape/wd",
		"localhost/evil", "sh", "-c", "ls /escape/sub | grep -c busybox-oci.tar; pwd")
	// Inside, the symlink resolves within the container's own root.
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "1\n") || !strings.HasSuffix(r.Stdout, "escape-target/wd\n") {
		t.Fatalf("run with symlinked destinations: %s", r)
	}
	for _, p := range []string{outside, outside + "-rel"} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("a symlink in the image reached the host: %s exists (%v)", p, err)
		}
	}
}

func TestVolumeCommands(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	if out := s.mustPelagos(t, "volume", "create", "vdata"); out != "vdata\n" {
		t.Fatalf("volume create: %q", out)
	}
	if out := s.mustPelagos(t, "volume", "ls", "-q"); !strings.Contains(out, "vdata\n") {
		t.Fatalf("volume ls: %q", out)
	}
	s.mustPelagos(t, "run", "--name", "vuser", "-v", "vdata:/d", "localhost/busybox", "sh", "-c", "echo kept > /d/f")
	out := s.mustPelagos(t, "volume", "inspect", "vdata")
	if !strings.Contains(out, `"vuser"`) || !strings.Contains(out, "volumes/vdata/_data") {
		t.Fatalf("volume inspect: %s", out)
	}
	if r := s.pelagos(t, "volume", "rm", "vdata"); r.Code != 2 || !strings.Contains(r.Stderr, "in use by container(s) vuser") {
		t.Fatalf("rm of a volume in use: %s", r)
	}
	if r := s.pelagos(t, "volume", "create", "bad/name"); r.Code != 125 || !strings.Contains(r.Stderr, "invalid volume name") {
		t.Fatalf("bad volume name: %s", r)
	}
	s.mustPelagos(t, "volume", "rm", "-f", "vdata")
	if out := s.mustPelagos(t, "ps", "-a"); strings.Contains(out, "vuser") {
		t.Fatalf("volume rm -f left its container")
	}
	if r := s.pelagos(t, "volume", "rm", "vdata"); r.Code != 1 || !strings.Contains(r.Stderr, "no such volume") {
		t.Fatalf("rm of a removed volume: %s", r)
	}
	s.mustPelagos(t, "volume", "create", "unused")
	if out := s.mustPelagos(t, "volume", "prune"); !strings.Contains(out, "unused\n") {
		t.Fatalf("prune: %q", out)
	}
	if out := s.mustPelagos(t, "volume", "ls", "-q"); strings.Contains(out, "unused") {
		t.Fatalf("prune left the volume: %q", out)
	}
}

// TestMountFlagAndMaskedPaths: --mount, --bind-ro and --masked-path, as
// podman users write them.
func TestMountFlagAndMaskedPaths(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	dir := filepath.Join(s.u.Home, "mount-src")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "f"), []byte("from-host\n"), 0o644)
	os.Chown(dir, s.u.UID, s.u.GID)
	defer os.RemoveAll(dir)
	res := s.pelagos(t, "run", "--rm", "--network", "none",
		"--mount", "type=bind,source="+dir+",target=/m,readonly",
		"--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m",
		"--bind-ro", dir+":/r",
		"localhost/busybox", "sh", "-c", "cat /m/f /r/f; touch /m/x 2>/dev/null || echo m-ro; grep -c ' /scratch tmpfs ' /proc/mounts")
	if res.Code != 0 || res.Stdout != "from-host\nfrom-host\nm-ro\n1\n" {
		t.Fatalf("--mount/--bind-ro: %s", res)
	}
	res = s.pelagos(t, "run", "--rm", "--network", "none", "--masked-path", "/etc/hostname", "--security-opt", "mask=/etc/hosts",
		"localhost/busybox", "sh", "-c", "wc -c < /etc/hostname; wc -c < /etc/hosts")
	if res.Code != 0 || res.Stdout != "0\n0\n" {
		t.Fatalf("--masked-path: %s", res)
	}
	for _, args := range [][]string{{"--mount", "type=nfs,source=x,target=/y"}, {"--masked-path", "relative/p"}, {"--security-opt", "mask=/"}} {
		if res := s.pelagos(t, append(append([]string{"run", "--rm"}, args...), "localhost/busybox", "true")...); res.Code != 125 {
			t.Errorf("%v: want exit 125, got %s", args, res)
		}
	}
}
