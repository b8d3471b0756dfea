package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pelagos-containers/pelagos/tests/imagetest"
)

// statusField reads one field of /proc/self/status inside a container
// run with extra flags.
func statusFields(t *testing.T, s *userSession, flags ...string) map[string]string {
	t.Helper()
	args := append([]string{"run", "--rm"}, flags...)
	args = append(args, "localhost/busybox", "cat", "/proc/self/status")
	r := s.pelagos(t, args...)
	if r.Code != 0 {
		t.Fatalf("run %v: %s", flags, r)
	}
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^(\w+):\s+(.*)$`).FindAllStringSubmatch(r.Stdout, -1) {
		out[m[1]] = m[2]
	}
	return out
}

func TestDefaultIsolation(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	st := statusFields(t, s)
	for k, want := range map[string]string{
		"CapEff": "00000000800405fb", "CapPrm": "00000000800405fb", "CapBnd": "00000000800405fb",
		"CapInh": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2",
	} {
		if st[k] != want {
			t.Errorf("%s = %q, want %q", k, st[k], want)
		}
	}
	// Things a default container must not be able to do.
	for _, tc := range []struct{ name, script string }{
		{"mount", "mount -t tmpfs none /tmp"},
		{"new user namespace", "unshare -U true"},
		{"new mount namespace", "unshare -m true"},
		{"reboot", "reboot -f"},
		{"load a module", "insmod /nonexistent.ko"},
		{"mknod", "mknod /tmp/sda b 8 0"},
		{"change the hostname", "hostname evil"},
		{"write /proc/sys", "echo 1 > /proc/sys/kernel/domainname"},
		{"write /sys", "echo 1 > /sys/kernel/profiling"},
		{"swapon", "swapon /dev/null"},
		{"set the clock", "hwclock -s"},
	} {
		r := s.pelagos(t, "run", "--rm", "localhost/busybox", "sh", "-c", tc.script+" 2>/dev/null && echo ALLOWED || echo refused")
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != "refused" {
			t.Errorf("%s: a default container could do it: %s", tc.name, r)
		}
	}
	// Masked kernel paths show nothing.
	r := s.pelagos(t, "run", "--rm", "localhost/busybox", "sh", "-c",
		"ls -A /sys/firmware | wc -l; cat /proc/keys 2>/dev/null | wc -c; cat /proc/timer_list 2>/dev/null | wc -c; ls -A /proc/scsi 2>/dev/null | wc -l")
	if r.Code != 0 || strings.Fields(r.Stdout)[0] != "0" || strings.Join(strings.Fields(r.Stdout), " ") != "0 0 0 0" {
		t.Errorf("masked paths not empty: %s", r)
	}
	// A non-root container user has no capabilities at all.
	if st := statusFields(t, s, "-u", "1000"); st["CapEff"] != "0000000000000000" || st["CapPrm"] != "0000000000000000" {
		t.Errorf("uid 1000: CapEff %s CapPrm %s", st["CapEff"], st["CapPrm"])
	}
}

func TestIsolationOptions(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	if st := statusFields(t, s, "--cap-drop", "ALL"); st["CapEff"] != "0000000000000000" || st["CapBnd"] != "0000000000000000" {
		t.Errorf("--cap-drop ALL: %v", st["CapEff"])
	}
	if st := statusFields(t, s, "--cap-drop", "ALL", "--cap-add", "net_raw"); st["CapEff"] != "0000000000002000" {
		t.Errorf("--cap-drop ALL --cap-add net_raw: %v", st["CapEff"])
	}
	if st := statusFields(t, s, "--cap-add", "SYS_PTRACE"); st["CapEff"] != "00000000800c05fb" {
		t.Errorf("--cap-add SYS_PTRACE: %v", st["CapEff"])
	}
	st := statusFields(t, s, "--security-opt", "seccomp=unconfined", "--security-opt", "no-new-privileges=false")
	if st["Seccomp"] != "0" || st["NoNewPrivs"] != "0" {
		t.Errorf("seccomp=unconfined, no-new-privileges=false: Seccomp %s NoNewPrivs %s", st["Seccomp"], st["NoNewPrivs"])
	}
	st = statusFields(t, s, "--privileged")
	if st["CapEff"] != "000001ffffffffff" || st["Seccomp"] != "0" {
		t.Errorf("--privileged: CapEff %s Seccomp %s", st["CapEff"], st["Seccomp"])
	}
	// --privileged is still rootless: the mount works, inside our own
	// namespaces only.
	if r := s.pelagos(t, "run", "--rm", "--privileged", "localhost/busybox", "sh", "-c", "mount -t tmpfs none /tmp && echo mounted"); r.Stdout != "mounted\n" {
		t.Errorf("--privileged mount: %s", r)
	}
	r := s.pelagos(t, "run", "--rm", "--read-only", "localhost/busybox", "sh", "-c", "touch /x 2>/dev/null && echo WROTE || echo ro; echo ok > /dev/shm/y && cat /dev/shm/y")
	if r.Stdout != "ro\nok\n" {
		t.Errorf("--read-only: %s", r)
	}
	// A custom profile: deny mkdir with EACCES.
	prof := filepath.Join(S.work, "deny-mkdir.json")
	os.WriteFile(prof, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`), 0o644)
	r = s.pelagos(t, "run", "--rm", "--security-opt", "seccomp="+prof, "localhost/busybox", "mkdir", "/tmp/d")
	if r.Code == 0 || !strings.Contains(r.Stderr, "Permission denied") {
		t.Errorf("custom seccomp profile: %s", r)
	}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--cap-add", "NOPE"}, `unknown capability "NOPE"`},
		{[]string{"--security-opt", "seccomp=relative.json"}, "no such file"},
		{[]string{"--security-opt", "seccomp=" + filepath.Join(S.work, "envfile")}, "not a valid seccomp profile"},
		{[]string{"--security-opt", "bogus"}, `unknown option`},
		{[]string{"--security-opt", "no-new-privileges=maybe"}, "no-new-privileges=false"},
		{[]string{"--security-opt", "apparmor=myprofile"}, "AppArmor"},
	} {
		os.WriteFile(filepath.Join(S.work, "envfile"), []byte("A=1\n"), 0o644)
		args := append(append([]string{"run", "--rm"}, tc.flags...), "localhost/busybox", "true")
		if r := s.pelagos(t, args...); r.Code != 125 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%v: want exit 125 and %q, got %s", tc.flags, tc.want, r)
		}
	}
}

// TestGlibcThreadsUnderSeccomp: glibc creates threads with clone3 and
// falls back to clone only on ENOSYS; a filter that answers EPERM breaks
// every threaded program. A real C program proves the default profile
// gets it right.
func TestGlibcThreadsUnderSeccomp(t *testing.T) {
	needRoot(t)
	s := S.main
	dir := filepath.Join(S.work, "threads")
	root := filepath.Join(dir, "rootfs")
	os.MkdirAll(root, 0o755)
	src := filepath.Join(dir, "threads.c")
	os.WriteFile(src, []byte(`#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
static void *work(void *arg) { return arg; }
int main(void) {
	long r = syscall(SYS_clone3, NULL, 0);
	printf("clone3 errno %d\n", r < 0 ? errno : 0);
	pthread_t t[8];
	for (int i = 0; i < 8; i++)
		if (pthread_create(&t[i], NULL, work, NULL) != 0) { printf("pthread_create failed\n"); return 1; }
	for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
	printf("8 threads ok\n");
	return 0;
}
`), 0o644)
	bin := filepath.Join(dir, "threads")
	if out, err := exec.Command("gcc", "-O2", "-pthread", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v %s", err, out)
	}
	if err := imagetest.GlibcRootfs(root, bin); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(dir, "threads.tar")
	if err := imagetest.WriteRootfsTar(root, tarball); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	os.Chmod(tarball, 0o644)
	s.mustPelagos(t, "import", tarball, "localhost/threads")
	defer s.pelagos(t, "rmi", "-f", "localhost/threads")
	r := s.pelagos(t, "run", "--rm", "localhost/threads", bin)
	if r.Code != 0 || r.Stdout != "clone3 errno 38\n8 threads ok\n" {
		t.Fatalf("threads under the default profile (want clone3 → ENOSYS): %s", r)
	}
}

func TestProcessOptions(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	r := s.pelagos(t, "run", "--rm", "--ulimit", "nofile=512:1024", "--sysctl", "net.ipv4.ip_forward=1",
		"--sysctl", "kernel.shmmax=1000000", "--group-add", "alice", "--group-add", "4242",
		"--device", "/dev/null:/dev/mynull", "localhost/busybox", "sh", "-c",
		"ulimit -n; ulimit -Hn; cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax; id -G; echo x > /dev/mynull && echo dev-ok")
	if r.Code != 0 || r.Stdout != "512\n1024\n1\n1000000\n0 1000 4242\ndev-ok\n" {
		t.Fatalf("ulimit/sysctl/group-add/device: %s", r)
	}
	// The host's sysctl is untouched by the container's.
	if b, _ := os.ReadFile("/proc/sys/kernel/shmmax"); strings.TrimSpace(string(b)) == "1000000" {
		t.Fatal("--sysctl kernel.shmmax changed the host")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ulimit", "nofile=a:b"}, "limits must be numbers"},
		{[]string{"--ulimit", "bogus=1"}, "use NAME=SOFT[:HARD]"},
		{[]string{"--ulimit", "nofile=20:10"}, "soft limit is above the hard limit"},
		{[]string{"--sysctl", "kernel.hostname=x"}, "not a namespaced parameter"},
		{[]string{"--sysctl", "vm.swappiness=1"}, "not a namespaced parameter"},
		{[]string{"--sysctl", "novalue"}, "use KEY=VALUE"},
		{[]string{"--device", "/etc/passwd:/dev/pw"}, "not a device node"},
		{[]string{"--device", "/etc/passwd"}, "container path under /dev"},
		{[]string{"--device", "/dev/nosuch"}, "no such file"},
		{[]string{"--device", "/dev/null:xyz"}, "letters of rwm"},
		{[]string{"--device", "/dev/null:r"}, "needs a device cgroup"},
		{[]string{"--group-add", "nosuchgroup"}, "no such group"},
		{[]string{"--user", "nosuchuser"}, "-u/--user nosuchuser"},
		{[]string{"--user", "root:nosuchgroup"}, "unable to find group nosuchgroup"},
	} {
		args := append(append([]string{"run", "--rm"}, tc.args...), "localhost/busybox", "true")
		if r := s.pelagos(t, args...); r.Code != 125 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%v: want exit 125 and %q, got %s", tc.args, tc.want, r)
		}
	}
	// A user the image lacks is refused at create: no container is left
	// behind even without --rm.
	before := s.mustPelagos(t, "ps", "-aq")
	if r := s.pelagos(t, "run", "--user", "nosuchuser", "localhost/busybox", "true"); r.Code != 125 {
		t.Errorf("--user nosuchuser: %s", r)
	}
	if after := s.mustPelagos(t, "ps", "-aq"); after != before {
		t.Errorf("a refused --user left a container: before %q, after %q", before, after)
	}
}

// TestResourceLimitsRefusedWithoutDelegation: this machine has hybrid
// cgroups (v1 controllers), so limits cannot be enforced: a run that asks
// for one fails saying why and how to proceed, unless --cgroups=disabled.
// (The cgroup v2 code itself is unit-tested on a stand-in directory; no
// delegated v2 tree exists here.)
func TestResourceLimitsRefusedWithoutDelegation(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		t.Skip("this machine has a unified cgroup v2 hierarchy: the refusal path does not apply")
	}
	before := s.mustPelagos(t, "ps", "-aq")
	for _, flags := range [][]string{{"--memory", "512m"}, {"--cpus", "1"}, {"--pids-limit", "50"}, {"--cpuset-cpus", "0"}} {
		args := append(append([]string{"run", "--rm"}, flags...), "localhost/busybox", "true")
		r := s.pelagos(t, args...)
		if r.Code != 125 || !strings.Contains(r.Stderr, "cgroups v1") || !strings.Contains(r.Stderr, "--cgroups=disabled") {
			t.Errorf("%v: %s", flags, r)
		}
	}
	if r := s.pelagos(t, "run", "--rm", "--memory", "12zz", "localhost/busybox", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "--memory \"12zz\"") {
		t.Errorf("malformed --memory: %s", r)
	}
	if r := s.pelagos(t, "run", "--rm", "--memory", "512m", "--cgroups=disabled", "localhost/busybox", "echo", "unlimited"); r.Stdout != "unlimited\n" {
		t.Errorf("--cgroups=disabled: %s", r)
	}
	if after := s.mustPelagos(t, "ps", "-aq"); after != before {
		t.Errorf("refused runs left containers")
	}
}

// TestInitReapsAndForwards: --init keeps a small PID 1 that reaps
// orphans (without it, a shell that execs leaves a zombie) and passes
// signals on.
func TestInitReapsAndForwards(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	zombies := func(flags ...string) string {
		name := "zombie" + strconv.Itoa(len(flags))
		defer s.pelagos(t, "rm", "-f", name)
		args := append(append([]string{"run", "-d", "--name", name}, flags...), "localhost/busybox", "sh", "-c", "(sleep 0.1 &); exec sleep 30")
		s.mustPelagos(t, args...)
		time.Sleep(700 * time.Millisecond)
		return strings.TrimSpace(s.pelagos(t, "exec", name, "sh", "-c", `ps -o stat | grep -c "^Z"`).Stdout)
	}
	if n := zombies(); n != "1" {
		t.Fatalf("without --init the orphan should stay a zombie (the test's premise), got %s", n)
	}
	if n := zombies("--init"); n != "0" {
		t.Fatalf("--init did not reap the orphan: %s zombies", n)
	}
	if r := s.pelagos(t, "run", "--rm", "--init", "localhost/busybox", "cat", "/proc/1/cmdline"); !strings.HasPrefix(r.Stdout, "pelagos-init") {
		t.Fatalf("PID 1 under --init: %s", r)
	}
	cmd, out := s.startPelagos(t, "run", "--rm", "--init", "--name", "initsig", "localhost/busybox", "sh", "-c",
		`trap "echo got-term; exit 11" TERM; echo ready; while :; do sleep 0.1; done`)
	waitRunning(t, s, "initsig", out)
	cmd.Process.Signal(syscall.SIGTERM)
	if code := waitExit(t, cmd); code != 11 || !strings.Contains(out.String(), "got-term") {
		t.Fatalf("signal through --init: exit %d, %q", code, out.String())
	}
	if r := s.pelagos(t, "run", "--rm", "--init", "localhost/busybox", "nosuchcmd"); r.Code != 127 {
		t.Fatalf("--init with a missing command: %s", r)
	}
}

// TestSeccompProfiles: seccomp=minimal lets a container make a nested
// user namespace, which Docker's default profile refuses; iouring is
// the default plus io_uring; both keep a filter loaded.
func TestSeccompProfiles(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	probe := "unshare -U true 2>/dev/null && echo nested-userns; grep -c '^Seccomp:[[:space:]]2' /proc/self/status"
	for prof, want := range map[string]string{"default": "1\n", "iouring": "1\n", "minimal": "nested-userns\n1\n"} {
		res := s.pelagos(t, "run", "--rm", "--network", "none", "--security-opt", "seccomp="+prof, "localhost/busybox", "sh", "-c", probe)
		if res.Stdout != want {
			t.Errorf("seccomp=%s: want %q, got %s", prof, want, res)
		}
	}
	if res := s.pelagos(t, "run", "--rm", "--security-opt", "seccomp=", "localhost/busybox", "true"); res.Code != 125 || !strings.Contains(res.Stderr, "minimal") {
		t.Errorf("seccomp= empty: %s", res)
	}
}

// TestIsolationProbes runs a static Go probe in a default container:
// keyrings, raw sockets and ptrace of a host process are refused, a
// setuid-root binary gains nothing under no_new_privs (and does gain
// without it, so the probe can tell), and many OS threads start under
// the default seccomp profile.
func TestIsolationProbes(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	dir := filepath.Join(S.work, "isoprobe")
	os.MkdirAll(dir, 0o755)
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "isoprobe"), "./testdata/isoprobe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build isoprobe: %v: %s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(dir, "isoprobe"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "suidprobe"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "suidprobe"), os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(S.work, "isoprobe.tar")
	if _, err := imagetest.WriteOCIArchive(dir, "localhost/isoprobe:latest", imagetest.Config{Entrypoint: []string{"/isoprobe"}}, archive); err != nil {
		t.Fatal(err)
	}
	s.mustPelagos(t, "load", "-i", archive)
	defer s.pelagos(t, "rmi", "-f", "localhost/isoprobe")

	probe := func(flags []string, args ...string) string {
		t.Helper()
		a := append(append([]string{"run", "--rm"}, flags...), "localhost/isoprobe")
		r := s.pelagos(t, append(a, args...)...)
		if r.Code != 0 {
			t.Fatalf("probe %v %v: %s", flags, args, r)
		}
		return strings.TrimSpace(r.Stdout)
	}
	if out := probe(nil, "keyctl"); !strings.HasPrefix(out, "refused") {
		t.Errorf("add_key in a default container: %s", out)
	}
	if out := probe(nil, "raw"); !strings.HasPrefix(out, "refused") {
		t.Errorf("raw socket in a default container: %s", out)
	}
	// A host process (the test itself) is not even visible; attaching to
	// its pid must fail.
	if out := probe(nil, "ptrace", strconv.Itoa(os.Getpid())); !strings.HasPrefix(out, "refused") {
		t.Errorf("ptrace of a host pid: %s", out)
	}
	// The probe can tell: with --cap-add net_raw the raw socket opens.
	if out := probe([]string{"--cap-add", "net_raw"}, "raw"); out != "allowed" {
		t.Errorf("raw socket with --cap-add net_raw: %s", out)
	}
	if out := probe([]string{"-u", "1000"}, "ids"); out != "ruid=1000 euid=1000" {
		t.Errorf("plain binary as 1000: %s", out)
	}
	r := s.pelagos(t, "run", "--rm", "-u", "1000", "--entrypoint", "/suidprobe", "localhost/isoprobe", "ids")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "ruid=1000 euid=1000" {
		t.Errorf("a setuid-root binary gained privileges under no_new_privs: %s", r)
	}
	r = s.pelagos(t, "run", "--rm", "-u", "1000", "--security-opt", "no-new-privileges=false", "--entrypoint", "/suidprobe", "localhost/isoprobe", "ids")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "ruid=1000 euid=0" {
		t.Errorf("without no_new_privs the setuid bit should work inside the user namespace (the probe cannot tell otherwise): %s", r)
	}
	if out := probe(nil, "threads", "64"); out != "threads=64" {
		t.Errorf("64 OS threads under the default seccomp profile: %s", out)
	}
	// /proc/kcore is masked: nothing to read.
	r = s.pelagos(t, "run", "--rm", "localhost/busybox", "sh", "-c", "cat /proc/kcore 2>/dev/null | wc -c")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "0" {
		t.Errorf("/proc/kcore readable: %s", r)
	}
}
