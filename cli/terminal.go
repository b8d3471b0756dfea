package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

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
func (e *env) runTerminal(c *pdbus.Client, path godbus.ObjectPath, ref string, o runOptions) int {
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
	detached, err := e.attachTerminal(c, master, o.interactive && localTTY, o.interactive, o.detachKeys)
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	if detached {
		return exitOK // the container runs on: `pelagos attach` comes back
	}
	return e.waitEnded(c, path, ref)
}

// waitEnded returns the exit code of a container whose terminal or
// output just ended. The service that started it may be gone by then:
// whichever answers knows the exit code.
func (e *env) waitEnded(c *pdbus.Client, path godbus.ObjectPath, ref string) int {
	ctx, stop, ok := e.watch(c)
	if !ok {
		return exitFailure
	}
	defer stop()
	code, err := c.Wait(ctx, path)
	if err != nil {
		e.callErr(ifGone(err, "while waiting for container "+ref, fmt.Sprintf("`pelagos wait %s` tells how it ended", ref)))
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
// last slave closes, the user types the detach keys (detached) or a
// signal ends the command (its cause is the error): raw mode when asked
// (restored on every way out), window size changes passed on, keystrokes
// forwarded with input.
//
// The session does not need the service, and this master may be the
// last one (the service's copy goes with it): when the service goes
// away, the session goes on — closing the master would hang up the
// container's terminal — and the user is told once.
func (e *env) attachTerminal(c *pdbus.Client, master *os.File, raw, input bool, detachKeys []byte) (detached bool, err error) {
	var gone <-chan struct{} // stays nil when the watch cannot be set up: no notice then
	served, stop, werr := c.Watch(e.ctx)
	if werr == nil {
		defer stop()
		gone = served.Done()
	}
	inFd := int(e.stdin.Fd())
	if raw {
		old, err := term.MakeRaw(inFd)
		if err != nil {
			return false, fmt.Errorf("put the terminal in raw mode: %w", err)
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
	detach := make(chan struct{})
	if input {
		// Ends with the process; a blocked terminal read cannot be
		// interrupted portably, and nothing waits for it.
		go func() {
			if copyUntilKeys(master, e.stdin, detachKeys) {
				close(detach)
			}
		}()
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		_, err := io.Copy(e.stdout, master)
		// EIO is how a pty master reports that the last slave closed.
		if err != nil && !errors.Is(err, unix.EIO) && !errors.Is(err, os.ErrClosed) {
			fmt.Fprintf(e.stderr, "pelagos: terminal: %v\r\n", err)
		}
	}()
	for {
		select {
		case <-ended:
			return false, nil
		case <-detach:
			fmt.Fprint(e.stderr, "\r\n")
			return true, nil
		case <-e.ctx.Done():
			fmt.Fprint(e.stderr, "\r\n")
			return false, context.Cause(e.ctx)
		case <-gone:
			gone = nil
			if e.ctx.Err() == nil {
				// The container's monitor keeps the terminal: a later
				// service hands it to `pelagos attach` again.
				next := "the terminal goes on until its command ends"
				fmt.Fprintf(e.stderr, "\r\npelagos: %s\r\n", goneMessage(context.Cause(served), "during this terminal session", next))
			}
		}
	}
}

// copyUntilKeys copies keystrokes to the terminal until src ends or the
// detach sequence is typed (then true). Bytes that might begin the
// sequence are held back until it is clear they do not.
func copyUntilKeys(dst io.Writer, src io.Reader, keys []byte) bool {
	buf := make([]byte, 4096)
	matched := 0
	for {
		n, err := src.Read(buf)
		out := make([]byte, 0, n+len(keys))
		for _, b := range buf[:n] {
			if len(keys) > 0 && b == keys[matched] {
				matched++
				if matched == len(keys) {
					dst.Write(out)
					return true
				}
				continue
			}
			out = append(out, keys[:matched]...)
			matched = 0
			if len(keys) > 0 && b == keys[0] {
				matched = 1
				continue
			}
			out = append(out, b)
		}
		if len(out) > 0 {
			if _, werr := dst.Write(out); werr != nil {
				return false
			}
		}
		if err != nil {
			return false
		}
	}
}

// parseDetachKeys reads --detach-keys: comma-separated "ctrl-X" or
// single characters; "" turns detaching off.
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	var keys []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 1:
			keys = append(keys, k[0])
		case len(k) == 6 && strings.HasPrefix(k, "ctrl-"):
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				keys = append(keys, c-'a'+1)
			case c == '@':
				keys = append(keys, 0)
			case c >= '[' && c <= '_':
				keys = append(keys, c-'['+27)
			default:
				return nil, fmt.Errorf("--detach-keys %q: unknown key %q (use ctrl-a..ctrl-z, ctrl-@, ctrl-[, ctrl-\\, ctrl-], ctrl-^, ctrl-_ or single characters)", s, k)
			}
		default:
			return nil, fmt.Errorf("--detach-keys %q: unknown key %q (use e.g. ctrl-p,ctrl-q)", s, k)
		}
	}
	return keys, nil
}

func attachCmd(e *env, args []string) int {
	fs := e.flags("attach")
	keysFlag := fs.String("detach-keys", "ctrl-p,ctrl-q", "keys that detach and leave the container running")
	noStdin := fs.Bool("no-stdin", false, "do not pass keystrokes")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		e.errorf("\"pelagos attach\" requires exactly 1 argument: pelagos attach [--detach-keys KEYS] CONTAINER")
		return exitFailure
	}
	keys, err := parseDetachKeys(*keysFlag)
	if err != nil {
		e.errorf("%v", err)
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	ref := fs.Arg(0)
	path, ok := e.lookupContainer(c, ref)
	if !ok {
		return exitFailure
	}
	rows, cols := e.windowSize()
	master, err := c.AttachTerminal(e.ctx, path, pdbus.TerminalOptions{Rows: rows, Columns: cols})
	if pdbus.CodeOf(err) == pdbus.ErrInvalidArgument {
		// No terminal: follow the output instead, until it stops.
		if code := logsCmd(e, []string{"-f", "--tail", "0", ref}); code != exitOK {
			return code
		}
	} else if err != nil {
		e.callErr(err)
		return exitFailure
	} else {
		defer master.Close()
		tty := term.IsTerminal(int(e.stdin.Fd()))
		detached, err := e.attachTerminal(c, master, tty && !*noStdin, !*noStdin, keys)
		if err != nil {
			e.callErr(err)
			return exitFailure
		}
		if detached {
			return exitOK
		}
	}
	return e.waitEnded(c, path, ref)
}

// execTerminal is `pelagos exec -t`: the command's terminal master
// arrives on a socket we pass, while the call waits for its exit code.
func (e *env) execTerminal(c *pdbus.Client, path godbus.ObjectPath, ref string, command []string, opts pdbus.ExecOptions, interactive bool) int {
	localTTY := term.IsTerminal(int(e.stdin.Fd()))
	if interactive && !localTTY {
		e.errorf("the input device is not a TTY: drop -t, or run pelagos from a terminal")
		return exitFailure
	}
	ctx, stop, ok := e.watch(c)
	if !ok {
		return exitFailure
	}
	defer stop()
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
		code, err := c.ExecWithTerminal(ctx, path, command, theirs, pdbus.ExecTerminalOptions{ExecOptions: opts, Rows: rows, Columns: cols})
		done <- result{code, err}
	}()
	masterCh := make(chan *os.File, 1)
	go func() {
		m, _ := fdpass.Receive(ours, "pty-master")
		masterCh <- m
	}()
	var r result
	sessionEnded := false
	select {
	case r = <-done: // failed before a terminal existed
		theirs.Close()
	case master := <-masterCh:
		theirs.Close()
		if master != nil {
			defer master.Close()
			if _, err := e.attachTerminal(c, master, interactive && localTTY, interactive, nil); err != nil {
				r.err = err
				break
			}
			sessionEnded = true
		}
		r = <-done
	}
	if r.err != nil {
		next := execLost(ref)
		if sessionEnded {
			next = "its terminal closed, but its exit code is lost"
		}
		e.callErr(ifGone(r.err, fmt.Sprintf("while waiting for %s in container %s", command[0], ref), next))
		return exitCodeFor(r.err)
	}
	return int(r.code)
}

// execLost is what to do about an exec whose end the CLI cannot learn.
func execLost(ref string) string {
	return fmt.Sprintf("its exit code is lost, and it may still be running: `pelagos top %s` shows it", ref)
}
