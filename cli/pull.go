package cli

import (
	"fmt"
	"os"
	"os/signal"
	"strings"

	godbus "github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

func pullCmd(e *env, args []string) int {
	fs := e.flags("pull")
	tlsVerify := fs.Bool("tls-verify", true, "require HTTPS and verify certificates")
	quiet := fs.BoolP("quiet", "q", false, "print only the image ID")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		e.errorf("\"pelagos pull\" requires exactly 1 argument: pelagos pull [--tls-verify=false] NAME[:TAG|@DIGEST]")
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	path, err := e.pull(c, fs.Arg(0), *tlsVerify, *quiet)
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	fmt.Fprintln(e.stdout, pathID(path))
	return exitOK
}

// pull follows a pull job, drawing its progress on stderr: a bar that
// rewrites itself on a terminal, plain lines otherwise. Ctrl-C cancels
// the job.
func (e *env) pull(c *pdbus.Client, ref string, tlsVerify, quiet bool) (godbus.ObjectPath, error) {
	ctx, stop := signal.NotifyContext(e.ctx, os.Interrupt, unix.SIGTERM)
	defer stop()
	tty := term.IsTerminal(int(e.stderr.Fd()))
	lastMsg, drawn := "", false
	progress := func(p pdbus.JobProgress) {
		if quiet {
			return
		}
		if p.Message != "" && p.Message != lastMsg {
			if drawn {
				fmt.Fprintln(e.stderr)
				drawn = false
			}
			fmt.Fprintln(e.stderr, p.Message)
			lastMsg = p.Message
		}
		if tty && p.BytesTotal > 0 {
			fmt.Fprintf(e.stderr, "\r%s %s / %s", bar(p.Progress, 30), humanSize(int64(p.BytesDone)), humanSize(int64(p.BytesTotal)))
			drawn = true
		}
	}
	path, err := c.Pull(ctx, ref, pdbus.PullOptions{TLSVerify: tlsVerify}, progress)
	if drawn {
		fmt.Fprintln(e.stderr)
	}
	return path, err
}

func bar(f float64, width int) string {
	n := int(f*float64(width) + 0.5)
	n = max(0, min(width, n))
	return "[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "]"
}

// pullForRun is the implicit pull of `pelagos run`, with the seed's words.
func (e *env) pullForRun(c *pdbus.Client, image string) error {
	fmt.Fprintf(e.stderr, "Unable to find image '%s' locally\n", image)
	_, err := e.pull(c, image, true, false)
	return err
}
