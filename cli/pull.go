package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	godbus "github.com/godbus/dbus/v5"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// registryFlags are the flags pull, push and login share.
type registryFlags struct {
	tlsVerify *bool
	authFile  *string
	creds     *string
}

func addRegistryFlags(fs *pflag.FlagSet, withCreds bool) registryFlags {
	r := registryFlags{
		tlsVerify: fs.Bool("tls-verify", true, "require HTTPS and verify certificates"),
		authFile:  fs.String("authfile", "", "credentials file (default $XDG_RUNTIME_DIR/containers/auth.json)"),
	}
	if withCreds {
		r.creds = fs.String("creds", "", "USER[:PASSWORD] for the registry, instead of stored credentials")
	} else {
		r.creds = new(string)
	}
	return r
}

// options turns the flags into the bus options; paths become absolute,
// since the service does not share our working directory.
func (r registryFlags) options() (pdbus.RegistryOptions, error) {
	o := pdbus.RegistryOptions{TLSVerify: *r.tlsVerify, Creds: *r.creds}
	if *r.authFile != "" {
		abs, err := filepath.Abs(*r.authFile)
		if err != nil {
			return o, fmt.Errorf("--authfile: %w", err)
		}
		o.AuthFile = abs
	}
	return o, nil
}

// fileTransports name a path on this machine after their prefix.
var fileTransports = []string{"oci:", "oci-archive:", "docker-archive:", "dir:"}

// absTransportPath makes the path of a file transport reference
// absolute: "oci:img:tag" run in /home/a becomes "oci:/home/a/img:tag".
func absTransportPath(ref string) (string, error) {
	for _, t := range fileTransports {
		rest, ok := strings.CutPrefix(ref, t)
		if !ok {
			continue
		}
		if rest == "" {
			return "", fmt.Errorf("%q names no path after %s", ref, t)
		}
		if filepath.IsAbs(rest) {
			return ref, nil
		}
		cwd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("make %q absolute: %w", ref, err)
		}
		return t + filepath.Join(cwd, rest), nil
	}
	return ref, nil
}

func pullCmd(e *env, args []string) int {
	fs := e.flags("pull")
	reg := addRegistryFlags(fs, true)
	platform := fs.String("platform", "", "OS/ARCH[/VARIANT] to pull from a multi-platform image, e.g. linux/arm64")
	arch := fs.String("arch", "", "architecture to pull instead of the host's (like --platform linux/ARCH)")
	osName := fs.String("os", "", "operating system to pull instead of linux")
	variant := fs.String("variant", "", "architecture variant, e.g. v7")
	quiet := fs.BoolP("quiet", "q", false, "print only the image ID")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		e.errorf("\"pelagos pull\" requires exactly 1 argument: pelagos pull [--tls-verify=false] NAME[:TAG|@DIGEST]")
		return exitFailure
	}
	plat, err := platformFlag(*platform, *osName, *arch, *variant)
	if err != nil {
		e.errorf("%v", err)
		return exitFailure
	}
	ro, err := reg.options()
	if err != nil {
		e.errorf("%v", err)
		return exitFailure
	}
	ref, err := absTransportPath(fs.Arg(0))
	if err != nil {
		e.errorf("%v", err)
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	path, err := e.pull(c, ref, pdbus.PullOptions{RegistryOptions: ro, Platform: plat}, *quiet)
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	fmt.Fprintln(e.stdout, pathID(path))
	return exitOK
}

// platformFlag folds --os/--arch/--variant into --platform's form.
func platformFlag(platform, osName, arch, variant string) (string, error) {
	if platform != "" {
		if osName != "" || arch != "" || variant != "" {
			return "", fmt.Errorf("--platform cannot be combined with --os, --arch or --variant")
		}
		return platform, nil
	}
	if osName == "" && arch == "" && variant == "" {
		return "", nil
	}
	if osName == "" {
		osName = "linux"
	}
	if arch == "" {
		return "", fmt.Errorf("--os and --variant need --arch too")
	}
	p := osName + "/" + arch
	if variant != "" {
		p += "/" + variant
	}
	return p, nil
}

func pushCmd(e *env, args []string) int {
	fs := e.flags("push")
	reg := addRegistryFlags(fs, true)
	format := fs.StringP("format", "f", "", "manifest format to write: oci or v2s2 (default: keep the image's)")
	quiet := fs.BoolP("quiet", "q", false, "print nothing while pushing")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		e.errorf("\"pelagos push\" requires 1 or 2 arguments: pelagos push [--tls-verify=false] IMAGE [DESTINATION]")
		return exitFailure
	}
	if *format != "" && *format != "oci" && *format != "v2s2" {
		e.errorf("--format %q: use oci or v2s2", *format)
		return exitFailure
	}
	ro, err := reg.options()
	if err != nil {
		e.errorf("%v", err)
		return exitFailure
	}
	dest := fs.Arg(1)
	if dest, err = absTransportPath(dest); err != nil {
		e.errorf("%v", err)
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	ctx, release := e.cancelOnSignal()
	defer release()
	view := newProgressView(e.stderr, *quiet)
	_, err = c.Push(ctx, fs.Arg(0), dest, pdbus.PushOptions{RegistryOptions: ro, Format: *format}, view.update)
	if err != nil {
		e.callErr(ifGone(err, "during the push of "+fs.Arg(0), "the push was interrupted: run it again"))
		return exitFailure
	}
	return exitOK
}

func loginCmd(e *env, args []string) int {
	fs := e.flags("login")
	reg := addRegistryFlags(fs, false)
	user := fs.StringP("username", "u", "", "user name (asked for on a terminal when not given)")
	password := fs.StringP("password", "p", "", "password (prefer --password-stdin: this one shows in ps)")
	passwordStdin := fs.Bool("password-stdin", false, "read the password from stdin")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		e.errorf("\"pelagos login\" requires exactly 1 argument: pelagos login [-u USER] [--password-stdin] REGISTRY")
		return exitFailure
	}
	if *passwordStdin && *password != "" {
		e.errorf("--password and --password-stdin cannot be used together")
		return exitFailure
	}
	ro, err := reg.options()
	if err != nil {
		e.errorf("%v", err)
		return exitFailure
	}
	registry := fs.Arg(0)
	tty := term.IsTerminal(int(e.stdin.Fd()))
	in := bufio.NewReader(e.stdin)
	if *user == "" {
		if !tty || *passwordStdin {
			e.errorf("no user name: give --username (stdin is not a terminal to ask on)")
			return exitFailure
		}
		fmt.Fprint(e.stderr, "Username: ")
		line, err := in.ReadString('\n')
		if err != nil && line == "" {
			e.errorf("read user name: %v", err)
			return exitFailure
		}
		*user = strings.TrimSpace(line)
	}
	switch {
	case *passwordStdin:
		b, err := io.ReadAll(io.LimitReader(e.stdin, 1<<16))
		if err != nil {
			e.errorf("read password from stdin: %v", err)
			return exitFailure
		}
		*password = strings.TrimRight(string(b), "\r\n")
	case *password == "" && tty:
		fmt.Fprint(e.stderr, "Password: ")
		b, err := term.ReadPassword(int(e.stdin.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			e.errorf("read password: %v", err)
			return exitFailure
		}
		*password = string(b)
	case *password == "":
		e.errorf("no password: give --password-stdin and pipe it in")
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	if _, err := c.Login(e.ctx, registry, *user, *password, pdbus.LoginOptions{TLSVerify: ro.TLSVerify, AuthFile: ro.AuthFile}); err != nil {
		e.callErr(err)
		return exitFailure
	}
	fmt.Fprintln(e.stdout, "Login Succeeded!")
	return exitOK
}

func logoutCmd(e *env, args []string) int {
	fs := e.flags("logout")
	authFile := fs.String("authfile", "", "credentials file (default $XDG_RUNTIME_DIR/containers/auth.json)")
	all := fs.BoolP("all", "a", false, "remove the credentials of every registry")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if *all != (fs.NArg() == 0) || fs.NArg() > 1 {
		e.errorf("\"pelagos logout\" requires exactly 1 argument or --all: pelagos logout [--all | REGISTRY]")
		return exitFailure
	}
	o := pdbus.LoginOptions{All: *all}
	if *authFile != "" {
		abs, err := filepath.Abs(*authFile)
		if err != nil {
			e.errorf("--authfile: %v", err)
			return exitFailure
		}
		o.AuthFile = abs
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	if err := c.Logout(e.ctx, fs.Arg(0), o); err != nil {
		e.callErr(err)
		return exitFailure
	}
	if *all {
		fmt.Fprintln(e.stdout, "Removed login credentials for all registries")
	} else {
		fmt.Fprintf(e.stdout, "Removed login credentials for %s\n", fs.Arg(0))
	}
	return exitOK
}

// pull follows a pull job, drawing its progress on stderr. Ctrl-C
// cancels the job; a second one ends the CLI (see interrupts).
func (e *env) pull(c *pdbus.Client, ref string, opts pdbus.PullOptions, quiet bool) (godbus.ObjectPath, error) {
	ctx, release := e.cancelOnSignal()
	defer release()
	view := newProgressView(e.stderr, quiet)
	path, err := c.Pull(ctx, ref, opts, view.update)
	return path, ifGone(err, "during the pull of "+ref, fmt.Sprintf("the pull was interrupted: run `pelagos pull %s` again", ref))
}

// cancelOnSignal gives a job the first SIGINT or SIGTERM: it cancels the
// returned context, so the job is cancelled and the command says so; a
// second signal ends the CLI.
func (e *env) cancelOnSignal() (context.Context, func()) {
	ctx, cancel := context.WithCancel(e.ctx)
	release := e.signals.take(func(os.Signal) { cancel() })
	return ctx, func() {
		release()
		cancel()
	}
}

// progressView draws a job's progress: on a terminal, a bar per layer
// that rewrites itself below the job's messages; otherwise the messages
// as plain lines.
type progressView struct {
	w       io.Writer
	tty     bool
	quiet   bool
	lastMsg string
	drawn   int // bar lines on screen below the messages
}

func newProgressView(w *os.File, quiet bool) *progressView {
	return &progressView{w: w, tty: term.IsTerminal(int(w.Fd())), quiet: quiet}
}

func (v *progressView) update(p pdbus.JobProgress) {
	if v.quiet {
		return
	}
	newMsg := p.Message != "" && p.Message != v.lastMsg
	if newMsg {
		v.lastMsg = p.Message
	}
	if !v.tty {
		if newMsg {
			fmt.Fprintln(v.w, p.Message)
		}
		return
	}
	var b strings.Builder
	b.WriteString(strings.Repeat("\x1b[1A\x1b[2K", v.drawn))
	// The bars say which blob is copied; other steps are lines of their own.
	if newMsg && !strings.HasPrefix(p.Message, "Copying blob ") {
		b.WriteString(p.Message + "\n")
	}
	for _, l := range p.Layers {
		state := fmt.Sprintf("%s %s / %s", bar(frac(l.Done, l.Size), 30), humanSize(int64(l.Done)), humanSize(int64(l.Size)))
		if l.Size > 0 && l.Done >= l.Size {
			state = "done " + humanSize(int64(l.Size))
		}
		fmt.Fprintf(&b, "Copying blob %s %s\n", shortHex(l.Digest), state)
	}
	v.drawn = len(p.Layers)
	io.WriteString(v.w, b.String())
}

func frac(done, size uint64) float64 {
	if size == 0 {
		return 0
	}
	return float64(done) / float64(size)
}

func shortHex(d string) string {
	_, h, ok := strings.Cut(d, ":")
	if !ok {
		h = d
	}
	return h[:min(12, len(h))]
}

func bar(f float64, width int) string {
	n := int(f*float64(width) + 0.5)
	n = max(0, min(width, n))
	return "[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "]"
}

// pullForRun is the implicit pull of `pelagos run`, with the seed's words.
func (e *env) pullForRun(c *pdbus.Client, image string) error {
	fmt.Fprintf(e.stderr, "Unable to find image '%s' locally\n", image)
	_, err := e.pull(c, image, pdbus.PullOptions{RegistryOptions: pdbus.RegistryOptions{TLSVerify: true}}, false)
	return err
}
