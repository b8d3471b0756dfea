package wasm

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestIsModule(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          bool
	}{
		{"ok.wasm", preamble, true},
		{"module.wasm", preamble + typeSec, true},
		{"v2.wasm", "\x00asm\x02\x00\x00\x00", false},
		{"short.wasm", "\x00asm\x01", false},
		{"empty.wasm", "", false},
		{"elf", "\x7fELF\x02\x01\x01\x00", false},
	}
	for _, tt := range tests {
		p := writeFile(t, dir, tt.name, tt.content)
		if got, err := IsModule(p); err != nil || got != tt.want {
			t.Errorf("IsModule(%s) = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	if got, err := IsModule(dir); err != nil || got {
		t.Errorf("IsModule(directory) = %v, %v", got, err)
	}
	if _, err := IsModule(filepath.Join(dir, "missing")); err == nil {
		t.Error("IsModule(missing file) gave no error")
	}
}

func TestDetect(t *testing.T) {
	outside := t.TempDir()
	outsideModule := writeFile(t, outside, "evil.wasm", preamble)
	rootfs := t.TempDir()
	for _, d := range []string{"app", "bin"} {
		if err := os.Mkdir(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, rootfs, "app.wasm", preamble)
	writeFile(t, rootfs, "app/real.wasm", preamble)
	writeFile(t, rootfs, "x.wasm", "#!/bin/sh\n")
	writeFile(t, rootfs, "bin/sh", "\x7fELF\x02\x01\x01\x00")
	links := map[string]string{
		"inside.wasm":  "/app/real.wasm",       // absolute, resolved in rootfs
		"rel.wasm":     "app/../app/real.wasm", // relative
		"escape.wasm":  outsideModule,          // absolute host path: clamped into rootfs
		"dotdot.wasm":  "../../../../../../../../" + outsideModule,
		"dangle.wasm":  "/nowhere.wasm",
		"loop.wasm":    "loop.wasm",
		"app/dir.wasm": "/app",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(rootfs, name)); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name     string
		os, arch string
		args     []string
		module   string // "" when not a Wasm image
		rest     []string
		wantErr  bool
	}{
		{"LinuxShell", "linux", "amd64", []string{"/bin/sh", "-c", "true"}, "", nil, false},
		{"LinuxNoArgs", "linux", "amd64", nil, "", nil, false},
		{"WasiPlatform", "wasip1", "wasm", []string{"/app.wasm", "a", "b"}, "/app.wasm", []string{"a", "b"}, false},
		{"WasiOS", "wasi", "", []string{"/app/real.wasm"}, "/app/real.wasm", []string{}, false},
		{"WasmArch", "linux", "wasm", []string{"/app.wasm"}, "/app.wasm", []string{}, false},
		{"WasiAnyName", "wasip1", "wasm", []string{"/app/../app.wasm", "x"}, "/app.wasm", []string{"x"}, false},
		{"WasiNotModule", "wasip1", "wasm", []string{"/x.wasm"}, "", nil, true},
		{"WasiMissing", "wasip1", "wasm", []string{"/missing.wasm"}, "", nil, true},
		{"WasiRelative", "wasip1", "wasm", []string{"app.wasm"}, "", nil, true},
		{"WasiNoArgs", "wasip1", "wasm", nil, "", nil, true},
		{"WasiNativeBinary", "wasip1", "wasm", []string{"/bin/sh"}, "", nil, true},
		{"Entrypoint", "linux", "amd64", []string{"/app.wasm", "--flag"}, "/app.wasm", []string{"--flag"}, false},
		{"EntrypointSymlink", "linux", "amd64", []string{"/inside.wasm"}, "/inside.wasm", []string{}, false},
		{"EntrypointRelSymlink", "linux", "amd64", []string{"/rel.wasm"}, "/rel.wasm", []string{}, false},
		{"EntrypointNotModule", "linux", "amd64", []string{"/x.wasm"}, "", nil, false},
		{"EntrypointMissing", "linux", "amd64", []string{"/missing.wasm"}, "", nil, false},
		{"EntrypointRelative", "linux", "amd64", []string{"app.wasm"}, "", nil, false},
		{"EntrypointDirectory", "linux", "amd64", []string{"/app/dir.wasm"}, "", nil, false},
		{"SymlinkOutside", "linux", "amd64", []string{"/escape.wasm"}, "", nil, false},
		{"SymlinkDotDot", "linux", "amd64", []string{"/dotdot.wasm"}, "", nil, false},
		{"SymlinkDangling", "linux", "amd64", []string{"/dangle.wasm"}, "", nil, false},
		{"SymlinkLoop", "linux", "amd64", []string{"/loop.wasm"}, "", nil, false},
		{"DotDotPath", "linux", "amd64", []string{"/../../../../../../.." + outsideModule}, "", nil, false},
		{"WasiSymlinkOutside", "wasip1", "wasm", []string{"/escape.wasm"}, "", nil, true},
		{"WasiDotDotPath", "wasip1", "wasm", []string{"/../../../../../../.." + outsideModule}, "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			module, rest, ok, err := Detect(tt.os, tt.arch, tt.args, rootfs)
			if tt.wantErr {
				if err == nil || ok {
					t.Fatalf("Detect = %q, %q, %v, %v; want an error", module, rest, ok, err)
				}
				t.Logf("error: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if ok != (tt.module != "") || module != tt.module || !slices.Equal(rest, tt.rest) {
				t.Errorf("Detect = %q, %q, %v; want %q, %q", module, rest, ok, tt.module, tt.rest)
			}
		})
	}
}
