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
	"github.com/pelagos-containers/pelagos/fdpass"
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
	rows, cols := e.windowSize()
	master, err := c.StartWithTerminal(e.ctx, path, pdbus.TerminalOptions{Rows: rows, Columns: cols})
	if err != nil {
		e.callErr(err)
		return exitCodeFor(err)
	}
	defer master.Close()
	if code, ok := e.attachTerminal(master, o.interactive && localTTY, o.interactive); !ok {
		return code
	}
	code, err := c.Wait(e.ctx, path)
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	return int(code)
}

// windowSize is the local terminal's size, 0 0 when stdin is none.
func (e *env) windowSize() (uint16, uint16) {
	if ws, err := unix.IoctlGetWinsize(int(e.stdin.Fd()), unix.TIOCGWINSZ); err == nil {
		return ws.Row, ws.Col
	}
	return 0, 0
}

// attachTerminal connects the local terminal to a pty master until the
// last slave closes: raw mode when asked (restored on every way out),
// window size changes passed on, keystrokes forwarded with input.
func (e *env) attachTerminal(master *os.File, raw, input bool) (int, bool) {
	inFd := int(e.stdin.Fd())
	if raw {
		old, err := term.MakeRaw(inFd)
		if err != nil {
			e.errorf("put the terminal in raw mode: %v", err)
			return exitFailure, false
		}
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
	if input {
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
	return exitOK, true
}

// execTerminal is `pelagos exec -t`: the command's terminal master
// arrives on a socket we pass, while the call waits for its exit code.
func (e *env) execTerminal(c *pdbus.Client, path godbus.ObjectPath, command []string, opts pdbus.ExecOptions, interactive bool) int {
	localTTY := term.IsTerminal(int(e.stdin.Fd()))
	if interactive && !localTTY {
		e.errorf("the input device is not a TTY: drop -t, or run pelagos from a terminal")
		return exitFailure
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		e.errorf("console socket: %v", err)
		return exitFailure
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "console"), os.NewFile(uintptr(fds[1]), "console-peer")
	defer ours.Close()
	rows, cols := e.windowSize()
	type result struct {
		code int32
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := c.ExecWithTerminal(e.ctx, path, command, theirs, pdbus.ExecTerminalOptions{ExecOptions: opts, Rows: rows, Columns: cols})
		done <- result{code, err}
	}()
	masterCh := make(chan *os.File, 1)
	go func() {
		m, _ := fdpass.Receive(ours, "pty-master")
		masterCh <- m
	}()
	select {
	case r := <-done: // failed before a terminal existed
		theirs.Close()
		if r.err != nil {
			e.callErr(r.err)
			return exitCodeFor(r.err)
		}
		return int(r.code)
	case master := <-masterCh:
		theirs.Close()
		if master == nil {
			r := <-done
			if r.err != nil {
				e.callErr(r.err)
				return exitCodeFor(r.err)
			}
			return int(r.code)
		}
		defer master.Close()
		e.attachTerminal(master, interactive && localTTY, interactive)
		r := <-done
		if r.err != nil {
			e.callErr(r.err)
			return exitCodeFor(r.err)
		}
		return int(r.code)
	}
}
