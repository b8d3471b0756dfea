package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLoadImagesRun(t *testing.T) {
	needRoot(t)
	s, f := S.main, images(t)
	out := s.mustPelagos(t, "load", "-i", f.ociArchive)
	if !strings.Contains(out, "Loaded image: localhost/busybox:latest") {
		t.Fatalf("load output: %q", out)
	}
	out = s.mustPelagos(t, "images")
	if !regexp.MustCompile(`(?m)^localhost/busybox\s+latest\s+[0-9a-f]{12}\s`).MatchString(out) {
		t.Fatalf("images does not list localhost/busybox latest:\n%s", out)
	}
	if !strings.HasPrefix(out, "REPOSITORY") {
		t.Fatalf("images has no podman-style header:\n%s", out)
	}

	r := s.pelagos(t, "run", "--rm", "localhost/busybox", "echo", "hello")
	if r.Code != 0 || r.Stdout != "hello\n" {
		t.Fatalf("run echo hello: %s", r)
	}
	for _, tc := range []struct {
		script string
		code   int
	}{
		{"exit 3", 3},
		{"exit 0", 0},
		{"sleep 60 & kill -9 $!; wait $!", 128 + 9}, // the shell reports a killed child as 128+N
	} {
		if r := s.pelagos(t, "run", "--rm", "localhost/busybox", "sh", "-c", tc.script); r.Code != tc.code {
			t.Errorf("sh -c %q: want exit %d, got %s", tc.script, tc.code, r)
		}
	}
	// Output and stderr reach the caller's own files, in order.
	r = s.pelagos(t, "run", "--rm", "localhost/busybox", "sh", "-c", "for i in 1 2 3; do echo out$i; echo err$i >&2; done")
	if r.Stdout != "out1\nout2\nout3\n" || r.Stderr != "err1\nerr2\nerr3\n" {
		t.Fatalf("stdout/stderr: %s", r)
	}
	// Without -i the container's stdin is empty; with -i it is ours.
	r = s.runIn(t, []byte("piped input\n"), nil, filepath.Join(S.bin, "pelagos"), "run", "--rm", "-i", "localhost/busybox", "cat")
	if r.Code != 0 || r.Stdout != "piped input\n" {
		t.Fatalf("run -i cat: %s", r)
	}
	r = s.runIn(t, []byte("ignored\n"), nil, filepath.Join(S.bin, "pelagos"), "run", "--rm", "localhost/busybox", "cat")
	if r.Code != 0 || r.Stdout != "" {
		t.Fatalf("run cat without -i: %s", r)
	}
}

func TestContainerIdentityAndNamespaces(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	defer s.pelagos(t, "rm", "-f", "web")
	r := s.pelagos(t, "run", "--name", "web", "localhost/busybox", "id")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "uid=0(root) gid=0(root)") {
		t.Fatalf("id in container: %s", r)
	}
	// Hostname is the container name; PID 1 is the command; with
	// --network none only lo (the default network has eth0 too: see
	// network_test.go).
	r = s.pelagos(t, "run", "--rm", "--name", "nsprobe", "--network", "none", "localhost/busybox", "sh", "-c",
		"hostname; echo pid=$$; ls /sys/class/net; cat /etc/hostname; grep -c nsprobe /etc/hosts")
	want := "nsprobe\npid=1\nlo\nnsprobe\n1\n"
	if r.Code != 0 || r.Stdout != want {
		t.Fatalf("namespaces: want %q, got %s", want, r)
	}
	// /proc is the container's own, /sys read-only, /dev minimal.
	r = s.pelagos(t, "run", "--rm", "localhost/busybox", "sh", "-c",
		"cat /proc/1/comm; touch /sys/x 2>/dev/null && echo sys-rw || echo sys-ro; ls /dev | tr '\\n' ' '")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "sh\nsys-ro\n") {
		t.Fatalf("proc/sys: %s", r)
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx", "fd"} {
		if !strings.Contains(" "+r.Stdout, " "+d+" ") {
			t.Errorf("/dev lacks %s: %q", d, r.Stdout)
		}
	}

	// uid 0 inside is the user outside; uid 1000 inside is a subuid.
	id := strings.TrimSpace(s.mustPelagos(t, "run", "-d", "--name", "idprobe", "localhost/busybox", "sleep", "60"))
	defer s.pelagos(t, "rm", "-f", "idprobe")
	pid := containerPid(t, s, id)
	if got := hostUID(t, pid); got != s.u.UID {
		t.Errorf("container root runs as host uid %d, want the user's %d", got, s.u.UID)
	}
	id2 := strings.TrimSpace(s.mustPelagos(t, "run", "-d", "--name", "idprobe2", "-u", "1000", "localhost/busybox", "sleep", "60"))
	defer s.pelagos(t, "rm", "-f", "idprobe2")
	start := subIDStart(t, s.u.Name)
	if got := hostUID(t, containerPid(t, s, id2)); got != start+999 {
		t.Errorf("container uid 1000 runs as host uid %d, want subuid %d", got, start+999)
	}
}

func containerPid(t *testing.T, s *userSession, id string) int {
	t.Helper()
	r := s.busctl(t, "get-property", "io.pelagos.Pelagos1", "/io/pelagos/Pelagos1/container/"+id, "io.pelagos.Pelagos1.Container", "Pid")
	f := strings.Fields(r.Stdout)
	if r.Code != 0 || len(f) != 2 {
		t.Fatalf("Pid property: %s", r)
	}
	pid, _ := strconv.Atoi(f[1])
	if pid <= 0 {
		t.Fatalf("Pid property is %q", r.Stdout)
	}
	return pid
}

func hostUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Uid:\s+(\d+)`).FindSubmatch(b)
	uid, _ := strconv.Atoi(string(m[1]))
	return uid
}

func subIDStart(t *testing.T, name string) int {
	t.Helper()
	b, _ := os.ReadFile("/etc/subuid")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Split(l, ":"); len(f) == 3 && f[0] == name {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatalf("no subuid range for %s", name)
	return 0
}

func TestPsAndRm(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	if r := s.pelagos(t, "run", "--name", "listed", "localhost/busybox", "sh", "-c", "exit 7"); r.Code != 7 {
		t.Fatalf("exit 7: %s", r)
	}
	defer s.pelagos(t, "rm", "-f", "listed")
	out := s.mustPelagos(t, "ps", "-a")
	if !regexp.MustCompile(`(?m)^[0-9a-f]{12}\s+localhost/busybox\s+.*Exited \(7\).*\s+listed$`).MatchString(out) {
		t.Fatalf("ps -a:\n%s", out)
	}
	if out := s.mustPelagos(t, "ps"); strings.Contains(out, "listed") {
		t.Fatalf("ps without -a lists an exited container:\n%s", out)
	}
	if out := s.mustPelagos(t, "rm", "listed"); out != "listed\n" {
		t.Fatalf("rm output %q", out)
	}
	if out := s.mustPelagos(t, "ps", "-a"); strings.Contains(out, "listed") {
		t.Fatalf("removed container still listed:\n%s", out)
	}
	r := s.pelagos(t, "rm", "listed")
	if r.Code != 1 || !strings.Contains(r.Stderr, "no such container: listed") {
		t.Fatalf("rm of a removed container: %s", r)
	}

	// A running container is refused without -f (podman's exit 2).
	s.mustPelagos(t, "run", "-d", "--name", "busy", "localhost/busybox", "sleep", "60")
	r = s.pelagos(t, "rm", "busy")
	if r.Code != 2 || !strings.Contains(r.Stderr, "is running") || !strings.Contains(r.Stderr, "rm -f") {
		t.Fatalf("rm of a running container: %s", r)
	}
	if out := s.mustPelagos(t, "ps"); !strings.Contains(out, "busy") || !strings.Contains(out, "Up ") {
		t.Fatalf("ps while running:\n%s", out)
	}
	s.mustPelagos(t, "rm", "-f", "busy")
	if out := s.mustPelagos(t, "ps", "-a"); strings.Contains(out, " busy\n") {
		t.Fatalf("rm -f left the container:\n%s", out)
	}
}

func TestDefaultNamesAndNameInUse(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	for _, c := range strings.Fields(s.mustPelagos(t, "ps", "-aq")) {
		s.pelagos(t, "rm", "-f", c)
	}
	s.mustPelagos(t, "run", "localhost/busybox", "true")
	s.mustPelagos(t, "run", "localhost/busybox", "true")
	out := s.mustPelagos(t, "ps", "-a")
	if !strings.Contains(out, "pelagos-1\n") || !strings.Contains(out, "pelagos-2\n") {
		t.Fatalf("default names:\n%s", out)
	}
	s.mustPelagos(t, "rm", "pelagos-1")
	s.mustPelagos(t, "run", "--rm", "--name", "pelagos-3", "localhost/busybox", "true")
	s.mustPelagos(t, "run", "localhost/busybox", "true") // takes the free pelagos-1
	out = s.mustPelagos(t, "ps", "-a")
	if !strings.Contains(out, "pelagos-1\n") {
		t.Fatalf("lowest free name not reused:\n%s", out)
	}
	s.mustPelagos(t, "rm", "pelagos-1", "pelagos-2")

	s.mustPelagos(t, "run", "-d", "--name", "dup", "localhost/busybox", "sleep", "60")
	defer s.pelagos(t, "rm", "-f", "dup")
	before := s.mustPelagos(t, "ps", "-aq")
	r := s.pelagos(t, "run", "--name", "dup", "localhost/busybox", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, `"dup" is already in use`) || strings.Count(r.Stderr, "\n") != 1 {
		t.Fatalf("name in use: %s", r)
	}
	if after := s.mustPelagos(t, "ps", "-aq"); after != before {
		t.Fatalf("a refused run left a container: before %q after %q", before, after)
	}
	r = s.pelagos(t, "run", "--name", "bad/name", "localhost/busybox", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "invalid container name") {
		t.Fatalf("invalid name: %s", r)
	}
}

func TestImageConfigApplied(t *testing.T) {
	needRoot(t)
	s, f := S.main, images(t)
	s.mustPelagos(t, "load", "-i", f.configured)
	defer s.pelagos(t, "rmi", "-f", "localhost/configured:1")
	r := s.pelagos(t, "run", "--rm", "localhost/configured:1")
	if r.Code != 0 || r.Stdout != "default-cmd\n" {
		t.Fatalf("entrypoint+cmd: %s", r)
	}
	r = s.pelagos(t, "run", "--rm", "-e", "EXTRA=1", "localhost/configured:1", `echo $GREETING $EXTRA $PATH $HOME; pwd; id -un; hostname | wc -c`)
	want := "from-image 1 /bin:/usr/bin /home/alice\n/srv/app\nalice\n"
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, want) {
		t.Fatalf("image env/workdir/user: want prefix %q, got %s", want, r)
	}
	// Caller overrides win: -e, -w, -u, --entrypoint, --hostname.
	r = s.pelagos(t, "run", "--rm", "-e", "GREETING=override", "-w", "/tmp", "-u", "root", "--hostname", "box",
		"--entrypoint", "/bin/sh", "localhost/configured:1", "-c", "echo $GREETING; pwd; id -u; hostname")
	if r.Code != 0 || r.Stdout != "override\n/tmp\n0\nbox\n" {
		t.Fatalf("overrides: %s", r)
	}
	// -e KEY passes the caller's value; --env-file reads a file.
	envFile := filepath.Join(S.work, "envfile")
	os.WriteFile(envFile, []byte("# comment\nFROMFILE=yes\n"), 0o644)
	r = s.runIn(t, nil, []string{"PASSME=through"}, filepath.Join(S.bin, "pelagos"), "run", "--rm", "-e", "PASSME", "-e", "UNSETVAR",
		"--env-file", envFile, "localhost/configured:1", "echo $PASSME-$FROMFILE-${UNSETVAR-unset}")
	if r.Code != 0 || r.Stdout != "through-yes-unset\n" {
		t.Fatalf("env passing: %s", r)
	}
}

func TestDockerArchiveAndImport(t *testing.T) {
	needRoot(t)
	s, f := S.main, images(t)
	out := s.mustPelagos(t, "load", "-i", f.dockerArch)
	if !strings.Contains(out, "Loaded image: localhost/dockerbox:latest") {
		t.Fatalf("docker-archive load: %q", out)
	}
	if r := s.pelagos(t, "run", "--rm", "localhost/dockerbox", "echo", "docker-ok"); r.Stdout != "docker-ok\n" {
		t.Fatalf("run docker-archive image: %s", r)
	}
	s.mustPelagos(t, "rmi", "localhost/dockerbox")

	// load from standard input, as `pelagos load < file`.
	data, err := os.ReadFile(f.ociArchive)
	if err != nil {
		t.Fatal(err)
	}
	r := s.runIn(t, data, nil, filepath.Join(S.bin, "pelagos"), "load")
	if r.Code != 0 || !strings.Contains(r.Stdout, "localhost/busybox:latest") {
		t.Fatalf("load from stdin: %s", r)
	}

	out = s.mustPelagos(t, "import", "--change", `CMD ["echo","imported-cmd"]`, "--change", "ENV FOO=bar", f.rootfsTar, "localhost/imported")
	if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(out) {
		t.Fatalf("import output %q", out)
	}
	defer s.pelagos(t, "rmi", "-f", "localhost/imported")
	if r := s.pelagos(t, "run", "--rm", "localhost/imported"); r.Stdout != "imported-cmd\n" {
		t.Fatalf("imported CMD: %s", r)
	}
	if r := s.pelagos(t, "run", "--rm", "localhost/imported", "sh", "-c", "echo $FOO"); r.Stdout != "bar\n" {
		t.Fatalf("imported ENV: %s", r)
	}
}

func TestBadInput(t *testing.T) {
	needRoot(t)
	s, f := S.main, images(t)
	withBusybox(t, s)
	s.mustPelagos(t, "import", f.rootfsTar, "localhost/nocmd")
	defer s.pelagos(t, "rmi", "-f", "localhost/nocmd")
	containersBefore := s.mustPelagos(t, "ps", "-aq")
	imagesBefore := s.mustPelagos(t, "images", "-q")
	layersBefore := countEntries(t, filepath.Join(s.u.Home, ".local/share/pelagos/storage/overlay-layers"))

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown image", []string{"run", "--rm", "localhost/nosuchimage", "true"}, 125, "Unable to find image 'localhost/nosuchimage' locally"},
		{"no command", []string{"run", "--rm", "localhost/nocmd"}, 125, "no command specified"},
		{"missing command", []string{"run", "--rm", "localhost/busybox", "nosuchcmd"}, 127, `"nosuchcmd": executable file not found`},
		{"missing path", []string{"run", "--rm", "localhost/busybox", "/no/such/file"}, 127, "no such file or directory"},
		{"not executable", []string{"run", "--rm", "localhost/busybox", "/etc/passwd"}, 126, "permission denied"},
		{"no image", []string{"run"}, 125, "requires at least 1 argument"},
		{"unknown flag", []string{"run", "--bogus", "localhost/busybox"}, 125, "unknown flag: --bogus"},
		{"relative workdir", []string{"run", "--rm", "-w", "rel", "localhost/busybox", "true"}, 125, "not absolute"},
		{"bad env", []string{"run", "--rm", "-e", "=x", "localhost/busybox", "true"}, 125, "invalid environment variable"},
		{"unknown user", []string{"run", "--rm", "-u", "nobodyhere", "localhost/busybox", "true"}, 125, "unable to find user nobodyhere"},
		{"import not a tar", []string{"import", f.garbage, "localhost/garbage"}, 125, "not a tar archive"},
		{"load not an archive", []string{"load", "-i", f.garbage}, 125, "not a valid image archive"},
		{"load rootfs tar", []string{"load", "-i", f.rootfsTar}, 125, "not a valid image archive"},
		{"load missing file", []string{"load", "-i", "/no/such.tar"}, 125, "no such file"},
		{"import bad name", []string{"import", f.rootfsTar, "UPPER/Case"}, 125, "invalid image name"},
		{"rmi unknown", []string{"rmi", "localhost/nosuchimage"}, 1, "no such image"},
		{"unknown command", []string{"frobnicate"}, 125, "unknown command"},
	} {
		r := s.pelagos(t, tc.args...)
		if r.Code != tc.code || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%s: want exit %d and %q, got %s", tc.name, tc.code, tc.want, r)
			continue
		}
		if lines := strings.Count(strings.TrimSpace(r.Stderr), "\n") + 1; lines > 3 {
			t.Errorf("%s: error is %d lines, want one clear line: %q", tc.name, lines, r.Stderr)
		}
	}
	if after := s.mustPelagos(t, "ps", "-aq"); after != containersBefore {
		t.Errorf("failed runs left containers: before %q after %q", containersBefore, after)
	}
	if after := s.mustPelagos(t, "images", "-q"); after != imagesBefore {
		t.Errorf("failed loads changed the images: before %q after %q", imagesBefore, after)
	}
	if after := countEntries(t, filepath.Join(s.u.Home, ".local/share/pelagos/storage/overlay-layers")); after != layersBefore {
		t.Errorf("failed operations left layers: before %d after %d", layersBefore, after)
	}
}

func countEntries(t *testing.T, dir string) int {
	t.Helper()
	e, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(e)
}

func TestNoSessionBus(t *testing.T) {
	needRoot(t)
	s := S.main
	empty := filepath.Join(S.work, "empty-runtime")
	os.MkdirAll(empty, 0o777)
	r := s.runIn(t, nil, []string{"DBUS_SESSION_BUS_ADDRESS=", "XDG_RUNTIME_DIR=" + empty},
		filepath.Join(S.bin, "pelagos"), "run", "--rm", "localhost/busybox", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "no D-Bus session bus") || !strings.Contains(r.Stderr, "dbus-run-session") {
		t.Fatalf("no session bus: %s", r)
	}
}

func TestServiceRestartKeepsContainers(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	if r := s.pelagos(t, "run", "--name", "survivor", "localhost/busybox", "sh", "-c", "exit 42"); r.Code != 42 {
		t.Fatalf("exit 42: %s", r)
	}
	defer s.pelagos(t, "rm", "-f", "survivor")
	pid := s.servicePid(t)
	if pid == 0 {
		t.Fatal("no pelagosd owns the bus name")
	}
	if err := killAndWait(pid); err != nil {
		t.Fatal(err)
	}
	// The next call activates a new service, which reads the state.
	out := s.mustPelagos(t, "ps", "-a")
	if !regexp.MustCompile(`Exited \(42\).*survivor`).MatchString(out) {
		t.Fatalf("after kill -9 of pelagosd:\n%s", out)
	}
	if np := s.servicePid(t); np == 0 || np == pid {
		t.Fatalf("service not re-activated: old %d new %d", pid, np)
	}
	s.mustPelagos(t, "rm", "survivor")
}

func killAndWait(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	p.Kill()
	for i := 0; i < 200; i++ {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// TestExitCodesSurviveServiceCrash: containers keep running when pelagosd
// is killed, and their exit codes are known to the next service, whether
// they ended while no service ran or after it came back.
func TestExitCodesSurviveServiceCrash(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	defer s.pelagos(t, "rm", "-f", "early", "late")
	s.mustPelagos(t, "run", "-d", "--name", "early", "localhost/busybox", "sh", "-c", "echo early-out; sleep 1; exit 42")
	s.mustPelagos(t, "run", "-d", "--name", "late", "localhost/busybox", "sh", "-c", "sleep 4; echo late-out; exit 7")
	pid := s.servicePid(t)
	if err := killAndWait(pid); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // "early" ends while no service runs
	out := s.mustPelagos(t, "ps", "-a")
	if !regexp.MustCompile(`Exited \(42\).*early`).MatchString(out) || !regexp.MustCompile(`Up .*late`).MatchString(out) {
		t.Fatalf("after kill -9 of the service:\n%s", out)
	}
	if out := s.mustPelagos(t, "wait", "late"); out != "7\n" {
		t.Fatalf("exit code of a container that ended under the new service: %q", out)
	}
	if out := s.mustPelagos(t, "logs", "late"); out != "late-out\n" {
		t.Fatalf("log written while the service was down: %q", out)
	}
	if out := s.mustPelagos(t, "logs", "early"); out != "early-out\n" {
		t.Fatalf("log of early: %q", out)
	}
}

func TestTagUntagInspectImage(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	s.mustPelagos(t, "tag", "localhost/busybox", "mybox:v2", "registry.example.org/team/box:1")
	out := s.mustPelagos(t, "images")
	if !regexp.MustCompile(`(?m)^localhost/mybox\s+v2\s`).MatchString(out) || !regexp.MustCompile(`(?m)^registry.example.org/team/box\s+1\s`).MatchString(out) {
		t.Fatalf("tags not listed:\n%s", out)
	}
	if r := s.pelagos(t, "run", "--rm", "mybox:v2", "echo", "tagged"); r.Stdout != "tagged\n" {
		t.Fatalf("run by new tag: %s", r)
	}
	if out := s.mustPelagos(t, "images", "--filter", "reference=localhost/my*", "--format", "{{.Repository}}:{{.Tag}}"); out != "localhost/mybox:v2\n" {
		t.Fatalf("images --filter --format: %q", out)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(s.mustPelagos(t, "images", "--format", "json")), &rows); err != nil || len(rows) < 3 {
		t.Fatalf("images --format json: %v %v", rows, err)
	}
	if r := s.pelagos(t, "images", "--filter", "size=1"); r.Code != 125 || !strings.Contains(r.Stderr, "reference, dangling") {
		t.Fatalf("bad images filter: %s", r)
	}
	s.mustPelagos(t, "untag", "localhost/busybox", "mybox:v2", "registry.example.org/team/box:1")
	if out := s.mustPelagos(t, "images"); strings.Contains(out, "mybox") || strings.Contains(out, "team/box") {
		t.Fatalf("untag left names:\n%s", out)
	}
	var insp []struct {
		ID       string `json:"Id"`
		RepoTags []string
		Os       string
		History  []any
	}
	if err := json.Unmarshal([]byte(s.mustPelagos(t, "image", "inspect", "localhost/busybox")), &insp); err != nil || len(insp) != 1 ||
		len(insp[0].ID) != 64 || insp[0].Os != "linux" || len(insp[0].RepoTags) == 0 {
		t.Fatalf("image inspect: %+v %v", insp, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tag", "localhost/busybox", "BAD:x"}, "invalid image reference"},
		{[]string{"tag", "localhost/nosuch", "x"}, "no such image"},
		{[]string{"untag", "localhost/busybox", "never:tagged"}, "has no name"},
		{[]string{"image", "inspect", "localhost/nosuch"}, "no such image"},
	} {
		if r := s.pelagos(t, tc.args...); r.Code != 125 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%v: want exit 125 and %q, got %s", tc.args, tc.want, r)
		}
	}
}

// TestSaveLoadRoundTrip: save, rmi, load gives back the same image (same
// id, which is the config digest), in both archive formats, to a file
// and through a pipe.
func TestSaveLoadRoundTrip(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	s.mustPelagos(t, "tag", "localhost/busybox", "localhost/roundtrip:1")
	id := strings.TrimSpace(s.mustPelagos(t, "images", "-q", "--no-trunc", "--filter", "reference=localhost/roundtrip"))
	for _, format := range []string{"oci-archive", "docker-archive"} {
		archive := filepath.Join(S.work, "saved-"+format+".tar")
		os.WriteFile(archive, nil, 0o666)
		os.Chown(archive, s.u.UID, s.u.GID)
		s.mustPelagos(t, "save", "--format", format, "-o", archive, "localhost/roundtrip:1")
		s.mustPelagos(t, "untag", "localhost/busybox", "localhost/roundtrip:1")
		out := s.mustPelagos(t, "load", "-i", archive)
		if !strings.Contains(out, "localhost/roundtrip:1") {
			t.Fatalf("%s: load printed %q", format, out)
		}
		if got := strings.TrimSpace(s.mustPelagos(t, "images", "-q", "--no-trunc", "--filter", "reference=localhost/roundtrip")); got != id {
			t.Fatalf("%s: id %q after the round trip, want %q", format, got, id)
		}
	}
	// Through a pipe: save to stdout, load from stdin.
	r := s.pelagos(t, "save", "localhost/roundtrip:1")
	if r.Code != 0 || len(r.Stdout) < 1000 {
		t.Fatalf("save to stdout: exit %d, %d bytes", r.Code, len(r.Stdout))
	}
	if r := s.runIn(t, []byte(r.Stdout), nil, filepath.Join(S.bin, "pelagos"), "load"); r.Code != 0 {
		t.Fatalf("load from stdin: %s", r)
	}
	s.mustPelagos(t, "untag", "localhost/busybox", "localhost/roundtrip:1")
	if r := s.pelagos(t, "save", "--format", "tarball", "-o", filepath.Join(S.work, "x.tar"), "localhost/busybox"); r.Code != 125 || !strings.Contains(r.Stderr, "use oci-archive or docker-archive") {
		t.Fatalf("bad save format: %s", r)
	}
}
