// Package imagetest makes container images for tests without network
// access: a minimal root filesystem around Debian's static busybox, and
// reproducible plain tarballs, oci-archive and docker-archive images built
// from any root filesystem directory.
//
// Everything written is deterministic: entries are in a fixed order, owned
// by 0:0 and stamped with one fixed time, so identical input gives
// byte-identical archives and digests.
package imagetest

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// busyboxPath is where Debian's busybox-static package installs busybox.
const busyboxPath = "/bin/busybox"

// fixedTime stamps every tar entry and image config.
var fixedTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// BusyboxRootfs fills dir (created if needed) with a minimal root
// filesystem: bin/busybox copied from Debian's busybox-static, a symlink
// bin/<applet> -> busybox for every applet busybox lists, the usual top
// directories (tmp is 1777), and etc/passwd and etc/group with root,
// nobody and alice (uid and gid 1000, home /home/alice). Files are owned
// by the caller and get fixed modes whatever the umask.
func BusyboxRootfs(dir string) error {
	if err := checkStatic(busyboxPath); err != nil {
		return fmt.Errorf("busybox rootfs %s: %w", dir, err)
	}
	if err := buildBusyboxRootfs(dir); err != nil {
		return fmt.Errorf("busybox rootfs %s: %w", dir, err)
	}
	return nil
}

// checkStatic makes sure the program at p exists and is a statically
// linked ELF executable, that is one without a PT_INTERP program header.
func checkStatic(p string) error {
	f, err := elf.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s is missing: apt-get install busybox-static", p)
	}
	if err != nil {
		return fmt.Errorf("read %s as ELF (apt-get install busybox-static): %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked, a container needs the static one: apt-get install busybox-static", p)
		}
	}
	return nil
}

func buildBusyboxRootfs(dir string) error {
	list, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return fmt.Errorf("%s --list: %w", busyboxPath, err)
	}
	dirs := []struct {
		name string
		mode fs.FileMode
	}{
		{".", 0o755}, {"bin", 0o755}, {"dev", 0o755}, {"etc", 0o755},
		{"home", 0o755}, {"home/alice", 0o755}, {"proc", 0o755},
		{"root", 0o755}, {"run", 0o755}, {"sys", 0o755},
		{"tmp", os.ModeSticky | 0o777}, {"usr", 0o755}, {"usr/bin", 0o755},
		{"var", 0o755},
	}
	for _, d := range dirs {
		p := filepath.Join(dir, d.name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return err
		}
	}
	if err := copyFile(busyboxPath, filepath.Join(dir, "bin", "busybox"), 0o755); err != nil {
		return err
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" || applet == "." || applet == ".." || strings.Contains(applet, "/") {
			continue
		}
		link := filepath.Join(dir, "bin", applet)
		if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.Symlink("busybox", link); err != nil {
			return err
		}
	}
	files := []struct{ name, content string }{
		{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\n" +
			"alice:x:1000:1000:alice:/home/alice:/bin/sh\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
		{"etc/group", "root:x:0:\nalice:x:1000:\nnobody:x:65534:\n"},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, []byte(f.content), 0o644); err != nil {
			return err
		}
		if err := os.Chmod(p, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies src to dst, replacing dst, and gives dst mode perm.
func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(perm); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// WriteRootfsTar writes the contents of rootfsDir to out as an
// uncompressed tar: relative names ("bin/busybox", directories with a
// trailing slash, no "./" entry), owner 0:0, symbolic links kept as links,
// lexical walk order and a fixed modification time, so the same tree
// always gives the same bytes.
func WriteRootfsTar(rootfsDir, out string) error {
	err := createFile(out, func(w io.Writer) error { return writeRootfs(rootfsDir, w) })
	if err != nil {
		return fmt.Errorf("write rootfs tar %s: %w", out, err)
	}
	return nil
}

// writeRootfs writes the deterministic tar of rootfsDir described at
// WriteRootfsTar to w. Hard links are stored as separate copies.
func writeRootfs(rootfsDir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(rootfsDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == rootfsDir {
			return nil
		}
		rel, err := filepath.Rel(rootfsDir, p)
		if err != nil {
			return err
		}
		return addPath(tw, p, filepath.ToSlash(rel))
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// addPath writes the file, directory or symbolic link at p to tw as name.
func addPath(tw *tar.Writer, p, name string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	var target string
	if fi.Mode()&fs.ModeSymlink != 0 {
		if target, err = os.Readlink(p); err != nil {
			return err
		}
	}
	h, err := tar.FileInfoHeader(fi, target)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	h.Name = name
	if fi.IsDir() {
		h.Name += "/"
	}
	h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
	h.ModTime, h.AccessTime, h.ChangeTime = fixedTime, time.Time{}, time.Time{}
	h.PAXRecords = nil
	h.Format = tar.FormatUnknown
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if n, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	} else if n != fi.Size() {
		return fmt.Errorf("%s changed size while being archived", p)
	}
	return nil
}

// Config holds the image configuration fields the tests set. Empty fields
// are left out of the image config.
type Config struct {
	Entrypoint, Cmd, Env []string
	WorkingDir, User     string
	Labels               map[string]string
}

// imageConfig is the image configuration document shared by the OCI and
// docker formats.
type imageConfig struct {
	Created      time.Time      `json:"created"`
	Architecture string         `json:"architecture"`
	OS           string         `json:"os"`
	Config       v1.ImageConfig `json:"config"`
	RootFS       struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	History []v1.History `json:"history"`
}

// configJSON encodes the image config for a single layer whose
// uncompressed digest is diffID.
func configJSON(cfg Config, diffID string) ([]byte, error) {
	c := imageConfig{
		Created:      fixedTime,
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Config: v1.ImageConfig{
			User:       cfg.User,
			Env:        cfg.Env,
			Entrypoint: cfg.Entrypoint,
			Cmd:        cfg.Cmd,
			WorkingDir: cfg.WorkingDir,
			Labels:     cfg.Labels,
		},
		History: []v1.History{{Created: &fixedTime, CreatedBy: "pelagos imagetest"}},
	}
	c.RootFS.Type = "layers"
	c.RootFS.DiffIDs = []string{diffID}
	return json.Marshal(c)
}

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *v1.Platform      `json:"platform,omitempty"`
}

// manifest is an OCI image manifest.
type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

// index is an OCI image index.
type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

// dockerManifest is one entry of a docker-archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// spool is a blob written to a temporary file while its digest and size
// are counted.
type spool struct {
	f    *os.File
	h    hash.Hash
	size int64
}

func newSpool(dir string) (*spool, error) {
	f, err := os.CreateTemp(dir, ".imagetest-*.tmp")
	if err != nil {
		return nil, err
	}
	return &spool{f: f, h: sha256.New()}, nil
}

func (s *spool) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	s.h.Write(p[:n])
	s.size += int64(n)
	return n, err
}

func (s *spool) digest() string { return "sha256:" + hex.EncodeToString(s.h.Sum(nil)) }

// remove closes and deletes the temporary file.
func (s *spool) remove() {
	s.f.Close()
	os.Remove(s.f.Name())
}

// layer spools the rootfs tar of rootfsDir into a temporary file in dir,
// gzip-compressed if compress is set. It returns the spool and the
// digest of the uncompressed tar, the diff id.
func layer(rootfsDir, dir string, compress bool) (_ *spool, diffID string, err error) {
	s, err := newSpool(dir)
	if err != nil {
		return nil, "", err
	}
	defer func() {
		if err != nil {
			s.remove()
		}
	}()
	bw := bufio.NewWriterSize(s, 1<<16)
	var zw *gzip.Writer
	w := io.Writer(bw)
	if compress {
		zw = gzip.NewWriter(bw)
		w = zw
	}
	plain := sha256.New()
	if err := writeRootfs(rootfsDir, io.MultiWriter(w, plain)); err != nil {
		return nil, "", err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return nil, "", err
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, "", err
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, "", err
	}
	return s, "sha256:" + hex.EncodeToString(plain.Sum(nil)), nil
}

// WriteOCIArchive writes an oci-archive to out: a tar holding an OCI image
// layout (oci-layout, index.json and blobs/sha256/) with one image whose
// single gzip layer is the rootfs tar of rootfsDir (see WriteRootfsTar)
// and whose config carries cfg, architecture runtime.GOARCH and os linux.
// refName, when not empty, becomes the index entry's
// org.opencontainers.image.ref.name annotation. It returns the digest of
// the image manifest, "sha256:<hex>".
func WriteOCIArchive(rootfsDir, refName string, cfg Config, out string) (manifestDigest string, err error) {
	manifestDigest, err = writeOCIArchive(rootfsDir, refName, cfg, out)
	if err != nil {
		return "", fmt.Errorf("write oci archive %s: %w", out, err)
	}
	return manifestDigest, nil
}

func writeOCIArchive(rootfsDir, refName string, cfg Config, out string) (string, error) {
	gz, diffID, err := layer(rootfsDir, filepath.Dir(out), true)
	if err != nil {
		return "", err
	}
	defer gz.remove()
	configBlob, err := configJSON(cfg, diffID)
	if err != nil {
		return "", err
	}
	m := manifest{
		SchemaVersion: 2,
		MediaType:     v1.MediaTypeImageManifest,
		Config:        descriptor{MediaType: v1.MediaTypeImageConfig, Digest: digestOf(configBlob), Size: int64(len(configBlob))},
		Layers:        []descriptor{{MediaType: v1.MediaTypeImageLayerGzip, Digest: gz.digest(), Size: gz.size}},
	}
	manifestBlob, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	md := descriptor{MediaType: v1.MediaTypeImageManifest, Digest: digestOf(manifestBlob), Size: int64(len(manifestBlob))}
	if refName != "" {
		md.Annotations = map[string]string{v1.AnnotationRefName: refName}
	}
	indexBlob, err := json.Marshal(index{SchemaVersion: 2, MediaType: v1.MediaTypeImageIndex, Manifests: []descriptor{md}})
	if err != nil {
		return "", err
	}
	layoutBlob, err := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	if err != nil {
		return "", err
	}
	blobPath := func(digest string) string {
		return path.Join(v1.ImageBlobsDir, "sha256", strings.TrimPrefix(digest, "sha256:"))
	}
	blobs := []struct {
		name string
		data []byte
	}{
		{blobPath(m.Config.Digest), configBlob},
		{blobPath(md.Digest), manifestBlob},
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].name < blobs[j].name })
	err = createTar(out, func(tw *tar.Writer) error {
		if err := writeBytes(tw, v1.ImageLayoutFile, layoutBlob); err != nil {
			return err
		}
		if err := writeBytes(tw, v1.ImageIndexFile, indexBlob); err != nil {
			return err
		}
		for _, d := range []string{v1.ImageBlobsDir, v1.ImageBlobsDir + "/sha256"} {
			if err := writeDir(tw, d); err != nil {
				return err
			}
		}
		for _, b := range blobs {
			if err := writeBytes(tw, b.name, b.data); err != nil {
				return err
			}
		}
		return writeReader(tw, blobPath(gz.digest()), gz.f, gz.size)
	})
	if err != nil {
		return "", err
	}
	return md.Digest, nil
}

// WriteDockerArchive writes a docker-archive to out, the format of
// `docker save`: manifest.json naming the config <hex>.json, the single
// uncompressed layer <diff-id hex>/layer.tar (the rootfs tar of
// rootfsDir, see WriteRootfsTar) and the tag repoTag (none if empty),
// which should be a full name:tag such as "localhost/busybox:latest".
func WriteDockerArchive(rootfsDir, repoTag string, cfg Config, out string) error {
	if err := writeDockerArchive(rootfsDir, repoTag, cfg, out); err != nil {
		return fmt.Errorf("write docker archive %s: %w", out, err)
	}
	return nil
}

func writeDockerArchive(rootfsDir, repoTag string, cfg Config, out string) error {
	raw, diffID, err := layer(rootfsDir, filepath.Dir(out), false)
	if err != nil {
		return err
	}
	defer raw.remove()
	configBlob, err := configJSON(cfg, diffID)
	if err != nil {
		return err
	}
	configName := strings.TrimPrefix(digestOf(configBlob), "sha256:") + ".json"
	layerDir := strings.TrimPrefix(diffID, "sha256:")
	layerName := layerDir + "/layer.tar"
	tags := []string{}
	if repoTag != "" {
		tags = append(tags, repoTag)
	}
	manifestBlob, err := json.Marshal([]dockerManifest{{Config: configName, RepoTags: tags, Layers: []string{layerName}}})
	if err != nil {
		return err
	}
	return createTar(out, func(tw *tar.Writer) error {
		if err := writeBytes(tw, configName, configBlob); err != nil {
			return err
		}
		if err := writeDir(tw, layerDir); err != nil {
			return err
		}
		if err := writeReader(tw, layerName, raw.f, raw.size); err != nil {
			return err
		}
		return writeBytes(tw, "manifest.json", manifestBlob)
	})
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// createFile creates out, has fill write its contents through a buffer,
// and removes out again if anything fails.
func createFile(out string, fill func(io.Writer) error) (err error) {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(out)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<16)
	if err := fill(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// createTar is createFile for a tar archive.
func createTar(out string, fill func(*tar.Writer) error) error {
	return createFile(out, func(w io.Writer) error {
		tw := tar.NewWriter(w)
		if err := fill(tw); err != nil {
			return err
		}
		return tw.Close()
	})
}

func writeDir(tw *tar.Writer, name string) error {
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: fixedTime})
}

func writeBytes(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: fixedTime}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func writeReader(tw *tar.Writer, name string, r io.Reader, size int64) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: fixedTime}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, r, size); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// GlibcRootfs fills dir with host programs and the shared libraries they
// load (as ldd lists them), plus passwd and group files: a small real
// glibc userland, with no internet and no debootstrap.
func GlibcRootfs(dir string, programs ...string) error {
	need := map[string]bool{}
	for _, p := range programs {
		need[p] = true
		out, err := exec.Command("ldd", p).Output()
		if err != nil {
			return fmt.Errorf("glibc rootfs: ldd %s: %w", p, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			for _, f := range strings.Fields(line) {
				if strings.HasPrefix(f, "/") {
					need[f] = true
				}
			}
		}
	}
	for p := range need {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return fmt.Errorf("glibc rootfs: %w", err)
		}
		b, err := os.ReadFile(real)
		if err != nil {
			return fmt.Errorf("glibc rootfs: %w", err)
		}
		dst := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			return fmt.Errorf("glibc rootfs: %w", err)
		}
	}
	for _, d := range []string{"etc", "tmp", "proc", "sys", "dev", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd":        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
		"etc/group":         "root:x:0:\ndaemon:x:1:\n",
		"etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}
