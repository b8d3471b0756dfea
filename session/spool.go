package session

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// pathOf returns a path the image libraries can open for a file a caller
// passed as an fd. A regular file still reachable under its name is used
// in place; anything else (a pipe, a deleted temporary file) is copied
// into the service's scratch directory first. The libraries resolve
// symlinks, so /proc/self/fd/N itself does not do.
func (m *Manager) pathOf(f *os.File) (string, func(), error) {
	fi, err := f.Stat()
	if err != nil {
		return "", nil, err
	}
	if fi.Mode().IsRegular() {
		if target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd()))); err == nil {
			if ti, err := os.Stat(target); err == nil && os.SameFile(fi, ti) {
				return target, func() {}, nil
			}
		}
	}
	if err := os.MkdirAll(m.paths.Tmp(), 0o700); err != nil {
		return "", nil, fmt.Errorf("create %s: %w", m.paths.Tmp(), err)
	}
	tmp, err := os.CreateTemp(m.paths.Tmp(), "spool-")
	if err != nil {
		return "", nil, fmt.Errorf("spool input: %w", err)
	}
	cleanup := func() { os.Remove(tmp.Name()) }
	if fi.Mode().IsRegular() {
		// Read from the start, whatever the caller's offset.
		_, err = io.Copy(tmp, io.NewSectionReader(f, 0, fi.Size()))
	} else {
		_, err = io.Copy(tmp, f)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		if err == unix.ENOSPC {
			return "", nil, fmt.Errorf("spool input to %s: disk full: %w", m.paths.Tmp(), err)
		}
		return "", nil, fmt.Errorf("spool input to %s: %w", m.paths.Tmp(), err)
	}
	return tmp.Name(), cleanup, nil
}
