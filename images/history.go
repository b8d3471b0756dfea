package images

import (
	"context"
	"fmt"
	"time"
)

// HistoryEntry is one step of how an image was built, newest first.
type HistoryEntry struct {
	// ID is the image's id on the newest step, "" on the others (the
	// steps below are not images of their own in the store).
	ID        string
	Created   time.Time
	CreatedBy string
	// Size is the uncompressed size of the layer the step made, 0 for a
	// step that made none.
	Size    int64
	Comment string
}

// History lists the build steps recorded in an image's configuration,
// newest first, each with the size of the layer it added.
func (s *Store) History(ctx context.Context, img Image) ([]HistoryEntry, error) {
	cfg, err := s.Config(ctx, img.ID)
	if err != nil {
		return nil, err
	}
	sizes, err := s.layerSizes(img.ID)
	if err != nil {
		return nil, err
	}
	var out []HistoryEntry
	layer := 0
	for _, h := range cfg.History {
		e := HistoryEntry{CreatedBy: h.CreatedBy, Comment: h.Comment}
		if h.Created != nil {
			e.Created = *h.Created
		}
		if !h.EmptyLayer {
			if layer < len(sizes) {
				e.Size = sizes[layer]
			}
			layer++
		}
		out = append(out, e)
	}
	// An image without recorded history (an import, a bare archive)
	// still has its layers: show one line for each.
	if len(cfg.History) == 0 {
		for _, sz := range sizes {
			e := HistoryEntry{Size: sz}
			if cfg.Created != nil {
				e.Created = *cfg.Created
			}
			out = append(out, e)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > 0 {
		out[0].ID = img.ID
	}
	return out, nil
}

// layerSizes returns the uncompressed sizes of an image's layers, base
// first.
func (s *Store) layerSizes(id string) ([]int64, error) {
	simg, err := s.store.Image(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrNoSuchImage, id)
	}
	var sizes []int64
	for next := simg.TopLayer; next != ""; {
		l, err := s.store.Layer(next)
		if err != nil {
			return nil, fmt.Errorf("layer %s of image %s: %w", next, id, err)
		}
		sizes = append(sizes, max(l.UncompressedSize, 0))
		next = l.Parent
	}
	for i, j := 0, len(sizes)-1; i < j; i, j = i+1, j-1 {
		sizes[i], sizes[j] = sizes[j], sizes[i]
	}
	return sizes, nil
}
