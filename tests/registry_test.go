package tests

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// registry is a real docker-registry on 127.0.0.1.
type registry struct {
	addr string
	dir  string // config.yml, data/, registry.log
	cmd  *exec.Cmd
	// user and password, when the registry wants htpasswd logins.
	user, password string
}

var (
	regOnce sync.Once
	reg     *registry
	regErr  error
	// every registry started, stopped at the end of the suite
	registriesMu sync.Mutex
	registries   []*registry
)

// testRegistry is the shared registry, seeded with the busybox image as
// library/busybox:latest, shortbox:latest and shortbox:1.0.
func testRegistry(t *testing.T) *registry {
	t.Helper()
	needRoot(t)
	f := images(t)
	regOnce.Do(func() {
		reg, regErr = newRegistry("registry", false)
		for _, name := range []string{"library/busybox:latest", "shortbox:latest", "shortbox:1.0"} {
			if regErr == nil {
				regErr = reg.seed("oci-archive:"+f.ociArchive, name, false)
			}
		}
	})
	if regErr != nil {
		t.Fatalf("start the test registry: %v", regErr)
	}
	return reg
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// newRegistry starts a registry with its data in S.work/name; withAuth
// makes it accept only the user "tester" (htpasswd, bcrypt).
func newRegistry(name string, withAuth bool) (*registry, error) {
	for _, tool := range []string{"docker-registry", "skopeo"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is missing: scripts/test.sh installs it", tool)
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &registry{addr: fmt.Sprintf("127.0.0.1:%d", port), dir: filepath.Join(S.work, name)}
	if err := os.MkdirAll(filepath.Join(r.dir, "data"), 0o755); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/data\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", r.dir, r.addr)
	if withAuth {
		r.user, r.password = "tester", "s3cret-pw"
		hash, err := bcrypt.GenerateFromPassword([]byte(r.password), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		htpasswd := filepath.Join(r.dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(r.user+":"+string(hash)+"\n"), 0o644); err != nil {
			return nil, err
		}
		conf += fmt.Sprintf("auth:\n  htpasswd:\n    realm: pelagos-test\n    path: %s\n", htpasswd)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "config.yml"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	registriesMu.Lock()
	registries = append(registries, r)
	registriesMu.Unlock()
	return r, r.start()
}

// start runs the registry (again) on its address and waits until it
// listens.
func (r *registry) start() error {
	logf, err := os.OpenFile(filepath.Join(r.dir, "registry.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("docker-registry", "serve", filepath.Join(r.dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	r.cmd = cmd
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", r.addr)
		if err == nil {
			c.Close()
			return nil
		}
		if i > 250 {
			r.stop()
			return fmt.Errorf("registry did not listen on %s", r.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// seed copies src (a skopeo source reference) into the registry as name.
func (r *registry) seed(src, name string, all bool) error {
	args := []string{"copy", "--quiet", "--dest-tls-verify=false"}
	if all {
		args = append(args, "--all")
	}
	if r.user != "" {
		args = append(args, "--dest-creds", r.user+":"+r.password)
	}
	out, err := exec.Command("skopeo", append(args, src, "docker://"+r.addr+"/"+name)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("seed %s: %v: %s", name, err, out)
	}
	return nil
}

// blobPath is where the registry keeps a blob's bytes.
func (r *registry) blobPath(digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	return filepath.Join(r.dir, "data", "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
}

func (r *registry) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

func stopRegistry() {
	registriesMu.Lock()
	defer registriesMu.Unlock()
	for _, r := range registries {
		r.stop()
	}
}

func TestPullFromRegistry(t *testing.T) {
	r := testRegistry(t)
	s := S.main
	ref := r.addr + "/library/busybox:latest"
	res := s.pelagos(t, "pull", "--tls-verify=false", ref)
	if res.Code != 0 || len(strings.TrimSpace(res.Stdout)) != 64 || !strings.Contains(res.Stderr, "Trying to pull "+ref) {
		t.Fatalf("pull: %s", res)
	}
	defer s.pelagos(t, "rmi", "-f", ref)
	if out := s.mustPelagos(t, "images"); !strings.Contains(out, r.addr+"/library/busybox") {
		t.Fatalf("pulled image not listed:\n%s", out)
	}
	if res := s.pelagos(t, "run", "--rm", ref, "echo", "pulled-ok"); res.Stdout != "pulled-ok\n" {
		t.Fatalf("run pulled image: %s", res)
	}
	// By digest.
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://"+ref).Output()
	if err != nil {
		t.Fatalf("skopeo inspect: %v", err)
	}
	byDigest := r.addr + "/library/busybox@" + strings.TrimSpace(string(out))
	if res := s.pelagos(t, "pull", "--tls-verify=false", byDigest); res.Code != 0 {
		t.Fatalf("pull by digest: %s", res)
	}
}

// TestShortNamesAndImplicitPull: registries.conf decides where a short
// name comes from, and `run` pulls what it lacks, saying so.
func TestShortNamesAndImplicitPull(t *testing.T) {
	r := testRegistry(t)
	s := S.main
	confDir := filepath.Join(s.u.Home, ".config", "containers")
	os.MkdirAll(confDir, 0o755)
	conf := filepath.Join(confDir, "registries.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("unqualified-search-registries = [%q]\n\n[[registry]]\nlocation = %q\ninsecure = true\n", r.addr, r.addr)), 0o644)
	defer os.RemoveAll(filepath.Join(s.u.Home, ".config"))
	for _, d := range []string{filepath.Join(s.u.Home, ".config"), confDir} {
		os.Chown(d, s.u.UID, s.u.GID)
	}
	res := s.pelagos(t, "run", "--rm", "shortbox", "echo", "implicit")
	if res.Code != 0 || res.Stdout != "implicit\n" || !strings.Contains(res.Stderr, "Unable to find image 'shortbox' locally") ||
		!strings.Contains(res.Stderr, "Trying to pull "+r.addr+"/shortbox:latest") {
		t.Fatalf("implicit pull of a short name: %s", res)
	}
	defer s.pelagos(t, "rmi", "-f", r.addr+"/shortbox:latest")
	// Now it is local: no pull the second time.
	if res := s.pelagos(t, "run", "--rm", "shortbox", "true"); res.Code != 0 || strings.Contains(res.Stderr, "Unable to find") {
		t.Fatalf("second run pulled again: %s", res)
	}
	res = s.pelagos(t, "pull", "shortbox:1.0") // not an alias: busybox would resolve to docker.io
	if res.Code != 0 {
		t.Fatalf("pull by short name with tag: %s", res)
	}
	s.pelagos(t, "rmi", "-f", r.addr+"/shortbox:1.0")
}

func TestPullFailures(t *testing.T) {
	r := testRegistry(t)
	s := S.main
	before := s.mustPelagos(t, "images", "-q")
	port, _ := freePort() // nothing listens there
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pull", "--tls-verify=false", fmt.Sprintf("127.0.0.1:%d/nothing:latest", port)}, "connection refused"},
		{[]string{"pull", "--tls-verify=false", r.addr + "/library/busybox:nosuchtag"}, "manifest unknown"},
		{[]string{"pull", "--tls-verify=false", r.addr + "/nosuchrepo:latest"}, "unknown"},
		{[]string{"pull", "UPPER/Case"}, "invalid image reference"},
		{[]string{"pull", "ftp://x/y"}, "invalid image reference"},
		{[]string{"pull", r.addr + "/library/busybox:latest"}, "http: server gave HTTP response to HTTPS client"},
		{[]string{"run", "--rm", fmt.Sprintf("127.0.0.1:%d/nothing", port), "true"}, "Unable to find image"},
	} {
		res := s.pelagos(t, tc.args...)
		if res.Code != 125 || !strings.Contains(res.Stderr, tc.want) {
			t.Errorf("%v: want exit 125 and %q, got %s", tc.args, tc.want, res)
		}
	}
	if after := s.mustPelagos(t, "images", "-q"); after != before {
		t.Errorf("failed pulls changed the store: %q → %q", before, after)
	}
}

// TestPullCancel: Ctrl-C on `pelagos pull` cancels the job in the
// service; nothing half-pulled stays.
func TestPullCancel(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	// A "registry" that accepts connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	before := s.mustPelagos(t, "images", "-q")
	cmd, out := s.startPelagos(t, "pull", "--tls-verify=false", l.Addr().String()+"/stuck:latest")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "Trying to pull") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	if code := waitExit(t, cmd); code != 125 || !strings.Contains(out.String(), "cancelled") {
		t.Fatalf("cancelled pull: exit %d, output %q", code, out.String())
	}
	if after := s.mustPelagos(t, "images", "-q"); after != before {
		t.Fatalf("a cancelled pull changed the store")
	}
}
