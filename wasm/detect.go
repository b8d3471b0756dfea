package wasm

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// Detect decides whether an image is a Wasm image and which module to
// run. os and arch come from the image config's platform; args is the
// process's command line (entrypoint followed by command); rootfs is the
// container's root filesystem as the caller sees it ("" means "/").
//
// An image is a Wasm image when its os is "wasip1" or "wasi" or its
// architecture is "wasm". Its args[0] must then be an absolute path to a
// Wasm module in rootfs, otherwise Detect returns an error. An image of
// another platform is a Wasm image too when args[0] is an absolute path
// ending in ".wasm" that names a Wasm module in rootfs; when it does not
// (missing, not a module), Detect returns ok false and no error, and the
// caller runs args as a native program.
//
// args[0] is resolved inside rootfs the way the container will see it:
// symbolic links and ".." are evaluated with rootfs as the root, so they
// can never lead out of it. On success module is args[0] cleaned, the
// path inside the container, and rest is args[1:].
func Detect(os, arch string, args []string, rootfs string) (module string, rest []string, ok bool, err error) {
	wasmPlatform := os == "wasip1" || os == "wasi" || arch == "wasm"
	if len(args) == 0 {
		if wasmPlatform {
			return "", nil, false, fmt.Errorf("wasm: image for %s/%s has no entrypoint or command naming its module", os, arch)
		}
		return "", nil, false, nil
	}
	first := args[0]
	if !wasmPlatform && (!strings.HasSuffix(first, ".wasm") || !path.IsAbs(first)) {
		return "", nil, false, nil
	}
	if !path.IsAbs(first) {
		return "", nil, false, fmt.Errorf("wasm: image for %s/%s: module %q is not an absolute path", os, arch, first)
	}
	module = path.Clean(first)
	if rootfs == "" {
		rootfs = "/"
	}
	isMod, err := moduleInRoot(rootfs, module)
	if err != nil || !isMod {
		if !wasmPlatform {
			return "", nil, false, nil
		}
		if err == nil {
			err = fmt.Errorf("wasm: %s is not a WebAssembly module (bad magic)", module)
		}
		return "", nil, false, err
	}
	return module, args[1:], true, nil
}

// moduleInRoot reports whether the container path p, resolved inside
// rootfs, is a Wasm module.
func moduleInRoot(rootfs, p string) (bool, error) {
	host, err := securejoin.SecureJoin(rootfs, p)
	if err != nil {
		return false, fmt.Errorf("wasm: resolve %s in %s: %w", p, rootfs, err)
	}
	ok, err := IsModule(host)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("wasm: module %s not found in the image: %w", p, fs.ErrNotExist)
		}
		return false, fmt.Errorf("wasm: module %s: %w", p, err)
	}
	return ok, nil
}
