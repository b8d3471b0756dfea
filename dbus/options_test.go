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

// fillAll sets every field of the struct v points to (recursively) to a
// non-zero value, so a round trip shows any field left out of a table.
func fillAll(t *testing.T, v reflect.Value) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("v" + v.Type().Field(i).Name)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Uint16, reflect.Uint64:
			f.SetUint(7)
		case reflect.Int64:
			f.SetInt(7)
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"x", v.Type().Field(i).Name}))
		case reflect.Struct:
			fillAll(t, f)
		default:
			t.Fatalf("field %s: kind %s not covered", v.Type().Field(i).Name, f.Kind())
		}
	}
}

// TestEveryFieldTravels: each options type carries every one of its
// fields over the bus and back.
func TestEveryFieldTravels(t *testing.T) {
	var c ContainerConfig
	fillAll(t, reflect.ValueOf(&c).Elem())
	if got, err := ParseContainerConfig(c.Options()); err != nil || !reflect.DeepEqual(got, c) {
		t.Errorf("ContainerConfig: %v\n got %+v\nwant %+v", err, got, c)
	}
	var im ImportOptions
	fillAll(t, reflect.ValueOf(&im).Elem())
	if got, err := ParseImportOptions(im.Options()); err != nil || !reflect.DeepEqual(got, im) {
		t.Errorf("ImportOptions: %v\n got %+v\nwant %+v", err, got, im)
	}
	var n NetworkOptions
	fillAll(t, reflect.ValueOf(&n).Elem())
	if got, err := ParseNetworkOptions(n.Options()); err != nil || !reflect.DeepEqual(got, n) {
		t.Errorf("NetworkOptions: %v\n got %+v\nwant %+v", err, got, n)
	}
	var e ExecOptions
	fillAll(t, reflect.ValueOf(&e).Elem())
	if got, err := ParseExecOptions(e.Options()); err != nil || !reflect.DeepEqual(got, e) {
		t.Errorf("ExecOptions: %v\n got %+v\nwant %+v", err, got, e)
	}
}
