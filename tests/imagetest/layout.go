package imagetest

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// LayoutImage describes one image of WriteLayout: layers of
// pseudo-random bytes, so that nothing in them compresses and no two
// seeds share a blob.
type LayoutImage struct {
	// Arch is the config's architecture, runtime.GOARCH when empty.
	Arch string
	// LayerSizes are the sizes of the one file each layer holds.
	LayerSizes []int
	// Seed makes the bytes; images with equal seeds share layers.
	Seed   uint64
	Labels map[string]string
}

// WriteLayout adds an image to the OCI image layout in dir (created if
// needed) under refName and returns its manifest digest. Layers are
// uncompressed tars.
func WriteLayout(dir, refName string, img LayoutImage) (string, error) {
	d, err := writeImage(dir, img)
	if err != nil {
		return "", fmt.Errorf("write layout %s: %w", dir, err)
	}
	if err := addToIndex(dir, refName, d); err != nil {
		return "", fmt.Errorf("write layout %s: %w", dir, err)
	}
	return d.Digest, nil
}

// WriteMultiPlatformLayout adds to the layout in dir an image index under
// refName with one small image per architecture, each carrying the label
// "arch" with its architecture. It returns the index's digest.
func WriteMultiPlatformLayout(dir, refName string, archs []string) (string, error) {
	var ms []descriptor
	for i, a := range archs {
		d, err := writeImage(dir, LayoutImage{Arch: a, LayerSizes: []int{1024}, Seed: uint64(1000 + i), Labels: map[string]string{"arch": a}})
		if err != nil {
			return "", fmt.Errorf("write layout %s: %w", dir, err)
		}
		d.Platform = &v1.Platform{OS: "linux", Architecture: a}
		ms = append(ms, d)
	}
	idx, err := json.Marshal(struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}{2, v1.MediaTypeImageIndex, ms})
	if err != nil {
		return "", err
	}
	digest, err := putBlob(dir, idx)
	if err != nil {
		return "", err
	}
	d := descriptor{MediaType: v1.MediaTypeImageIndex, Digest: digest, Size: int64(len(idx))}
	if err := addToIndex(dir, refName, d); err != nil {
		return "", fmt.Errorf("write layout %s: %w", dir, err)
	}
	return digest, nil
}

func writeImage(dir string, img LayoutImage) (descriptor, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return descriptor{}, err
	}
	arch := img.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	rng := rand.New(rand.NewChaCha8(seedBytes(img.Seed)))
	var layers []descriptor
	var diffIDs []string
	for i, size := range img.LayerSizes {
		d, err := putRandomLayer(dir, fmt.Sprintf("data/layer%d", i), size, rng)
		if err != nil {
			return descriptor{}, err
		}
		layers = append(layers, d)
		diffIDs = append(diffIDs, d.Digest) // uncompressed: diff id = digest
	}
	c := imageConfig{
		Created: fixedTime, Architecture: arch, OS: "linux",
		Config: v1.ImageConfig{Labels: img.Labels, Cmd: []string{"/bin/sh"}},
	}
	c.RootFS.Type = "layers"
	c.RootFS.DiffIDs = diffIDs
	for i := range img.LayerSizes {
		c.History = append(c.History, v1.History{Created: &fixedTime, CreatedBy: fmt.Sprintf("imagetest layer %d", i)})
	}
	c.History = append(c.History, v1.History{Created: &fixedTime, CreatedBy: "imagetest config", EmptyLayer: true})
	cfg, err := json.Marshal(c)
	if err != nil {
		return descriptor{}, err
	}
	cd, err := putBlob(dir, cfg)
	if err != nil {
		return descriptor{}, err
	}
	m, err := json.Marshal(manifest{
		SchemaVersion: 2, MediaType: v1.MediaTypeImageManifest,
		Config: descriptor{MediaType: v1.MediaTypeImageConfig, Digest: cd, Size: int64(len(cfg))},
		Layers: layers,
	})
	if err != nil {
		return descriptor{}, err
	}
	md, err := putBlob(dir, m)
	if err != nil {
		return descriptor{}, err
	}
	return descriptor{MediaType: v1.MediaTypeImageManifest, Digest: md, Size: int64(len(m))}, nil
}

func seedBytes(seed uint64) [32]byte {
	var b [32]byte
	for i := range 8 {
		b[i] = byte(seed >> (8 * i))
	}
	return b
}

// putRandomLayer writes an uncompressed layer tar holding one file of
// size random bytes.
func putRandomLayer(dir, name string, size int, rng *rand.Rand) (descriptor, error) {
	f, err := os.CreateTemp(filepath.Join(dir, "blobs"), ".layer-*")
	if err != nil {
		return descriptor{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	tw := tar.NewWriter(cw)
	if err := tw.WriteHeader(&tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: fixedTime}); err != nil {
		return descriptor{}, err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size), ModTime: fixedTime}); err != nil {
		return descriptor{}, err
	}
	buf := make([]byte, 64<<10)
	for left := size; left > 0; {
		n := min(left, len(buf))
		for i := 0; i+8 <= n; i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if _, err := tw.Write(buf[:n]); err != nil {
			return descriptor{}, err
		}
		left -= n
	}
	if err := tw.Close(); err != nil {
		return descriptor{}, err
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if err := f.Chmod(0o644); err != nil {
		return descriptor{}, err
	}
	if err := f.Close(); err != nil {
		return descriptor{}, err
	}
	if err := os.Rename(f.Name(), blobFile(dir, digest)); err != nil {
		return descriptor{}, err
	}
	return descriptor{MediaType: v1.MediaTypeImageLayer, Digest: digest, Size: cw.n}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func blobFile(dir, digest string) string {
	return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

func putBlob(dir string, b []byte) (string, error) {
	d := digestOf(b)
	return d, os.WriteFile(blobFile(dir, d), b, 0o644)
}

// addToIndex records d under refName in dir's index.json, replacing an
// entry of the same name, and writes oci-layout.
func addToIndex(dir, refName string, d descriptor) error {
	layout, err := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, v1.ImageLayoutFile), layout, 0o644); err != nil {
		return err
	}
	var idx struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Manifests     []json.RawMessage `json:"manifests"`
	}
	if b, err := os.ReadFile(filepath.Join(dir, v1.ImageIndexFile)); err == nil {
		if err := json.Unmarshal(b, &idx); err != nil {
			return fmt.Errorf("index.json: %w", err)
		}
	}
	idx.SchemaVersion, idx.MediaType = 2, v1.MediaTypeImageIndex
	kept := idx.Manifests[:0]
	for _, raw := range idx.Manifests {
		var e descriptor
		if json.Unmarshal(raw, &e) == nil && e.Annotations[v1.AnnotationRefName] == refName {
			continue
		}
		kept = append(kept, raw)
	}
	d.Annotations = map[string]string{v1.AnnotationRefName: refName}
	entry, err := json.Marshal(d)
	if err != nil {
		return err
	}
	idx.Manifests = append(kept, entry)
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, v1.ImageIndexFile), b, 0o644)
}
