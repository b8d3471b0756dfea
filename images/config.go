package images

import (
	"context"
	"fmt"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Config returns the OCI configuration (entrypoint, cmd, env, user, ...)
// of a stored image.
func (s *Store) Config(ctx context.Context, id string) (*imgspecv1.Image, error) {
	ref, err := s.storeRef(id)
	if err != nil {
		return nil, err
	}
	img, err := ref.NewImage(ctx, s.sys)
	if err != nil {
		return nil, fmt.Errorf("open image %s: %w", id, err)
	}
	defer img.Close()
	cfg, err := img.OCIConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("read config of image %s: %w", id, err)
	}
	return cfg, nil
}
