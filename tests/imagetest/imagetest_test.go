package imagetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// rootfs builds the busybox root filesystem in a temporary directory, or
// skips the test when busybox-static is not installed.
func rootfs(t *testing.T) string {
	t.Helper()
	if err := checkStatic(busyboxPath); err != nil {
		t.Skipf("no static busybox: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := BusyboxRootfs(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// entry is one member of a tar archive.
type entry struct {
	hdr  *tar.Header
	data []byte
}

// readTar returns the members of the tar archive at p, in order.
func readTar(t *testing.T, p string) []entry {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return readTarBytes(t, b)
}

func readTarBytes(t *testing.T, b []byte) []entry {
	t.Helper()
	var out []entry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{h, data})
	}
}

// files maps the names of the regular files in entries to their contents.
func files(entries []entry) map[string][]byte {
	m := map[string][]byte{}
	for _, e := range entries {
		if e.hdr.Typeflag == tar.TypeReg {
			m[e.hdr.Name] = e.data
		}
	}
	return m
}

func unmarshal(t *testing.T, what string, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, b)
	}
}

func TestCheckStatic(t *testing.T) {
	err := checkStatic(filepath.Join(t.TempDir(), "busybox"))
	if err == nil || !strings.Contains(err.Error(), "apt-get install busybox-static") {
		t.Errorf("missing program: got %v", err)
	}
	text := filepath.Join(t.TempDir(), "text")
	os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755)
	if err := checkStatic(text); err == nil {
		t.Error("a script passed as a static ELF program")
	}
	for _, p := range []string{"/bin/ls", "/usr/bin/ls", "/bin/sh", "/usr/bin/env"} {
		if err := checkStatic(p); err != nil && strings.Contains(err.Error(), "dynamically linked") {
			return
		}
	}
	t.Log("found no dynamically linked program to try")
}

func TestBusyboxRootfs(t *testing.T) {
	dir := rootfs(t)
	fi, err := os.Lstat(filepath.Join(dir, "bin/busybox"))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o755 {
		t.Fatalf("bin/busybox: %v %v", fi, err)
	}
	for _, applet := range []string{"sh", "echo", "id", "ls", "cat", "sleep", "true", "false", "env", "hostname", "mount", "wget", "httpd"} {
		if target, err := os.Readlink(filepath.Join(dir, "bin", applet)); err != nil || target != "busybox" {
			t.Errorf("bin/%s: %q %v", applet, target, err)
		}
	}
	for _, d := range []string{"etc", "proc", "sys", "dev", "root", "home/alice", "var", "run", "usr/bin"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", d, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "tmp")); err != nil || fi.Mode() != fs.ModeDir|fs.ModeSticky|0o777 {
		t.Errorf("tmp: %v %v", fi.Mode(), err)
	}
	passwd, _ := os.ReadFile(filepath.Join(dir, "etc/passwd"))
	for _, line := range []string{
		"root:x:0:0:root:/root:/bin/sh",
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false",
		"alice:x:1000:1000:alice:/home/alice:/bin/sh",
	} {
		if !strings.Contains(string(passwd), line+"\n") {
			t.Errorf("etc/passwd lacks %q", line)
		}
	}
	group, _ := os.ReadFile(filepath.Join(dir, "etc/group"))
	for _, line := range []string{"root:x:0:", "nobody:x:65534:", "alice:x:1000:"} {
		if !strings.Contains(string(group), line+"\n") {
			t.Errorf("etc/group lacks %q", line)
		}
	}
	// A second run over the same directory must work too.
	if err := BusyboxRootfs(dir); err != nil {
		t.Fatalf("again: %v", err)
	}
}

func TestWriteRootfsTar(t *testing.T) {
	dir := rootfs(t)
	tmp := t.TempDir()
	a, b := filepath.Join(tmp, "a.tar"), filepath.Join(tmp, "b.tar")
	if err := WriteRootfsTar(dir, a); err != nil {
		t.Fatal(err)
	}
	if err := WriteRootfsTar(dir, b); err != nil {
		t.Fatal(err)
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if len(ab) == 0 || !bytes.Equal(ab, bb) {
		t.Fatal("two runs of WriteRootfsTar differ")
	}
	seen := map[string]*tar.Header{}
	for _, e := range readTarBytes(t, ab) {
		h := e.hdr
		if strings.HasPrefix(h.Name, "/") || strings.HasPrefix(h.Name, "./") || h.Name == "." {
			t.Errorf("entry %q is not a plain relative name", h.Name)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d %q:%q", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(fixedTime) {
			t.Errorf("%s: mtime %v", h.Name, h.ModTime)
		}
		seen[h.Name] = h
	}
	if h := seen["bin/busybox"]; h == nil || h.Typeflag != tar.TypeReg || h.Mode&0o777 != 0o755 {
		t.Errorf("bin/busybox: %+v", h)
	}
	if h := seen["bin/sh"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
		t.Errorf("bin/sh: %+v", h)
	}
	if h := seen["tmp/"]; h == nil || h.Typeflag != tar.TypeDir || h.Mode&0o7777 != 0o1777 {
		t.Errorf("tmp/: %+v", h)
	}
	if h := seen["etc/passwd"]; h == nil || h.Typeflag != tar.TypeReg {
		t.Errorf("etc/passwd: %+v", h)
	}
}

func TestWriteOCIArchive(t *testing.T) {
	dir := rootfs(t)
	tmp := t.TempDir()
	cfg := Config{
		Entrypoint: []string{"/bin/sh", "-c"},
		Cmd:        []string{"echo hi"},
		Env:        []string{"PATH=/bin:/usr/bin", "A=b"},
		WorkingDir: "/tmp",
		User:       "alice",
		Labels:     map[string]string{"k": "v"},
	}
	out := filepath.Join(tmp, "oci.tar")
	md, err := WriteOCIArchive(dir, "localhost/busybox:latest", cfg, out)
	if err != nil {
		t.Fatal(err)
	}
	entries := readTar(t, out)
	fm := files(entries)

	for name, data := range fm {
		if hx, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
			if sha(data) != "sha256:"+hx {
				t.Errorf("blob %s holds %s", name, sha(data))
			}
		}
	}
	blob := func(what, digest string, size int64) []byte {
		t.Helper()
		b, ok := fm["blobs/sha256/"+strings.TrimPrefix(digest, "sha256:")]
		if !ok {
			t.Fatalf("%s blob %s is missing", what, digest)
		}
		if int64(len(b)) != size {
			t.Fatalf("%s blob %s: size %d, descriptor says %d", what, digest, len(b), size)
		}
		return b
	}

	var layout v1.ImageLayout
	unmarshal(t, "oci-layout", fm["oci-layout"], &layout)
	if layout.Version != v1.ImageLayoutVersion {
		t.Errorf("oci-layout version %q", layout.Version)
	}

	var idx v1.Index
	unmarshal(t, "index.json", fm["index.json"], &idx)
	if idx.SchemaVersion != 2 || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %s", fm["index.json"])
	}
	d := idx.Manifests[0]
	if d.MediaType != v1.MediaTypeImageManifest || d.Digest.String() != md || d.Annotations[v1.AnnotationRefName] != "localhost/busybox:latest" {
		t.Fatalf("index.json manifest descriptor: %+v, returned digest %s", d, md)
	}

	var m v1.Manifest
	unmarshal(t, "manifest", blob("manifest", md, d.Size), &m)
	if m.SchemaVersion != 2 || m.MediaType != v1.MediaTypeImageManifest || m.Config.MediaType != v1.MediaTypeImageConfig ||
		len(m.Layers) != 1 || m.Layers[0].MediaType != v1.MediaTypeImageLayerGzip {
		t.Fatalf("manifest: %+v", m)
	}

	var img v1.Image
	unmarshal(t, "config", blob("config", m.Config.Digest.String(), m.Config.Size), &img)
	if img.Architecture != runtime.GOARCH || img.OS != "linux" || img.Created == nil || !img.Created.Equal(fixedTime) {
		t.Errorf("config platform/created: %+v", img)
	}
	c := img.Config
	if !reflect.DeepEqual(c.Entrypoint, cfg.Entrypoint) || !reflect.DeepEqual(c.Cmd, cfg.Cmd) || !reflect.DeepEqual(c.Env, cfg.Env) ||
		c.WorkingDir != cfg.WorkingDir || c.User != cfg.User || !reflect.DeepEqual(c.Labels, cfg.Labels) {
		t.Errorf("config: %+v", c)
	}

	gz := blob("layer", m.Layers[0].Digest.String(), m.Layers[0].Size)
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if img.RootFS.Type != "layers" || len(img.RootFS.DiffIDs) != 1 || img.RootFS.DiffIDs[0].String() != sha(plain) {
		t.Errorf("rootfs %+v, uncompressed layer is %s", img.RootFS, sha(plain))
	}
	rootTar := filepath.Join(tmp, "rootfs.tar")
	if err := WriteRootfsTar(dir, rootTar); err != nil {
		t.Fatal(err)
	}
	if want, _ := os.ReadFile(rootTar); !bytes.Equal(plain, want) {
		t.Error("the layer differs from WriteRootfsTar's output")
	}

	// Reproducible, and no annotation without a name.
	again := filepath.Join(tmp, "again.tar")
	md2, err := WriteOCIArchive(dir, "", cfg, again)
	if err != nil {
		t.Fatal(err)
	}
	if md2 != md {
		t.Errorf("manifest digest changed between runs: %s, %s", md, md2)
	}
	var unnamed v1.Index
	unmarshal(t, "index.json", files(readTar(t, again))["index.json"], &unnamed)
	if len(unnamed.Manifests) != 1 || len(unnamed.Manifests[0].Annotations) != 0 {
		t.Errorf("unnamed index.json: %+v", unnamed)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(tmp, ".imagetest-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestWriteDockerArchive(t *testing.T) {
	dir := rootfs(t)
	out := filepath.Join(t.TempDir(), "docker.tar")
	cfg := Config{Cmd: []string{"sh"}}
	if err := WriteDockerArchive(dir, "localhost/dockerbox:latest", cfg, out); err != nil {
		t.Fatal(err)
	}
	fm := files(readTar(t, out))
	var ms []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	unmarshal(t, "manifest.json", fm["manifest.json"], &ms)
	if len(ms) != 1 || len(ms[0].Layers) != 1 || !reflect.DeepEqual(ms[0].RepoTags, []string{"localhost/dockerbox:latest"}) {
		t.Fatalf("manifest.json: %s", fm["manifest.json"])
	}
	configBlob, ok := fm[ms[0].Config]
	if !ok || "sha256:"+strings.TrimSuffix(ms[0].Config, ".json") != sha(configBlob) {
		t.Fatalf("config %s is missing or misnamed", ms[0].Config)
	}
	var img v1.Image
	unmarshal(t, "config", configBlob, &img)
	if !reflect.DeepEqual(img.Config.Cmd, cfg.Cmd) || img.OS != "linux" || img.Architecture != runtime.GOARCH {
		t.Errorf("config: %+v", img)
	}
	layer, ok := fm[ms[0].Layers[0]]
	if !ok {
		t.Fatalf("layer %s is missing", ms[0].Layers[0])
	}
	if len(img.RootFS.DiffIDs) != 1 || img.RootFS.DiffIDs[0].String() != sha(layer) {
		t.Errorf("diff ids %v, layer is %s", img.RootFS.DiffIDs, sha(layer))
	}
	if fm := files(readTarBytes(t, layer)); fm["bin/busybox"] == nil {
		t.Error("layer lacks bin/busybox")
	}
}
