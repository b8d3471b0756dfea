package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"

	godbus "github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// runTerminal is `pelagos run -t`: the container gets a pseudo-terminal,
// whose master the service hands back over the bus. This terminal goes
// into raw mode (with -i), keystrokes go to the master, the master's
// output to stdout, and window size changes follow the local terminal.
func (e *env) runTerminal(c *pdbus.Client, path godbus.ObjectPath, o runOptions) int {
	inFd := int(e.stdin.Fd())
	localTTY := term.IsTerminal(inFd)
	if o.interactive && !localTTY {
		e.errorf("the input device is not a TTY: drop -t, or run pelagos from a terminal")
		c.RemoveContainer(e.ctx, string(path[len(path)-64:]), true)
		return exitFailure
	}
	var size pdbus.TerminalOptions
	if localTTY {
		if ws, err := unix.IoctlGetWinsize(inFd, unix.TIOCGWINSZ); err == nil {
			size = pdbus.TerminalOptions{Rows: ws.Row, Columns: ws.Col}
		}
	}
	master, err := c.StartWithTerminal(e.ctx, path, size)
	if err != nil {
		e.callErr(err)
		return exitCodeFor(err)
	}
	defer master.Close()

	if o.interactive && localTTY {
		old, err := term.MakeRaw(inFd)
		if err != nil {
			e.errorf("put the terminal in raw mode: %v", err)
			return exitFailure
		}
		// Restored on every way out of this function.
		defer term.Restore(inFd, old)
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, unix.SIGWINCH)
	defer signal.Stop(winch)
	go func() {
		for range winch {
			if ws, err := unix.IoctlGetWinsize(inFd, unix.TIOCGWINSZ); err == nil {
				unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
			}
		}
	}()
	if o.interactive {
		// Ends with the process; a blocked terminal read cannot be
		// interrupted portably, and nothing waits for it.
		go io.Copy(master, e.stdin)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := io.Copy(e.stdout, master)
		// EIO is how a pty master reports that the last slave closed.
		if err != nil && !errors.Is(err, unix.EIO) {
			fmt.Fprintf(e.stderr, "pelagos: terminal: %v\r\n", err)
		}
	}()
	wg.Wait()
	code, err := c.Wait(e.ctx, path)
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	return int(code)
}
