package container

import (
	"os"
	"path/filepath"
)

// InitBinary is the program a container's init and `exec` processes
// run: pelagos-init beside the running program when it is installed,
// else the running program itself, which can play the part too. Callers
// look it up once and put it in Spec.InitBinary.
func InitBinary() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "pelagos-init")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return "/proc/self/exe"
}

func initBinary(spec *Spec) string {
	if spec.InitBinary != "" {
		return spec.InitBinary
	}
	return "/proc/self/exe"
}
