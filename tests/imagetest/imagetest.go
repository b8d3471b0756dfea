// Package imagetest makes container images without internet for tests:
// a busybox root filesystem from Debian's busybox-static, and OCI and
// docker archives built from any root filesystem directory.
package imagetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// fixedTime stamps every file and config, so archives are reproducible.
var fixedTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const busyboxPath = "/bin/busybox"

// BusyboxRootfs fills dir with a minimal root filesystem around Debian's
// static busybox.
func BusyboxRootfs(dir string) error {
	f, err := elf.Open(busyboxPath)
	if err != nil {
		return fmt.Errorf("busybox rootfs: %s: %w (apt-get install busybox-static)", busyboxPath, err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			f.Close()
			return fmt.Errorf("busybox rootfs: %s is dynamically linked: apt-get install busybox-static", busyboxPath)
		}
	}
	f.Close()
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox rootfs: list applets: %w", err)
	}
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev", "root", "home/alice", "var", "run", "usr/bin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("busybox rootfs: %w", err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		return err
	}
	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755); err != nil {
		return err
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		link := filepath.Join(dir, "bin", applet)
		os.Remove(link)
		if err := os.Symlink("busybox", link); err != nil {
			return fmt.Errorf("busybox rootfs: %w", err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:alice:/home/alice:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nalice:x:1000:\nnobody:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeLayer writes rootfsDir as a tar with relative names, root
// ownership, sorted entries and fixed times.
func writeLayer(rootfsDir string, w io.Writer) error {
	var paths []string
	err := filepath.WalkDir(rootfsDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != rootfsDir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	tw := tar.NewWriter(w)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(rootfsDir, p)
		h.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		h.ModTime, h.AccessTime, h.ChangeTime = fixedTime, time.Time{}, time.Time{}
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// WriteRootfsTar writes rootfsDir as a plain tarball, byte-identical for
// identical input.
func WriteRootfsTar(rootfsDir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("write rootfs tar %s: %w", out, err)
	}
	if err := writeLayer(rootfsDir, f); err != nil {
		f.Close()
		return fmt.Errorf("write rootfs tar %s: %w", out, err)
	}
	return f.Close()
}

// Config is the part of an image config the tests set.
type Config struct {
	Entrypoint, Cmd, Env []string
	WorkingDir, User     string
	Labels               map[string]string
}

type blob struct {
	digest string // sha256:...
	data   []byte
}

func newBlob(data []byte) blob {
	sum := sha256.Sum256(data)
	return blob{digest: "sha256:" + hex.EncodeToString(sum[:]), data: data}
}

// layerBlobs returns the uncompressed layer's digest (the diff id) and
// the gzip layer blob.
func layerBlobs(rootfsDir string) (diffID string, layer blob, raw []byte, err error) {
	var plain bytes.Buffer
	if err := writeLayer(rootfsDir, &plain); err != nil {
		return "", blob{}, nil, err
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.ModTime = fixedTime
	if _, err := zw.Write(plain.Bytes()); err != nil {
		return "", blob{}, nil, err
	}
	if err := zw.Close(); err != nil {
		return "", blob{}, nil, err
	}
	return newBlob(plain.Bytes()).digest, newBlob(gz.Bytes()), plain.Bytes(), nil
}

func configJSON(cfg Config, diffID string) ([]byte, error) {
	c := map[string]any{
		"created":      fixedTime.Format(time.RFC3339),
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config": map[string]any{
			"Entrypoint": cfg.Entrypoint, "Cmd": cfg.Cmd, "Env": cfg.Env,
			"WorkingDir": cfg.WorkingDir, "User": cfg.User, "Labels": cfg.Labels,
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{diffID}},
		"history": []map[string]any{{"created": fixedTime.Format(time.RFC3339), "created_by": "imagetest"}},
	}
	return json.Marshal(c)
}

type tarFile struct {
	name string
	data []byte
}

func writeTar(out string, files []tarFile) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	dirs := map[string]bool{}
	for _, tf := range files {
		for d := filepath.Dir(tf.name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	var dirList []string
	for d := range dirs {
		dirList = append(dirList, d)
	}
	sort.Strings(dirList)
	for _, d := range dirList {
		if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: fixedTime}); err != nil {
			f.Close()
			return err
		}
	}
	for _, tf := range files {
		if err := tw.WriteHeader(&tar.Header{Name: tf.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(tf.data)), ModTime: fixedTime}); err != nil {
			f.Close()
			return err
		}
		if _, err := tw.Write(tf.data); err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteOCIArchive writes an oci-archive (an OCI image layout in a tar)
// with one gzip layer made from rootfsDir. refName, when set, becomes the
// org.opencontainers.image.ref.name annotation. It returns the manifest
// digest.
func WriteOCIArchive(rootfsDir, refName string, cfg Config, out string) (string, error) {
	diffID, layer, _, err := layerBlobs(rootfsDir)
	if err != nil {
		return "", fmt.Errorf("write oci archive %s: %w", out, err)
	}
	cj, err := configJSON(cfg, diffID)
	if err != nil {
		return "", err
	}
	config := newBlob(cj)
	mj, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": len(config.data)},
		"layers":        []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer.digest, "size": len(layer.data)}},
	})
	if err != nil {
		return "", err
	}
	manifest := newBlob(mj)
	desc := map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest.digest, "size": len(manifest.data)}
	if refName != "" {
		desc["annotations"] = map[string]string{"org.opencontainers.image.ref.name": refName}
	}
	ij, err := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{desc}})
	if err != nil {
		return "", err
	}
	files := []tarFile{{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {"index.json", ij}}
	for _, b := range []blob{config, layer, manifest} {
		files = append(files, tarFile{"blobs/sha256/" + strings.TrimPrefix(b.digest, "sha256:"), b.data})
	}
	if err := writeTar(out, files); err != nil {
		return "", fmt.Errorf("write oci archive %s: %w", out, err)
	}
	return manifest.digest, nil
}

// WriteDockerArchive writes a docker-archive (the `docker save` format)
// with one layer made from rootfsDir, tagged repoTag.
func WriteDockerArchive(rootfsDir, repoTag string, cfg Config, out string) error {
	diffID, _, raw, err := layerBlobs(rootfsDir)
	if err != nil {
		return fmt.Errorf("write docker archive %s: %w", out, err)
	}
	cj, err := configJSON(cfg, diffID)
	if err != nil {
		return err
	}
	config := newBlob(cj)
	cfgName := strings.TrimPrefix(config.digest, "sha256:") + ".json"
	layerName := strings.TrimPrefix(diffID, "sha256:") + "/layer.tar"
	mj, err := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{repoTag}, "Layers": []string{layerName}}})
	if err != nil {
		return err
	}
	files := []tarFile{{cfgName, config.data}, {layerName, raw}, {"manifest.json", mj}}
	if err := writeTar(out, files); err != nil {
		return fmt.Errorf("write docker archive %s: %w", out, err)
	}
	return nil
}
