package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

func TestBuildEnv(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "env")
	os.WriteFile(f, []byte("# c\nA=1\n\nFROMHOST\n"), 0o644)
	lookup := func(k string) (string, bool) {
		if k == "FROMHOST" {
			return "h", true
		}
		return "", false
	}
	got, err := buildEnv([]string{f}, []string{"B=2", "MISSING", "A=3"}, lookup)
	want := []string{"A=1", "FROMHOST=h", "B=2", "A=3"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q %v", got, err)
	}
	if _, err := buildEnv(nil, []string{"=x"}, lookup); err == nil {
		t.Fatal("empty key accepted")
	}
}

func TestParseChanges(t *testing.T) {
	o, err := parseChanges([]string{`CMD ["echo","hi"]`, "ENTRYPOINT /run.sh", "ENV A=b c", "WORKDIR /w", "USER bob", "ENV=X 1"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.Cmd, []string{"echo", "hi"}) || !reflect.DeepEqual(o.Entrypoint, []string{"/bin/sh", "-c", "/run.sh"}) ||
		!reflect.DeepEqual(o.Env, []string{"A=b c", "X=1"}) || o.WorkingDir != "/w" || o.User != "bob" {
		t.Fatalf("got %+v", o)
	}
	for _, bad := range []string{"FROM x", "WORKDIR rel", "CMD [broken", "ENV", "USER"} {
		if _, err := parseChanges([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSplitRepoTag(t *testing.T) {
	for in, want := range map[string][2]string{
		"localhost/busybox:latest":     {"localhost/busybox", "latest"},
		"localhost:5000/x/y:1.0":       {"localhost:5000/x/y", "1.0"},
		"localhost:5000/x":             {"localhost:5000/x", "<none>"},
		"docker.io/library/a@sha256:1": {"docker.io/library/a", "<none>"},
	} {
		r, tag := splitRepoTag(in)
		if r != want[0] || tag != want[1] {
			t.Errorf("%s: got %s %s", in, r, tag)
		}
	}
}

func TestHumanFormats(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "Less than a second", 5 * time.Second: "5 seconds", 90 * time.Second: "About a minute",
		10 * time.Minute: "10 minutes", 3 * time.Hour: "3 hours", 72 * time.Hour: "3 days",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("%v: %q", d, got)
		}
	}
	for n, want := range map[int64]string{999: "999 B", 145408: "145 kB", 2190000: "2.19 MB", -1: "unknown"} {
		if got := humanSize(n); got != want {
			t.Errorf("%d: %q", n, got)
		}
	}
}

func TestHelpNeedsNoService(t *testing.T) {
	for _, c := range commands() {
		outR, outW, _ := os.Pipe()
		errR, errW, _ := os.Pipe()
		e := &env{ctx: context.Background(), stdout: outW, stderr: errW, connect: func(context.Context) (*pdbus.Client, error) {
			t.Errorf("%s --help connected to the service", c.name)
			return nil, errors.New("no")
		}}
		code := e.main([]string{c.name, "--help"})
		outW.Close()
		errW.Close()
		out, _ := io.ReadAll(outR)
		errb, _ := io.ReadAll(errR)
		if code != 0 || !strings.Contains(string(out), "Usage: "+c.usage) || len(errb) != 0 {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", c.name, code, out, errb)
		}
	}
}

func TestPlatformFlag(t *testing.T) {
	for _, tc := range []struct {
		platform, os, arch, variant, want string
		err                               bool
	}{
		{"linux/arm64", "", "", "", "linux/arm64", false},
		{"", "", "arm", "v7", "linux/arm/v7", false},
		{"", "", "", "", "", false},
		{"linux/arm64", "", "amd64", "", "", true},
		{"", "", "", "v7", "", true},
	} {
		got, err := platformFlag(tc.platform, tc.os, tc.arch, tc.variant)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("platformFlag(%q, %q, %q, %q) = %q, %v", tc.platform, tc.os, tc.arch, tc.variant, got, err)
		}
	}
}

func TestAbsTransportPath(t *testing.T) {
	t.Chdir("/tmp")
	for _, tc := range []struct{ in, want string }{
		{"oci:layout:v1", "oci:/tmp/layout:v1"},
		{"dir:/abs", "dir:/abs"},
		{"docker-archive:x.tar", "docker-archive:/tmp/x.tar"},
		{"quay.io/a/b:1", "quay.io/a/b:1"},
	} {
		if got, err := absTransportPath(tc.in); err != nil || got != tc.want {
			t.Errorf("absTransportPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := absTransportPath("oci:"); err == nil {
		t.Error("absTransportPath(oci:) should fail")
	}
}

func TestLabelMatches(t *testing.T) {
	l := map[string]string{"a": "1", "b": ""}
	for f, want := range map[string]bool{"a": true, "a=1": true, "a=2": false, "b": true, "b=": true, "c": false} {
		if got := labelMatches(l, f); got != want {
			t.Errorf("labelMatches(%q) = %v", f, got)
		}
	}
}

func TestDetachKeys(t *testing.T) {
	keys, err := parseDetachKeys("ctrl-p,ctrl-q")
	if err != nil || string(keys) != "\x10\x11" {
		t.Fatalf("parseDetachKeys: %q %v", keys, err)
	}
	for _, bad := range []string{"ctrl-", "ctrl-1", "alt-x", "ab"} {
		if _, err := parseDetachKeys(bad); err == nil {
			t.Errorf("parseDetachKeys(%q) should fail", bad)
		}
	}
	for _, tc := range []struct {
		in, out  string
		detached bool
	}{
		{"ls\r\x10\x11rest", "ls\r", true},
		{"a\x10b\x10\x11", "a\x10b", true},
		{"\x10\x10\x11", "\x10", true},
		{"plain", "plain", false},
		{"trailing\x10", "trailing", false},
	} {
		var out strings.Builder
		got := copyUntilKeys(&out, strings.NewReader(tc.in), keys)
		if got != tc.detached || out.String() != tc.out {
			t.Errorf("copyUntilKeys(%q) = %q, %v; want %q, %v", tc.in, out.String(), got, tc.out, tc.detached)
		}
	}
}

func TestParseMount(t *testing.T) {
	for _, tc := range []struct{ in, vol, tmpfs string }{
		{"type=bind,source=/a,target=/b", "/a:/b", ""},
		{"type=bind,src=/a,dst=/b,readonly", "/a:/b:ro", ""},
		{"type=volume,source=data,target=/data", "data:/data", ""},
		{"type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1777", "", "/t:size=64m,mode=1777"},
	} {
		vol, tmpfs, err := parseMount(tc.in)
		if err != nil || vol != tc.vol || tmpfs != tc.tmpfs {
			t.Errorf("parseMount(%q) = %q, %q, %v", tc.in, vol, tmpfs, err)
		}
	}
	for _, bad := range []string{"type=bind,target=/b", "type=bind,source=/a", "type=nfs,source=x,target=/y", "type=tmpfs,source=/x,target=/y", "type=bind,source=/a:b,target=/c", "type=bind,source=/a,target=/b,bogus=1"} {
		if _, _, err := parseMount(bad); err == nil {
			t.Errorf("parseMount(%q) should fail", bad)
		}
	}
}
