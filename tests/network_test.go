package tests

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/pelagos-containers/pelagos/tests/imagetest"
)

// needPasta skips unless pasta can run for the test user.
func needPasta(t *testing.T) {
	t.Helper()
	needRoot(t)
	if _, err := exec.LookPath("pasta"); err != nil {
		t.Skip("pasta is not installed (scripts/test.sh installs passt)")
	}
	if fi, err := os.Stat("/dev/net/tun"); err != nil || fi.Mode().Perm()&0o006 != 0o006 {
		t.Skip("/dev/net/tun is not usable by users (scripts/test.sh opens it for the run)")
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// httpGet fetches url, retrying while the server comes up.
func httpGet(t *testing.T, url string) (string, error) {
	t.Helper()
	var last error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			last = err
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b), err
	}
	return "", last
}

// pastaProcesses counts pasta processes of a user.
func pastaProcesses(uid int) int {
	n := 0
	for _, pid := range userProcesses(uid) {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if base := filepath.Base(exe); strings.HasPrefix(base, "pasta") || strings.HasPrefix(base, "passt") {
			n++
		}
	}
	return n
}

const httpdCmd = "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"

// TestPublishedPorts: a web server in a container answers on the host
// port published for it; `port` and inspect show the mapping; a second
// container cannot take the same host port.
func TestPublishedPorts(t *testing.T) {
	needPasta(t)
	s := S.main
	withBusybox(t, s)
	port := freeTCPPort(t)
	spec := fmt.Sprintf("127.0.0.1:%d:80", port)
	s.mustPelagos(t, "run", "-d", "--name", "web", "-p", spec, "localhost/busybox", "sh", "-c", httpdCmd)
	defer s.pelagos(t, "rm", "-f", "web")
	body, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil || body != "hello-from-web\n" {
		t.Fatalf("GET through the published port: %q, %v\n%s", body, err, s.pelagos(t, "logs", "web"))
	}
	if out := s.mustPelagos(t, "port", "web"); out != fmt.Sprintf("80/tcp -> 127.0.0.1:%d\n", port) {
		t.Fatalf("port: %q", out)
	}
	if out := s.mustPelagos(t, "port", "web", "80/tcp"); out != fmt.Sprintf("127.0.0.1:%d\n", port) {
		t.Fatalf("port web 80/tcp: %q", out)
	}
	if out := s.mustPelagos(t, "ps"); !strings.Contains(out, fmt.Sprintf("127.0.0.1:%d->80/tcp", port)) {
		t.Fatalf("ps lacks the published port:\n%s", out)
	}
	insp := s.mustPelagos(t, "inspect", "web")
	for _, want := range []string{`"NetworkMode": "pasta"`, `"IPAddress": "10.0.2.100"`, fmt.Sprintf(`"HostPort": "%d"`, port), `"80/tcp"`} {
		if !strings.Contains(insp, want) {
			t.Errorf("inspect lacks %s:\n%s", want, insp)
		}
	}
	// The same host port again: a clear error, nothing left behind.
	before := s.mustPelagos(t, "ps", "-a", "-q")
	res := s.pelagos(t, "run", "--rm", "-p", spec, "localhost/busybox", "true")
	if res.Code != 125 || !strings.Contains(res.Stderr, strconv.Itoa(port)) || !strings.Contains(res.Stderr, "taken") {
		t.Fatalf("second container on the same port: %s", res)
	}
	if after := s.mustPelagos(t, "ps", "-a", "-q"); after != before {
		t.Fatalf("the failed run left a container: %q → %q", before, after)
	}
	// A random host port for -p CTRPORT.
	s.mustPelagos(t, "run", "-d", "--name", "web2", "-p", "80", "localhost/busybox", "sh", "-c", httpdCmd)
	defer s.pelagos(t, "rm", "-f", "web2")
	out := strings.TrimSpace(s.mustPelagos(t, "port", "web2", "80"))
	_, p2, _ := strings.Cut(out, ":")
	if body, err := httpGet(t, "http://127.0.0.1:"+p2+"/"); err != nil || body != "hello-from-web2\n" {
		t.Fatalf("GET through the random port %q: %q, %v", out, body, err)
	}
	s.mustPelagos(t, "rm", "-f", "web", "web2")
	if n := pastaProcesses(s.u.UID); n != 0 {
		t.Fatalf("%d pasta processes left after rm -f", n)
	}
}

// TestPublishedUDP: a datagram to the published UDP port comes back.
func TestPublishedUDP(t *testing.T) {
	needPasta(t)
	s := S.main
	dir := filepath.Join(S.work, "udpecho")
	os.MkdirAll(dir, 0o755)
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "udpecho"), "./testdata/udpecho")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build udpecho: %v: %s", err, out)
	}
	archive := filepath.Join(S.work, "udpecho.tar")
	if _, err := imagetest.WriteOCIArchive(dir, "localhost/udpecho:latest", imagetest.Config{Entrypoint: []string{"/udpecho"}}, archive); err != nil {
		t.Fatal(err)
	}
	s.mustPelagos(t, "load", "-i", archive)
	defer s.pelagos(t, "rmi", "-f", "localhost/udpecho")
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	// Debian 12's pasta cannot forward UDP to another container port:
	// pelagos says so instead of dropping datagrams.
	old := pastaIsOld()
	if old {
		res := s.pelagos(t, "run", "--rm", "-p", fmt.Sprintf("127.0.0.1:%d:7/udp", port), "localhost/udpecho", "7")
		if res.Code != 125 || !strings.Contains(res.Stderr, "same port") {
			t.Fatalf("UDP to another port on an old pasta: %s", res)
		}
	}
	spec := fmt.Sprintf("127.0.0.1:%d:7/udp", port)
	args := []string{"7"}
	if old {
		spec, args = fmt.Sprintf("127.0.0.1:%d:%d/udp", port, port), []string{strconv.Itoa(port)}
	}
	s.mustPelagos(t, append([]string{"run", "-d", "--name", "echo", "-p", spec, "localhost/udpecho"}, args...)...)
	defer s.pelagos(t, "rm", "-f", "echo")
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 100)
	for i := 0; ; i++ {
		conn.Write([]byte("ping-udp"))
		conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := conn.Read(buf)
		if err == nil && string(buf[:n]) == "ping-udp" {
			break
		}
		if i > 30 {
			t.Fatalf("no UDP echo through the published port: %v\n%s\n%s", err, s.pelagos(t, "logs", "echo"), s.pelagos(t, "ps", "-a"))
		}
	}
}

// pastaIsOld tells whether pasta predates the fix for UDP forwarding to
// another port (it then prints no version date).
func pastaIsOld() bool {
	out, _ := exec.Command("pasta", "--version").CombinedOutput()
	return !strings.Contains(string(out), "_")
}

// TestReachTheHost: the host is host.containers.internal. By default a
// container reaches the host's services on its address but not those on
// its loopback; with pasta:map-gw it reaches loopback ones too.
func TestReachTheHost(t *testing.T) {
	needPasta(t)
	s := S.main
	withBusybox(t, s)
	serve := func(addr string) (int, func()) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "host-says-hi\n") })}
		go srv.Serve(l)
		return l.Addr().(*net.TCPAddr).Port, func() { srv.Close() }
	}
	loPort, stopLo := serve("127.0.0.1:0")
	defer stopLo()
	allPort, stopAll := serve("0.0.0.0:0")
	defer stopAll()
	get := func(network string, port int) result {
		args := []string{"run", "--rm"}
		if network != "" {
			args = append(args, "--network", network)
		}
		// Static busybox cannot resolve through NSS: look the name up in
		// /etc/hosts by hand, which is where the name lives.
		script := fmt.Sprintf("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 3 nc $(awk '/host.containers.internal/ {print $1}' /etc/hosts) %d", port)
		return s.pelagos(t, append(args, "localhost/busybox", "sh", "-c", script)...)
	}
	if res := get("", allPort); !strings.HasSuffix(res.Stdout, "host-says-hi\n") {
		t.Errorf("default network, host service on all addresses: %s", res)
	}
	if res := get("", loPort); strings.Contains(res.Stdout, "host-says-hi") {
		t.Errorf("default network reached the host's loopback-only service: %s", res)
	}
	if res := get("pasta:map-gw", loPort); !strings.HasSuffix(res.Stdout, "host-says-hi\n") {
		t.Errorf("pasta:map-gw, host loopback service: %s", res)
	}
	if out := s.mustPelagos(t, "run", "--rm", "--network", "pasta:map-gw", "localhost/busybox", "cat", "/etc/hosts"); !strings.Contains(out, "10.0.2.2\thost.containers.internal") {
		t.Errorf("/etc/hosts with map-gw:\n%s", out)
	}
}

// dnsResponder answers A queries for NAME.pelagos.test with 203.0.113.7.
func dnsResponder(t *testing.T, addr string) *atomic.Int32 {
	t.Helper()
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("DNS responder on %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	var queries atomic.Int32
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			queries.Add(1)
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
			b.EnableCompression()
			b.StartQuestions()
			b.Question(q)
			b.StartAnswers()
			if q.Type == dnsmessage.TypeA && strings.HasSuffix(q.Name.String(), ".pelagos.test.") {
				b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: [4]byte{203, 0, 113, 7}})
			}
			msg, err := b.Finish()
			if err == nil {
				c.WriteTo(msg, from)
			}
		}
	}()
	return &queries
}

// TestDNSThroughPasta: names resolve inside the container through
// pasta's forwarder, against the resolver the host uses (here a tiny one
// the test runs on loopback, named in the service's /etc/resolv.conf).
func TestDNSThroughPasta(t *testing.T) {
	needPasta(t)
	f := images(t)
	queries := dnsResponder(t, "127.0.0.153:53")
	resolv := filepath.Join(S.work, "resolv-dns-test.conf")
	os.WriteFile(resolv, []byte("nameserver 127.0.0.153\nsearch pelagos.test\n"), 0o644)
	u, err := ensureUser("pelagos-net", true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := startSessionWith(u, "net", S.bin+"/pelagosd --idle-timeout 10m", resolv)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	s.mustPelagos(t, "load", "-i", f.ociArchive)
	res := s.pelagos(t, "run", "--rm", "localhost/busybox", "sh", "-c", "cat /etc/resolv.conf; nslookup probe.pelagos.test")
	if res.Code != 0 || !strings.Contains(res.Stdout, "nameserver 10.0.2.3") || !strings.Contains(res.Stdout, "203.0.113.7") {
		t.Fatalf("DNS through pasta: %s", res)
	}
	if queries.Load() == 0 {
		t.Fatal("the host's resolver saw no query")
	}
	// --dns and --dns-search replace them; --add-host adds a line.
	out := s.mustPelagos(t, "run", "--rm", "--dns", "192.0.2.53", "--dns-search", "example.org", "--dns-option", "ndots:2",
		"--add-host", "db.local:192.0.2.10", "localhost/busybox", "cat", "/etc/resolv.conf", "/etc/hosts")
	for _, want := range []string{"nameserver 192.0.2.53", "search example.org", "options ndots:2", "192.0.2.10\tdb.local"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

// TestNetworkModes: none has only loopback, host sees the host's
// interfaces, container:NAME shares another container's.
func TestNetworkModes(t *testing.T) {
	needPasta(t)
	s := S.main
	withBusybox(t, s)
	ifaces := func(args ...string) string {
		return s.mustPelagos(t, append(append([]string{"run", "--rm"}, args...), "localhost/busybox", "sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '")...)
	}
	if got := ifaces("--network", "none"); got != "lo " {
		t.Errorf("--network none interfaces: %q", got)
	}
	if got := ifaces(); !strings.Contains(got, "lo") || strings.Count(got, " ") != 2 {
		t.Errorf("default (pasta) interfaces: %q", got)
	}
	hostIfaces, _ := exec.Command("sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '").Output()
	if got := ifaces("--network", "host"); got != string(hostIfaces) {
		t.Errorf("--network host interfaces: %q, host has %q", got, hostIfaces)
	}
	s.mustPelagos(t, "run", "-d", "--name", "netowner", "localhost/busybox", "sh", "-c", httpdCmd)
	defer s.pelagos(t, "rm", "-f", "netowner")
	res := s.pelagos(t, "run", "--rm", "--network", "container:netowner", "localhost/busybox", "sh", "-c",
		"for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 3 nc 127.0.0.1 80 | grep hello && exit 0; sleep 0.2; done; exit 1")
	if res.Code != 0 || res.Stdout != "hello-from-netowner\n" {
		t.Errorf("container:netowner reaching its loopback: %s", res)
	}
	s.mustPelagos(t, "stop", "-t", "0", "netowner")
	if res := s.pelagos(t, "run", "--rm", "--network", "container:netowner", "localhost/busybox", "true"); res.Code != 125 || !strings.Contains(res.Stderr, "not running") {
		t.Errorf("container: naming a stopped container: %s", res)
	}
}

// TestNetworkBadInput: malformed options fail with one line and leave
// nothing behind.
func TestNetworkBadInput(t *testing.T) {
	needPasta(t)
	s := S.main
	withBusybox(t, s)
	before := s.mustPelagos(t, "ps", "-a", "-q")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-p", "80:80:80:80"}, "too many colons"},
		{[]string{"-p", "70000:80"}, "1-65535"},
		{[]string{"-p", "8080:0"}, "1-65535"},
		{[]string{"-p", "abc"}, "not a port"},
		{[]string{"-p", "8000-8010:80-85"}, "differ in length"},
		{[]string{"-p", "8080:80/sctp"}, "unknown protocol"},
		{[]string{"-p", "999.1.1.1:8080:80"}, "not an IPv4"},
		{[]string{"-p", "80:80"}, "ip_unprivileged_port_start"},
		{[]string{"--network", "bridge"}, "root"},
		{[]string{"--network", "nosuch"}, "pelagos-privhelper"},
		{[]string{"--network", "bad name!"}, "unknown network"},
		{[]string{"--no-nat"}, "--internal"},
		{[]string{"--dns-backend", "dnsmasq"}, "builtin"},
		{[]string{"--network", "container:"}, "container name"},
		{[]string{"--network", "none", "-p", "8080:80"}, "pasta"},
		{[]string{"--network", "pasta:--netns=/x"}, "set by pelagos"},
		{[]string{"--ip", "10.0.2.5"}, "root networking"},
		{[]string{"--mac-address", "02:00:00:00:00:01"}, "MAC"},
		{[]string{"--dns", "not-an-ip"}, "not an IP"},
		{[]string{"--add-host", "nocolon"}, "NAME:IP"},
		{[]string{"--network", "container:nosuchctr"}, "nosuchctr"},
	} {
		res := s.pelagos(t, append(append([]string{"run", "--rm"}, tc.args...), "localhost/busybox", "true")...)
		if res.Code != 125 || !strings.Contains(res.Stderr, tc.want) || strings.Count(strings.TrimSpace(res.Stderr), "\n") != 0 {
			t.Errorf("%v: want exit 125 and one line with %q, got %s", tc.args, tc.want, res)
		}
	}
	if after := s.mustPelagos(t, "ps", "-a", "-q"); after != before {
		t.Errorf("bad network options left containers: %q → %q", before, after)
	}
	// info says the same, before anything is tried.
	if out := s.mustPelagos(t, "info"); !strings.Contains(out, "network.root: unavailable: root networking needs pelagos-privhelper") || !strings.Contains(out, "network.pasta: available") {
		t.Errorf("info without a system bus:\n%s", out)
	}
}

// TestPastaReleasedOnEveryPath: 200 runs with a published port leave no
// pasta process and no network files; neither does a container killed,
// one removed with -f, nor one whose service was killed meanwhile.
func TestPastaReleasedOnEveryPath(t *testing.T) {
	needPasta(t)
	s := S.main
	withBusybox(t, s)
	netDir := filepath.Join(s.runtimeDir, "pelagos", "net")
	check := func(when string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			n, files := pastaProcesses(s.u.UID), countEntriesOf(netDir)
			if n == 0 && files == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d pasta processes, %d entries in %s", when, n, files, netDir)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	check("before")
	for i := 0; i < 200; i++ {
		port := 20000 + i
		if res := s.pelagos(t, "run", "--rm", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "localhost/busybox", "true"); res.Code != 0 {
			t.Fatalf("cycle %d: %s", i, res)
		}
	}
	check("after 200 runs")
	// Killed from inside, removed with -f.
	s.mustPelagos(t, "run", "-d", "--name", "k1", "-p", "80", "localhost/busybox", "sleep", "60")
	s.mustPelagos(t, "kill", "k1")
	s.mustPelagos(t, "wait", "k1")
	s.mustPelagos(t, "rm", "k1")
	s.mustPelagos(t, "run", "-d", "--name", "k2", "-p", "80", "localhost/busybox", "sleep", "60")
	s.mustPelagos(t, "rm", "-f", "k2")
	check("after kill and rm -f")
	// The service dies while a published container runs: the port keeps
	// working, and once the container ends the next service cleans up.
	port := freeTCPPort(t)
	s.mustPelagos(t, "run", "-d", "--name", "survivor", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "localhost/busybox", "sh", "-c", httpdCmd)
	defer s.pelagos(t, "rm", "-f", "survivor")
	if body, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil || body != "hello-from-survivor\n" {
		t.Fatalf("before the crash: %q %v", body, err)
	}
	if err := killAndWait(s.servicePid(t)); err != nil {
		t.Fatal(err)
	}
	if body, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil || body != "hello-from-survivor\n" {
		t.Fatalf("after the service was killed, the published port stopped: %q %v", body, err)
	}
	s.mustPelagos(t, "rm", "-f", "survivor")
	check("after the service was killed and the container removed")
}

// TestPastaUnavailableFallsBack: when pasta cannot open /dev/net/tun the
// container runs with loopback only and the user is told why and how to
// fix it; publishing a port is refused instead of silently dropped.
func TestPastaUnavailableFallsBack(t *testing.T) {
	needPasta(t)
	s := S.main
	withBusybox(t, s)
	fi, err := os.Stat("/dev/net/tun")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod("/dev/net/tun", 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod("/dev/net/tun", fi.Mode().Perm())
	res := s.pelagos(t, "run", "--rm", "localhost/busybox", "ls", "/sys/class/net")
	if res.Code != 0 || res.Stdout != "lo\n" || !strings.Contains(res.Stderr, "WARN") || !strings.Contains(res.Stderr, "chmod 0666 /dev/net/tun") {
		t.Fatalf("run without a usable tun device: %s", res)
	}
	if res := s.pelagos(t, "run", "--rm", "-p", "8080:80", "localhost/busybox", "true"); res.Code != 125 || !strings.Contains(res.Stderr, "/dev/net/tun") {
		t.Fatalf("publishing without a usable tun device: %s", res)
	}
}

// TestPublishAll: -P publishes every port the image EXPOSEs (set here by
// import --change) on a free host port, and the host reaches it; a UDP
// port keeps its number on a pasta that cannot move UDP.
func TestPublishAll(t *testing.T) {
	needPasta(t)
	s := S.main
	f := images(t)
	s.mustPelagos(t, "import", "--change", "EXPOSE 80 8081/udp", f.rootfsTar, "localhost/exposer")
	defer s.pelagos(t, "rmi", "-f", "localhost/exposer")
	if r := s.pelagos(t, "import", "--change", "EXPOSE 80/sctp", f.rootfsTar, "localhost/bad"); r.Code == 0 || !strings.Contains(r.Stderr, "EXPOSE takes PORT") {
		t.Errorf("EXPOSE 80/sctp: %s", r)
	}
	s.mustPelagos(t, "run", "-d", "--name", "pall", "-P", "localhost/exposer", "sh", "-c",
		"mkdir -p /www && echo from-P > /www/index.html && exec httpd -f -p 80 -h /www")
	defer s.pelagos(t, "rm", "-f", "pall")
	out := s.mustPelagos(t, "port", "pall")
	m := regexp.MustCompile(`(?m)^80/tcp -> 0\.0\.0\.0:(\d+)$`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "8081/udp -> 0.0.0.0:") {
		t.Fatalf("port after -P:\n%s", out)
	}
	if pastaIsOld() && !strings.Contains(out, "8081/udp -> 0.0.0.0:8081") {
		t.Errorf("an old pasta's UDP port should keep its number:\n%s", out)
	}
	var body string
	for i := 0; i < 30 && !strings.Contains(body, "from-P"); i++ {
		if resp, err := http.Get("http://127.0.0.1:" + m[1] + "/"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(body, "from-P") {
		t.Errorf("the port -P published did not answer: %q", body)
	}
}
