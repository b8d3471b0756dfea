package privhelper

import (
	"context"
	"fmt"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/pelagos-containers/pelagos/privhelper/api"
)

// polkit's CheckAuthorization flag asking it to run an authentication agent.
const polkitAllowUserInteraction = 1

// polkitSubject is polkit's (sa{sv}) subject.
type polkitSubject struct {
	Kind    string
	Details map[string]dbus.Variant
}

// authorize asks polkit whether the bus peer sender may perform action. The
// subject is the caller's unique bus name, which polkit resolves to a
// process and user through the bus itself, so a caller cannot claim to be
// anyone else. Interaction (a password prompt) is requested only when the
// caller allowed it on its message.
func authorize(ctx context.Context, conn *dbus.Conn, sender, action string, interactive bool) error {
	timeout := 25 * time.Second
	var flags uint32
	if interactive {
		flags = polkitAllowUserInteraction
		timeout = 5 * time.Minute // a human may be typing a password
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	subject := polkitSubject{Kind: "system-bus-name", Details: map[string]dbus.Variant{"name": dbus.MakeVariant(sender)}}
	obj := conn.Object("org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority")
	// The reply is one (bba{ss}) struct: authorized, challenge, details.
	var result struct {
		Authorized, Challenge bool
		Details               map[string]string
	}
	err := obj.CallWithContext(ctx, "org.freedesktop.PolicyKit1.Authority.CheckAuthorization", 0,
		subject, action, map[string]string{}, flags, "").Store(&result)
	if err != nil {
		return fmt.Errorf("check polkit authorization for %s: %w", action, err)
	}
	if !result.Authorized {
		return newError(api.ErrorNotAuthorized,
			"not authorised for %s: ask an administrator to add you to group pelagos (see %s)", action, api.RulesExample)
	}
	return nil
}

// callerUID asks the bus which user owns the connection sender.
func callerUID(ctx context.Context, conn *dbus.Conn, sender string) (uint32, error) {
	var uid uint32
	err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetConnectionUnixUser", 0, sender).Store(&uid)
	if err != nil {
		return 0, fmt.Errorf("caller %s: unix user: %w", sender, err)
	}
	return uid, nil
}
