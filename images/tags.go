package images

import (
	"context"
	"fmt"

	"go.podman.io/image/v5/docker/reference"
)

// normalizeTag turns a user's name into the full name stored, as podman
// does for tags: a name without a registry goes under localhost/.
func normalizeTag(name string) (string, error) {
	n, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrInvalidReference, name, err)
	}
	if isShortName(name) {
		if n, err = reference.ParseNormalizedNamed("localhost/" + name); err != nil {
			return "", fmt.Errorf("%w: %q: %v", ErrInvalidReference, name, err)
		}
	}
	if _, ok := n.(reference.Digested); ok {
		return "", fmt.Errorf("%w: %q: a tag cannot be a digest", ErrInvalidReference, name)
	}
	return reference.TagNameOnly(n).String(), nil
}

// Tag adds a name to an image and returns it as stored.
func (s *Store) Tag(id, name string) (string, error) {
	full, err := normalizeTag(name)
	if err != nil {
		return "", err
	}
	if err := s.store.AddNames(id, []string{full}); err != nil {
		return "", fmt.Errorf("tag %s as %s: %w", id, full, err)
	}
	return full, nil
}

// Untag removes names from an image; no names removes them all.
func (s *Store) Untag(img Image, names []string) ([]string, error) {
	var remove []string
	if len(names) == 0 {
		remove = img.Names
	}
	for _, n := range names {
		full, err := normalizeTag(n)
		if err != nil {
			return nil, err
		}
		found := false
		for _, have := range img.Names {
			if have == full || have == n {
				remove, found = append(remove, have), true
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: image %s has no name %s", ErrNoSuchImage, img.ID[:12], n)
		}
	}
	if len(remove) == 0 {
		return nil, nil
	}
	if err := s.store.RemoveNames(img.ID, remove); err != nil {
		return nil, fmt.Errorf("untag %s: %w", img.ID, err)
	}
	return remove, nil
}

// Inspect returns what `image inspect` shows.
func (s *Store) Inspect(ctx context.Context, img Image) (map[string]any, error) {
	cfg, err := s.Config(ctx, img.ID)
	if err != nil {
		return nil, err
	}
	created := ""
	if cfg.Created != nil {
		created = cfg.Created.UTC().Format("2006-01-02T15:04:05.999999999Z")
	}
	var history []map[string]any
	for _, h := range cfg.History {
		e := map[string]any{"created_by": h.CreatedBy, "comment": h.Comment, "empty_layer": h.EmptyLayer}
		if h.Created != nil {
			e["created"] = h.Created.UTC().Format("2006-01-02T15:04:05Z")
		}
		history = append(history, e)
	}
	return map[string]any{
		"Id": img.ID, "Digest": img.Digest, "RepoTags": nonNilStrings(img.Names), "Created": created,
		"Size": img.Size, "Architecture": cfg.Architecture, "Os": cfg.OS,
		"Config": cfg.Config, "RootFS": cfg.RootFS, "History": history,
	}, nil
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
