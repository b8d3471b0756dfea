package images

import (
	"errors"
	"fmt"

	"go.podman.io/storage"
	"go.podman.io/storage/pkg/idtools"
	"go.podman.io/storage/types"

	"github.com/pelagos-containers/pelagos/container"
)

// CreateLayer makes a container's writable layer on top of an image and
// returns its id, which pelagos also uses as the container id. With id
// maps (a container with a user namespace of its own), the files are
// owned as the maps say: the store makes, once per set of maps, a copy
// of the image whose owners are shifted (the kernel cannot shift an
// overlay mounted in a user namespace).
//
// A throwaway layer (a --rm container's) is mounted with overlay's
// volatile option and kept in the store's volatile records, as podman
// does: nothing of it is synced, so neither its unmount nor its
// bookkeeping waits for the disk (an unmount of a non-volatile overlay
// syncs the whole filesystem, ~20 ms on a desktop's home).
func (s *Store) CreateLayer(imageID string, uidMap, gidMap []container.IDMapping, throwaway bool) (string, error) {
	opts := &storage.ContainerOptions{}
	if len(uidMap) > 0 {
		opts.IDMappingOptions = types.IDMappingOptions{UIDMap: storageMaps(uidMap), GIDMap: storageMaps(gidMap)}
	}
	if throwaway {
		opts.Volatile = true
		opts.Flags = map[string]any{"Volatile": true}
	}
	c, err := s.store.CreateContainer("", nil, imageID, "", "", opts)
	if err != nil {
		return "", fmt.Errorf("create container layer from image %s: %w", imageID, err)
	}
	return c.ID, nil
}

func storageMaps(maps []container.IDMapping) []idtools.IDMap {
	out := make([]idtools.IDMap, len(maps))
	for i, m := range maps {
		out[i] = idtools.IDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
	}
	return out
}

// MountLayer mounts a container's root filesystem and returns its path.
// Mounts are counted: every MountLayer needs an UnmountLayer.
func (s *Store) MountLayer(id string) (string, error) {
	p, err := s.store.Mount(id, "")
	if err != nil {
		return "", fmt.Errorf("mount root filesystem of %s: %w", id, err)
	}
	return p, nil
}

// UnmountLayer releases one mount of a container's root filesystem.
func (s *Store) UnmountLayer(id string) error {
	if _, err := s.store.Unmount(id, false); err != nil && !errors.Is(err, storage.ErrContainerUnknown) && !errors.Is(err, storage.ErrLayerUnknown) {
		return fmt.Errorf("unmount root filesystem of %s: %w", id, err)
	}
	return nil
}

// DeleteLayer removes a container's writable layer, unmounting it first.
// A layer that is already gone is not an error.
func (s *Store) DeleteLayer(id string) error {
	if _, err := s.store.Unmount(id, true); err != nil && !errors.Is(err, storage.ErrContainerUnknown) && !errors.Is(err, storage.ErrLayerUnknown) {
		return fmt.Errorf("unmount root filesystem of %s: %w", id, err)
	}
	if err := s.store.DeleteContainer(id); err != nil && !errors.Is(err, storage.ErrContainerUnknown) && !errors.Is(err, storage.ErrNotAContainer) {
		return fmt.Errorf("delete container layer %s: %w", id, err)
	}
	return nil
}

// Layers lists the ids of every container layer in the store.
func (s *Store) Layers() ([]string, error) {
	cs, err := s.store.Containers()
	if err != nil {
		return nil, fmt.Errorf("list container layers: %w", err)
	}
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids, nil
}

// LayerSize is the size of a container's writable layer, and of the
// image below it.
func (s *Store) LayerSize(id, imageID string) (rw, image int64, err error) {
	rw, err = s.store.ContainerSize(id)
	if err != nil {
		return 0, 0, fmt.Errorf("size of container %s: %w", id, err)
	}
	image, err = s.store.ImageSize(imageID)
	if err != nil {
		image = -1
	}
	return rw, image, nil
}
