package images

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/compression"
	"go.podman.io/image/v5/tarball"
)

// ImportOptions carry the config an imported rootfs gets.
type ImportOptions struct {
	Config imgspecv1.ImageConfig
	// Message becomes the history comment, as in `podman import -m`.
	Message string
}

// Import makes a single-layer image from a rootfs tar (plain or
// compressed) and names it name (empty: no name).
func (s *Store) Import(ctx context.Context, path, name string, opts ImportOptions) (Loaded, error) {
	var named reference.Named
	if name != "" {
		n, err := reference.ParseNormalizedNamed(name)
		if err != nil {
			return Loaded{}, fmt.Errorf("import %s: %w: invalid image name %q: %v", path, ErrInvalidReference, name, err)
		}
		named = reference.TagNameOnly(n)
	}
	if err := checkTar(path); err != nil {
		return Loaded{}, fmt.Errorf("import %s: %w", path, err)
	}
	src, err := tarball.NewReference([]string{path}, nil)
	if err != nil {
		return Loaded{}, fmt.Errorf("import %s: %w", path, err)
	}
	// Created is now, as podman import does (the tarball source would
	// otherwise take the archive file's modification time).
	now := time.Now().UTC()
	cfg := imgspecv1.Image{Config: opts.Config, Created: &now}
	if opts.Message != "" {
		cfg.History = []imgspecv1.History{{Comment: opts.Message}}
	}
	if err := src.(tarball.ConfigUpdater).ConfigUpdate(cfg, nil); err != nil {
		return Loaded{}, fmt.Errorf("import %s: %w", path, err)
	}
	l, err := s.copyIn(ctx, src, named)
	if err != nil {
		return Loaded{}, fmt.Errorf("import %s: %w", path, err)
	}
	return l, nil
}

// checkTar makes sure the file is a (possibly compressed) tar with at
// least one entry, so that garbage is refused with a clear reason before
// anything is written to the store.
func checkTar(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, _, err := compression.AutoDecompress(f)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidArchive, err)
	}
	defer r.Close()
	_, err = tar.NewReader(r).Next()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: the tar archive is empty", ErrInvalidArchive)
	}
	if err != nil {
		return fmt.Errorf("%w: not a tar archive (%v)", ErrInvalidArchive, err)
	}
	return nil
}
