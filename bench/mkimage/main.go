// Command mkimage writes the image bench/pull.sh pulls: an OCI image
// layout of N layers, each a gzip'd tar holding one file of random bytes
// (incompressible, so the registry really sends every byte). The bytes
// come from a seeded generator, so the same flags give the same digests.
//
//	go run ./bench/mkimage -o DIR [-tag big] [-layers 5] [-size 20971520] [-seed 1]
package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"hash"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// epoch is the time stamp of every file and of the image: a fixed one,
// so that the digests do not depend on the day.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	out := flag.String("o", "", "the OCI layout folder to write (created)")
	tag := flag.String("tag", "big", "the tag, as in oci:DIR:TAG")
	layers := flag.Int("layers", 5, "number of layers")
	size := flag.Int64("size", 20<<20, "bytes of random data per layer")
	seed := flag.Uint64("seed", 1, "seed of the random data")
	flag.Parse()
	if *out == "" || *layers < 1 || *size < 0 {
		flag.Usage()
		os.Exit(2)
	}
	log.SetFlags(0)
	log.SetPrefix("mkimage: ")
	if err := write(*out, *tag, *layers, *size, *seed); err != nil {
		log.Fatal(err)
	}
}

// write makes the layout: blobs, then the config, manifest and index.
func write(dir, tag string, layers int, size int64, seed uint64) error {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	cfg := v1.Image{
		Created:  &epoch,
		Platform: v1.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config:   v1.ImageConfig{Cmd: []string{"/layer1.bin"}},
		RootFS:   v1.RootFS{Type: "layers"},
	}
	man := v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
	}
	for i := 1; i <= layers; i++ {
		name := fmt.Sprintf("layer%d.bin", i)
		desc, diffID, err := writeLayer(dir, name, size, seed+uint64(i))
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		man.Layers = append(man.Layers, desc)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
		cfg.History = append(cfg.History, v1.History{Created: &epoch, CreatedBy: "mkimage: " + name})
	}
	var err error
	if man.Config, err = writeJSON(dir, v1.MediaTypeImageConfig, cfg); err != nil {
		return err
	}
	mdesc, err := writeJSON(dir, v1.MediaTypeImageManifest, man)
	if err != nil {
		return err
	}
	mdesc.Annotations = map[string]string{v1.AnnotationRefName: tag}
	index := v1.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageIndex,
		Manifests: []v1.Descriptor{mdesc},
	}
	b, err := json.Marshal(index)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644); err != nil {
		return err
	}
	b, err = json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, v1.ImageLayoutFile), b, 0o644)
}

// writeLayer writes one layer blob: a tar with the file name holding size
// random bytes, gzip'd. It returns the blob's descriptor and the digest
// of the uncompressed tar (the config's diff ID).
func writeLayer(dir, name string, size int64, seed uint64) (v1.Descriptor, digest.Digest, error) {
	f, err := os.CreateTemp(filepath.Join(dir, "blobs"), "layer-*")
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	defer f.Close()
	if err := f.Chmod(0o644); err != nil {
		return v1.Descriptor{}, "", err
	}

	blobSum, tarSum := sha256.New(), sha256.New()
	blob := &counter{w: io.MultiWriter(f, blobSum)}
	// Random data does not compress: the fastest level costs no size.
	gz, err := gzip.NewWriterLevel(blob, gzip.BestSpeed)
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	tw := tar.NewWriter(io.MultiWriter(gz, tarSum))
	hdr := &tar.Header{
		Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: size,
		ModTime: epoch, Format: tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return v1.Descriptor{}, "", err
	}
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	if _, err := io.CopyN(tw, rand.NewChaCha8(key), size); err != nil {
		return v1.Descriptor{}, "", err
	}
	for _, c := range []io.Closer{tw, gz, f} {
		if err := c.Close(); err != nil {
			return v1.Descriptor{}, "", err
		}
	}
	d := sum(blobSum)
	if err := os.Rename(f.Name(), filepath.Join(dir, "blobs", "sha256", d.Encoded())); err != nil {
		return v1.Descriptor{}, "", err
	}
	return v1.Descriptor{MediaType: v1.MediaTypeImageLayerGzip, Digest: d, Size: blob.n}, sum(tarSum), nil
}

// writeJSON stores v as a blob and returns its descriptor.
func writeJSON(dir, mediaType string, v any) (v1.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return v1.Descriptor{}, err
	}
	h := sha256.New()
	h.Write(b)
	d := sum(h)
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()), b, 0o644); err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}, nil
}

func sum(h hash.Hash) digest.Digest {
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
}

// counter counts the bytes written through it.
type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
