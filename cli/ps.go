package cli

import (
	"fmt"
	"sort"
	"strings"
	"text/template"
	"time"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// psRow is what `ps --format` templates see, podman's field names.
type psRow struct {
	ID        string            `json:"Id"`
	Names     string            `json:"Names"`
	Image     string            `json:"Image"`
	Command   string            `json:"Command"`
	CreatedAt string            `json:"CreatedAt"`
	Created   int64             `json:"Created"`
	Status    string            `json:"Status"`
	State     string            `json:"State"`
	ExitCode  int32             `json:"ExitCode"`
	Ports     string            `json:"Ports"`
	Labels    map[string]string `json:"Labels"`
	Size      string            `json:"Size,omitempty"`
}

func psCmd(e *env, args []string) int {
	fs := e.flags("ps")
	all := fs.BoolP("all", "a", false, "show all containers, not only running ones")
	quiet := fs.BoolP("quiet", "q", false, "print only container IDs")
	noTrunc := fs.Bool("no-trunc", false, "do not truncate output")
	last := fs.IntP("last", "n", -1, "show the N most recently created containers (all states)")
	latest := fs.BoolP("latest", "l", false, "show the most recently created container (all states)")
	size := fs.BoolP("size", "s", false, "show each container's writable layer size (and its whole root filesystem's)")
	format := fs.String("format", "", "Go template over .ID .Names .Image .Command .CreatedAt .Status .State .ExitCode, or json")
	filters := fs.StringArrayP("filter", "f", nil, "name=, id=, status=created|running|exited, ancestor=IMAGE, label=KEY[=VALUE], health=starting|healthy|unhealthy|none")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		e.errorf("\"pelagos ps\" accepts no arguments")
		return exitFailure
	}
	tmpl, err := parseFormat(*format)
	if err != nil {
		e.errorf("--format: %v", err)
		return exitFailure
	}
	match, err := parseFilters(*filters, []string{"name", "id", "status", "ancestor", "label", "health"})
	if err != nil {
		e.errorf("%v", err)
		return exitFailure
	}
	if *latest {
		*last = 1
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	rows, err := c.ListContainers(e.ctx, *all || *last >= 0 || len(match["status"]) > 0)
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Created > rows[j].Created })
	kept := rows[:0]
	for _, r := range rows {
		if matchAny(match["name"], func(v string) bool { return strings.Contains(r.Name, v) }) &&
			matchAny(match["id"], func(v string) bool { return strings.HasPrefix(r.ID, v) }) &&
			matchAny(match["status"], func(v string) bool { return r.State == v }) &&
			matchAny(match["ancestor"], func(v string) bool { return r.Image == v || strings.HasPrefix(r.Image, v+":") }) &&
			matchAll(match["label"], func(v string) bool { return labelMatches(r.Labels, v) }) &&
			matchAny(match["health"], func(v string) bool { return r.Health == v || v == "none" && r.Health == "" }) {
			kept = append(kept, r)
		}
	}
	rows = kept
	if *last >= 0 && len(rows) > *last {
		rows = rows[:*last]
	}
	if *quiet {
		for _, r := range rows {
			fmt.Fprintln(e.stdout, shortID(r.ID, *noTrunc))
		}
		return exitOK
	}
	now := time.Now()
	out := make([]psRow, 0, len(rows))
	for _, r := range rows {
		created := time.UnixMicro(r.Created)
		cmd := r.Command
		if !*noTrunc && tmpl == nil && *format != "json" {
			cmd = truncate(cmd, 20)
		}
		out = append(out, psRow{
			ID: shortID(r.ID, *noTrunc || *format == "json"), Names: r.Name, Image: r.Image, Command: cmd,
			CreatedAt: ago(created, now), Created: created.Unix(), Status: status(r, now), State: r.State, ExitCode: r.ExitCode,
			Ports: r.Ports, Labels: r.Labels,
		})
		if *size {
			rw, rootfs, err := c.Size(e.ctx, r.Path)
			if err != nil {
				e.callErr(err)
				return exitFailure
			}
			out[len(out)-1].Size = fmt.Sprintf("%s (virtual %s)", humanSize(rw), humanSize(rootfs))
		}
	}
	switch {
	case *format != "":
		code, _ := printFormatted(e, *format, tmpl, out)
		return code
	default:
		tw := newTable(e.stdout)
		header := "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES"
		if *size {
			header += "\tSIZE"
		}
		fmt.Fprintln(tw, header)
		for _, r := range out {
			line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", r.ID, r.Image, r.Command, r.CreatedAt, r.Status, r.Ports, r.Names)
			if *size {
				line += "\t" + r.Size
			}
			fmt.Fprintln(tw, line)
		}
		tw.Flush()
	}
	return exitOK
}

// parseFormat compiles a --format template; "" and "json" are not
// templates. "table" prefixes are accepted and ignored, as podman does.
func parseFormat(f string) (*template.Template, error) {
	if f == "" || f == "json" {
		return nil, nil
	}
	f = strings.TrimPrefix(f, "table ")
	return template.New("format").Option("missingkey=error").Parse(strings.ReplaceAll(f, `\t`, "\t"))
}

// parseFilters reads KEY=VALUE filters, allowing only known keys.
func parseFilters(filters []string, known []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		valid := false
		for _, kk := range known {
			valid = valid || kk == k
		}
		if !ok || !valid {
			return nil, fmt.Errorf("--filter %q: use KEY=VALUE with KEY one of %s", f, strings.Join(known, ", "))
		}
		out[k] = append(out[k], v)
	}
	return out, nil
}

func matchAny(vals []string, pred func(string) bool) bool {
	if len(vals) == 0 {
		return true
	}
	for _, v := range vals {
		if pred(v) {
			return true
		}
	}
	return false
}

// status renders the STATUS column: "Up 5 seconds", "Exited (0) 3
// seconds ago", "Created".
func status(r pdbus.ContainerSummary, now time.Time) string {
	switch r.State {
	case pdbus.StateCreated:
		return "Created"
	case pdbus.StateRunning:
		s := "Up"
		if r.Started > 0 {
			s += " " + humanDuration(now.Sub(time.UnixMicro(r.Started)))
		}
		if r.Health != "" {
			s += " (" + r.Health + ")"
		}
		return s
	case pdbus.StateExited:
		if r.Finished > 0 {
			return fmt.Sprintf("Exited (%d) %s", r.ExitCode, ago(time.UnixMicro(r.Finished), now))
		}
		return fmt.Sprintf("Exited (%d)", r.ExitCode)
	}
	return r.State
}

func rmCmd(e *env, args []string) int {
	fs := e.flags("rm")
	force := fs.BoolP("force", "f", false, "kill and remove running containers")
	fs.BoolP("volumes", "v", false, "accepted for podman compatibility: pelagos makes no anonymous volumes, and named ones stay until `pelagos volume rm`")
	all := fs.BoolP("all", "a", false, "remove every container")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 && !*all {
		e.errorf("\"pelagos rm\" requires at least 1 argument: pelagos rm [-f] CONTAINER [CONTAINER...] or pelagos rm --all")
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	names := fs.Args()
	if *all {
		rows, err := c.ListContainers(e.ctx, true)
		if err != nil {
			e.callErr(err)
			return exitFailure
		}
		for _, r := range rows {
			names = append(names, r.ID)
		}
	}
	// podman: 1 no such container, 2 running without -f.
	return removeEach(e, names, pdbus.ErrContainerRunning, func(n string) error { return c.RemoveContainer(e.ctx, n, *force) })
}

// containerPruneCmd removes every container that is not running.
func containerPruneCmd(e *env, args []string) int {
	fs := e.flags("container prune")
	fs.BoolP("force", "f", false, "do not ask (pelagos never asks)")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	rows, err := c.ListContainers(e.ctx, true)
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	code := exitOK
	for _, r := range rows {
		if r.State == pdbus.StateRunning {
			continue
		}
		if err := c.RemoveContainer(e.ctx, r.ID, false); err != nil {
			e.callErr(err)
			code = exitFailure
			continue
		}
		fmt.Fprintln(e.stdout, r.ID)
	}
	return code
}

func renameCmd(e *env, args []string) int {
	fs := e.flags("rename")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 2 {
		e.errorf("\"pelagos rename\" requires exactly 2 arguments: pelagos rename CONTAINER NEW_NAME")
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	path, err := c.GetContainer(e.ctx, fs.Arg(0))
	if err == nil {
		err = c.Rename(e.ctx, path, fs.Arg(1))
	}
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	return exitOK
}

// matchAll tells whether pred holds for every value (podman ANDs label
// filters).
func matchAll(vals []string, pred func(string) bool) bool {
	for _, v := range vals {
		if !pred(v) {
			return false
		}
	}
	return true
}
