package cli

import (
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
	code, ok, detached := e.attachTerminal(master, o.interactive && localTTY, o.interactive, o.detachKeys)
	if !ok {
		return code
	}
	if detached {
		return exitOK // the container runs on: `pelagos attach` comes back
	}
	code32, err := c.Wait(e.ctx, path)
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	return int(code32)
}

// windowSize is the local terminal's size, 0 0 when stdin is none.
func (e *env) windowSize() (uint16, uint16) {
	if ws, err := unix.IoctlGetWinsize(int(e.stdin.Fd()), unix.TIOCGWINSZ); err == nil {
		return ws.Row, ws.Col
	}
	return 0, 0
}

// attachTerminal connects the local terminal to a pty master until the
// last slave closes or the user types the detach keys: raw mode when
// asked (restored on every way out), window size changes passed on,
// keystrokes forwarded with input.
func (e *env) attachTerminal(master *os.File, raw, input bool, detachKeys []byte) (code int, ok, detached bool) {
	inFd := int(e.stdin.Fd())
	if raw {
		old, err := term.MakeRaw(inFd)
		if err != nil {
			e.errorf("put the terminal in raw mode: %v", err)
			return exitFailure, false, false
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
		if err != nil && !errors.Is(err, unix.EIO) {
			fmt.Fprintf(e.stderr, "pelagos: terminal: %v\r\n", err)
		}
	}()
	select {
	case <-ended:
		return exitOK, true, false
	case <-detach:
		fmt.Fprint(e.stderr, "\r\n")
		return exitOK, true, true
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
	path, ok := e.lookupContainer(c, fs.Arg(0))
	if !ok {
		return exitFailure
	}
	rows, cols := e.windowSize()
	master, err := c.AttachTerminal(e.ctx, path, pdbus.TerminalOptions{Rows: rows, Columns: cols})
	if pdbus.CodeOf(err) == pdbus.ErrInvalidArgument {
		// No terminal: follow the output instead, until it stops.
		if code := logsCmd(e, []string{"-f", "--tail", "0", fs.Arg(0)}); code != exitOK {
			return code
		}
	} else if err != nil {
		e.callErr(err)
		return exitFailure
	} else {
		defer master.Close()
		tty := term.IsTerminal(int(e.stdin.Fd()))
		code, ok, detached := e.attachTerminal(master, tty && !*noStdin, !*noStdin, keys)
		if !ok {
			return code
		}
		if detached {
			return exitOK
		}
	}
	code, err := c.Wait(e.ctx, path)
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	return int(code)
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
		e.attachTerminal(master, interactive && localTTY, interactive, nil)
		r := <-done
		if r.err != nil {
			e.callErr(r.err)
			return exitCodeFor(r.err)
		}
		return int(r.code)
	}
}
