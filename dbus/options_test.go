package dbus

import (
	"reflect"
	"strings"
	"testing"

	godbus "github.com/godbus/dbus/v5"
)

func TestContainerConfigRoundTrip(t *testing.T) {
	in := ContainerConfig{Image: "img", Command: []string{"a"}, Entrypoint: []string{""}, Name: "n",
		Env: []string{"A=1"}, WorkingDir: "/w", User: "u", Hostname: "h", AutoRemove: true,
		CapAdd: []string{"NET_RAW"}, CapDrop: []string{"ALL"}, SecurityOpt: []string{"seccomp=unconfined"}, Privileged: true, ReadOnly: true,
		ReadOnlyTmpfs: true, Volumes: []string{"/a:/b:ro"}, Tmpfs: []string{"/t"}}
	out, err := ParseContainerConfig(in.Options())
	if err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("got %+v %v", out, err)
	}
}

func TestParseContainerConfigRejects(t *testing.T) {
	for _, tc := range []struct {
		m    map[string]godbus.Variant
		want string
	}{
		{map[string]godbus.Variant{"Image": godbus.MakeVariant(1)}, `"Image" must be a string`},
		{map[string]godbus.Variant{"Command": godbus.MakeVariant("sh")}, `"Command" must be a string array`},
		{map[string]godbus.Variant{"AutoRemove": godbus.MakeVariant("yes")}, `"AutoRemove" must be a boolean`},
		{map[string]godbus.Variant{"Nope": godbus.MakeVariant(true)}, "unknown container option(s) Nope"},
	} {
		_, err := ParseContainerConfig(tc.m)
		if err == nil || !strings.Contains(err.Error(), tc.want) || CodeOf(err) != ErrInvalidArgument {
			t.Errorf("want %q, got %v", tc.want, err)
		}
	}
}

func TestErrorRoundTrip(t *testing.T) {
	de := ToDBus(Errorf(ErrNoSuchImage, "no such image: x"))
	if de.Name != "io.pelagos.Pelagos1.Error.NoSuchImage" {
		t.Fatalf("name %s", de.Name)
	}
	back := FromDBus(*de)
	if CodeOf(back) != ErrNoSuchImage || back.Error() != "no such image: x" {
		t.Fatalf("back %v", back)
	}
	if CodeOf(FromDBus(*ToDBus(errPlain("boom")))) != ErrFailed {
		t.Fatal("plain error not Failed")
	}
}

type errPlain string

func (e errPlain) Error() string { return string(e) }
