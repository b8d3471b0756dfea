package images

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	dockerarchive "go.podman.io/image/v5/docker/archive"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	ociarchive "go.podman.io/image/v5/oci/archive"
	"go.podman.io/image/v5/signature"
	is "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
)

// archiveKind tells an OCI layout tar from a docker-archive tar by the
// files at its top.
type archiveKind int

const (
	kindUnknown archiveKind = iota
	kindOCI
	kindDocker
)

// probeArchive reads the tar's table of contents (not its blobs) and, for
// an OCI archive, the reference names in index.json.
func probeArchive(path string) (archiveKind, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return kindUnknown, nil, err
	}
	defer f.Close()
	var r io.Reader = f
	// An archive may be compressed as a whole; the image library handles
	// that, we only need to see the names.
	if zr, err := gzip.NewReader(f); err == nil {
		r = zr
	} else if _, err := f.Seek(0, io.SeekStart); err != nil {
		return kindUnknown, nil, err
	}
	tr := tar.NewReader(r)
	var hasLayout, hasIndex, hasManifest bool
	var refs []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if hasLayout || hasManifest {
				break
			}
			return kindUnknown, nil, fmt.Errorf("%w: %v", ErrInvalidArchive, err)
		}
		switch strings.TrimPrefix(h.Name, "./") {
		case "oci-layout":
			hasLayout = true
		case "manifest.json":
			hasManifest = true
		case "index.json":
			hasIndex = true
			var idx imgspecv1.Index
			if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(&idx); err != nil {
				return kindUnknown, nil, fmt.Errorf("%w: index.json: %v", ErrInvalidArchive, err)
			}
			for _, m := range idx.Manifests {
				refs = append(refs, m.Annotations[imgspecv1.AnnotationRefName])
			}
		}
	}
	switch {
	case hasLayout && hasIndex:
		return kindOCI, refs, nil
	case hasManifest:
		return kindDocker, nil, nil
	}
	return kindUnknown, nil, fmt.Errorf("%w: no oci-layout/index.json (OCI archive) or manifest.json (docker-archive) inside", ErrInvalidArchive)
}

// Loaded is one image brought in by Load.
type Loaded struct {
	ID    string
	Names []string
}

// Load stores every image of an OCI archive or docker-archive file, with
// the names recorded in it, and returns them.
func (s *Store) Load(ctx context.Context, path string) ([]Loaded, error) {
	kind, ociRefs, err := probeArchive(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	var out []Loaded
	switch kind {
	case kindOCI:
		unnamed := 0
		for _, refName := range ociRefs {
			if refName == "" {
				unnamed++
			}
		}
		if unnamed > 0 && len(ociRefs) > 1 {
			return nil, fmt.Errorf("load %s: %w: %d of its %d images carry no org.opencontainers.image.ref.name annotation, so they cannot be told apart", path, ErrInvalidArchive, unnamed, len(ociRefs))
		}
		for _, refName := range ociRefs {
			src, err := ociarchive.NewReference(path, refName)
			if err != nil {
				return out, fmt.Errorf("load %s: %w", path, err)
			}
			l, err := s.copyIn(ctx, src, ociName(refName))
			if err != nil {
				return out, fmt.Errorf("load %s: %w", path, err)
			}
			out = append(out, l)
		}
	case kindDocker:
		rd, err := dockerarchive.NewReader(s.sys, path)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w: %v", path, ErrInvalidArchive, err)
		}
		defer rd.Close()
		refs, err := rd.List()
		if err != nil {
			return nil, fmt.Errorf("load %s: %w: %v", path, ErrInvalidArchive, err)
		}
		for _, group := range refs {
			// Each group is one image, once per tag it carries.
			var names []reference.Named
			for _, r := range group {
				if n := r.DockerReference(); n != nil {
					names = append(names, n)
				}
			}
			var first reference.Named
			if len(names) > 0 {
				first = names[0]
			}
			l, err := s.copyIn(ctx, group[0], first)
			if err != nil {
				return out, fmt.Errorf("load %s: %w", path, err)
			}
			for _, n := range names[min(1, len(names)):] {
				if err := s.store.AddNames(l.ID, []string{n.String()}); err != nil {
					return out, fmt.Errorf("tag %s as %s: %w", l.ID, n, err)
				}
				l.Names = append(l.Names, n.String())
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// ociName turns an OCI ref.name annotation into a full image name. Only
// whole references name an image; a bare tag ("latest") does not.
func ociName(refName string) reference.Named {
	if refName == "" || !strings.ContainsAny(refName, "/:") && reference.TagRegexp.MatchString(refName) {
		return nil
	}
	n, err := reference.ParseNormalizedNamed(refName)
	if err != nil {
		return nil
	}
	return reference.TagNameOnly(n)
}

// copyIn copies one image into the store under name (which may be nil).
func (s *Store) copyIn(ctx context.Context, src types.ImageReference, name reference.Named) (Loaded, error) {
	dest, err := s.newStoreRef(name)
	if err != nil {
		return Loaded{}, err
	}
	// Archives the user hands us are trusted as they are: signature
	// policy applies to pulls from registries, not to local files.
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		return Loaded{}, fmt.Errorf("signature policy: %w", err)
	}
	defer pc.Destroy()
	done := s.beginCopy()
	m, err := copy.Image(ctx, pc, dest, src, &copy.Options{SourceCtx: s.sys, DestinationCtx: s.sys})
	done(err != nil)
	if err != nil {
		return Loaded{}, fmt.Errorf("copy image: %w", s.explainDiskFull(err))
	}
	return loadedFrom(m, name)
}

// loadedFrom describes the image a copy stored, from its manifest.
func loadedFrom(manifest []byte, name reference.Named) (Loaded, error) {
	id, err := imageIDFromManifest(manifest)
	if err != nil {
		return Loaded{}, err
	}
	l := Loaded{ID: id}
	if name != nil {
		l.Names = []string{name.String()}
	}
	return l, nil
}

// imageIDFromManifest derives the storage image id, which is the hex of
// the config digest.
func imageIDFromManifest(m []byte) (string, error) {
	mm, err := manifest.FromBlob(m, manifest.GuessMIMEType(m))
	if err != nil {
		return "", fmt.Errorf("parse copied manifest: %w", err)
	}
	return mm.ConfigInfo().Digest.Encoded(), nil
}

func (s *Store) newStoreRef(name reference.Named) (types.ImageReference, error) {
	dest, err := is.Transport.NewStoreReference(s.store, name, "")
	if err != nil {
		return nil, fmt.Errorf("reference destination: %w", err)
	}
	return dest, nil
}
