package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelagos-containers/pelagos/tests/imagetest"
)

// TestWasmImage: an image whose platform is wasip1/wasm and whose layer
// is a module runs in-process (no wasmtime here) with -e, --bind/-v
// directories as its only view of files, read-only binds enforced, and
// its exit code as the container's.
func TestWasmImage(t *testing.T) {
	needRoot(t)
	s := S.main
	module := filepath.Join(S.work, "wasmhello.wasm")
	build := exec.Command("go", "build", "-o", module, "./testdata/wasmhello")
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the Wasm module: %v: %s", err, out)
	}
	b, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(S.work, "wasm-layout")
	if err := imagetest.WriteWasmLayout(layout, "localhost/wasmhello:latest", b); err != nil {
		t.Fatal(err)
	}
	exec.Command("chmod", "-R", "a+rX", layout).Run()
	s.mustPelagos(t, "pull", "oci:"+layout+":localhost/wasmhello:latest")
	defer s.pelagos(t, "rmi", "-f", "localhost/wasmhello")

	data := filepath.Join(s.u.Home, "wasm-data")
	os.RemoveAll(data)
	os.MkdirAll(data, 0o755)
	defer os.RemoveAll(data)
	os.WriteFile(filepath.Join(data, "in.txt"), []byte("x"), 0o644)
	exec.Command("chown", "-R", s.u.Name, data).Run()

	r := s.pelagos(t, "run", "--rm", "-e", "GREETING=hi", "-e", "DATA=/data", "-e", "EXIT=3", "--bind", data+":/data", "localhost/wasmhello", "one", "two")
	want := "hello from wasm\nargs: one two\nGREETING=hi\nentry: in.txt\nwrote /data/out.txt\n"
	if r.Code != 3 || r.Stdout != want {
		t.Fatalf("wasm run: got %s\nwant exit 3 and %q", r, want)
	}
	if got, err := os.ReadFile(filepath.Join(data, "out.txt")); err != nil || string(got) != "written by wasm\n" {
		t.Errorf("the module's file on the host: %q, %v", got, err)
	}
	// Only the preopened directories exist for the module.
	r = s.pelagos(t, "run", "--rm", "-e", "DATA=/etc", "localhost/wasmhello")
	if r.Code != 1 || !strings.Contains(r.Stderr, "open /etc") {
		t.Errorf("a directory that is not bound must not be reachable: %s", r)
	}
	// A read-only bind stays read-only.
	os.Remove(filepath.Join(data, "out.txt"))
	r = s.pelagos(t, "run", "--rm", "-e", "DATA=/ro", "--bind-ro", data+":/ro", "localhost/wasmhello")
	if r.Code != 1 || !strings.Contains(r.Stderr, "/ro/out.txt") {
		t.Errorf("writing through --bind-ro: %s", r)
	}
	if _, err := os.Stat(filepath.Join(data, "out.txt")); err == nil {
		t.Errorf("the module wrote through a read-only bind")
	}
	// A second run reuses the compiled module and keeps working.
	if r := s.pelagos(t, "run", "--rm", "localhost/wasmhello", "again"); r.Code != 0 || !strings.Contains(r.Stdout, "args: again") {
		t.Errorf("second run: %s", r)
	}
}
