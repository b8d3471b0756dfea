package images

import (
	"errors"
	"testing"

	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"
)

func TestNormalizeRegistry(t *testing.T) {
	for _, tc := range []struct{ in, key, host string }{
		{"quay.io", "quay.io", "quay.io"},
		{"https://quay.io/", "quay.io", "quay.io"},
		{"docker://127.0.0.1:5000", "127.0.0.1:5000", "127.0.0.1:5000"},
		{"registry.example.org/team", "registry.example.org/team", "registry.example.org"},
		{"localhost:5000/a/b", "localhost:5000/a/b", "localhost:5000"},
	} {
		key, host, err := normalizeRegistry(tc.in)
		if err != nil || key != tc.key || host != tc.host {
			t.Errorf("normalizeRegistry(%q) = %q, %q, %v; want %q, %q", tc.in, key, host, err, tc.key, tc.host)
		}
	}
	for _, bad := range []string{"", "https://", "Not A Registry", "quay.io/x:tag", "quay.io/x@sha256:00", "-bad.io", "quay.io/UPPER"} {
		if _, _, err := normalizeRegistry(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("normalizeRegistry(%q): want ErrInvalidArgument, got %v", bad, err)
		}
	}
}

func TestApplyPlatform(t *testing.T) {
	var sys types.SystemContext
	if err := applyPlatform(&sys, "linux/arm/v7"); err != nil || sys.OSChoice != "linux" || sys.ArchitectureChoice != "arm" || sys.VariantChoice != "v7" {
		t.Fatalf("linux/arm/v7: %+v %v", sys, err)
	}
	for _, bad := range []string{"arm64", "linux/", "/arm64", "linux/ARM64", "a/b/c/d", "linux/arm64;rm"} {
		if err := applyPlatform(&types.SystemContext{}, bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("applyPlatform(%q): want ErrInvalidArgument, got %v", bad, err)
		}
	}
}

func TestParseDestination(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"quay.io/me/app:1", "docker://quay.io/me/app:1"},
		{"app", "docker://app:latest"},
		{"docker://quay.io/me/app:1", "docker://quay.io/me/app:1"},
		{"oci:/tmp/layout:v1", "oci:/tmp/layout:v1"},
		{"dir:/tmp/d", "dir:/tmp/d"},
	} {
		ref, err := ParseDestination(tc.in)
		if err != nil {
			t.Errorf("ParseDestination(%q): %v", tc.in, err)
			continue
		}
		if got := ref.Transport().Name() + ":" + ref.StringWithinTransport(); got != tc.want {
			t.Errorf("ParseDestination(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"oci:relative/path", "dir:", "UPPER/x", "ftp://x/y", "docker-archive:x.tar"} {
		if _, err := ParseDestination(bad); !errors.Is(err, ErrInvalidReference) {
			t.Errorf("ParseDestination(%q): want ErrInvalidReference, got %v", bad, err)
		}
	}
}

func TestSourceName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"oci:/l:example.org/a:1", "example.org/a:1"},
		{"oci:/l:v1", ""},
		{"oci-archive:/a.tar:localhost/x:2", "localhost/x:2"},
		{"dir:/d", ""},
		{"docker-archive:/a.tar:localhost/y:3", "localhost/y:3"},
	} {
		ref, err := alltransports.ParseImageName(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		got := ""
		if n := sourceName(ref); n != nil {
			got = n.String()
		}
		if got != tc.want {
			t.Errorf("sourceName(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
