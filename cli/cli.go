// Package cli is the pelagos command line: it parses Docker/podman style
// flags, calls pelagosd over the session bus and renders the answers.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	godbus "github.com/godbus/dbus/v5"
	"github.com/spf13/pflag"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// Version is the CLI's version.
const Version = "0.1.0"

// Exit codes for failures of pelagos itself, as Docker uses them.
const (
	exitOK      = 0
	exitFailure = 125
)

// env is what a command needs from the process: its files and a way to
// reach the service.
type env struct {
	ctx            context.Context
	stdin          *os.File
	stdout, stderr *os.File
	connect        func(context.Context) (*pdbus.Client, error)
	// signals is the handling of SIGINT and SIGTERM, nil in tests.
	signals *interrupts
}

type command struct {
	name    string
	summary string
	usage   string
	run     func(e *env, args []string) int
}

func commands() []command {
	return []command{
		{"run", "Run a command in a new container", "pelagos run [OPTIONS] IMAGE [COMMAND [ARG...]]", runCmd},
		{"exec", "Run a command in a running container", "pelagos exec [-i] [-e KEY=VALUE] [-w DIR] [-u USER] CONTAINER COMMAND [ARG...]", execCmd},
		{"ps", "List containers", "pelagos ps [-a] [-q] [--no-trunc]", psCmd},
		{"rm", "Remove one or more containers", "pelagos rm [-f] CONTAINER [CONTAINER...] | --all", rmCmd},
		{"rename", "Rename a container", "pelagos rename CONTAINER NEW_NAME", renameCmd},
		{"start", "Start one or more containers", "pelagos start [-a [-i]] CONTAINER [CONTAINER...]", startCmd},
		{"stop", "Stop one or more running containers", "pelagos stop [-t SECONDS] CONTAINER [CONTAINER...]", stopCmd},
		{"restart", "Restart one or more containers", "pelagos restart [-t SECONDS] CONTAINER [CONTAINER...]", restartCmd},
		{"kill", "Send a signal to one or more running containers", "pelagos kill [-s SIGNAL] CONTAINER [CONTAINER...]", killCmd},
		{"wait", "Wait for containers to stop and print their exit codes", "pelagos wait CONTAINER [CONTAINER...]", waitCmd},
		{"healthcheck", "Run a container's health check now", "pelagos healthcheck run CONTAINER", healthcheckCmd},
		{"attach", "Attach to a running container's terminal or output", "pelagos attach [--detach-keys KEYS] CONTAINER", attachCmd},
		{"pause", "Freeze every process of running containers", "pelagos pause CONTAINER [CONTAINER...]", pauseCmd},
		{"unpause", "Thaw paused containers", "pelagos unpause CONTAINER [CONTAINER...]", unpauseCmd},
		{"top", "Show the processes of a running container", "pelagos top CONTAINER", topCmd},
		{"port", "List a container's published ports", "pelagos port CONTAINER [PRIVATE_PORT[/PROTO]]", portCmd},
		{"logs", "Print the output of a container started in the background", "pelagos logs [-f] [--tail N] CONTAINER", logsCmd},
		{"inspect", "Show a container's configuration and state as JSON", "pelagos inspect CONTAINER [CONTAINER...]", inspectCmd},
		{"images", "List images", "pelagos images [-q] [--no-trunc]", imagesCmd},
		{"pull", "Pull an image from a registry", "pelagos pull [--tls-verify=false] [--platform OS/ARCH] [--creds USER:PASS] NAME[:TAG|@DIGEST]|TRANSPORT:REF", pullCmd},
		{"push", "Push an image to a registry or another transport", "pelagos push [--tls-verify=false] [--creds USER:PASS] IMAGE [DESTINATION]", pushCmd},
		{"login", "Log in to a registry", "pelagos login [-u USER] [--password-stdin] REGISTRY", loginCmd},
		{"logout", "Log out of a registry", "pelagos logout [--all | REGISTRY]", logoutCmd},
		{"history", "Show how an image was built", "pelagos history [--no-trunc] [-q] [--format ...] IMAGE", historyCmd},
		{"load", "Load images from an OCI or docker archive", "pelagos load [-i ARCHIVE]", loadCmd},
		{"import", "Create an image from a root filesystem tarball", "pelagos import [--change CMD=...] [-m MSG] FILE|- [NAME]", importCmd},
		{"save", "Write an image to an archive", "pelagos save [-o FILE] [--format oci-archive|docker-archive] IMAGE [IMAGE...]", saveCmd},
		{"tag", "Add names to an image", "pelagos tag IMAGE NAME [NAME...]", tagCmd},
		{"untag", "Remove names from an image", "pelagos untag IMAGE [NAME...]", untagCmd},
		{"rmi", "Remove one or more images", "pelagos rmi [-f] IMAGE [IMAGE...]", rmiCmd},
		{"events", "Print container, image and job events as they happen", "pelagos events [--filter KEY=VALUE] [--format json]", eventsCmd},
		{"volume", "Manage named volumes", "pelagos volume create|ls|inspect|rm|prune", volumeCmd},
		{"network", "Manage bridge networks (root networking)", "pelagos network create|ls|inspect|rm|prune|connect|disconnect", networkCmd},
		{"info", "Show how pelagos runs on this machine", "pelagos info", infoCmd},
		{"version", "Show the pelagos version", "pelagos version", versionCmd},
	}
}

// Main runs the CLI with os.Args[1:] and returns the exit code: the
// command's, or 128+N when signal N (SIGINT, SIGTERM) ended it.
func Main(args []string) int {
	signals, ctx := newInterrupts(context.Background())
	defer signals.stop()
	e := &env{
		ctx: ctx, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		connect: pdbus.Connect, signals: signals,
	}
	return signals.code(e.main(args))
}

func (e *env) main(args []string) int {
	if len(args) >= 2 && args[0] == "help" {
		return e.main([]string{args[1], "--help"}) // `pelagos help run`
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		e.usage(e.stdout)
		if len(args) == 0 {
			return exitFailure
		}
		return exitOK
	}
	if args[0] == "-v" || args[0] == "--version" {
		return versionCmd(e, nil)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(e, args[1:])
		}
	}
	switch args[0] {
	case "container-prune":
		return containerPruneCmd(e, args[1:])
	case "image-prune":
		return imagePruneCmd(e, args[1:])
	case "image-inspect":
		return imageInspectCmd(e, args[1:])
	}
	// `pelagos container ls` and `pelagos image ls` style aliases.
	if alias := aliasFor(args); alias != nil {
		return e.main(alias)
	}
	fmt.Fprintf(e.stderr, "Error: unknown command %q for \"pelagos\"\nRun 'pelagos --help' for the list of commands.\n", args[0])
	return exitFailure
}

func aliasFor(args []string) []string {
	if len(args) < 2 {
		return nil
	}
	m := map[string]string{
		"container ls": "ps", "container list": "ps", "container ps": "ps", "container rm": "rm", "container run": "run",
		"container start": "start", "container stop": "stop", "container restart": "restart", "container kill": "kill",
		"container wait": "wait", "container rename": "rename", "container prune": "container-prune", "image prune": "image-prune", "image inspect": "image-inspect", "image tag": "tag", "image save": "save", "image untag": "untag", "container logs": "logs", "container port": "port", "container top": "top", "container attach": "attach", "container pause": "pause", "container unpause": "unpause", "container inspect": "inspect", "container exec": "exec",
		"image ls": "images", "image push": "push", "image history": "history", "image list": "images", "image pull": "pull", "image rm": "rmi", "image load": "load", "image import": "import",
	}
	if to, ok := m[args[0]+" "+args[1]]; ok {
		return append([]string{to}, args[2:]...)
	}
	return nil
}

func (e *env) usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: pelagos COMMAND [OPTIONS]")
	fmt.Fprintln(w, "\nA rootless container runtime for the Linux desktop.")
	fmt.Fprintln(w, "\nCommands:")
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'pelagos COMMAND --help' for more information on a command.")
}

// flags makes a flag set that prints a command's usage on --help.
func (e *env) flags(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	return fs
}

// parse parses args and reports problems the way Docker does: one line,
// exit 125. ok is false when the caller should return code.
func (e *env) parse(fs *pflag.FlagSet, args []string) (code int, ok bool) {
	err := fs.Parse(args)
	if errors.Is(err, pflag.ErrHelp) {
		for _, c := range commands() {
			if c.name == fs.Name() {
				fmt.Fprintf(e.stdout, "%s\n\n%s\n\nOptions:\n", c.summary, "Usage: "+c.usage)
			}
		}
		fs.SetOutput(e.stdout)
		fs.PrintDefaults()
		return exitOK, false
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\nSee 'pelagos %s --help'.\n", err, fs.Name())
		return exitFailure, false
	}
	return 0, true
}

// client connects to the service, printing the failure.
func (e *env) client() (*pdbus.Client, bool) {
	c, err := e.connect(e.ctx)
	if err != nil {
		e.errorf("%v", err)
		return nil, false
	}
	return c, true
}

func (e *env) errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(e.stderr, "Error: %s\n", strings.TrimSpace(msg))
}

// callErr prints an error from a call to the service. A service that
// cannot be found or started gets a hint about installation.
func (e *env) callErr(err error) {
	if isInterrupted(err) {
		return // the signal's exit code says it
	}
	var ge *goneError
	if errors.As(err, &ge) {
		e.errorf("%s", goneMessage(ge.err, ge.during, ge.next))
		return
	}
	if errors.Is(err, pdbus.ErrServiceGone) {
		e.errorf("%s", goneMessage(err, "before it answered", "run the command again"))
		return
	}
	if pdbus.IsServiceUnknown(err) {
		e.errorf("cannot reach pelagosd on the session bus (%v): is pelagos installed (the D-Bus service file io.pelagos.Pelagos1.service in /usr/share/dbus-1/services)? See `journalctl --user -u pelagosd` for why it failed to start", err)
		return
	}
	e.errorf("%v", err)
}

// goneError is the error of a call or wait the service did not finish
// because it went away, with what that interrupted and what to do now.
type goneError struct {
	err    error  // matches pdbus.ErrServiceGone
	during string // "while waiting for container web"
	next   string // "the container keeps running: ..."
}

func (g *goneError) Error() string { return g.err.Error() }
func (g *goneError) Unwrap() error { return g.err }

// ifGone gives err the context of goneError when the service went away;
// other errors are returned as they are.
func ifGone(err error, during, next string) error {
	if errors.Is(err, pdbus.ErrServiceGone) {
		return &goneError{err: err, during: during, next: next}
	}
	return err
}

// keepsRunning is what to do about a container whose wait the service
// left unfinished.
func keepsRunning(name string) string {
	return fmt.Sprintf("the container keeps running: `pelagos logs -f %s` or `pelagos wait %s`", name, name)
}

// goneMessage is the one line that says the service went away.
func goneMessage(err error, during, next string) string {
	var ge *pdbus.ServiceGoneError
	if errors.As(err, &ge) && ge.BusClosed {
		return fmt.Sprintf("the session bus connection closed %s (did the session end?); %s", during, next)
	}
	return fmt.Sprintf("pelagosd went away %s (it was restarted or crashed); %s", during, next)
}

// watch runs the long call that follows under a watch of the service
// (pdbus.Client.Watch), printing why it could not; stop ends it.
func (e *env) watch(c *pdbus.Client) (ctx context.Context, stop func(), ok bool) {
	ctx, stop, err := c.Watch(e.ctx)
	if err != nil {
		e.callErr(err)
		return nil, nil, false
	}
	return ctx, stop, true
}

// lookupContainer finds a container by name or id, printing the failure.
func (e *env) lookupContainer(c *pdbus.Client, name string) (godbus.ObjectPath, bool) {
	path, err := c.GetContainer(e.ctx, name)
	if err != nil {
		e.callErr(err)
		return "", false
	}
	return path, true
}
