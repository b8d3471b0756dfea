package cli

import (
	"fmt"
	"os"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

func execCmd(e *env, args []string) int {
	fs := e.flags("exec")
	fs.SetInterspersed(false)
	interactive := fs.BoolP("interactive", "i", false, "keep stdin attached")
	tty := fs.BoolP("tty", "t", false, "allocate a pseudo-TTY")
	envs := fs.StringArrayP("env", "e", nil, "set an environment variable (KEY=VALUE, or KEY to pass yours)")
	envFiles := fs.StringArray("env-file", nil, "read environment variables from a file")
	workdir := fs.StringP("workdir", "w", "", "working directory inside the container")
	user := fs.StringP("user", "u", "", "user[:group] to run as")
	detach := fs.BoolP("detach", "d", false, "run the command in the background and return at once")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() < 2 {
		e.errorf("\"pelagos exec\" requires at least 2 arguments: pelagos exec [OPTIONS] CONTAINER COMMAND [ARG...]")
		return exitFailure
	}
	env, err := buildEnv(*envFiles, *envs, os.LookupEnv)
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
	opts := pdbus.ExecOptions{Env: env, WorkingDir: *workdir, User: *user, Detach: *detach}
	if *detach && (*tty || *interactive) {
		e.errorf("exec -d runs the command in the background, without a terminal or input: drop -t and -i")
		return exitFailure
	}
	if *tty {
		return e.execTerminal(c, path, fs.Arg(0), fs.Args()[1:], opts, *interactive)
	}
	stdin, stdout, stderr := e.stdin, e.stdout, e.stderr
	if *detach {
		devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			e.errorf("%v", err)
			return exitFailure
		}
		defer devnull.Close()
		stdin, stdout, stderr = devnull, devnull, devnull
	} else if !*interactive {
		devnull, err := os.Open(os.DevNull)
		if err != nil {
			e.errorf("%v", err)
			return exitFailure
		}
		defer devnull.Close()
		stdin = devnull
	}
	ctx, stop, ok := e.watch(c)
	if !ok {
		return exitFailure
	}
	defer stop()
	code, err := c.ExecWithStdio(ctx, path, fs.Args()[1:], stdin, stdout, stderr, opts)
	if err != nil {
		e.callErr(ifGone(err, fmt.Sprintf("while waiting for %s in container %s", fs.Arg(1), fs.Arg(0)), execLost(fs.Arg(0))))
		return exitCodeFor(err)
	}
	return int(code)
}
