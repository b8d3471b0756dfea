package imagetest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestArchives(t *testing.T) {
	if _, err := os.Stat(busyboxPath); err != nil {
		t.Skip("busybox-static is not installed")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	if err := BusyboxRootfs(root); err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	if err := WriteRootfsTar(root, a); err != nil {
		t.Fatal(err)
	}
	if err := WriteRootfsTar(root, b); err != nil {
		t.Fatal(err)
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Fatal("rootfs tar is not reproducible")
	}
	oci := filepath.Join(dir, "oci.tar")
	md, err := WriteOCIArchive(root, "localhost/x:1", Config{Cmd: []string{"sh"}}, oci)
	if err != nil {
		t.Fatal(err)
	}
	files := readTar(t, oci)
	for name, data := range files {
		if hexd, ok := strings.CutPrefix(name, "blobs/sha256/"); ok && hexd != "" {
			sum := sha256.Sum256(data)
			if hex.EncodeToString(sum[:]) != hexd {
				t.Errorf("blob %s has the wrong digest", name)
			}
		}
	}
	var idx struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	json.Unmarshal(files["index.json"], &idx)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != md || idx.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "localhost/x:1" {
		t.Fatalf("index.json: %s", files["index.json"])
	}
	if err := WriteDockerArchive(root, "localhost/x:1", Config{}, filepath.Join(dir, "d.tar")); err != nil {
		t.Fatal(err)
	}
	if _, ok := readTar(t, filepath.Join(dir, "d.tar"))["manifest.json"]; !ok {
		t.Fatal("docker archive lacks manifest.json")
	}
}

func readTar(t *testing.T, p string) map[string][]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = b
	}
}
