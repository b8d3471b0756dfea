// Package wasm runs WebAssembly command modules (WASI preview 1, the
// "wasip1" target) in-process with the embedded wazero runtime. The
// container's init process calls Run instead of execve when the image is
// a Wasm image (see Detect), so everything here works from inside the
// container: it reads only the module file, the preopened directories
// and the optional compilation cache directory, and it leaves no
// goroutines running once Run has returned.
package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// Exit codes Run returns when the module did not choose its own with
// proc_exit. They follow the conventions of shells and container
// runtimes, so the container's exit status reads the same as for a
// native program that failed the same way.
const (
	// ExitNotFound: the module file does not exist (like a missing
	// executable).
	ExitNotFound = 127
	// ExitCannotRun: the module exists but could not be started: not a
	// Wasm module, a compile or link error, no _start, bad options.
	ExitCannotRun = 126
	// ExitTrap: the module trapped (unreachable, out-of-bounds access,
	// division by zero, stack overflow...), reported like an abort:
	// 128 + SIGABRT.
	ExitTrap = 128 + 6
	// ExitKilled: ctx was cancelled or its deadline passed while the
	// module ran, reported like a kill: 128 + SIGKILL.
	ExitKilled = 128 + 9
)

// wasmMagic is the preamble of a binary module: "\0asm" and version 1.
const wasmMagic = "\x00asm\x01\x00\x00\x00"

// Dir is a host directory made visible to the module (a WASI preopen).
type Dir struct {
	// Host is the directory as the calling process sees it.
	Host string
	// Guest is the absolute path the module opens it by.
	Guest string
	// ReadOnly refuses every write through this preopen.
	ReadOnly bool
}

// Options describe one run of a module.
type Options struct {
	// Module is the path of the .wasm file.
	Module string
	// Args is argv; Args[0] is the program name.
	Args []string
	// Env holds KEY=VALUE entries, in order; a later duplicate key wins.
	Env []string
	// Dirs are the preopened directories (the container's bind mounts
	// and volumes, and the working directory). Nothing else of the
	// filesystem is visible to the module.
	Dirs []Dir
	// WorkDir, when set, is the guest's working directory. WASI has no
	// such notion; it is passed as PWD (unless Env sets PWD), which the
	// Go wasip1 runtime uses to resolve relative paths. It should lie
	// under one of Dirs.
	WorkDir string
	// Stdin, Stdout and Stderr are the module's standard streams; nil
	// means an empty input and discarded output. They are not closed.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// CacheDir is an optional wazero compilation cache directory
	// (created if needed); "" means none, so the module is compiled on
	// every run.
	CacheDir string
	// Interpreter runs the module in wazero's interpreter instead of
	// compiling it to machine code. It is much slower but needs no
	// executable memory, for systems whose policy forbids mapping
	// memory writable and then executable. On platforms without a
	// wazero compiler the interpreter is used anyway.
	Interpreter bool
	// MemoryLimitPages caps the module's linear memory in 64 KiB pages;
	// 0 means wazero's default, 65536 pages (4 GiB).
	MemoryLimitPages uint32
}

// Run instantiates the module opts.Module and runs its _start function.
// It returns the module's exit code: the value it passed to proc_exit,
// or 0 when _start returned. Exit codes are WASI's unsigned 32-bit
// values; callers that report a process status keep the low 8 bits.
//
// The error is nil when the module ran to completion, whatever its exit
// code. Otherwise the error says what happened (Run writes it nowhere;
// the caller reports it) and the code is one of:
//   - ExitNotFound or ExitCannotRun when the module could not be started;
//   - ExitTrap when the module trapped, the error containing "trap" and
//     wazero's message with the Wasm stack trace;
//   - ExitKilled when ctx was done before the module finished; the error
//     then wraps ctx.Err().
func Run(ctx context.Context, opts Options) (int, error) {
	if err := ctx.Err(); err != nil {
		return ExitKilled, fmt.Errorf("wasm: %s: not started: %w", opts.Module, err)
	}
	code, err := readModule(opts.Module)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ExitNotFound, err
		}
		return ExitCannotRun, err
	}
	modCfg, err := moduleConfig(opts)
	if err != nil {
		return ExitCannotRun, fmt.Errorf("wasm: %s: %w", opts.Module, err)
	}

	// Cleanup must run even when ctx is already cancelled.
	cleanupCtx := context.WithoutCancel(ctx)
	rtCfg := wazero.NewRuntimeConfig()
	if opts.Interpreter {
		rtCfg = wazero.NewRuntimeConfigInterpreter()
	}
	rtCfg = rtCfg.WithCloseOnContextDone(true)
	if opts.MemoryLimitPages > 0 {
		rtCfg = rtCfg.WithMemoryLimitPages(opts.MemoryLimitPages)
	}
	if opts.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return ExitCannotRun, fmt.Errorf("wasm: %s: compilation cache %s: %w", opts.Module, opts.CacheDir, err)
		}
		defer cache.Close(cleanupCtx)
		rtCfg = rtCfg.WithCompilationCache(cache)
	}
	// Closing the runtime releases the compiled code's memory mappings.
	r := wazero.NewRuntimeWithConfig(ctx, rtCfg)
	defer r.Close(cleanupCtx)

	compiled, err := r.CompileModule(ctx, code)
	if err != nil {
		return ExitCannotRun, fmt.Errorf("wasm: compile %s: %w", opts.Module, err)
	}
	if err := checkStart(compiled); err != nil {
		return ExitCannotRun, fmt.Errorf("wasm: %s: %w", opts.Module, err)
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		return ExitCannotRun, fmt.Errorf("wasm: %s: instantiate WASI: %w", opts.Module, err)
	}
	// _start is called explicitly below rather than by instantiation, so
	// that a failure to link is told apart from a failure while running.
	mod, err := r.InstantiateModule(ctx, compiled, modCfg.WithStartFunctions())
	if err != nil {
		// A Wasm start section runs during instantiation, so it may
		// have exited or trapped; anything else is a link error.
		var exit *sys.ExitError
		if errors.As(err, &exit) || strings.Contains(err.Error(), stackTraceMarker) {
			return outcome(ctx, opts.Module, err)
		}
		return ExitCannotRun, fmt.Errorf("wasm: instantiate %s: %w", opts.Module, err)
	}
	defer mod.Close(cleanupCtx)

	_, err = mod.ExportedFunction("_start").Call(ctx)
	return outcome(ctx, opts.Module, err)
}

// stackTraceMarker is in the message of every error wazero raises when
// module code (or a host function it called) fails: a trap such as
// "wasm error: unreachable", or a recovered host-side panic.
const stackTraceMarker = "\nwasm stack trace:"

// outcome turns the result of running module code into Run's exit code
// and error.
func outcome(ctx context.Context, module string, err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		c := exit.ExitCode()
		if (c == sys.ExitCodeContextCanceled || c == sys.ExitCodeDeadlineExceeded) && ctx.Err() != nil {
			return ExitKilled, fmt.Errorf("wasm: %s: stopped: %w", module, ctx.Err())
		}
		return int(c), nil
	}
	return ExitTrap, fmt.Errorf("wasm: %s: trap: %w", module, err)
}

// readModule reads the module at p and checks its preamble, so that a
// file of another kind gets a plain error rather than a decoder's.
func readModule(p string) ([]byte, error) {
	code, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("wasm: read module: %w", err)
	}
	if err := checkMagic(p, code); err != nil {
		return nil, err
	}
	return code, nil
}

// checkMagic reports why head, the start of the file p, is not the
// preamble of a version 1 binary module.
func checkMagic(p string, head []byte) error {
	if len(head) < len(wasmMagic) || string(head[:4]) != wasmMagic[:4] {
		return fmt.Errorf("wasm: %s is not a WebAssembly module (bad magic)", p)
	}
	if string(head[4:8]) != wasmMagic[4:] {
		return fmt.Errorf("wasm: %s is a WebAssembly binary of unsupported version %d (want 1)",
			p, uint32(head[4])|uint32(head[5])<<8|uint32(head[6])<<16|uint32(head[7])<<24)
	}
	return nil
}

// checkStart makes sure the module is a WASI command: it exports a
// function _start taking and returning nothing.
func checkStart(m wazero.CompiledModule) error {
	def, ok := m.ExportedFunctions()["_start"]
	if !ok {
		return errors.New("no _start function exported (not a WASI command module)")
	}
	if len(def.ParamTypes()) != 0 || len(def.ResultTypes()) != 0 {
		return fmt.Errorf("_start has signature %v -> %v, want () -> ()",
			valueTypeNames(def.ParamTypes()), valueTypeNames(def.ResultTypes()))
	}
	return nil
}

func valueTypeNames(ts []api.ValueType) []string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = api.ValueTypeName(t)
	}
	return names
}

// moduleConfig translates opts into wazero's module configuration with
// real clocks, sleep and randomness (wazero's defaults are fakes).
func moduleConfig(opts Options) (wazero.ModuleConfig, error) {
	c := wazero.NewModuleConfig().
		WithArgs(opts.Args...).
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithOsyield(runtime.Gosched).
		WithRandSource(rand.Reader)
	if opts.Stdin != nil {
		c = c.WithStdin(opts.Stdin)
	}
	if opts.Stdout != nil {
		c = c.WithStdout(opts.Stdout)
	}
	if opts.Stderr != nil {
		c = c.WithStderr(opts.Stderr)
	}
	hasPWD := false
	for _, kv := range opts.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("environment entry %q is not KEY=VALUE", kv)
		}
		hasPWD = hasPWD || k == "PWD"
		c = c.WithEnv(k, v)
	}
	if opts.WorkDir != "" && !hasPWD {
		if !path.IsAbs(opts.WorkDir) {
			return nil, fmt.Errorf("working directory %q is not absolute", opts.WorkDir)
		}
		c = c.WithEnv("PWD", path.Clean(opts.WorkDir))
	}
	fsCfg := wazero.NewFSConfig()
	for _, d := range opts.Dirs {
		if !path.IsAbs(d.Guest) {
			return nil, fmt.Errorf("preopen %s: guest path %q is not absolute", d.Host, d.Guest)
		}
		// wazero would only fail when the module first touches it.
		fi, err := os.Stat(d.Host)
		if err != nil {
			return nil, fmt.Errorf("preopen %s: %w", d.Guest, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("preopen %s: %s is not a directory", d.Guest, d.Host)
		}
		guest := path.Clean(d.Guest)
		if d.ReadOnly {
			fsCfg = fsCfg.WithReadOnlyDirMount(d.Host, guest)
		} else {
			fsCfg = fsCfg.WithDirMount(d.Host, guest)
		}
	}
	return c.WithFSConfig(fsCfg), nil
}

// IsModule reports whether the file at path starts with the Wasm magic
// "\0asm" and version 1. Files too short to hold the preamble, and files
// that are not regular (directories, devices), are not modules; failing
// to open or read the file is an error.
func IsModule(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("wasm: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("wasm: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return false, nil
	}
	var head [len(wasmMagic)]byte
	if _, err := io.ReadFull(f, head[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return false, nil
		}
		return false, fmt.Errorf("wasm: read %s: %w", path, err)
	}
	return string(head[:]) == wasmMagic, nil
}
