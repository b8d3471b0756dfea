package images

import (
	"context"
	"fmt"
	"io"
	"os"

	"go.podman.io/image/v5/copy"
	dockerarchive "go.podman.io/image/v5/docker/archive"
	"go.podman.io/image/v5/docker/reference"
	ociarchive "go.podman.io/image/v5/oci/archive"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

// Save writes an image as an oci-archive or docker-archive to w. The
// archive is built in the scratch directory first: the formats need a
// seekable file.
func (s *Store) Save(ctx context.Context, img Image, format string, w io.Writer) error {
	dir, cleanup, err := s.tmpDir("save-")
	if err != nil {
		return err
	}
	defer cleanup()
	out := dir + "/image.tar"
	var name reference.NamedTagged
	if len(img.Names) > 0 {
		if n, err := reference.ParseNormalizedNamed(img.Names[0]); err == nil {
			if nt, ok := reference.TagNameOnly(n).(reference.NamedTagged); ok {
				name = nt
			}
		}
	}
	var dest types.ImageReference
	switch format {
	case "oci-archive":
		refName := ""
		if name != nil {
			refName = name.String()
		}
		dest, err = ociarchive.NewReference(out, refName)
	case "docker-archive", "":
		dest, err = dockerarchive.NewReference(out, name)
	default:
		return fmt.Errorf("%w: unknown format %q: use oci-archive or docker-archive", ErrInvalidArchive, format)
	}
	if err != nil {
		return fmt.Errorf("save %s: %w", img.ID, err)
	}
	src, err := s.storeRef(img.ID)
	if err != nil {
		return err
	}
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		return err
	}
	defer pc.Destroy()
	if _, err := copy.Image(ctx, pc, dest, src, &copy.Options{SourceCtx: s.sys, DestinationCtx: s.sys}); err != nil {
		return fmt.Errorf("save %s: %w", img.ID, err)
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
