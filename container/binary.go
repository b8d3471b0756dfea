package container

import (
	"os"
	"path/filepath"
	"strings"
)

// InitBinary is the program a container's init and `exec` processes
// run: pelagos-init beside the running program when it is installed,
// else the running program itself, which can play the part too. Callers
// look it up once and put it in Spec.InitBinary.
func InitBinary() string {
	exe, err := os.Executable()
	if err != nil {
		return "/proc/self/exe"
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	p := filepath.Join(filepath.Dir(exe), "pelagos-init")
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return p
	}
	// By path, not /proc/self/exe: the monitor, another program, runs it.
	return exe
}

func initBinary(spec *Spec) string {
	if spec.InitBinary != "" {
		return spec.InitBinary
	}
	return "/proc/self/exe"
}
