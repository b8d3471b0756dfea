package images

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/types"
)

// Config returns the OCI configuration (entrypoint, cmd, env, user, ...)
// of a stored image.
func (s *Store) Config(ctx context.Context, id string) (*imgspecv1.Image, error) {
	img, err := s.openImage(ctx, id)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	cfg, err := img.OCIConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("read config of image %s: %w", id, err)
	}
	return cfg, nil
}

// Healthcheck is a Docker image's HEALTHCHECK instruction. OCI image
// configurations have no such field; Docker's keep it under "config".
type Healthcheck struct {
	// Test is ["NONE"], ["CMD", args...] or ["CMD-SHELL", command].
	Test        []string      `json:"Test"`
	Interval    time.Duration `json:"Interval"`
	Timeout     time.Duration `json:"Timeout"`
	StartPeriod time.Duration `json:"StartPeriod"`
	Retries     int           `json:"Retries"`
}

// Healthcheck returns the image's HEALTHCHECK, or nil when it has none.
func (s *Store) Healthcheck(ctx context.Context, id string) (*Healthcheck, error) {
	img, err := s.openImage(ctx, id)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	blob, err := img.ConfigBlob(ctx)
	if err != nil {
		return nil, fmt.Errorf("read config of image %s: %w", id, err)
	}
	var cfg struct {
		Config struct {
			Healthcheck *Healthcheck `json:"Healthcheck"`
		} `json:"config"`
	}
	if err := json.Unmarshal(blob, &cfg); err != nil {
		return nil, fmt.Errorf("parse config of image %s: %w", id, err)
	}
	return cfg.Config.Healthcheck, nil
}

// openImage opens a stored image for reading its manifest and config.
func (s *Store) openImage(ctx context.Context, id string) (types.ImageCloser, error) {
	ref, err := s.storeRef(id)
	if err != nil {
		return nil, err
	}
	img, err := ref.NewImage(ctx, s.sys)
	if err != nil {
		return nil, fmt.Errorf("open image %s: %w", id, err)
	}
	return img, nil
}
