package wasm

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// buildProg compiles testdata/prog for wasip1 into a temporary directory
// and returns the module's path.
func buildProg(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "prog.wasm")
	cmd := exec.Command("go", "build", "-o", out, "./testdata/prog")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build wasip1 test module: %v\n%s", err, b)
	}
	return out
}

// Hand-assembled modules: the preamble, then sections.
const (
	preamble = "\x00asm\x01\x00\x00\x00"
	// typeSec declares one function type () -> ().
	typeSec = "\x01\x04\x01\x60\x00\x00"
	// funcSec declares one function of type 0.
	funcSec = "\x03\x02\x01\x00"
	// startExport exports function 0 as "_start".
	startExport = "\x07\x0a\x01\x06_start\x00\x00"
	// unreachableCode is the body of function 0: unreachable; end.
	unreachableCode = "\x0a\x05\x01\x03\x00\x00\x0b"
	// emptyCode is the body of function 0: end.
	emptyCode = "\x0a\x04\x01\x02\x00\x0b"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runOnce runs opts.Module with opts.Args after the program name and
// returns its exit code, error and output.
func runOnce(t *testing.T, opts Options) (int, error, string) {
	t.Helper()
	var out bytes.Buffer
	opts.Args = append([]string{"prog"}, opts.Args...)
	opts.Stdout, opts.Stderr = &out, &out
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code, err := Run(ctx, opts)
	return code, err, out.String()
}

func TestRun(t *testing.T) {
	prog := buildProg(t)
	before := runtime.NumGoroutine()
	// Compiling the module takes about 0.6s, ten times more under the
	// race detector: all runs but the first share a compilation cache.
	cache := t.TempDir()
	run := func(t *testing.T, opts Options) (int, error, string) {
		t.Helper()
		if opts.CacheDir == "" {
			opts.CacheDir = cache
		}
		return runOnce(t, opts)
	}

	t.Run("ArgsEnv", func(t *testing.T) {
		// Without a cache.
		code, err, out := runOnce(t, Options{Module: prog, Args: []string{"echo", "GREETING", "a b", ""},
			Env: []string{"GREETING=hi=there", "OTHER=x"}})
		if err != nil || code != 0 {
			t.Fatalf("code %d, err %v, output %q", code, err, out)
		}
		want := `args=["prog" "echo" "GREETING" "a b" ""]` + "\nGREETING=hi=there\n"
		if out != want {
			t.Errorf("output %q, want %q", out, want)
		}
	})

	t.Run("Stdin", func(t *testing.T) {
		var out bytes.Buffer
		code, err := Run(context.Background(), Options{Module: prog, Args: []string{"prog", "stdin"},
			Stdin: strings.NewReader("some input\n"), Stdout: &out, CacheDir: cache})
		if err != nil || code != 0 || out.String() != "some input\n" {
			t.Fatalf("code %d, err %v, output %q", code, err, out.String())
		}
	})

	t.Run("Files", func(t *testing.T) {
		data := t.TempDir()
		writeFile(t, data, "in.txt", "hello")
		code, err, out := run(t, Options{Module: prog, Args: []string{"files", "/data"},
			Dirs: []Dir{{Host: data, Guest: "/data"}}})
		if err != nil || code != 0 {
			t.Fatalf("code %d, err %v, output %q", code, err, out)
		}
		if out != "read \"hello\"\n" {
			t.Errorf("output %q", out)
		}
		b, err := os.ReadFile(filepath.Join(data, "out.txt"))
		if err != nil || string(b) != "HELLO" {
			t.Errorf("out.txt: %q, %v", b, err)
		}
	})

	t.Run("WorkDir", func(t *testing.T) {
		data := t.TempDir()
		writeFile(t, data, "in.txt", "relative")
		code, err, out := run(t, Options{Module: prog, Args: []string{"files", "."},
			Dirs: []Dir{{Host: data, Guest: "/work"}}, WorkDir: "/work"})
		if err != nil || code != 0 {
			t.Fatalf("code %d, err %v, output %q", code, err, out)
		}
		if b, err := os.ReadFile(filepath.Join(data, "out.txt")); err != nil || string(b) != "RELATIVE" {
			t.Errorf("out.txt: %q, %v", b, err)
		}
	})

	t.Run("ExitCode", func(t *testing.T) {
		for _, n := range []int{0, 1, 7, 255} {
			code, err, out := run(t, Options{Module: prog, Args: []string{"exit", strconv.Itoa(n)}})
			if err != nil || code != n {
				t.Errorf("exit %d: code %d, err %v, output %q", n, code, err, out)
			}
		}
	})

	t.Run("OutsidePreopens", func(t *testing.T) {
		parent := t.TempDir()
		data := filepath.Join(parent, "data")
		if err := os.Mkdir(data, 0o755); err != nil {
			t.Fatal(err)
		}
		secret := writeFile(t, parent, "secret.txt", "secret")
		for _, p := range []string{secret, "/data/../secret.txt", "../secret.txt", "/etc/passwd"} {
			code, err, out := run(t, Options{Module: prog, Args: []string{"open", p},
				Dirs: []Dir{{Host: data, Guest: "/data"}}, WorkDir: "/data"})
			if err != nil || code != 3 || !strings.HasPrefix(out, "error: ") {
				t.Errorf("open %s: code %d, err %v, output %q; want a failure", p, code, err, out)
			}
		}
	})

	t.Run("ReadOnly", func(t *testing.T) {
		ro := t.TempDir()
		writeFile(t, ro, "in.txt", "data")
		dirs := []Dir{{Host: ro, Guest: "/ro", ReadOnly: true}}
		code, err, out := run(t, Options{Module: prog, Args: []string{"open", "/ro/in.txt"}, Dirs: dirs})
		if err != nil || code != 0 || out != "opened \"data\"\n" {
			t.Errorf("read: code %d, err %v, output %q", code, err, out)
		}
		for _, p := range []string{"/ro/new.txt", "/ro/in.txt"} {
			code, err, out = run(t, Options{Module: prog, Args: []string{"write", p}, Dirs: dirs})
			if err != nil || code != 3 || !strings.HasPrefix(out, "error: ") {
				t.Errorf("write %s: code %d, err %v, output %q; want a failure", p, code, err, out)
			}
		}
		if _, err := os.Stat(filepath.Join(ro, "new.txt")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("new.txt was created in the read-only preopen: %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(ro, "in.txt")); string(b) != "data" {
			t.Errorf("in.txt changed to %q", b)
		}
	})

	t.Run("Clock", func(t *testing.T) {
		code, err, out := run(t, Options{Module: prog, Args: []string{"clock"}})
		if err != nil || code != 0 {
			t.Fatalf("code %d, err %v, output %q", code, err, out)
		}
		var year, slept int
		var rnd string
		if _, err := parseClock(out, &year, &slept, &rnd); err != nil {
			t.Fatalf("output %q: %v", out, err)
		}
		if year < 2025 || slept < 50 || slept > 5000 || rnd == strings.Repeat("0", 32) {
			t.Errorf("clock or randomness look fake: %q", out)
		}
		_, _, out2 := run(t, Options{Module: prog, Args: []string{"clock"}})
		if out2 != "" && strings.Fields(out2)[2] == strings.Fields(out)[2] {
			t.Errorf("two runs drew the same random bytes: %q", out2)
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		started := make(chan struct{})
		w := &notifyWriter{ch: started}
		type result struct {
			code int
			err  error
		}
		done := make(chan result, 1)
		go func() {
			code, err := Run(ctx, Options{Module: prog, Args: []string{"prog", "loop"}, Stdout: w, CacheDir: cache})
			done <- result{code, err}
		}()
		select {
		case <-started:
		case <-time.After(time.Minute):
			t.Fatal("module did not start")
		}
		time.Sleep(100 * time.Millisecond)
		cancel()
		t0 := time.Now()
		select {
		case r := <-done:
			if r.code != ExitKilled || !errors.Is(r.err, context.Canceled) {
				t.Errorf("code %d, err %v; want %d and context.Canceled", r.code, r.err, ExitKilled)
			}
			t.Logf("stopped %v after cancel: %v", time.Since(t0), r.err)
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return within 5s of cancel")
		}
	})

	t.Run("Deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		code, err := Run(ctx, Options{Module: prog, Args: []string{"prog", "loop"}, CacheDir: cache})
		if code != ExitKilled || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("code %d, err %v", code, err)
		}
	})

	t.Run("CacheDir", func(t *testing.T) {
		// The runs above filled the shared cache.
		start := time.Now()
		code, err, out := run(t, Options{Module: prog, Args: []string{"exit", "5"}})
		if err != nil || code != 5 {
			t.Fatalf("code %d, err %v, output %q", code, err, out)
		}
		t.Logf("run with a filled cache: %v", time.Since(start))
		var files int
		filepath.WalkDir(cache, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files++
			}
			return nil
		})
		if files == 0 && (runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64") {
			t.Errorf("nothing was written to the compilation cache %s", cache)
		}
	})

	t.Run("Interpreter", func(t *testing.T) {
		code, err, out := run(t, Options{Module: prog, Args: []string{"echo", "X"}, Env: []string{"X=1"}, Interpreter: true})
		if err != nil || code != 0 || !strings.HasSuffix(out, "X=1\n") {
			t.Errorf("code %d, err %v, output %q", code, err, out)
		}
	})

	// Run must leave no goroutines behind.
	t.Run("NoGoroutinesLeft", func(t *testing.T) {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before+1 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before+1 { // +1: this subtest
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

// parseClock parses the output of the clock command.
func parseClock(s string, year, slept *int, rnd *string) (int, error) {
	var n int
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		var err error
		switch k {
		case "year":
			*year, err = strconv.Atoi(v)
		case "slept":
			*slept, err = strconv.Atoi(v)
		case "rand":
			*rnd = v
		}
		if err != nil {
			return n, err
		}
		n++
	}
	if n != 3 {
		return n, errors.New("want year, slept and rand")
	}
	return n, nil
}

// notifyWriter closes ch on the first write.
type notifyWriter struct {
	ch     chan struct{}
	closed bool
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	if !w.closed {
		w.closed = true
		close(w.ch)
	}
	return len(p), nil
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		code          int
		want          []string
	}{
		{"text.wasm", "#!/bin/sh\necho hi\n", ExitCannotRun, []string{"is not a WebAssembly module (bad magic)"}},
		{"short.wasm", "\x00as", ExitCannotRun, []string{"bad magic"}},
		{"v2.wasm", "\x00asm\x02\x00\x00\x00", ExitCannotRun, []string{"unsupported version 2"}},
		{"garbage.wasm", preamble + "\x01\xff\xff\xff\x0f\x00", ExitCannotRun, []string{"wasm: compile "}},
		{"nostart.wasm", preamble, ExitCannotRun, []string{"no _start"}},
		{"trap.wasm", preamble + typeSec + funcSec + startExport + unreachableCode, ExitTrap, []string{"trap", "unreachable"}},
		{"env.wasm", preamble + typeSec + "\x02\x0b\x01\x03env\x03foo\x00\x00" + "\x07\x0a\x01\x06_start\x00\x00",
			ExitCannotRun, []string{"wasm: instantiate ", "env"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, dir, tt.name, tt.content)
			code, err := Run(context.Background(), Options{Module: p, Args: []string{tt.name}})
			if code != tt.code || err == nil {
				t.Fatalf("code %d, err %v; want code %d and an error", code, err, tt.code)
			}
			msg := err.Error()
			for _, w := range append(tt.want, p) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}

	t.Run("BadMagicMessage", func(t *testing.T) {
		p := filepath.Join(dir, "text.wasm")
		_, err := Run(context.Background(), Options{Module: p})
		if want := "wasm: " + p + " is not a WebAssembly module (bad magic)"; err == nil || err.Error() != want {
			t.Errorf("error %v, want %q", err, want)
		}
	})

	t.Run("Missing", func(t *testing.T) {
		p := filepath.Join(dir, "missing.wasm")
		code, err := Run(context.Background(), Options{Module: p})
		if code != ExitNotFound || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), p) {
			t.Errorf("code %d, err %v", code, err)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		p := writeFile(t, dir, "empty.wasm", preamble+typeSec+funcSec+startExport+emptyCode)
		if code, err := Run(context.Background(), Options{Module: p}); code != 0 || err != nil {
			t.Errorf("code %d, err %v", code, err)
		}
	})

	t.Run("BadOptions", func(t *testing.T) {
		p := filepath.Join(dir, "empty.wasm")
		for _, o := range []Options{
			{Module: p, Env: []string{"NOVALUE"}},
			{Module: p, Dirs: []Dir{{Host: dir, Guest: "relative"}}},
			{Module: p, Dirs: []Dir{{Host: filepath.Join(dir, "nope"), Guest: "/x"}}},
			{Module: p, Dirs: []Dir{{Host: p, Guest: "/x"}}},
		} {
			if code, err := Run(context.Background(), o); code != ExitCannotRun || err == nil {
				t.Errorf("%+v: code %d, err %v", o, code, err)
			}
		}
	})

	t.Run("CancelledBeforeStart", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		code, err := Run(ctx, Options{Module: filepath.Join(dir, "empty.wasm")})
		if code != ExitKilled || !errors.Is(err, context.Canceled) {
			t.Errorf("code %d, err %v", code, err)
		}
	})
}
