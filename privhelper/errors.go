package privhelper

import (
	"errors"
	"fmt"

	"github.com/godbus/dbus/v5"

	"github.com/pelagos-containers/pelagos/privhelper/api"
)

// Error is a failure with a D-Bus error name the caller can act on.
type Error struct {
	Name string // one of the api.Error* names
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func newError(name, format string, args ...any) error {
	return &Error{Name: name, Msg: fmt.Sprintf(format, args...)}
}

func invalidf(format string, args ...any) error {
	return newError(api.ErrorInvalidArgument, format, args...)
}

func notFoundf(format string, args ...any) error {
	return newError(api.ErrorNotFound, format, args...)
}

// toDBus turns err into the D-Bus error sent back to a caller. Errors
// without a name are reported as Failed with their text, which carries the
// operation and object they were wrapped with.
func toDBus(err error) *dbus.Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return dbus.NewError(e.Name, []any{e.Msg})
	}
	return dbus.NewError(api.ErrorFailed, []any{err.Error()})
}
