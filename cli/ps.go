package cli

import (
	"fmt"
	"sort"
	"time"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

func psCmd(e *env, args []string) int {
	fs := e.flags("ps")
	all := fs.BoolP("all", "a", false, "show all containers, not only running ones")
	quiet := fs.BoolP("quiet", "q", false, "print only container IDs")
	noTrunc := fs.Bool("no-trunc", false, "do not truncate output")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		e.errorf("\"pelagos ps\" accepts no arguments")
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	rows, err := c.ListContainers(e.ctx, *all)
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Created > rows[j].Created })
	if *quiet {
		for _, r := range rows {
			fmt.Fprintln(e.stdout, shortID(r.ID, *noTrunc))
		}
		return exitOK
	}
	now := time.Now()
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
	for _, r := range rows {
		cmd := r.Command
		if !*noTrunc {
			cmd = truncate(cmd, 20)
		}
		created := time.UnixMicro(r.Created)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", shortID(r.ID, *noTrunc), r.Image, cmd,
			ago(created, now), e.status(c, r, now), "", r.Name)
	}
	tw.Flush()
	return exitOK
}

// status renders the STATUS column: "Up 5 seconds", "Exited (0) 3
// seconds ago", "Created".
func (e *env) status(c *pdbus.Client, r pdbus.ContainerSummary, now time.Time) string {
	switch r.State {
	case pdbus.StateCreated:
		return "Created"
	case pdbus.StateRunning, pdbus.StateExited:
		props, err := c.Properties(e.ctx, r.Path, pdbus.ContainerIface)
		if err != nil {
			return r.State
		}
		if r.State == pdbus.StateRunning {
			if v, ok := props["StartedAt"].Value().(uint64); ok && v > 0 {
				return "Up " + humanDuration(now.Sub(time.UnixMicro(int64(v))))
			}
			return "Up"
		}
		if v, ok := props["FinishedAt"].Value().(uint64); ok && v > 0 {
			return fmt.Sprintf("Exited (%d) %s", r.ExitCode, ago(time.UnixMicro(int64(v)), now))
		}
		return fmt.Sprintf("Exited (%d)", r.ExitCode)
	}
	return r.State
}

func rmCmd(e *env, args []string) int {
	fs := e.flags("rm")
	force := fs.BoolP("force", "f", false, "kill and remove running containers")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		e.errorf("\"pelagos rm\" requires at least 1 argument: pelagos rm [-f] CONTAINER [CONTAINER...]")
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	code := exitOK
	for _, name := range fs.Args() {
		if err := c.RemoveContainer(e.ctx, name, *force); err != nil {
			e.callErr(err)
			// podman: 1 no such container, 2 running without -f.
			if pdbus.CodeOf(err) == pdbus.ErrContainerRunning {
				code = 2
			} else if code == exitOK {
				code = 1
			}
			continue
		}
		fmt.Fprintln(e.stdout, name)
	}
	return code
}
