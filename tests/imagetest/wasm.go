package imagetest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// WriteWasmLayout adds to the OCI image layout in dir (created if
// needed), under refName, a WebAssembly image: one uncompressed layer
// holding module as /app.wasm (mode 0755), and a config with platform
// wasip1/wasm and Entrypoint ["/app.wasm"].
func WriteWasmLayout(dir, refName string, module []byte) error {
	d, err := writeWasmImage(dir, module)
	if err != nil {
		return fmt.Errorf("write wasm layout %s: %w", dir, err)
	}
	if err := addToIndex(dir, refName, d); err != nil {
		return fmt.Errorf("write wasm layout %s: %w", dir, err)
	}
	return nil
}

func writeWasmImage(dir string, module []byte) (descriptor, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return descriptor{}, err
	}
	var layerTar bytes.Buffer
	tw := tar.NewWriter(&layerTar)
	h := &tar.Header{Typeflag: tar.TypeReg, Name: "app.wasm", Mode: 0o755, Size: int64(len(module)), ModTime: fixedTime}
	if err := tw.WriteHeader(h); err != nil {
		return descriptor{}, err
	}
	if _, err := tw.Write(module); err != nil {
		return descriptor{}, err
	}
	if err := tw.Close(); err != nil {
		return descriptor{}, err
	}
	layerDigest, err := putBlob(dir, layerTar.Bytes())
	if err != nil {
		return descriptor{}, err
	}
	sum := sha256.Sum256(module)
	c := imageConfig{
		Created: fixedTime, Architecture: "wasm", OS: "wasip1",
		Config: v1.ImageConfig{Entrypoint: []string{"/app.wasm"}},
		History: []v1.History{{
			Created:   &fixedTime,
			CreatedBy: "imagetest wasm module sha256:" + hex.EncodeToString(sum[:]),
		}},
	}
	c.RootFS.Type = "layers"
	c.RootFS.DiffIDs = []string{layerDigest} // uncompressed: diff id = digest
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
		Layers: []descriptor{{MediaType: v1.MediaTypeImageLayer, Digest: layerDigest, Size: int64(layerTar.Len())}},
	})
	if err != nil {
		return descriptor{}, err
	}
	md, err := putBlob(dir, m)
	if err != nil {
		return descriptor{}, err
	}
	return descriptor{
		MediaType: v1.MediaTypeImageManifest, Digest: md, Size: int64(len(m)),
		Platform: &v1.Platform{OS: "wasip1", Architecture: "wasm"},
	}, nil
}
