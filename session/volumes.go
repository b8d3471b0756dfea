package session

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	godbus "github.com/godbus/dbus/v5"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

func (p Paths) volumesRoot() string { return filepath.Join(p.Data, "volumes") }

func checkVolumeName(name string) error {
	if len(name) > 253 || !validVolumeName.MatchString(name) {
		return pdbus.Errorf(pdbus.ErrInvalidArgument, "invalid volume name %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", name)
	}
	return nil
}

// volumeUsers lists the containers whose mounts come from the volume.
func (m *Manager) volumeUsers(name string) []*ctr {
	dir := m.paths.volumeDir(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*ctr
	for _, c := range m.containers {
		for _, mnt := range c.rec.Mounts {
			if mnt.Source == dir {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

type volumeRow struct {
	Name       string
	Path       string
	Containers []string
}

// CreateVolume implements the method of the same name.
func (a *managerAPI) CreateVolume(name string) (string, *godbus.Error) {
	defer a.m.track()()
	if err := checkVolumeName(name); err != nil {
		return "", asDBusErr(err)
	}
	dir := a.m.paths.volumeDir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", asDBusErr(fmt.Errorf("create volume %s: %w", name, err))
	}
	return dir, nil
}

// ListVolumes implements the method of the same name.
func (a *managerAPI) ListVolumes() ([]volumeRow, *godbus.Error) {
	defer a.m.track()()
	entries, err := os.ReadDir(a.m.paths.volumesRoot())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, asDBusErr(err)
	}
	rows := []volumeRow{}
	for _, e := range entries {
		if !e.IsDir() || checkVolumeName(e.Name()) != nil {
			continue
		}
		row := volumeRow{Name: e.Name(), Path: a.m.paths.volumeDir(e.Name()), Containers: []string{}}
		for _, c := range a.m.volumeUsers(e.Name()) {
			row.Containers = append(row.Containers, c.name())
		}
		sort.Strings(row.Containers)
		rows = append(rows, row)
	}
	return rows, nil
}

// RemoveVolume implements the method of the same name.
func (a *managerAPI) RemoveVolume(name string, force bool) *godbus.Error {
	defer a.m.track()()
	if err := checkVolumeName(name); err != nil {
		return asDBusErr(err)
	}
	root := filepath.Join(a.m.paths.volumesRoot(), name)
	if _, err := os.Stat(root); errors.Is(err, os.ErrNotExist) {
		return asDBusErr(pdbus.Errorf(pdbus.ErrNoSuchVolume, "no such volume: %s", name))
	}
	users := a.m.volumeUsers(name)
	if len(users) > 0 && !force {
		var names []string
		for _, c := range users {
			names = append(names, c.name())
		}
		return asDBusErr(pdbus.Errorf(pdbus.ErrVolumeInUse, "volume %s is in use by container(s) %s: remove them first, or use `pelagos volume rm -f`", name, strings.Join(names, ", ")))
	}
	for _, c := range users {
		if err := a.m.removeContainer(c, true); err != nil {
			return asDBusErr(err)
		}
	}
	if err := os.RemoveAll(root); err != nil {
		return asDBusErr(fmt.Errorf("remove volume %s: %w", name, err))
	}
	return nil
}
