package container

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestLookupUser(t *testing.T) {
	users := []passwdEntry{{"root", 0, 0, "/root"}, {"alice", 1000, 1000, "/home/alice"}, {"svc", 200, 300, ""}}
	groups := []groupEntry{{"root", 0, nil}, {"alice", 1000, nil}, {"wheel", 10, []string{"alice"}}, {"staff", 50, nil}}
	for _, tc := range []struct {
		spec string
		want credential
		home string
	}{
		{"", credential{0, 0, nil}, "/root"},
		{"alice", credential{1000, 1000, []uint32{10}}, "/home/alice"},
		{"1000", credential{1000, 1000, []uint32{10}}, "/home/alice"},
		{"alice:staff", credential{1000, 50, []uint32{10}}, "/home/alice"},
		{"4242", credential{4242, 4242, nil}, "/"},
		{"4242:7", credential{4242, 7, nil}, "/"},
		{"svc", credential{200, 300, nil}, "/"},
	} {
		got, home, err := lookupUser(tc.spec, users, groups)
		if err != nil || !reflect.DeepEqual(got, tc.want) || home != tc.home {
			t.Errorf("%q: got %+v %q %v, want %+v %q", tc.spec, got, home, err, tc.want, tc.home)
		}
	}
	for _, bad := range []string{"nobody", "alice:nogroup"} {
		if _, _, err := lookupUser(bad, users, groups); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "data"), []byte("x"), 0o644)
	if got, err := lookPath("tool", "/nonexistent:"+dir); err != nil || got != exe {
		t.Fatalf("got %q %v", got, err)
	}
	if _, err := lookPath("data", dir); err == nil {
		t.Fatal("non-executable file found")
	}
	if got, _ := lookPath("/abs/x", dir); got != "/abs/x" {
		t.Fatalf("absolute path changed: %q", got)
	}
}

func TestWithDefaultEnv(t *testing.T) {
	got := withDefaultEnv([]string{"HOME=/custom"}, "box", "/root")
	want := []string{"HOME=/custom", "PATH=" + DefaultPath, "HOSTNAME=box"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q", got)
	}
}
