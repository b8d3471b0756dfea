package container

import (
	"reflect"
	"testing"
)

func TestApplyCapChanges(t *testing.T) {
	got, err := ApplyCapChanges(DefaultCapabilities, []string{"net_raw"}, []string{"CAP_CHOWN", "kill"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW",
		"CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
	got, _ = ApplyCapChanges(DefaultCapabilities, []string{"NET_RAW"}, []string{"ALL"})
	if !reflect.DeepEqual(got, []string{"CAP_NET_RAW"}) {
		t.Fatalf("drop ALL add NET_RAW: %v", got)
	}
	if _, err := ApplyCapChanges(nil, []string{"NOPE"}, nil); err == nil {
		t.Fatal("unknown capability accepted")
	}
	if m := CapMask(DefaultCapabilities); m != 0x800405fb {
		t.Fatalf("default mask %#x", m)
	}
}
