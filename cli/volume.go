package cli

import (
	"fmt"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// volumeCmd is `pelagos volume create|ls|inspect|rm|prune`.
func volumeCmd(e *env, args []string) int {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprintln(e.stdout, "Manage named volumes\n\nUsage: pelagos volume create|ls|inspect|rm|prune\n\n  create NAME | ls [-q] | inspect NAME... | rm [-f] NAME... | prune")
		if len(args) == 0 {
			return exitFailure
		}
		return exitOK
	}
	sub, rest := args[0], args[1:]
	fs := e.flags("volume " + sub)
	quiet := fs.BoolP("quiet", "q", false, "print only names")
	force := fs.BoolP("force", "f", false, "also remove the containers using the volume")
	if code, ok := e.parse(fs, rest); !ok {
		return code
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	switch sub {
	case "create":
		if fs.NArg() != 1 {
			e.errorf("\"pelagos volume create\" requires exactly 1 argument: pelagos volume create NAME")
			return exitFailure
		}
		if _, err := c.CreateVolume(e.ctx, fs.Arg(0)); err != nil {
			e.callErr(err)
			return exitFailure
		}
		fmt.Fprintln(e.stdout, fs.Arg(0))
	case "ls", "list":
		rows, err := c.ListVolumes(e.ctx)
		if err != nil {
			e.callErr(err)
			return exitFailure
		}
		if *quiet {
			for _, r := range rows {
				fmt.Fprintln(e.stdout, r.Name)
			}
			return exitOK
		}
		tw := newTable(e.stdout)
		fmt.Fprintln(tw, "DRIVER\tVOLUME NAME")
		for _, r := range rows {
			fmt.Fprintf(tw, "local\t%s\n", r.Name)
		}
		tw.Flush()
	case "inspect":
		rows, err := c.ListVolumes(e.ctx)
		if err != nil {
			e.callErr(err)
			return exitFailure
		}
		byName := map[string]pdbus.VolumeSummary{}
		for _, r := range rows {
			byName[r.Name] = r
		}
		var out []map[string]any
		code := exitOK
		for _, n := range fs.Args() {
			r, ok := byName[n]
			if !ok {
				e.errorf("no such volume: %s", n)
				code = exitFailure
				continue
			}
			out = append(out, map[string]any{"Name": r.Name, "Driver": "local", "Mountpoint": r.Path, "Containers": r.Containers})
		}
		printInspect(e, out)
		return code
	case "rm", "remove":
		if fs.NArg() == 0 {
			e.errorf("\"pelagos volume rm\" requires at least 1 argument: pelagos volume rm [-f] NAME [NAME...]")
			return exitFailure
		}
		return removeEach(e, fs.Args(), pdbus.ErrVolumeInUse, func(n string) error { return c.RemoveVolume(e.ctx, n, *force) })
	case "prune":
		rows, err := c.ListVolumes(e.ctx)
		if err != nil {
			e.callErr(err)
			return exitFailure
		}
		for _, r := range rows {
			if len(r.Containers) > 0 {
				continue
			}
			if err := c.RemoveVolume(e.ctx, r.Name, false); err != nil {
				e.callErr(err)
				return exitFailure
			}
			fmt.Fprintln(e.stdout, r.Name)
		}
	default:
		e.errorf("unknown volume command %q: use create, ls, inspect, rm or prune", sub)
		return exitFailure
	}
	return exitOK
}
