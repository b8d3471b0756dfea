package tests

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pelagos-containers/pelagos/tests/sysbus"
)

// rootNetRules lets the pelagos group use root networking and the test's
// user publish privileged ports; everyone else is refused.
const rootNetRules = `// pelagos session integration tests (removed afterwards).
polkit.addRule(function (action, subject) {
    if (action.id.indexOf("io.pelagos.privhelper.") != 0) {
        return polkit.Result.NOT_HANDLED;
    }
    if (action.id == "io.pelagos.privhelper.network" && subject.isInGroup("pelagos")) {
        return polkit.Result.YES;
    }
    return polkit.Result.NO;
});
`

// startSystemBus builds pelagos-privhelper and starts a private system
// bus with polkitd, the project's bus policy, activation file and polkit
// actions, and rootNetRules; t's cleanup undoes it all. Runs on the
// machine take turns with tests/privhelper (sysbus.Lock).
func startSystemBus(t *testing.T) *sysbus.Bus {
	t.Helper()
	for _, p := range []string{"/usr/lib/polkit-1/polkitd", "nft", "ip"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("root networking needs %s: %v (scripts/lib.sh installs it)", p, err)
		}
	}
	unlock, err := sysbus.Lock()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unlock)
	helper := filepath.Join(S.bin, "pelagos-privhelper")
	build := exec.Command("go", "build", "-tags", buildTags, "-o", helper, "./cmd/pelagos-privhelper")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build pelagos-privhelper: %v: %s", err, out)
	}
	dir := filepath.Join(S.work, "sysbus")
	bus, err := sysbus.Start(sysbus.Options{
		Dir: dir, Root: repoRoot(),
		HelperExec: fmt.Sprintf("%s --state-dir %s --idle-timeout 2s", helper, filepath.Join(dir, "state")),
		RulesFile:  "/etc/polkit-1/rules.d/49-pelagos-session-it.rules", Rules: rootNetRules,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		bus.Stop()
		// The helper was started by the bus; it goes with its leases.
		exec.Command("pkill", "-f", helper).Run()
	})
	return bus
}

// rootNetSession is a user in group pelagos whose session bus hands the
// system bus's address to the services it starts, as a login does.
func rootNetSession(t *testing.T, bus *sysbus.Bus, name string) *userSession {
	t.Helper()
	if out, err := exec.Command("sh", "-c", "getent group pelagos >/dev/null || groupadd --system pelagos").CombinedOutput(); err != nil {
		t.Fatalf("groupadd pelagos: %v: %s", err, out)
	}
	u, err := ensureUser(name, true)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("usermod", "-aG", "pelagos", name).CombinedOutput(); err != nil {
		t.Fatalf("usermod: %v: %s", err, out)
	}
	s, err := startSession(u, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	r := s.busctl(t, "call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
		"UpdateActivationEnvironment", "a{ss}", "1", "DBUS_SYSTEM_BUS_ADDRESS", bus.Addr)
	if r.Code != 0 {
		t.Fatalf("set the session's activation environment: %s", r)
	}
	return s
}

// hostLinks counts the host's links the helper made (plg*).
func hostLinks(t *testing.T) int {
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	return len(regexp.MustCompile(`(?m)^\d+: plg`).FindAll(out, -1))
}

// TestRootNetworking drives root networking end to end through the CLI:
// a named network with two containers that find each other by name
// (and lose each other's names as they stop), --ip, a port published on
// the default bridge that the host reaches, a refusal with the polkit
// action named for a user outside the group, and, once everything is
// removed, no link the helper made left on the host.
func TestRootNetworking(t *testing.T) {
	needRoot(t)
	bus := startSystemBus(t)
	s := rootNetSession(t, bus, "pelagos-net")
	withBusybox(t, s)
	links := hostLinks(t)

	if out := s.mustPelagos(t, "info"); !strings.Contains(out, "network.root: available through pelagos-privhelper") {
		t.Errorf("info with the helper reachable:\n%s", out)
	}
	s.mustPelagos(t, "network", "create", "--subnet", "10.89.77.0/24", "devnet")
	if out := s.mustPelagos(t, "network", "ls"); !strings.Contains(out, "devnet") || !strings.Contains(out, "10.89.77.0/24") {
		t.Fatalf("network ls:\n%s", out)
	}
	r := s.busctl(t, "get-property", "io.pelagos.Pelagos1", "/io/pelagos/Pelagos1/network/devnet", "io.pelagos.Pelagos1.Network", "Subnet")
	if r.Code != 0 || !strings.Contains(r.Stdout, "10.89.77.0/24") {
		t.Errorf("network object: %s", r)
	}

	s.mustPelagos(t, "run", "-d", "--name", "web1", "--network", "devnet", "--ip", "10.89.77.50", "localhost/busybox",
		"sh", "-c", "mkdir -p /www && echo from-web1 > /www/index.html && exec httpd -f -p 80 -h /www")
	defer s.pelagos(t, "rm", "-f", "web1")
	s.mustPelagos(t, "run", "-d", "--name", "web2", "--network", "devnet", "localhost/busybox", "sleep", "300")
	defer s.pelagos(t, "rm", "-f", "web2")
	if ip := strings.TrimSpace(s.mustPelagos(t, "inspect", "--format", "{{.NetworkSettings.IPAddress}}", "web1")); ip != "10.89.77.50" {
		t.Errorf("--ip 10.89.77.50: inspect says %q", ip)
	}
	if out := strings.TrimSpace(s.mustPelagos(t, "inspect", "--format",
		"{{.NetworkSettings.Networks.devnet.IPAddress}}/{{.NetworkSettings.Networks.devnet.IPPrefixLen}} {{.NetworkSettings.Networks.devnet.Gateway}} {{.NetworkSettings.Gateway}}", "web1")); out != "10.89.77.50/24 10.89.77.1 10.89.77.1" {
		t.Errorf("inspect NetworkSettings.Networks.devnet: %q", out)
	}
	// web2 knows web1 by name, and reaches it across the bridge.
	hosts := s.mustPelagos(t, "exec", "web2", "cat", "/etc/hosts")
	if !regexp.MustCompile(`(?m)^10\.89\.77\.50\s+web1$`).MatchString(hosts) {
		t.Fatalf("web2's /etc/hosts lacks web1:\n%s", hosts)
	}
	got := ""
	for i := 0; i < 20 && !strings.Contains(got, "from-web1"); i++ {
		got = s.pelagos(t, "exec", "web2", "sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | nc 10.89.77.50 80`).Stdout
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(got, "from-web1") {
		t.Fatalf("web2 could not reach web1 over devnet: %q", got)
	}
	// A third container appears in web2's hosts; web1 leaves it when it stops.
	s.mustPelagos(t, "run", "-d", "--name", "web3", "--network", "devnet", "localhost/busybox", "sleep", "300")
	defer s.pelagos(t, "rm", "-f", "web3")
	if !waitFor(func() bool { return strings.Contains(s.pelagos(t, "exec", "web2", "cat", "/etc/hosts").Stdout, "web3") }) {
		t.Errorf("web3 never reached web2's /etc/hosts")
	}
	s.mustPelagos(t, "stop", "-t", "0", "web1")
	if !waitFor(func() bool {
		return !strings.Contains(s.pelagos(t, "exec", "web2", "cat", "/etc/hosts").Stdout, "web1")
	}) {
		t.Errorf("web1 stayed in web2's /etc/hosts after it stopped")
	}
	if r := s.pelagos(t, "network", "rm", "devnet"); r.Code != 2 || !strings.Contains(r.Stderr, "web") {
		t.Errorf("network rm of a network in use: %s", r)
	}

	// A published port on the default bridge answers the host.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.mustPelagos(t, "run", "-d", "--name", "pub", "--network", "bridge", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "localhost/busybox",
		"sh", "-c", "mkdir -p /www && echo from-bridge > /www/index.html && exec httpd -f -p 80 -h /www")
	defer s.pelagos(t, "rm", "-f", "pub")
	var body string
	for i := 0; i < 30 && !strings.Contains(body, "from-bridge"); i++ {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(body, "from-bridge") {
		t.Errorf("the port published on the bridge did not answer the host: %q", body)
	}
	if out := s.mustPelagos(t, "port", "pub"); !strings.Contains(out, fmt.Sprintf("127.0.0.1:%d", port)) {
		t.Errorf("pelagos port pub: %q", out)
	}

	// A container with a user namespace of its own: its network
	// namespace belongs to that nested namespace, still the user's.
	if r := s.pelagos(t, "run", "--rm", "--userns=auto", "--network", "devnet", "localhost/busybox", "ip", "-o", "-4", "addr", "show", "eth0"); r.Code != 0 || !strings.Contains(r.Stdout, "10.89.77.") {
		t.Errorf("--userns=auto on devnet: %s", r)
	}

	// A running container joins a second network and leaves it.
	s.mustPelagos(t, "network", "create", "--subnet", "10.89.78.0/24", "othernet")
	s.mustPelagos(t, "network", "connect", "--ip", "10.89.78.9", "othernet", "web2")
	if out := s.mustPelagos(t, "exec", "web2", "ip", "-o", "-4", "addr"); !strings.Contains(out, "eth1") || !strings.Contains(out, "10.89.78.9/24") {
		t.Errorf("web2 after network connect:\n%s", out)
	}
	if r := s.pelagos(t, "network", "connect", "othernet", "web2"); r.Code != 125 || !strings.Contains(r.Stderr, "already connected") {
		t.Errorf("a second connect: %s", r)
	}
	s.mustPelagos(t, "network", "disconnect", "othernet", "web2")
	if out := s.mustPelagos(t, "exec", "web2", "ip", "-o", "-4", "addr"); strings.Contains(out, "eth1") {
		t.Errorf("web2 after network disconnect:\n%s", out)
	}
	s.mustPelagos(t, "network", "rm", "othernet")

	// Outside the group: refused, the action named, nothing created.
	exec.Command("gpasswd", "-d", "pelagos-net", "pelagos").Run()
	before := s.mustPelagos(t, "ps", "-aq")
	r = s.pelagos(t, "run", "--rm", "--network", "bridge", "localhost/busybox", "true")
	exec.Command("usermod", "-aG", "pelagos", "pelagos-net").Run()
	if r.Code != 125 || !strings.Contains(r.Stderr, "io.pelagos.privhelper.network") {
		t.Errorf("a user outside group pelagos: %s", r)
	}
	if after := s.mustPelagos(t, "ps", "-aq"); after != before {
		t.Errorf("a refused run left a container")
	}

	// Everything removed: no link of the helper's stays on the host.
	s.mustPelagos(t, "rm", "-f", "web1", "web2", "web3", "pub")
	s.mustPelagos(t, "network", "rm", "devnet")
	if !waitFor(func() bool { return hostLinks(t) == links }) {
		t.Errorf("links left on the host: %d before, %d after", links, hostLinks(t))
	}
	if out := s.mustPelagos(t, "network", "ls", "-q"); strings.Contains(out, "devnet") {
		t.Errorf("devnet still listed:\n%s", out)
	}
}
