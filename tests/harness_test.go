// Package tests drives the real pelagos programs on real buses as a real
// non-root user with subordinate id ranges. The tests need root to create
// that user and its session bus; they skip (saying so) without it.
package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildTags are the tags the image libraries need without gpgme, btrfs
// and devicemapper headers.
const buildTags = "containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper"

// suite holds what TestMain prepared.
type suite struct {
	bin     string // directory with pelagos and pelagosd
	work    string // world-readable scratch directory
	skipWhy string
	main    *userSession // the user with subuid ranges
}

var S suite

func TestMain(m *testing.M) {
	code := func() int {
		if err := setup(); err != nil {
			fmt.Fprintf(os.Stderr, "tests: setup failed: %v\n", err)
			return 1
		}
		if S.main == nil {
			return m.Run() // not root: every test skips, saying why
		}
		hostMounts := countLines("/proc/self/mountinfo")
		tmpBefore := tmpLeftovers()
		code := m.Run()
		if err := S.main.stopGracefully(); err != nil {
			fmt.Fprintf(os.Stderr, "tests: %v\n", err)
			code = 1
		}
		if n := countLines("/proc/self/mountinfo"); n != hostMounts {
			fmt.Fprintf(os.Stderr, "tests: the host mount table changed: %d mounts before the suite, %d after\n", hostMounts, n)
			code = 1
		}
		if left := tmpLeftovers(); left > tmpBefore {
			fmt.Fprintf(os.Stderr, "tests: %d pelagos temporary files left in /tmp\n", left-tmpBefore)
			code = 1
		}
		if left := countEntriesOf(filepath.Join(S.main.u.Home, ".local/share/pelagos/tmp")); left > 0 {
			fmt.Fprintf(os.Stderr, "tests: %d scratch files left in the service's tmp directory\n", left)
			code = 1
		}
		defer teardown()
		// pelagosd logs (and, built with -race, reports races) to the
		// bus's stderr.
		if S.main != nil {
			log, _ := os.ReadFile(filepath.Join(S.main.confDir, "bus.log"))
			if bytes.Contains(log, []byte("WARNING: DATA RACE")) || bytes.Contains(log, []byte("panic:")) {
				fmt.Fprintf(os.Stderr, "pelagosd reported a data race or panic:\n%s\n", log)
				return 1
			}
			if code != 0 {
				fmt.Fprintf(os.Stderr, "pelagosd log:\n%s\n", tail(log, 60))
			}
		}
		return code
	}()
	os.Exit(code)
}

func setup() error {
	if os.Geteuid() != 0 {
		S.skipWhy = "integration tests need root to create the test user and its session bus; run them through .ci/run"
		return nil
	}
	for _, tool := range []string{"dbus-daemon", "newuidmap", "newgidmap", "busctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is missing: run .ci/setup first (it installs dbus, uidmap, systemd)", tool)
		}
	}
	work, err := os.MkdirTemp("", "pelagos-it-")
	if err != nil {
		return err
	}
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	S.work = work
	S.bin = filepath.Join(work, "bin")
	if err := buildPrograms(S.bin); err != nil {
		return err
	}
	// PELAGOS_TEST_USER lets two checkouts run their suites side by
	// side, each with a user (and so a bus and a service) of its own.
	name := os.Getenv("PELAGOS_TEST_USER")
	if name == "" {
		name = "pelagos-test"
	}
	u, err := ensureUser(name, true)
	if err != nil {
		return err
	}
	S.main, err = startSession(u, "main")
	return err
}

func teardown() {
	stopRegistry()
	if S.main != nil {
		S.main.stop()
	}
	if S.work != "" {
		os.RemoveAll(S.work)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if S.skipWhy != "" {
		t.Skip(S.skipWhy)
	}
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Dir(wd)
}

func buildPrograms(dir string) error {
	for _, p := range []string{"pelagos", "pelagosd", "pelagos-init", "pelagos-holder", "pelagos-monitor"} {
		args := []string{"build", "-tags", buildTags, "-o", filepath.Join(dir, p)}
		if p == "pelagosd" {
			// The service is where the goroutines are: run it under the
			// race detector for the whole suite.
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/"+p)...)
		cmd.Dir = repoRoot()
		if p == "pelagos-monitor" {
			// As meson builds it: static, one per container.
			cmd.Args[3] = buildTags + ",pelagos_monitor"
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", p, err, out)
		}
	}
	return os.Chmod(dir, 0o755)
}

// testUser is a local account the tests run as.
type testUser struct {
	Name     string
	UID, GID int
	Home     string
}

// ensureUser creates the account if needed; withSubIDs gives it (or
// takes away) /etc/subuid and /etc/subgid ranges.
func ensureUser(name string, withSubIDs bool) (*testUser, error) {
	if _, err := user.Lookup(name); err != nil {
		if out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("useradd %s: %v: %s", name, err, out)
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		has, err := hasSubIDs(f, name)
		if err != nil {
			return nil, err
		}
		switch {
		case withSubIDs && !has:
			if err := appendLine(f, fmt.Sprintf("%s:%d:65536", name, 400000+(uid%100)*65536)); err != nil {
				return nil, err
			}
		case !withSubIDs && has:
			if err := dropSubIDs(f, name); err != nil {
				return nil, err
			}
		}
	}
	return &testUser{Name: name, UID: uid, GID: gid, Home: u.HomeDir}, nil
}

func hasSubIDs(file, name string) (bool, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name+":") {
			return true, nil
		}
	}
	return false, err
}

func appendLine(file, line string) error {
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintln(f, line)
	return err
}

func dropSubIDs(file, name string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var keep []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if !strings.HasPrefix(l, name+":") {
			keep = append(keep, l)
		}
	}
	return os.WriteFile(file, []byte(strings.Join(keep, "\n")+"\n"), 0o644)
}

// userSession is a user with a private session bus on which pelagosd is
// D-Bus activatable, like a desktop login.
type userSession struct {
	u          *testUser
	runtimeDir string
	busAddr    string
	confDir    string
	bus        *exec.Cmd
}

func startSession(u *testUser, tag string) (*userSession, error) {
	return startSessionExec(u, tag, S.bin+"/pelagosd --idle-timeout 10m")
}

// startSessionExec starts a session whose activation file runs execLine.
func startSessionExec(u *testUser, tag, execLine string) (*userSession, error) {
	return startSessionWith(u, tag, execLine, "")
}

// startSessionWith starts a session; with resolv set, the bus and the
// service run in a mount namespace of their own where that file is
// /etc/resolv.conf (the host's stays as it is).
func startSessionWith(u *testUser, tag, execLine, resolv string) (*userSession, error) {
	s := &userSession{u: u, runtimeDir: fmt.Sprintf("/run/user/%d", u.UID)}
	// A clean slate: no service, no data of an earlier run.
	killUserProcesses(u.UID)
	os.RemoveAll(filepath.Join(u.Home, ".local", "share", "pelagos"))
	os.RemoveAll(s.runtimeDir)
	if err := os.MkdirAll(s.runtimeDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chown(s.runtimeDir, u.UID, u.GID); err != nil {
		return nil, err
	}
	s.confDir = filepath.Join(S.work, "bus-"+tag)
	services := filepath.Join(s.confDir, "services")
	if err := os.MkdirAll(services, 0o755); err != nil {
		return nil, err
	}
	// The same activation file meson installs, pointing at the test build.
	svc := fmt.Sprintf("[D-BUS Service]\nName=io.pelagos.Pelagos1\nExec=%s\n", execLine)
	if err := os.WriteFile(filepath.Join(services, "io.pelagos.Pelagos1.service"), []byte(svc), 0o644); err != nil {
		return nil, err
	}
	s.busAddr = "unix:path=" + s.runtimeDir + "/bus"
	conf := fmt.Sprintf(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>%s</listen>
  <auth>EXTERNAL</auth>
  <servicedir>%s</servicedir>
  <policy context="default">
    <!-- root (the test process) may connect too, to watch signals -->
    <allow user="root"/>
    <allow user="%s"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`, s.busAddr, services, u.Name)
	confFile := filepath.Join(s.confDir, "session.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(s.confDir, "bus.log"))
	if err != nil {
		return nil, err
	}
	s.bus = exec.Command("dbus-daemon", "--config-file="+confFile, "--nofork", "--nopidfile")
	s.bus.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred(), Setpgid: true}
	if resolv != "" {
		script := fmt.Sprintf("mount --bind %s /etc/resolv.conf && exec setpriv --reuid=%d --regid=%d --clear-groups dbus-daemon --config-file=%s --nofork --nopidfile",
			resolv, u.UID, u.GID, confFile)
		s.bus = exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
		s.bus.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	s.bus.Env = s.env()
	s.bus.Stdout, s.bus.Stderr = logf, logf
	if err := s.bus.Start(); err != nil {
		return nil, fmt.Errorf("start session bus: %w", err)
	}
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(s.runtimeDir + "/bus"); err == nil {
			return s, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, errors.New("session bus did not come up")
}

func (s *userSession) cred() *syscall.Credential {
	return &syscall.Credential{Uid: uint32(s.u.UID), Gid: uint32(s.u.GID), Groups: []uint32{}}
}

// env is the environment of a desktop login.
func (s *userSession) env() []string {
	return []string{
		"HOME=" + s.u.Home, "USER=" + s.u.Name, "LOGNAME=" + s.u.Name,
		"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
		"XDG_RUNTIME_DIR=" + s.runtimeDir,
		"DBUS_SESSION_BUS_ADDRESS=" + s.busAddr,
		"LANG=C.UTF-8",
	}
}

// stop ends everything the session started — pelagosd, containers, the
// bus — and removes its runtime directory.
func (s *userSession) stop() {
	if s.bus != nil && s.bus.Process != nil {
		s.bus.Process.Signal(syscall.SIGTERM)
		s.bus.Wait()
	}
	killUserProcesses(s.u.UID)
	os.RemoveAll(s.runtimeDir)
}

// result is what a command did.
type result struct {
	Stdout, Stderr string
	Code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %q\nstderr: %q", r.Code, r.Stdout, r.Stderr)
}

// run runs a program as the session user with stdin from in (may be nil).
func (s *userSession) runIn(t *testing.T, in []byte, extraEnv []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(s.env(), extraEnv...)
	cmd.Dir = S.work
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred()}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if in != nil {
		cmd.Stdin = bytes.NewReader(in)
	}
	err := cmd.Run()
	r := result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %s %v: %v", name, args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %v timed out\n%s", name, args, r)
	}
	return r
}

// pelagos runs the CLI as the session user.
func (s *userSession) pelagos(t *testing.T, args ...string) result {
	t.Helper()
	return s.runIn(t, nil, nil, filepath.Join(S.bin, "pelagos"), args...)
}

// mustPelagos runs the CLI and fails the test unless it exits 0.
func (s *userSession) mustPelagos(t *testing.T, args ...string) string {
	t.Helper()
	r := s.pelagos(t, args...)
	if r.Code != 0 {
		t.Fatalf("pelagos %s: %s", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// busctl runs busctl --user as the session user.
func (s *userSession) busctl(t *testing.T, args ...string) result {
	t.Helper()
	return s.runIn(t, nil, nil, "busctl", append([]string{"--user"}, args...)...)
}

// servicePid is the pid of the pelagosd that holds the bus name (the
// namespaced copy), 0 when none.
func (s *userSession) servicePid(t *testing.T) int {
	t.Helper()
	r := s.busctl(t, "call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
		"GetConnectionUnixProcessID", "s", "io.pelagos.Pelagos1")
	if r.Code != 0 {
		return 0
	}
	f := strings.Fields(r.Stdout)
	if len(f) != 2 {
		return 0
	}
	pid, _ := strconv.Atoi(f[1])
	return pid
}

// userProcesses lists the live processes that run as the user's own uid:
// the bus, the service and every container whose root is the user.
func userProcesses(uid int) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := os.Open("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		// Zombies are left out: they hold nothing, and their parent
		// (dbus-daemon, for a service that exited) reaps them in its
		// own time.
		zombie := false
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "State:") {
				zombie = strings.Contains(sc.Text(), "Z (zombie)")
			}
			if strings.HasPrefix(sc.Text(), "Uid:") {
				fields := strings.Fields(sc.Text())
				if len(fields) > 1 && fields[1] == strconv.Itoa(uid) && !zombie {
					pids = append(pids, pid)
				}
				break
			}
		}
		f.Close()
	}
	return pids
}

func killUserProcesses(uid int) {
	for i := 0; i < 50; i++ {
		pids := userProcesses(uid)
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(b []byte, lines int) string {
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

func countLines(p string) int {
	b, _ := os.ReadFile(p)
	return strings.Count(string(b), "\n")
}

func countEntriesOf(dir string) int {
	e, _ := os.ReadDir(dir)
	return len(e)
}

func tmpLeftovers() int {
	m, _ := filepath.Glob("/tmp/pelagos-input-*")
	return len(m)
}

// stopGracefully ends the session as a logout does — the bus goes away —
// and checks that the service and everything it started exit by
// themselves, leaving no process behind.
func (s *userSession) stopGracefully() error {
	// Containers first: a logout does not stop them, the user does.
	out, _ := exec.Command("runuser", "-u", s.u.Name, "--", "env", "XDG_RUNTIME_DIR="+s.runtimeDir,
		"DBUS_SESSION_BUS_ADDRESS="+s.busAddr, filepath.Join(S.bin, "pelagos"), "ps", "-aq").Output()
	for _, id := range strings.Fields(string(out)) {
		exec.Command("runuser", "-u", s.u.Name, "--", "env", "XDG_RUNTIME_DIR="+s.runtimeDir,
			"DBUS_SESSION_BUS_ADDRESS="+s.busAddr, filepath.Join(S.bin, "pelagos"), "rm", "-f", id).Run()
	}
	if s.bus != nil && s.bus.Process != nil {
		s.bus.Process.Signal(syscall.SIGTERM)
		s.bus.Wait()
		s.bus = nil
	}
	for i := 0; i < 250; i++ {
		if len(userProcesses(s.u.UID)) == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("processes of %s still run 5s after its session ended: %v", s.u.Name, userProcesses(s.u.UID))
}
