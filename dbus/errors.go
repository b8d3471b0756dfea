package dbus

import (
	"errors"
	"fmt"

	godbus "github.com/godbus/dbus/v5"
)

// ErrorCode is the last element of a pelagos D-Bus error name.
type ErrorCode string

// The named errors of the API.
const (
	ErrNoSuchContainer      ErrorCode = "NoSuchContainer"
	ErrNoSuchImage          ErrorCode = "NoSuchImage"
	ErrNameInUse            ErrorCode = "NameInUse"
	ErrInvalidArgument      ErrorCode = "InvalidArgument"
	ErrInvalidArchive       ErrorCode = "InvalidArchive"
	ErrCommandNotFound      ErrorCode = "CommandNotFound"
	ErrCommandNotExecutable ErrorCode = "CommandNotExecutable"
	ErrStartFailed          ErrorCode = "StartFailed"
	ErrContainerRunning     ErrorCode = "ContainerRunning"
	ErrContainerNotRunning  ErrorCode = "ContainerNotRunning"
	ErrImageInUse           ErrorCode = "ImageInUse"
	ErrInvalidReference     ErrorCode = "InvalidReference"
	ErrPullFailed           ErrorCode = "PullFailed"
	ErrPushFailed           ErrorCode = "PushFailed"
	ErrAuthFailed           ErrorCode = "AuthenticationFailed"
	ErrNotLoggedIn          ErrorCode = "NotLoggedIn"
	ErrCancelled            ErrorCode = "Cancelled"
	ErrNoSuchVolume         ErrorCode = "NoSuchVolume"
	ErrVolumeInUse          ErrorCode = "VolumeInUse"
	ErrNoSuchNetwork        ErrorCode = "NoSuchNetwork"
	ErrNetworkInUse         ErrorCode = "NetworkInUse"
	ErrPermissionDenied     ErrorCode = "PermissionDenied"
	ErrFailed               ErrorCode = "Failed"
)

// AllErrorCodes lists every error code, for documentation and tests.
var AllErrorCodes = []ErrorCode{
	ErrNoSuchContainer, ErrNoSuchImage, ErrNameInUse, ErrInvalidArgument,
	ErrInvalidArchive, ErrCommandNotFound, ErrCommandNotExecutable,
	ErrStartFailed, ErrContainerRunning, ErrContainerNotRunning,
	ErrImageInUse, ErrInvalidReference, ErrPullFailed, ErrPushFailed, ErrAuthFailed, ErrNotLoggedIn, ErrCancelled, ErrNoSuchVolume, ErrVolumeInUse,
	ErrNoSuchNetwork, ErrNetworkInUse, ErrPermissionDenied, ErrFailed,
}

// Name is the full D-Bus error name.
func (c ErrorCode) Name() string { return ErrorPrefix + string(c) }

// Error is a pelagos error as it travels over the bus.
type Error struct {
	Code    ErrorCode
	Message string
}

func (e *Error) Error() string { return e.Message }

// DBusError lets godbus send the error with its name.
func (e *Error) DBusError() (string, []any) {
	return e.Code.Name(), []any{e.Message}
}

// Errorf makes a named error with a formatted message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ToDBus converts any error to the *godbus.Error a method returns,
// keeping the name of a pelagos *Error and calling anything else Failed.
func ToDBus(err error) *godbus.Error {
	if err == nil {
		return nil
	}
	var pe *Error
	if !errors.As(err, &pe) {
		pe = &Error{Code: ErrFailed, Message: err.Error()}
	}
	name, body := pe.DBusError()
	return godbus.NewError(name, body)
}

// FromDBus turns an error received from a call into a *Error when it
// carries a pelagos error name; other errors are returned unchanged.
func FromDBus(err error) error {
	var de godbus.Error
	if errors.As(err, &de) && len(de.Name) > len(ErrorPrefix) && de.Name[:len(ErrorPrefix)] == ErrorPrefix {
		msg := de.Name
		if len(de.Body) > 0 {
			if s, ok := de.Body[0].(string); ok {
				msg = s
			}
		}
		return &Error{Code: ErrorCode(de.Name[len(ErrorPrefix):]), Message: msg}
	}
	var dep *godbus.Error
	if errors.As(err, &dep) && len(dep.Name) > len(ErrorPrefix) && dep.Name[:len(ErrorPrefix)] == ErrorPrefix {
		return FromDBus(*dep)
	}
	return err
}

// CodeOf returns the pelagos error code of err, or "" when it has none.
func CodeOf(err error) ErrorCode {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
