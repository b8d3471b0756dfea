package session

import (
	"os"

	"github.com/pelagos-containers/pelagos/container"
	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// parseLogDriver checks --log-driver; the default is stored as "".
func parseLogDriver(s string) (string, error) {
	switch s {
	case "", "k8s-file":
		return "", nil
	case "passthrough", "none":
		return s, nil
	}
	return "", pdbus.Errorf(pdbus.ErrInvalidArgument, "--log-driver %q: use k8s-file (the default), passthrough or none", s)
}

// logStdio makes the stdio of a detached run: stdin from /dev/null, and
// no stdout or stderr, which tells the monitor to keep the output in the
// container's log only (or nowhere, by --log-driver). release closes the
// service's copy once the monitor has its own.
func (c *ctr) logStdio() (stdio container.Stdio, release func(), err error) {
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return stdio, nil, err
	}
	return container.Stdio{Stdin: stdin}, func() { stdin.Close() }, nil
}
