package session

import (
	"reflect"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

func TestCommandLine(t *testing.T) {
	img := imgspecv1.ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"default"}}
	for _, tc := range []struct {
		name string
		cfg  pdbus.ContainerConfig
		img  imgspecv1.ImageConfig
		want []string
	}{
		{"image defaults", pdbus.ContainerConfig{}, img, []string{"/entry", "default"}},
		{"command replaces cmd", pdbus.ContainerConfig{Command: []string{"a", "b"}}, img, []string{"/entry", "a", "b"}},
		{"entrypoint drops cmd", pdbus.ContainerConfig{Entrypoint: []string{"/other"}}, img, []string{"/other"}},
		{"empty entrypoint clears", pdbus.ContainerConfig{Entrypoint: []string{""}, Command: []string{"x"}}, img, []string{"x"}},
		{"no config", pdbus.ContainerConfig{}, imgspecv1.ImageConfig{}, nil},
	} {
		if got := commandLine(tc.img, tc.cfg); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"PATH=/bin", "A=1"}, []string{"A=2", "B=3"})
	want := []string{"PATH=/bin", "A=2", "B=3"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestNames(t *testing.T) {
	for _, ok := range []string{"web", "a.b-c_d", "Web1"} {
		if err := checkName(ok); err != nil {
			t.Errorf("%q rejected: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", "a/b", "a b", "../x", "é"} {
		if err := checkName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	taken := map[string]bool{"pelagos-1": true, "pelagos-3": true}
	if got := nextDefaultName(func(n string) bool { return taken[n] }); got != "pelagos-2" {
		t.Errorf("next name %q", got)
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]int{"KILL": 9, "SIGTERM": 15, "hup": 1, "2": 2} {
		got, err := parseSignal(in)
		if err != nil || int(got) != want {
			t.Errorf("%q: got %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "NOPE", "0", "99", "-1"} {
		if _, err := parseSignal(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestShellJoin(t *testing.T) {
	if got := shellJoin([]string{"sh", "-c", "echo hi; exit 3", ""}); got != `sh -c 'echo hi; exit 3' ''` {
		t.Fatalf("got %s", got)
	}
}

func TestHostnames(t *testing.T) {
	for _, ok := range []string{"web", "a.b-c", "x1.example.org"} {
		if err := checkHostname(ok); err != nil {
			t.Errorf("%q rejected: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", "a_b", "a\nb", "a..b", string(make([]byte, 65))} {
		if err := checkHostname(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseResources(t *testing.T) {
	r, err := parseResources(pdbus.ContainerConfig{Memory: "512m", MemorySwap: "1g", CPUs: "1.5", CPUShares: 1024, CpusetCPUs: "0-1,3", PidsLimit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if r.MemoryMax != 512<<20 || r.MemorySwap != 512<<20 || r.CPUQuota != 150000 || r.CPUPeriod != 100000 ||
		r.CPUWeight != 39 || r.CpusetCPUs != "0-1,3" || r.PidsMax != 100 {
		t.Fatalf("got %+v", r)
	}
	for _, bad := range []pdbus.ContainerConfig{
		{Memory: "12zz"}, {Memory: "1k"}, {MemorySwap: "1g"}, {Memory: "1g", MemorySwap: "512m"},
		{CPUs: "-1"}, {CPUs: "x"}, {CPUShares: 1}, {CpusetCPUs: "a-b"}, {PidsLimit: -5}, {Cgroups: "maybe"},
	} {
		if _, err := parseResources(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
