// Package images keeps the user's images and the writable layers of their
// containers in a containers/storage store, and brings images in from
// archives.
package images

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	is "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	storagetypes "go.podman.io/storage/types"
)

// ErrNoSuchImage is returned when a name or id matches no image.
var ErrNoSuchImage = errors.New("no such image")

// ErrImageInUse is returned when removing an image that containers use.
var ErrImageInUse = errors.New("image is in use by a container")

// ErrInvalidArchive is returned when a file is not an image archive or
// rootfs tar.
var ErrInvalidArchive = errors.New("not a valid image archive")

// Options say where the store lives.
type Options struct {
	GraphRoot string // images and layers, persistent ($XDG_DATA_HOME/pelagos/storage)
	RunRoot   string // locks and mount bookkeeping ($XDG_RUNTIME_DIR/pelagos/storage)
	TmpDir    string // big temporary files while loading archives
	// SingleMapping is set when only one id is mapped: file owners from
	// layers cannot be kept, so chown errors are ignored.
	SingleMapping bool
}

// Store is the user's image and container-layer store.
type Store struct {
	store  storage.Store
	driver string
	sys    *types.SystemContext

	copyMu sync.Mutex
	copies int // copies into the store under way (see beginCopy)
}

// Image describes one stored image.
type Image struct {
	ID      string
	Names   []string
	Digest  string
	Created time.Time
	Size    int64
}

// Open opens (creating if needed) the store, preferring native rootless
// overlay and falling back to vfs where overlay cannot be mounted.
func Open(opts Options) (*Store, error) {
	for _, dir := range []string{opts.GraphRoot, opts.RunRoot, opts.TmpDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	var firstErr error
	for _, driver := range []string{"overlay", "vfs"} {
		so := storagetypes.StoreOptions{
			RunRoot:         opts.RunRoot,
			GraphRoot:       opts.GraphRoot,
			GraphDriverName: driver,
		}
		if opts.SingleMapping {
			so.GraphDriverOptions = []string{driver + ".ignore_chown_errors=true"}
		}
		st, err := storage.GetStore(so)
		if err == nil {
			return &Store{store: st, driver: driver, sys: &types.SystemContext{BigFilesTemporaryDir: opts.TmpDir}}, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("open image store in %s: %w (overlay needs a kernel that allows it in user namespaces; vfs failed too)", opts.GraphRoot, firstErr)
}

// Driver names the storage driver in use (overlay or vfs).
func (s *Store) Driver() string { return s.driver }

// GraphRoot is where images live.
func (s *Store) GraphRoot() string { return s.store.GraphRoot() }

// Close releases the store, unmounting what it mounted.
func (s *Store) Close() error {
	_, err := s.store.Shutdown(false)
	return err
}

func toImage(img *storage.Image, size int64) Image {
	return Image{ID: img.ID, Names: append([]string(nil), img.Names...), Digest: img.Digest.String(), Created: img.Created, Size: size}
}

// List returns every image, newest first.
func (s *Store) List() ([]Image, error) {
	imgs, err := s.store.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]Image, 0, len(imgs))
	for i := range imgs {
		size, err := s.store.ImageSize(imgs[i].ID)
		if err != nil {
			size = -1
		}
		out = append(out, toImage(&imgs[i], size))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// candidates lists the names a user's reference may mean locally, in
// podman's order: as given (full names), then what registries.conf makes
// of a short name — an alias, localhost/NAME, each unqualified-search
// registry — and docker.io last.
func (s *Store) candidates(name string) []string {
	out := []string{name}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return out
	}
	if !isShortName(name) {
		return append(out, reference.TagNameOnly(named).String())
	}
	sysregistriesv2.InvalidateCache() // the user may have edited it
	if local, err := shortnames.ResolveLocally(s.sys, name); err == nil {
		for _, n := range local {
			out = append(out, n.String())
		}
	} else if l, err := reference.ParseNormalizedNamed("localhost/" + name); err == nil {
		out = append(out, reference.TagNameOnly(l).String())
	}
	return append(out, reference.TagNameOnly(named).String())
}

// isShortName reports whether name lacks a registry host: "busybox",
// "library/busybox:1", but not "localhost/x" or "quay.io/x".
func isShortName(name string) bool {
	first, _, hasSlash := strings.Cut(name, "/")
	return !hasSlash || !(strings.ContainsAny(first, ".:") || first == "localhost")
}

// Resolve finds the image a user means by name, name:tag, full id or a
// unique id prefix.
func (s *Store) Resolve(name string) (Image, error) {
	img, _, err := s.ResolveName(name)
	return img, err
}

// ResolveName is Resolve that also returns which of the image's names
// the user meant ("" when they gave an id).
func (s *Store) ResolveName(name string) (Image, string, error) {
	if name == "" {
		return Image{}, "", fmt.Errorf("%w: empty image name", ErrNoSuchImage)
	}
	for _, c := range s.candidates(name) {
		if img, err := s.store.Image(c); err == nil {
			size, _ := s.store.ImageSize(img.ID)
			matched := ""
			for _, n := range img.Names {
				if n == c {
					matched = n
				}
			}
			return toImage(img, size), matched, nil
		}
	}
	img, err := s.resolveID(name)
	return img, "", err
}

// resolveID finds an image by full id or unique id prefix.
func (s *Store) resolveID(name string) (Image, error) {
	if isHexPrefix(name) {
		imgs, err := s.store.Images()
		if err != nil {
			return Image{}, fmt.Errorf("list images: %w", err)
		}
		var match *storage.Image
		for i := range imgs {
			if strings.HasPrefix(imgs[i].ID, name) {
				if match != nil {
					return Image{}, fmt.Errorf("%w: id prefix %q is ambiguous", ErrNoSuchImage, name)
				}
				match = &imgs[i]
			}
		}
		if match != nil {
			size, _ := s.store.ImageSize(match.ID)
			return toImage(match, size), nil
		}
	}
	return Image{}, fmt.Errorf("%w: %s", ErrNoSuchImage, name)
}

func isHexPrefix(s string) bool {
	if len(s) < 3 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Remove deletes an image. Without force it refuses when a container
// uses the image and returns ErrImageInUse naming the containers; with
// force the caller must have removed those containers first.
func (s *Store) Remove(id string, force bool) error {
	users, err := s.ContainersOf(id)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return fmt.Errorf("%w: %s", ErrImageInUse, strings.Join(users, ", "))
	}
	if _, err := s.store.DeleteImage(id, true); err != nil {
		if errors.Is(err, storage.ErrImageUnknown) {
			return fmt.Errorf("%w: %s", ErrNoSuchImage, id)
		}
		return fmt.Errorf("remove image %s: %w", id, err)
	}
	return nil
}

// ContainersOf lists the ids of container layers made from an image.
func (s *Store) ContainersOf(imageID string) ([]string, error) {
	cs, err := s.store.Containers()
	if err != nil {
		return nil, fmt.Errorf("list container layers: %w", err)
	}
	var out []string
	for _, c := range cs {
		if c.ImageID == imageID {
			out = append(out, c.ID)
		}
	}
	return out, nil
}

func (s *Store) storeRef(id string) (types.ImageReference, error) {
	ref, err := is.Transport.NewStoreReference(s.store, nil, id)
	if err != nil {
		return nil, fmt.Errorf("reference image %s: %w", id, err)
	}
	return ref, nil
}

// tmpDir makes a private directory for one operation's scratch files.
func (s *Store) tmpDir(pattern string) (string, func(), error) {
	dir, err := os.MkdirTemp(s.sys.BigFilesTemporaryDir, pattern)
	if err != nil {
		return "", nil, fmt.Errorf("create temporary directory: %w", err)
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}
