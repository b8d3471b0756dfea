package images

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"go.podman.io/image/v5/copy"
	dockerarchive "go.podman.io/image/v5/docker/archive"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

// SaveItem is one image to save and the name to record for it ("" for
// the image's first name, if any).
type SaveItem struct {
	Image Image
	Name  string
}

// recordedName is the tagged name an archive keeps for an item, or nil.
func (it SaveItem) recordedName() reference.NamedTagged {
	names := it.Image.Names
	if it.Name != "" {
		names = []string{it.Name}
	}
	for _, n := range names {
		if named, err := reference.ParseNormalizedNamed(n); err == nil {
			if nt, ok := reference.TagNameOnly(named).(reference.NamedTagged); ok {
				return nt
			}
		}
	}
	return nil
}

// Save writes images as one oci-archive or docker-archive to w. The
// archive is built in the scratch directory first: the formats need
// seekable files, and a failure must not leave half an archive behind.
func (s *Store) Save(ctx context.Context, items []SaveItem, format string, w io.Writer) error {
	if len(items) == 0 {
		return fmt.Errorf("%w: no image to save", ErrInvalidArgument)
	}
	dir, cleanup, err := s.tmpDir("save-")
	if err != nil {
		return err
	}
	defer cleanup()
	out := filepath.Join(dir, "image.tar")
	switch format {
	case "oci-archive":
		err = s.saveOCI(ctx, items, dir, out)
	case "docker-archive", "":
		err = s.saveDocker(ctx, items, out)
	default:
		return fmt.Errorf("%w: unknown format %q: use oci-archive or docker-archive", ErrInvalidArchive, format)
	}
	if err != nil {
		return err
	}
	f, err := os.Open(out)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	return nil
}

func (s *Store) copyOut(ctx context.Context, img Image, dest types.ImageReference, destSys *types.SystemContext) error {
	src, err := s.storeRef(img.ID)
	if err != nil {
		return err
	}
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		return err
	}
	defer pc.Destroy()
	if _, err := copy.Image(ctx, pc, dest, src, &copy.Options{SourceCtx: s.sys, DestinationCtx: destSys}); err != nil {
		return fmt.Errorf("save %s: %w", shortDigest(img.ID), err)
	}
	return nil
}

// saveDocker writes a docker-archive holding every item. An image named
// several times is written once with all its names: the format keys
// images by config.
func (s *Store) saveDocker(ctx context.Context, items []SaveItem, out string) error {
	wr, err := dockerarchive.NewWriter(s.sys, out)
	if err != nil {
		return fmt.Errorf("create docker-archive: %w", err)
	}
	var order []string
	tags := map[string][]reference.NamedTagged{}
	imgs := map[string]Image{}
	for _, it := range items {
		id := it.Image.ID
		if _, ok := imgs[id]; !ok {
			order = append(order, id)
			imgs[id] = it.Image
		}
		if nt := it.recordedName(); nt != nil {
			tags[id] = append(tags[id], nt)
		}
	}
	for _, id := range order {
		var first reference.NamedTagged
		sys := *s.sys
		if t := tags[id]; len(t) > 0 {
			first, sys.DockerArchiveAdditionalTags = t[0], t[1:]
		}
		dest, err := wr.NewReference(first)
		if err == nil {
			err = s.copyOut(ctx, imgs[id], dest, &sys)
		}
		if err != nil {
			wr.Close()
			return err
		}
	}
	if err := wr.Close(); err != nil {
		return fmt.Errorf("finish docker-archive: %w", err)
	}
	return nil
}

// saveOCI writes an OCI image layout holding every item, each under its
// full name (org.opencontainers.image.ref.name), and tars it.
func (s *Store) saveOCI(ctx context.Context, items []SaveItem, dir, out string) error {
	lay := filepath.Join(dir, "layout")
	seen := map[string]bool{}
	for _, it := range items {
		refName := ""
		if nt := it.recordedName(); nt != nil {
			refName = nt.String()
		}
		if seen[refName] {
			return fmt.Errorf("%w: two images would be saved as %q in one oci-archive", ErrInvalidArgument, refName)
		}
		seen[refName] = true
		dest, err := layout.NewReference(lay, refName)
		if err != nil {
			return fmt.Errorf("save %s: %w", shortDigest(it.Image.ID), err)
		}
		if err := s.copyOut(ctx, it.Image, dest, s.sys); err != nil {
			return err
		}
	}
	return tarDir(lay, out)
}

// tarDir writes the regular files and directories under dir to a tar
// at out, with names relative to dir.
func tarDir(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() && !info.IsDir() {
			return fmt.Errorf("unexpected file %s in an OCI layout", rel)
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name, h.Uid, h.Gid, h.Uname, h.Gname = filepath.ToSlash(rel), 0, 0, "", ""
		if info.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		return fmt.Errorf("write oci-archive: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write oci-archive: %w", err)
	}
	return f.Close()
}
