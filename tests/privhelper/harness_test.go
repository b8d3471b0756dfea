// Package privhelper_test runs pelagos-privhelper for real: a private system
// bus that activates the built helper, a real polkitd deciding with the
// project's policy and a test rule, test users whose rootless "containers"
// are unshare'd network namespaces, and connectivity checked through the
// bridges, NAT and forwards the helper makes. It needs root and leaves the
// host as it found it.
package privhelper_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/vishvananda/netns"

	"github.com/pelagos-containers/pelagos/privhelper/api"
	"github.com/pelagos-containers/pelagos/tests/sysbus"
)

// Test users: pha and phb are in group pelagos (pha may also publish
// privileged ports), phc is not.
const (
	userA    = "pelagos-pha"
	userB    = "pelagos-phb"
	userC    = "pelagos-phc"
	group    = "pelagos"
	rulesDst = "/etc/polkit-1/rules.d/49-pelagos-privhelper-it.rules"
	upIf     = "phit-up0"
	upHost   = "172.31.254.1"
	upPeer   = "172.31.254.2"
)

// env is what TestMain set up.
type env struct {
	root     string // module root
	dir      string // privhelper-it-* temp dir
	helper   string // built helper
	client   string // built phclient
	stateDir string
	busAddr  string
	upPID    int // the upstream namespace's process
}

var E env

const testRules = `// pelagos-privhelper integration tests (removed afterwards).
polkit.addRule(function (action, subject) {
    if (action.id.indexOf("io.pelagos.privhelper.") != 0) {
        return polkit.Result.NOT_HANDLED;
    }
    if (subject.user == "root") {
        return polkit.Result.YES;
    }
    if (action.id == "io.pelagos.privhelper.network" && subject.isInGroup("pelagos")) {
        return polkit.Result.YES;
    }
    if (action.id == "io.pelagos.privhelper.publish-privileged-port" && subject.user == "pelagos-pha") {
        return polkit.Result.YES;
    }
    return polkit.Result.NO;
});
`

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("SKIP: tests/privhelper needs root (bridges, nftables, a system bus and polkitd)")
		os.Exit(0)
	}
	for _, p := range []string{"dbus-daemon", "/usr/lib/polkit-1/polkitd", "unshare", "nsenter", "ip", "nft", "useradd", "groupadd"} {
		if _, err := exec.LookPath(p); err != nil {
			fmt.Printf("SKIP: tests/privhelper needs %s: %v\n", p, err)
			os.Exit(0)
		}
	}
	code, err := setupAndRun(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "privhelper tests:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// undo is a stack of cleanups run at the end whatever happened.
type undo []func()

func (u *undo) push(f func()) { *u = append(*u, f) }
func (u undo) run() {
	for i := len(u) - 1; i >= 0; i-- {
		u[i]()
	}
}

func setupAndRun(m *testing.M) (int, error) {
	var u undo
	defer func() { u.run() }()

	// One run at a time on a machine (see sysbus.Lock).
	unlock, err := sysbus.Lock()
	if err != nil {
		return 1, err
	}
	defer unlock()

	// Holding the lock, any other privhelper-it-* directory is a killed
	// run's leftover.
	if stale, _ := filepath.Glob(filepath.Join(os.TempDir(), "privhelper-it-*")); len(stale) > 0 {
		for _, d := range stale {
			os.RemoveAll(d)
		}
	}

	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return 1, fmt.Errorf("go env GOMOD: %w", err)
	}
	E.root = filepath.Dir(strings.TrimSpace(string(out)))
	if E.dir, err = os.MkdirTemp("", "privhelper-it-*"); err != nil {
		return 1, err
	}
	u.push(func() { os.RemoveAll(E.dir) })
	if err := os.Chmod(E.dir, 0o755); err != nil {
		return 1, err
	}
	E.helper = filepath.Join(E.dir, "pelagos-privhelper")
	E.client = filepath.Join(E.dir, "phclient")
	E.stateDir = filepath.Join(E.dir, "state")
	for bin, pkg := range map[string]string{E.helper: "./cmd/pelagos-privhelper", E.client: "./tests/privhelper/phclient"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir, cmd.Stderr = E.root, os.Stderr
		if err := cmd.Run(); err != nil {
			return 1, fmt.Errorf("build %s: %w", pkg, err)
		}
	}

	if err := ensureUsers(); err != nil {
		return 1, err
	}
	fwdWas, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		return 1, err
	}
	u.push(func() { os.WriteFile("/proc/sys/net/ipv4/ip_forward", fwdWas, 0o644) })

	bus, err := sysbus.Start(sysbus.Options{
		Dir: filepath.Join(E.dir, "bus"), Root: E.root,
		HelperExec: fmt.Sprintf("%s --state-dir %s --idle-timeout 2s", E.helper, E.stateDir),
		RulesFile:  rulesDst, Rules: testRules,
	})
	if err != nil {
		return 1, err
	}
	u.push(bus.Stop)
	E.busAddr = bus.Addr
	// Whatever a test left, the helper goes and so does everything it made.
	u.push(func() {
		killHelper()
		os.RemoveAll(E.stateDir)
		for _, l := range ourLinks() {
			exec.Command("ip", "link", "del", l).Run()
		}
		exec.Command("nft", "delete", "table", "inet", "pelagos").Run()
	})
	stopUp, err := startUpstream()
	u.push(stopUp)
	if err != nil {
		return 1, err
	}
	return m.Run(), nil
}

// ensureUsers creates the group and test users if missing and fixes their
// membership, so reruns on the same machine need nothing.
func ensureUsers() error {
	if _, err := user.LookupGroup(group); err != nil {
		if out, err := exec.Command("groupadd", "--system", group).CombinedOutput(); err != nil {
			return fmt.Errorf("groupadd %s: %v: %s", group, err, out)
		}
	}
	for _, name := range []string{userA, userB, userC} {
		if _, err := user.Lookup(name); err != nil {
			if out, err := exec.Command("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
				return fmt.Errorf("useradd %s: %v: %s", name, err, out)
			}
		}
	}
	for _, name := range []string{userA, userB} {
		if out, err := exec.Command("usermod", "-aG", group, name).CombinedOutput(); err != nil {
			return fmt.Errorf("usermod %s: %v: %s", name, err, out)
		}
	}
	// phc must not be a member; gpasswd fails harmlessly when it is not.
	exec.Command("gpasswd", "-d", userC, group).Run()
	return nil
}

type osProc struct{ cmd *exec.Cmd }

func (p *osProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

func startProc(logPath string, env []string, name string, args ...string) (*osProc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &osProc{cmd}, nil
}

func waitFor(d time.Duration, ok func() bool) error {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// startUpstream makes the "outside world": a namespace (root's) with a veth
// to the host, 172.31.254.1 (host) <-> 172.31.254.2 (upstream).
func startUpstream() (func(), error) {
	cmd := exec.Command("unshare", "--net", "sleep", "infinity")
	if err := cmd.Start(); err != nil {
		return func() {}, err
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
		exec.Command("ip", "link", "del", upIf).Run()
	}
	E.upPID = cmd.Process.Pid
	if err := waitNetns(E.upPID); err != nil {
		return stop, err
	}
	pid := strconv.Itoa(E.upPID)
	for _, c := range [][]string{
		{"ip", "link", "add", upIf, "type", "veth", "peer", "name", "up0", "netns", pid},
		{"ip", "addr", "add", upHost + "/30", "dev", upIf},
		{"ip", "link", "set", upIf, "up"},
		{"nsenter", "-t", pid, "-n", "ip", "addr", "add", upPeer + "/30", "dev", "up0"},
		{"nsenter", "-t", pid, "-n", "ip", "link", "set", "up0", "up"},
		{"nsenter", "-t", pid, "-n", "ip", "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return stop, fmt.Errorf("%v: %v: %s", c, err, out)
		}
	}
	return stop, nil
}

// waitNetns waits until pid is in a network namespace other than ours.
func waitNetns(pid int) error {
	self, _ := os.Readlink("/proc/self/ns/net")
	return waitFor(5*time.Second, func() bool {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		return err == nil && l != self
	})
}

// container is a rootless "container": a process a test user started in a
// new user and network namespace.
type container struct {
	user string
	cmd  *exec.Cmd
	pid  int
}

func startContainer(t *testing.T, userName string) *container {
	t.Helper()
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--net", "sleep", "infinity")
	cmd.SysProcAttr = credential(t, userName)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start container as %s: %v", userName, err)
	}
	c := &container{user: userName, cmd: cmd, pid: cmd.Process.Pid}
	t.Cleanup(c.kill)
	if err := waitNetns(c.pid); err != nil {
		t.Fatalf("container of %s: %v", userName, err)
	}
	return c
}

// kill ends the container; its namespace, and so its veth, die with it.
func (c *container) kill() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	}
}

func (c *container) netns() string { return strconv.Itoa(c.pid) }

func credential(t *testing.T, name string) *syscall.SysProcAttr {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
}

// call runs phclient as a user; it returns stdout, and an error holding
// the "ERROR name: message" line when the call failed.
func call(t *testing.T, userName string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(E.client, args...)
	cmd.Env = []string{"DBUS_SYSTEM_BUS_ADDRESS=" + E.busAddr, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = credential(t, userName)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s", strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// must is call that fails the test on error and decodes the JSON output.
func must(t *testing.T, out any, userName string, args ...string) {
	t.Helper()
	s, err := call(t, userName, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", userName, args, err)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(s), out); err != nil {
			t.Fatalf("%s %v: output %q: %v", userName, args, s, err)
		}
	}
}

// refused checks that a call failed with the D-Bus error name, and returns
// the message.
func refused(t *testing.T, name string, userName string, args ...string) string {
	t.Helper()
	_, err := call(t, userName, args...)
	if err == nil {
		t.Fatalf("%s %v succeeded, want %s", userName, args, name)
	}
	if !strings.HasPrefix(err.Error(), "ERROR "+name+":") {
		t.Fatalf("%s %v: %v, want %s", userName, args, err, name)
	}
	return err.Error()
}

// lease is phclient's JSON of client.Lease.
type lease struct {
	ID      string
	Network string
	Address string
	Gateway string
	Ifname  string
	MAC     string
}

func (l lease) ip() string { return strings.Split(l.Address, "/")[0] }

// hostSnapshot is what the helper can leave behind on the host.
type hostSnapshot struct {
	Links    []string
	NftRules int
	Forward  string
}

func snapshot(t *testing.T) hostSnapshot {
	t.Helper()
	fwd, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	return hostSnapshot{Links: ourLinks(), NftRules: nftRules(), Forward: strings.TrimSpace(string(fwd))}
}

// ourLinks lists host links with the helper's prefixes.
func ourLinks() []string {
	ifs, _ := net.Interfaces()
	var out []string
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, "plg") {
			out = append(out, i.Name)
		}
	}
	return out
}

// nftRules counts the rules in the helper's table (0 when it is absent).
func nftRules() int {
	out, err := exec.Command("nft", "-a", "list", "table", "inet", "pelagos").Output()
	if err != nil {
		return 0
	}
	return strings.Count(string(out), "# handle") - strings.Count(string(out), "chain ") - strings.Count(string(out), "table ")
}

// helperPID returns the running helper's pid, 0 if none.
func helperPID(t *testing.T) int {
	t.Helper()
	conn, err := dbus.Connect(E.busAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var pid uint32
	if err := conn.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixProcessID", 0, api.BusName).Store(&pid); err != nil {
		return 0
	}
	return int(pid)
}

// killHelper SIGKILLs the helper if one runs and waits for the name to go.
func killHelper() {
	conn, err := dbus.Connect(E.busAddr)
	if err != nil {
		return
	}
	defer conn.Close()
	var pid uint32
	if conn.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixProcessID", 0, api.BusName).Store(&pid) != nil {
		return
	}
	syscall.Kill(int(pid), syscall.SIGKILL)
	waitFor(5*time.Second, func() bool {
		var has bool
		conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, api.BusName).Store(&has)
		return !has
	})
}

// inNetns runs f on a thread inside pid's network namespace. Sockets made
// there stay in that namespace after the thread goes back.
func inNetns(t *testing.T, pid int, f func() error) error {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromPid(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	defer netns.Set(orig)
	return f()
}

// serve starts a TCP server in pid's namespace (0: the host's) that writes
// the peer's address to every connection.
func serve(t *testing.T, pid int, addr string) string {
	t.Helper()
	var ln net.Listener
	listen := func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	}
	var err error
	if pid == 0 {
		err = listen()
	} else {
		err = inNetns(t, pid, listen)
	}
	if err != nil {
		t.Fatalf("listen %s in %d: %v", addr, pid, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, c.RemoteAddr().(*net.TCPAddr).IP.String())
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// dial connects from pid's namespace (0: the host's) to addr and returns
// what the server said (the address it saw us as).
func dial(t *testing.T, pid int, addr string) (string, error) {
	t.Helper()
	var c net.Conn
	connect := func() error {
		var err error
		c, err = net.DialTimeout("tcp4", addr, 2*time.Second)
		return err
	}
	var err error
	if pid == 0 {
		err = connect()
	} else {
		err = inNetns(t, pid, connect)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	var b [64]byte
	n, err := c.Read(b[:])
	if err != nil && n == 0 {
		return "", err
	}
	return strings.TrimSpace(string(b[:n])), nil
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// refusedWithFile is refused with f passed to phclient as its fd 3.
func refusedWithFile(t *testing.T, name, userName string, f *os.File, args ...string) string {
	t.Helper()
	cmd := exec.Command(E.client, args...)
	cmd.Env = []string{"DBUS_SYSTEM_BUS_ADDRESS=" + E.busAddr, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = credential(t, userName)
	cmd.ExtraFiles = []*os.File{f}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil {
		t.Fatalf("%s %v succeeded, want %s", userName, args, name)
	}
	msg := strings.TrimSpace(stderr.String())
	if !strings.HasPrefix(msg, "ERROR "+name+":") {
		t.Fatalf("%s %v: %s, want %s", userName, args, msg, name)
	}
	return msg
}
