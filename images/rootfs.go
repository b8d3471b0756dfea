package images

import (
	"errors"
	"fmt"

	"go.podman.io/storage"
)

// CreateLayer makes a container's writable layer on top of an image and
// returns its id, which pelagos also uses as the container id.
func (s *Store) CreateLayer(imageID string) (string, error) {
	c, err := s.store.CreateContainer("", nil, imageID, "", "", nil)
	if err != nil {
		return "", fmt.Errorf("create container layer from image %s: %w", imageID, err)
	}
	return c.ID, nil
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
