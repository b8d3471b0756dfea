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
	cfg, _, err := s.RunConfig(ctx, id)
	return cfg, err
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

// RunConfig returns what running the image needs from its configuration,
// read once: the OCI configuration and the HEALTHCHECK (nil when none;
// only Docker's format keeps one, under "config").
func (s *Store) RunConfig(ctx context.Context, id string) (*imgspecv1.Image, *Healthcheck, error) {
	img, err := s.openImage(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	defer img.Close()
	cfg, err := img.OCIConfig(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read config of image %s: %w", id, err)
	}
	blob, err := img.ConfigBlob(ctx) // cached by the image: no second read
	if err != nil {
		return nil, nil, fmt.Errorf("read config of image %s: %w", id, err)
	}
	var docker struct {
		Config struct {
			Healthcheck *Healthcheck `json:"Healthcheck"`
		} `json:"config"`
	}
	if err := json.Unmarshal(blob, &docker); err != nil {
		return nil, nil, fmt.Errorf("parse config of image %s: %w", id, err)
	}
	return cfg, docker.Config.Healthcheck, nil
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
