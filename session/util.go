package session

import (
	"errors"
	"strings"

	godbus "github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
)

// shellJoin renders argv for display, quoting what a shell would need.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`|&;<>()*?[]{}~#") {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}

// setProp sets a property and announces it. Once the bus connection is
// gone (the service is stopping) there is nobody to tell, which is no
// failure; anything else (a wrong type) is a bug and still panics.
func setProp(p *prop.Properties, iface, name string, v any) {
	defer func() {
		if r := recover(); r != nil {
			if err, ok := r.(error); !ok || !errors.Is(err, godbus.ErrClosed) {
				panic(r)
			}
		}
	}()
	p.SetMust(iface, name, v)
}
