package dbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	godbus "github.com/godbus/dbus/v5"
)

// ErrServiceGone is what errors.Is finds in the error of a call or wait
// that the service did not finish because it left the bus: it crashed,
// was killed or restarted, or the session bus itself went away.
var ErrServiceGone = errors.New("pelagosd went away")

// ServiceGoneError is the error of a call the service did not finish
// because it went away; it matches ErrServiceGone.
type ServiceGoneError struct {
	// Reason says how it was noticed: the service's connection left the
	// bus, the client's own connection closed, the bus answered NoReply.
	Reason string
	// BusClosed is true when the client's connection to the session bus
	// closed, rather than the service's.
	BusClosed bool
}

func (e *ServiceGoneError) Error() string { return ErrServiceGone.Error() + ": " + e.Reason }

// Is makes errors.Is(err, ErrServiceGone) hold.
func (e *ServiceGoneError) Is(target error) bool { return target == ErrServiceGone }

// The bus driver's names.
const (
	busDriver      = "org.freedesktop.DBus"
	busDriverPath  = godbus.ObjectPath("/org/freedesktop/DBus")
	errNoReply     = "org.freedesktop.DBus.Error.NoReply"
	nameOwnerMatch = "NameOwnerChanged"
)

// watchKey marks a context made by Watch, for call.
type watchKey struct{}

// Watch returns a context derived from ctx that is cancelled, with a
// *ServiceGoneError as its cause, as soon as the service instance now
// serving this client leaves the bus or the client's own connection
// closes. Calls made with it (and waits on it) then end at once with that
// error. Stop releases the watch; call it when the long call is over.
//
// The service is started first if it is not running. The watch is on the
// connection that owns BusName when Watch is called, by its unique name,
// rather than on the well-known name: an instance that gives the name up
// (an idle exit that a late call stopped, a new instance taking over)
// still answers the calls it already has, and only its disconnection
// means they are lost.
func (c *Client) Watch(ctx context.Context) (context.Context, context.CancelFunc, error) {
	owner, err := c.serviceOwner(ctx)
	if err != nil {
		return nil, nil, err
	}
	match := []godbus.MatchOption{
		godbus.WithMatchSender(busDriver), godbus.WithMatchObjectPath(busDriverPath),
		godbus.WithMatchInterface(busDriver), godbus.WithMatchMember(nameOwnerMatch),
		godbus.WithMatchArg(0, owner),
	}
	if err := c.conn.AddMatchSignalContext(ctx, match...); err != nil {
		return nil, nil, fmt.Errorf("watch pelagosd on the bus: %w", err)
	}
	ch := make(chan *godbus.Signal, 8)
	c.conn.Signal(ch)
	wctx, cancel := context.WithCancelCause(context.WithValue(ctx, watchKey{}, true))
	// The match is in place: an owner that left before it was is caught
	// here, one that leaves after it by the signal.
	var alive bool
	if err := c.conn.BusObject().CallWithContext(ctx, busDriver+".NameHasOwner", 0, owner).Store(&alive); err != nil {
		alive = c.conn.Connected()
	}
	if !alive {
		cancel(&ServiceGoneError{Reason: fmt.Sprintf("its connection %s left the bus", owner)})
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-wctx.Done():
				return
			case <-c.conn.Context().Done():
				cancel(&ServiceGoneError{Reason: "the connection to the session bus closed", BusClosed: true})
				return
			case sig, ok := <-ch:
				if !ok {
					cancel(&ServiceGoneError{Reason: "the connection to the session bus closed", BusClosed: true})
					return
				}
				if left(sig, owner) {
					cancel(&ServiceGoneError{Reason: fmt.Sprintf("its connection %s left the bus", owner)})
					return
				}
			}
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			close(done)
			cancel(context.Canceled)
			c.conn.RemoveSignal(ch)
			c.conn.RemoveMatchSignal(match...)
		})
	}
	return wctx, stop, nil
}

// left reports whether sig says the connection owner left the bus.
func left(sig *godbus.Signal, owner string) bool {
	if sig.Name != busDriver+"."+nameOwnerMatch || len(sig.Body) != 3 {
		return false
	}
	name, _ := sig.Body[0].(string)
	newOwner, _ := sig.Body[2].(string)
	return name == owner && newOwner == ""
}

// serviceOwner returns the unique name of the connection that owns
// BusName, starting the service when no one does.
func (c *Client) serviceOwner(ctx context.Context) (string, error) {
	bus := c.conn.BusObject()
	var owner string
	err := bus.CallWithContext(ctx, busDriver+".GetNameOwner", 0, BusName).Store(&owner)
	if err == nil {
		return owner, nil
	}
	var reply uint32
	if err := bus.CallWithContext(ctx, busDriver+".StartServiceByName", 0, BusName, uint32(0)).Store(&reply); err != nil {
		return "", err
	}
	if err := bus.CallWithContext(ctx, busDriver+".GetNameOwner", 0, BusName).Store(&owner); err != nil {
		return "", fmt.Errorf("find pelagosd on the bus: %w", err)
	}
	return owner, nil
}

// goneCause turns the error of a call made with ctx into the reason it
// failed when that is the watch's (or the caller's) cancellation: a
// service that went away, an interruption.
func goneCause(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		if cause := context.Cause(ctx); cause != nil {
			return cause
		}
		return err
	}
	if ctx.Value(watchKey{}) == nil || errorName(err) != errNoReply {
		return err
	}
	// The bus answers NoReply for the calls a connection had when it
	// left, right after saying so in NameOwnerChanged: give the watch a
	// moment to confirm. (NoReply also means a timeout, on a bus that
	// sets one: that stays the bus's error.)
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(2 * time.Second):
		return err
	}
}

// errorName is the D-Bus error name of err, "" when it has none.
func errorName(err error) string {
	var de godbus.Error
	if errors.As(err, &de) {
		return de.Name
	}
	var dep *godbus.Error
	if errors.As(err, &dep) {
		return dep.Name
	}
	return ""
}
