package tests

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pelagos-containers/pelagos/tests/imagetest"
)

// storeState is what a failed operation must leave as it was: the image
// ids and the layers in the user's store.
func storeState(t *testing.T, s *userSession) string {
	t.Helper()
	ids := s.mustPelagos(t, "images", "-q", "--no-trunc")
	layers := 0
	files, _ := filepath.Glob(filepath.Join(s.u.Home, ".local/share/pelagos/storage/*-layers/layers.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ls []json.RawMessage
		if err := json.Unmarshal(b, &ls); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		layers += len(ls)
	}
	return fmt.Sprintf("images %q, %d layers", ids, layers)
}

// userDir makes a directory the session user owns.
func userDir(t *testing.T, s *userSession, name string) string {
	t.Helper()
	d := filepath.Join(s.u.Home, name)
	os.RemoveAll(d)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(d, s.u.UID, s.u.GID)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// bigImage is an OCI layout holding "big", an image of two layers (1 MiB
// and 24 MiB of random bytes) unique to seed.
func bigImage(t *testing.T, seed uint64) string {
	t.Helper()
	layout := filepath.Join(S.work, fmt.Sprintf("layout-%d", seed))
	os.RemoveAll(layout)
	if _, err := imagetest.WriteLayout(layout, "big", imagetest.LayoutImage{LayerSizes: []int{1 << 20, 24 << 20}, Seed: seed}); err != nil {
		t.Fatal(err)
	}
	return layout
}

// layers lists the layer digests of an image as the registry keeps it
// (pushing compresses the layers, so they differ from the layout's).
func (r *registry) layers(t *testing.T, name string) []string {
	t.Helper()
	out, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+r.addr+"/"+name).Output()
	if err != nil {
		t.Fatalf("skopeo inspect %s: %v", name, err)
	}
	var m struct{ Layers []struct{ Digest string } }
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, l := range m.Layers {
		ds = append(ds, l.Digest)
	}
	return ds
}

// TestLoginPushPullWithAuth: a registry that wants a login refuses pulls
// and bad passwords with a 401 naming it, accepts what `pelagos login`
// stored, and forgets it after `logout`.
func TestLoginPushPullWithAuth(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	r, err := newRegistry("authregistry", true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.stop()
	if err := r.seed("oci-archive:"+images(t).ociArchive, "team/box:1", false); err != nil {
		t.Fatal(err)
	}
	ref := r.addr + "/team/box:1"
	before := storeState(t, s)

	res := s.pelagos(t, "pull", "--tls-verify=false", ref)
	if res.Code != 125 || !strings.Contains(res.Stderr, "401") || !strings.Contains(res.Stderr, "registry "+r.addr) ||
		!strings.Contains(res.Stderr, "pelagos login "+r.addr) {
		t.Fatalf("pull without login: %s", res)
	}
	res = s.runIn(t, []byte("wrong\n"), nil, filepath.Join(S.bin, "pelagos"), "login", "--tls-verify=false", "-u", r.user, "--password-stdin", r.addr)
	if res.Code != 125 || !strings.Contains(res.Stderr, "401") || !strings.Contains(res.Stderr, r.addr) {
		t.Fatalf("login with a wrong password: %s", res)
	}
	authFile := filepath.Join(s.runtimeDir, "containers", "auth.json")
	if b, _ := os.ReadFile(authFile); strings.Contains(string(b), r.addr) {
		t.Fatalf("a refused login wrote credentials to %s: %s", authFile, b)
	}
	if after := storeState(t, s); after != before {
		t.Fatalf("failed pull changed the store: %s → %s", before, after)
	}

	res = s.runIn(t, []byte(r.password+"\n"), nil, filepath.Join(S.bin, "pelagos"), "login", "--tls-verify=false", "-u", r.user, "--password-stdin", r.addr)
	if res.Code != 0 || res.Stdout != "Login Succeeded!\n" {
		t.Fatalf("login: %s", res)
	}
	b, err := os.ReadFile(authFile)
	if err != nil || !strings.Contains(string(b), r.addr) {
		t.Fatalf("auth.json after login: %v %s", err, b)
	}
	// Push with the stored credentials, pull back, run.
	dest := r.addr + "/team/pushed:2"
	if res := s.pelagos(t, "push", "--tls-verify=false", "localhost/busybox", dest); res.Code != 0 {
		t.Fatalf("push with stored credentials: %s", res)
	}
	if res := s.pelagos(t, "pull", "--tls-verify=false", dest); res.Code != 0 {
		t.Fatalf("pull back what was pushed: %s", res)
	}
	defer s.pelagos(t, "rmi", "-f", dest)
	if res := s.pelagos(t, "run", "--rm", dest, "echo", "pushed-and-pulled"); res.Stdout != "pushed-and-pulled\n" {
		t.Fatalf("run the pushed image: %s", res)
	}
	if res := s.pelagos(t, "logout", r.addr); res.Code != 0 || !strings.Contains(res.Stdout, "Removed login credentials for "+r.addr) {
		t.Fatalf("logout: %s", res)
	}
	if b, _ := os.ReadFile(authFile); strings.Contains(string(b), r.addr) {
		t.Fatalf("auth.json still names %s after logout: %s", r.addr, b)
	}
	if res := s.pelagos(t, "logout", r.addr); res.Code != 125 || !strings.Contains(res.Stderr, "not logged in") {
		t.Fatalf("second logout: %s", res)
	}
	if res := s.pelagos(t, "pull", "--tls-verify=false", ref); res.Code != 125 || !strings.Contains(res.Stderr, "401") {
		t.Fatalf("pull after logout: %s", res)
	}
	// --creds works without a login.
	if res := s.pelagos(t, "pull", "--tls-verify=false", "--creds", r.user+":"+r.password, ref); res.Code != 0 {
		t.Fatalf("pull --creds: %s", res)
	}
	defer s.pelagos(t, "rmi", "-f", ref)

	// Docker's config.json is read too.
	dockerDir := filepath.Join(s.u.Home, ".docker")
	os.MkdirAll(dockerDir, 0o700)
	defer os.RemoveAll(dockerDir)
	cred := base64.StdEncoding.EncodeToString([]byte(r.user + ":" + r.password))
	os.WriteFile(filepath.Join(dockerDir, "config.json"), []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, r.addr, cred)), 0o600)
	os.Chown(dockerDir, s.u.UID, s.u.GID)
	os.Chown(filepath.Join(dockerDir, "config.json"), s.u.UID, s.u.GID)
	s.mustPelagos(t, "rmi", ref)
	if res := s.pelagos(t, "pull", "--tls-verify=false", ref); res.Code != 0 {
		t.Fatalf("pull with ~/.docker/config.json credentials: %s", res)
	}
	if res := s.pelagos(t, "logout", r.addr); res.Code != 125 || !strings.Contains(res.Stderr, "docker logout") {
		t.Fatalf("logout of docker's credentials: %s", res)
	}
	// Bad input.
	for _, args := range [][]string{
		{"login", "-u", "x", "--password-stdin", "https://Not A Registry"},
		{"login", "--password-stdin", r.addr},
		{"logout"},
	} {
		if res := s.runIn(t, []byte("pw\n"), nil, filepath.Join(S.bin, "pelagos"), args...); res.Code != 125 || res.Stderr == "" {
			t.Errorf("%v: want exit 125 and an error, got %s", args, res)
		}
	}
}

// TestPushToTransportsAndBack: push writes oci:, dir: and docker-archive:
// destinations, pull reads them back, with the same image id.
func TestPushToTransportsAndBack(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	id := strings.TrimSpace(s.mustPelagos(t, "images", "-q", "--no-trunc", "--filter", "reference=localhost/busybox"))
	dir := userDir(t, s, "push-out")
	for _, dest := range []string{"oci:" + dir + "/layout:v1", "dir:" + dir + "/dir", "docker-archive:" + dir + "/d.tar:localhost/fromarchive:1", "oci-archive:" + dir + "/o.tar:localhost/fromociarchive:1"} {
		if res := s.pelagos(t, "push", "localhost/busybox", dest); res.Code != 0 {
			t.Fatalf("push to %s: %s", dest, res)
		}
		res := s.pelagos(t, "pull", dest)
		if res.Code != 0 {
			t.Fatalf("pull from %s: %s", dest, res)
		}
		if got := strings.TrimSpace(res.Stdout); got != id {
			t.Errorf("pull from %s gave image %s, pushed %s", dest, got, id)
		}
	}
	if res := s.pelagos(t, "push", "localhost/busybox", "oci:relative/but/service/side"); res.Code != 125 && !strings.Contains(res.Stderr, "permission denied") {
		// The CLI makes the path absolute against its working directory
		// (the suite's, which the user cannot write).
		t.Fatalf("push to a relative oci: path: %s", res)
	}
	for _, tc := range []struct{ args []string }{
		{[]string{"push", "no-such-image:1", "oci:" + dir + "/x"}},
		{[]string{"push", "localhost/busybox", "ftp://nowhere/x"}},
		{[]string{"push", "--format", "v1", "localhost/busybox", "oci:" + dir + "/x"}},
		{[]string{"push", "localhost/busybox", "127.0.0.1:1/x:1"}},
	} {
		if res := s.pelagos(t, tc.args...); res.Code != 125 || res.Stderr == "" {
			t.Errorf("%v: want exit 125 and an error, got %s", tc.args, res)
		}
	}
}

// TestSaveLoadSeveralImages: save → rmi → load gives back the same image id
// and digest, for one image and for several in one archive of each
// format.
func TestSaveLoadSeveralImages(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	s.mustPelagos(t, "tag", "localhost/busybox", "localhost/second:2")
	defer s.pelagos(t, "rmi", "-f", "localhost/second:2")
	// A second, different image.
	f := images(t)
	s.mustPelagos(t, "load", "-i", f.dockerArch)
	dir := userDir(t, s, "save-out")
	want := s.mustPelagos(t, "images", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Digest}}", "--no-trunc")
	for _, format := range []string{"docker-archive", "oci-archive"} {
		archive := filepath.Join(dir, format+".tar")
		s.mustPelagos(t, "save", "--format", format, "-o", archive, "localhost/busybox", "localhost/second:2", "localhost/dockerbox")
		s.mustPelagos(t, "rmi", "-f", "localhost/busybox", "localhost/second:2", "localhost/dockerbox")
		out := s.mustPelagos(t, "load", "-i", archive)
		for _, n := range []string{"localhost/busybox:latest", "localhost/second:2", "localhost/dockerbox:latest"} {
			if !strings.Contains(out, n) {
				t.Errorf("%s: load did not bring back %s:\n%s", format, n, out)
			}
		}
		got := s.mustPelagos(t, "images", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Digest}}", "--no-trunc")
		if !sameLines(got, want) {
			t.Errorf("%s: save → rmi → load changed the images:\nbefore:\n%s\nafter:\n%s", format, want, got)
		}
	}
	// A failed save leaves no file.
	bad := filepath.Join(dir, "bad.tar")
	if res := s.pelagos(t, "save", "-o", bad, "localhost/busybox", "no-such-image"); res.Code != 125 || !strings.Contains(res.Stderr, "no-such-image") {
		t.Fatalf("save of a missing image: %s", res)
	}
	if _, err := os.Stat(bad); err == nil {
		t.Fatal("a failed save left its archive")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".bad.tar*")); len(left) > 0 {
		t.Fatalf("a failed save left %v", left)
	}
}

func sameLines(a, b string) bool {
	set := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			m[l] = true
		}
		return m
	}
	x, y := set(a), set(b)
	if len(x) != len(y) {
		return false
	}
	for k := range x {
		if !y[k] {
			return false
		}
	}
	return true
}

// TestHistory: history lists the build steps newest first with layer
// sizes.
func TestHistory(t *testing.T) {
	needRoot(t)
	s := S.main
	layout := filepath.Join(S.work, "layout-history")
	os.RemoveAll(layout)
	if _, err := imagetest.WriteLayout(layout, "h", imagetest.LayoutImage{LayerSizes: []int{3000, 50000}, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(s.mustPelagos(t, "pull", "oci:"+layout+":h"))
	defer s.pelagos(t, "rmi", "-f", id)
	out := s.mustPelagos(t, "history", id)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") || !strings.HasPrefix(lines[1], id[:12]) ||
		!strings.Contains(lines[1], "imagetest config") || !strings.Contains(lines[2], "imagetest layer 1") ||
		!strings.Contains(lines[2], "52.2 kB") || !strings.HasPrefix(lines[3], "<missing>") {
		t.Fatalf("history:\n%s", out)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(s.mustPelagos(t, "history", "--format", "json", id)), &rows); err != nil || len(rows) != 3 || rows[0]["id"] != id {
		t.Fatalf("history --format json: %v %v", err, rows)
	}
	if res := s.pelagos(t, "history", "no-such-image"); res.Code != 125 || !strings.Contains(res.Stderr, "no-such-image") {
		t.Fatalf("history of a missing image: %s", res)
	}
}

// TestPullPlatform: a multi-platform index gives the host's image, or the
// one --platform names.
func TestPullPlatform(t *testing.T) {
	r := testRegistry(t)
	s := S.main
	layout := filepath.Join(S.work, "layout-multi")
	os.RemoveAll(layout)
	if _, err := imagetest.WriteMultiPlatformLayout(layout, "multi", []string{"amd64", "arm64", "s390x"}); err != nil {
		t.Fatal(err)
	}
	if err := r.seed("oci:"+layout+":multi", "multi:1", true); err != nil {
		t.Fatal(err)
	}
	ref := r.addr + "/multi:1"
	defer s.pelagos(t, "rmi", "-f", ref)
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{nil, hostArch()},
		{[]string{"--platform", "linux/arm64"}, "arm64"},
		{[]string{"--arch", "s390x"}, "s390x"},
	} {
		res := s.pelagos(t, append(append([]string{"pull", "--tls-verify=false"}, tc.flags...), ref)...)
		if res.Code != 0 {
			t.Fatalf("pull %v: %s", tc.flags, res)
		}
		var v []struct {
			Architecture string
			Config       struct{ Labels map[string]string }
		}
		if err := json.Unmarshal([]byte(s.mustPelagos(t, "image", "inspect", ref)), &v); err != nil || len(v) != 1 {
			t.Fatalf("inspect: %v", err)
		}
		if v[0].Architecture != tc.want || v[0].Config.Labels["arch"] != tc.want {
			t.Errorf("pull %v: got %s (label %s), want %s", tc.flags, v[0].Architecture, v[0].Config.Labels["arch"], tc.want)
		}
	}
	for _, bad := range []string{"arm64", "linux/ARM64", "linux/arm64/v8/x"} {
		if res := s.pelagos(t, "pull", "--tls-verify=false", "--platform", bad, ref); res.Code != 125 || !strings.Contains(res.Stderr, "OS/ARCH") {
			t.Errorf("--platform %s: %s", bad, res)
		}
	}
	if res := s.pelagos(t, "pull", "--tls-verify=false", "--platform", "linux/riscv64", ref); res.Code != 125 || !strings.Contains(res.Stderr, "riscv64") {
		t.Errorf("--platform of a platform the index lacks: %s", res)
	}
}

func hostArch() string {
	out, _ := exec.Command("dpkg", "--print-architecture").Output()
	return strings.TrimSpace(string(out))
}

// TestRegistryDiesMidPull: the registry is killed while a big layer is on
// the wire. The pull fails with a clear error, the store is as before,
// and a retry once the registry is back succeeds.
func TestRegistryDiesMidPull(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	r, err := newRegistry("dyingregistry", false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.stop()
	layout := bigImage(t, 11)
	if err := r.seed("oci:"+layout+":big", "big:1", false); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, r.addr)
	ref := p.addr + "/big:1"
	before := storeState(t, s)
	p.arm(8<<20, r.stop)
	res := s.pelagos(t, "pull", "--tls-verify=false", ref)
	if res.Code != 125 || !strings.Contains(res.Stderr, "pull "+"docker://"+ref) {
		t.Fatalf("pull from a registry that died: %s", res)
	}
	t.Logf("error shown: %s", strings.TrimSpace(res.Stderr))
	if after := storeState(t, s); after != before {
		t.Fatalf("a pull cut short changed the store: %s → %s", before, after)
	}
	p.arm(0, nil)
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	res = s.pelagos(t, "pull", "--tls-verify=false", ref)
	if res.Code != 0 {
		t.Fatalf("retry: %s", res)
	}
	s.mustPelagos(t, "rmi", ref)
	if after := storeState(t, s); after != before {
		t.Fatalf("pull + rmi left something: %s → %s", before, after)
	}
}

// TestCorruptBlob: a layer whose bytes do not match its digest is
// rejected, naming the digest, and nothing is stored.
func TestCorruptBlob(t *testing.T) {
	r := testRegistry(t)
	s := S.main
	layout := filepath.Join(S.work, "layout-corrupt")
	os.RemoveAll(layout)
	if _, err := imagetest.WriteLayout(layout, "c", imagetest.LayoutImage{LayerSizes: []int{200000}, Seed: uint64(time.Now().UnixNano())}); err != nil {
		t.Fatal(err)
	}
	if err := r.seed("oci:"+layout+":c", "corrupt:1", false); err != nil {
		t.Fatal(err)
	}
	layer := r.layers(t, "corrupt:1")[0]
	blob := r.blobPath(layer)
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff // same size, other bytes
	if err := os.WriteFile(blob, b, 0o644); err != nil {
		t.Fatal(err)
	}
	before := storeState(t, s)
	res := s.pelagos(t, "pull", "--tls-verify=false", r.addr+"/corrupt:1")
	if res.Code != 125 || !strings.Contains(res.Stderr, "igest") || !strings.Contains(res.Stderr, strings.TrimPrefix(layer, "sha256:")[:12]) {
		t.Fatalf("pull of a corrupt blob: %s", res)
	}
	if after := storeState(t, s); after != before {
		t.Fatalf("a rejected pull changed the store: %s → %s", before, after)
	}
}

// TestConcurrentPullsShareOneDownload: two CLIs pulling the same image at
// once both succeed, and the registry serves its big layer once.
func TestConcurrentPullsShareOneDownload(t *testing.T) {
	r := testRegistry(t)
	s := S.main
	if err := r.seed("oci:"+bigImage(t, 31)+":big", "shared:1", false); err != nil {
		t.Fatal(err)
	}
	big := r.layers(t, "shared:1")[1]
	p := startProxy(t, r.addr)
	p.slow(2 * time.Millisecond) // ~25 MiB in 64 KiB steps: a few seconds
	ref := p.addr + "/shared:1"
	defer s.pelagos(t, "rmi", "-f", ref)
	var wg sync.WaitGroup
	results := make([]result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 1 {
				time.Sleep(300 * time.Millisecond)
			}
			results[i] = s.pelagos(t, "pull", "--tls-verify=false", ref)
		}()
	}
	wg.Wait()
	for i, res := range results {
		if res.Code != 0 || len(strings.TrimSpace(res.Stdout)) != 64 {
			t.Fatalf("pull %d: %s", i, res)
		}
	}
	if results[0].Stdout != results[1].Stdout {
		t.Fatalf("the two pulls gave different images: %q %q", results[0].Stdout, results[1].Stdout)
	}
	if n := p.gets(big); n != 1 {
		t.Fatalf("the big layer was downloaded %d times, want once", n)
	}
}

// TestPullOntoFullDisk: a pull that runs out of disk says so in one line
// naming the store and what to do, and leaves the store as it was.
func TestPullOntoFullDisk(t *testing.T) {
	r := testRegistry(t)
	f := images(t)
	u, err := ensureUser("pelagos-full", true)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(u.Home, ".local", "share")
	os.MkdirAll(data, 0o755)
	for _, d := range []string{filepath.Join(u.Home, ".local"), data} {
		os.Chown(d, u.UID, u.GID)
	}
	// 40 MiB: room for busybox, not for a 25 MiB layer staged and applied.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=40m,mode=0755,uid=%d,gid=%d", u.UID, u.GID), "pelagos-full", data).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	s, err := startSession(u, "full")
	if err != nil {
		exec.Command("umount", data).Run()
		t.Fatal(err)
	}
	defer func() {
		s.stop()
		if out, err := exec.Command("umount", data).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", data, err, out)
		}
	}()
	s.mustPelagos(t, "load", "-i", f.ociArchive)
	if err := r.seed("oci:"+bigImage(t, 41)+":big", "full:1", false); err != nil {
		t.Fatal(err)
	}
	before := storeState(t, s)
	res := s.pelagos(t, "pull", "--tls-verify=false", r.addr+"/full:1")
	if res.Code != 125 || !strings.Contains(res.Stderr, "no space left") || !strings.Contains(res.Stderr, "prune") {
		t.Fatalf("pull onto a full disk: %s", res)
	}
	if after := storeState(t, s); after != before {
		t.Fatalf("a pull that ran out of space changed the store: %s → %s", before, after)
	}
	if left := countEntriesOf(filepath.Join(data, "pelagos", "tmp")); left > 0 {
		t.Fatalf("%d scratch files left after the failed pull", left)
	}
	// Still usable.
	if res := s.pelagos(t, "run", "--rm", "localhost/busybox", "echo", "still-ok"); res.Stdout != "still-ok\n" {
		t.Fatalf("run after the failed pull: %s", res)
	}
}

// TestCancelOneOfTwoSharedPulls: Ctrl-C on one of two CLIs sharing a pull
// lets that one go at once; the other's pull goes on and succeeds.
func TestCancelOneOfTwoSharedPulls(t *testing.T) {
	r := testRegistry(t)
	s := S.main
	if err := r.seed("oci:"+bigImage(t, 51)+":big", "cancelone:1", false); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, r.addr)
	p.slow(2 * time.Millisecond)
	ref := p.addr + "/cancelone:1"
	defer s.pelagos(t, "rmi", "-f", ref)
	a, outA := s.startPelagos(t, "pull", "--tls-verify=false", ref)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(outA.String(), "Copying blob") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	b, outB := s.startPelagos(t, "pull", "--tls-verify=false", ref)
	time.Sleep(500 * time.Millisecond)
	a.Process.Signal(os.Interrupt)
	if code := waitExit(t, a); code != 125 || !strings.Contains(outA.String(), "cancelled") {
		t.Fatalf("the cancelled CLI: exit %d, output %q", code, outA.String())
	}
	if code := waitExit(t, b); code != 0 {
		t.Fatalf("the other CLI: exit %d, output %q", code, outB.String())
	}
	if !strings.Contains(s.mustPelagos(t, "images"), p.addr+"/cancelone") {
		t.Fatal("the shared pull did not finish for the CLI that stayed")
	}
}

// TestPullProgressBars: on a terminal, a pull draws a bar per layer.
func TestPullProgressBars(t *testing.T) {
	r := testRegistry(t)
	s := S.main
	if err := r.seed("oci:"+bigImage(t, 61)+":big", "bars:1", false); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, r.addr)
	p.slow(3 * time.Millisecond)
	ref := p.addr + "/bars:1"
	defer s.pelagos(t, "rmi", "-f", ref)
	layers := r.layers(t, "bars:1")
	ts := newTmux(t, s, "bars", 120, 30, filepath.Join(S.bin, "pelagos")+" pull --tls-verify=false "+ref)
	sc := ts.waitFor("/ 25.")
	if !strings.Contains(sc, "Copying blob "+strings.TrimPrefix(layers[1], "sha256:")[:12]+" [") {
		t.Fatalf("no bar for the big layer while it is copied:\n%s", sc)
	}
	sc = ts.waitFor("EXIT=0")
	for _, l := range layers {
		if !strings.Contains(sc, "Copying blob "+strings.TrimPrefix(l, "sha256:")[:12]+" done") {
			t.Errorf("layer %s not shown done:\n%s", l, sc)
		}
	}
	if strings.Count(sc, "Copying blob "+strings.TrimPrefix(layers[1], "sha256:")[:12]) != 1 {
		t.Errorf("the big layer's bar was not redrawn in place:\n%s", sc)
	}
}

// TestImagesSinceBefore: images --filter since=/before= compare creation
// times with a named image's, as podman's do.
func TestImagesSinceBefore(t *testing.T) {
	needRoot(t)
	s := S.main
	f := images(t)
	s.mustPelagos(t, "import", f.rootfsTar, "localhost/older")
	defer s.pelagos(t, "rmi", "-f", "localhost/older")
	time.Sleep(1100 * time.Millisecond)
	s.mustPelagos(t, "import", "--change", "ENV X=1", f.rootfsTar, "localhost/newer")
	defer s.pelagos(t, "rmi", "-f", "localhost/newer")
	since := s.mustPelagos(t, "images", "--filter", "since=localhost/older", "--format", "{{.Repository}}")
	if !strings.Contains(since, "localhost/newer") || strings.Contains(since, "localhost/older") {
		t.Errorf("since=localhost/older:\n%s", since)
	}
	before := s.mustPelagos(t, "images", "--filter", "before=newer", "--format", "{{.Repository}}")
	if !strings.Contains(before, "localhost/older") || strings.Contains(before, "localhost/newer") {
		t.Errorf("before=newer:\n%s", before)
	}
	if r := s.pelagos(t, "images", "--filter", "since=nosuch"); r.Code != 125 || !strings.Contains(r.Stderr, "no such image: nosuch") {
		t.Errorf("since=nosuch: %s", r)
	}
}
