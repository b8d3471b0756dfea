package session

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
)

// Paths are the directories the service keeps its files in.
type Paths struct {
	// Data is persistent: $XDG_DATA_HOME/pelagos.
	Data string
	// Runtime is cleared at logout or reboot: $XDG_RUNTIME_DIR/pelagos.
	Runtime string
}

// Storage is the image store's graph root.
func (p Paths) Storage() string { return filepath.Join(p.Data, "storage") }

// StorageRun is the image store's run root.
func (p Paths) StorageRun() string { return filepath.Join(p.Runtime, "storage") }

// Containers holds one directory per container.
func (p Paths) Containers() string { return filepath.Join(p.Data, "containers") }

// Exits holds the exit codes of containers that ended as children of
// pelagos-holder, their monitor gone (see holder.ExitRecord).
func (p Paths) Exits() string { return filepath.Join(p.Runtime, "exits") }

// Tmp holds scratch files of loads and imports; emptied at every start.
func (p Paths) Tmp() string { return filepath.Join(p.Data, "tmp") }

// DefaultPaths derives the directories from the XDG variables of the user
// with the given host uid, as the XDG base directory spec says.
func DefaultPaths(uid uint32) (Paths, error) {
	runtimeDir := os.Getenv("XDG_RUNTIME_DIR")
	if runtimeDir == "" {
		candidate := "/run/user/" + strconv.FormatUint(uint64(uid), 10)
		if fi, err := os.Stat(candidate); err == nil && fi.IsDir() {
			runtimeDir = candidate
		} else {
			return Paths{}, fmt.Errorf("XDG_RUNTIME_DIR is not set and %s does not exist: log in through a desktop or `loginctl enable-linger`, or set XDG_RUNTIME_DIR to a private directory you own (mode 0700)", candidate)
		}
	}
	dataHome := os.Getenv("XDG_DATA_HOME")
	if dataHome == "" {
		home := os.Getenv("HOME")
		if home == "" {
			u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
			if err != nil {
				return Paths{}, fmt.Errorf("find home directory: set HOME or XDG_DATA_HOME: %w", err)
			}
			home = u.HomeDir
		}
		dataHome = filepath.Join(home, ".local", "share")
	}
	return Paths{Data: filepath.Join(dataHome, "pelagos"), Runtime: filepath.Join(runtimeDir, "pelagos")}, nil
}
