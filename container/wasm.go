package container

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pelagos-containers/pelagos/wasm"
)

// openWasmCache opens the compilation cache directory of Wasm modules
// while the init still sees the service's files, and returns the path
// it is reached by later ("" without one: a run without cache only
// compiles its module again).
func openWasmCache(dir string) string {
	if dir == "" {
		return ""
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ""
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("/proc/self/fd/%d", fd)
}

// usableCache reports whether the command's user can write to the cache:
// wazero fails a run whose cache it cannot write, and a run must not
// fail for want of a cache.
func usableCache(dir string) bool {
	if dir == "" {
		return false
	}
	f, err := os.CreateTemp(dir, ".probe-")
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}

// runWasm runs the container's WebAssembly module in this process, in
// place of execve: the namespaces, mounts, user, capabilities and
// seccomp filter already apply, and the module sees only the
// container's volumes, binds and tmpfs mounts (as WASI preopens) and its
// environment. It never returns.
func runWasm(spec *Spec, env []string) {
	// Nothing is executed, so nothing closes the status pipe: close it
	// now, which tells the parent the command started.
	unix.Close(initStatusFD)
	var dirs []wasm.Dir
	for _, m := range spec.Mounts {
		if fi, err := os.Stat(m.Destination); err != nil || !fi.IsDir() {
			continue
		}
		dirs = append(dirs, wasm.Dir{Host: m.Destination, Guest: m.Destination, ReadOnly: m.ReadOnly})
	}
	cache := spec.WasmCache
	if !usableCache(cache) {
		cache = ""
	}
	// PID 1 gets no signal it does not handle: turn the usual ones into
	// the end of the module, reported as a death by that signal.
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	var killedBy syscall.Signal
	go func() {
		s := <-sigs
		killedBy = s.(syscall.Signal)
		cancel()
	}()
	code, err := wasm.Run(ctx, wasm.Options{
		Module: spec.Wasm, Args: append([]string{filepath.Base(spec.Wasm)}, spec.Args[1:]...), Env: env,
		Dirs: dirs, WorkDir: spec.Cwd, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		CacheDir: cache,
	})
	if killedBy != 0 {
		os.Exit(ExitSignalBase + int(killedBy))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pelagos: %v\n", err)
	}
	os.Exit(code & 0xff)
}
