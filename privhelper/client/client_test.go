package client

import (
	"errors"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/pelagos-containers/pelagos/privhelper/api"
)

func TestErrorMapping(t *testing.T) {
	for name, want := range sentinels {
		err := mapErr("Attach", dbus.Error{Name: name, Body: []any{"why"}})
		if !errors.Is(err, want) || err.Error() != "why" {
			t.Errorf("%s: %v does not match %v", name, err, want)
		}
		for other, s := range sentinels {
			if other != name && errors.Is(err, s) {
				t.Errorf("%s also matches %v", name, s)
			}
		}
	}
	if err := mapErr("Attach", &dbus.Error{Name: api.ErrorNotFound}); !errors.Is(err, ErrNotFound) {
		t.Errorf("pointer error: %v", err)
	}
	if err := mapErr("Attach", dbus.Error{Name: "org.freedesktop.DBus.Error.ServiceUnknown"}); errors.Is(err, ErrFailed) {
		t.Errorf("a bus error matched a helper sentinel: %v", err)
	}
}
