package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	godbus "github.com/godbus/dbus/v5"

	"github.com/pelagos-containers/pelagos/dbus"
)

// imageRow is what `images --format` templates see, podman's names.
type imageRow struct {
	Repository string   `json:"Repository"`
	Tag        string   `json:"Tag"`
	ID         string   `json:"Id"`
	Digest     string   `json:"Digest"`
	CreatedAt  string   `json:"CreatedAt"`
	Created    int64    `json:"Created"`
	Size       string   `json:"Size"`
	Names      []string `json:"Names"`
}

func imagesCmd(e *env, args []string) int {
	fs := e.flags("images")
	quiet := fs.BoolP("quiet", "q", false, "print only image IDs")
	noTrunc := fs.Bool("no-trunc", false, "do not truncate output")
	digests := fs.Bool("digests", false, "show digests")
	format := fs.String("format", "", "Go template over .Repository .Tag .ID .Digest .CreatedAt .Size, or json")
	fs.BoolP("all", "a", false, "show all images (pelagos keeps no intermediate images, so all are always shown)")
	filters := fs.StringArrayP("filter", "f", nil, "reference=PATTERN, dangling=true|false, label=KEY[=VALUE], since=IMAGE, before=IMAGE")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	tmpl, err := parseFormat(*format)
	if err != nil {
		e.errorf("--format: %v", err)
		return exitFailure
	}
	match, err := parseFilters(*filters, []string{"reference", "dangling", "label", "since", "before"})
	if err != nil {
		e.errorf("%v", err)
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	imgs, err := c.ListImages(e.ctx)
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	// since= and before= compare creation times with named images'.
	var created []func(int64) bool
	for _, key := range []string{"since", "before"} {
		for _, ref := range match[key] {
			t, ok := imageCreated(imgs, ref)
			if !ok {
				e.errorf("--filter %s=%s: no such image: %s", key, ref, ref)
				return exitFailure
			}
			if key == "since" {
				created = append(created, func(c int64) bool { return c > t })
			} else {
				created = append(created, func(c int64) bool { return c < t })
			}
		}
	}
	now := time.Now()
	var rows []imageRow
	seen := map[string]bool{}
	for _, img := range imgs {
		keep := true
		for _, f := range created {
			keep = keep && f(img.Created)
		}
		if !keep {
			continue
		}
		dangling := len(img.Names) == 0
		if !matchAny(match["dangling"], func(v string) bool { return (v == "true") == dangling }) {
			continue
		}
		if len(match["label"]) > 0 {
			labels, err := e.imageLabels(c, img.Path)
			if err != nil {
				e.callErr(err)
				return exitFailure
			}
			if !matchAll(match["label"], func(v string) bool { return labelMatches(labels, v) }) {
				continue
			}
		}
		names := img.Names
		if dangling {
			names = []string{"<none>:<none>"}
		}
		for _, n := range names {
			if !matchAny(match["reference"], func(v string) bool { ok, _ := path.Match(v, n); return ok || strings.Contains(n, v) }) {
				continue
			}
			if *quiet && seen[img.ID] {
				continue
			}
			seen[img.ID] = true
			repo, tag := splitRepoTag(n)
			rows = append(rows, imageRow{
				Repository: repo, Tag: tag, ID: shortID(img.ID, *noTrunc || *format == "json"), Digest: img.Digest,
				CreatedAt: ago(time.UnixMicro(img.Created), now), Created: img.Created / 1e6, Size: humanSize(img.Size),
				Names: img.Names,
			})
		}
	}
	switch {
	case *quiet:
		for _, r := range rows {
			fmt.Fprintln(e.stdout, r.ID)
		}
	case *format != "":
		code, _ := printFormatted(e, *format, tmpl, rows)
		return code
	default:
		tw := newTable(e.stdout)
		if *digests {
			fmt.Fprintln(tw, "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tCREATED\tSIZE")
		} else {
			fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
		}
		for _, r := range rows {
			if *digests {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, r.Digest, r.ID, r.CreatedAt, r.Size)
			} else {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, r.ID, r.CreatedAt, r.Size)
			}
		}
		tw.Flush()
	}
	return exitOK
}

// imageCreated finds the image ref names (a name, with or without
// :latest, or an id prefix) and returns its creation time.
func imageCreated(imgs []dbus.ImageSummary, ref string) (int64, bool) {
	for _, img := range imgs {
		if strings.HasPrefix(img.ID, ref) && len(ref) >= 3 {
			return img.Created, true
		}
		for _, n := range img.Names {
			if n == ref || n == ref+":latest" || strings.HasSuffix(n, "/"+ref) || strings.HasSuffix(n, "/"+ref+":latest") {
				return img.Created, true
			}
		}
	}
	return 0, false
}

// imageLabels reads an image's labels from its inspect JSON.
func (e *env) imageLabels(c *dbus.Client, path godbus.ObjectPath) (map[string]string, error) {
	js, err := c.InspectImage(e.ctx, path)
	if err != nil {
		return nil, err
	}
	var v struct {
		Config struct{ Labels map[string]string }
	}
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	return v.Config.Labels, nil
}

// labelMatches tells whether labels has KEY (any value) or KEY=VALUE.
func labelMatches(labels map[string]string, filter string) bool {
	k, v, hasValue := strings.Cut(filter, "=")
	got, ok := labels[k]
	return ok && (!hasValue || got == v)
}

// splitRepoTag splits "host/repo:tag" at the tag's colon, not a port's.
func splitRepoTag(name string) (string, string) {
	if i := strings.LastIndex(name, "@"); i >= 0 {
		return name[:i], "<none>"
	}
	i := strings.LastIndex(name, ":")
	if i < 0 || strings.Contains(name[i:], "/") {
		return name, "<none>"
	}
	return name[:i], name[i+1:]
}

func loadCmd(e *env, args []string) int {
	fs := e.flags("load")
	input := fs.StringP("input", "i", "", "read the archive from this file instead of stdin")
	quiet := fs.BoolP("quiet", "q", false, "suppress output")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		e.errorf("\"pelagos load\" takes no arguments: use -i ARCHIVE or standard input")
		return exitFailure
	}
	f, cleanup, err := e.input(*input, "archive")
	if err != nil {
		e.errorf("%v", err)
		return exitFailure
	}
	defer cleanup()
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	ctx, stop, ok := e.watch(c)
	if !ok {
		return exitFailure
	}
	defer stop()
	loaded, err := c.LoadImage(ctx, f)
	if err != nil {
		e.callErr(ifGone(err, "during the load", "the load was interrupted: run `pelagos load` again"))
		return exitFailure
	}
	if !*quiet {
		for _, l := range loaded {
			if len(l.Names) == 0 {
				fmt.Fprintf(e.stdout, "Loaded image: %s\n", pathID(l.Path))
			}
			for _, n := range l.Names {
				fmt.Fprintf(e.stdout, "Loaded image: %s\n", n)
			}
		}
	}
	return exitOK
}

func pathID(p godbus.ObjectPath) string {
	s := string(p)
	return s[strings.LastIndex(s, "/")+1:]
}

// input opens the named file, or takes standard input. A pipe is passed
// as it is: the service copies what it cannot read in place (pathOf).
func (e *env) input(name, what string) (*os.File, func(), error) {
	if name != "" && name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, nil, fmt.Errorf("open %s: %w", what, err)
		}
		fi, err := f.Stat()
		if err != nil || fi.IsDir() {
			f.Close()
			return nil, nil, fmt.Errorf("%s %s is a directory, not an archive", what, name)
		}
		return f, func() { f.Close() }, nil
	}
	if fi, err := e.stdin.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return nil, nil, fmt.Errorf("no %s given: pass a file name or pipe one in (e.g. `pelagos load -i busybox.tar`)", what)
	}
	return e.stdin, func() {}, nil
}

func importCmd(e *env, args []string) int {
	fs := e.flags("import")
	changes := fs.StringArrayP("change", "c", nil, "apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, WORKDIR, USER")
	message := fs.StringP("message", "m", "", "commit message for the imported image")
	quiet := fs.BoolP("quiet", "q", false, "suppress output")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		e.errorf("\"pelagos import\" requires 1 or 2 arguments: pelagos import [OPTIONS] FILE|- [NAME]")
		return exitFailure
	}
	opts, err := parseChanges(*changes)
	if err != nil {
		e.errorf("%v", err)
		return exitFailure
	}
	opts.Message = *message
	f, cleanup, err := e.input(fs.Arg(0), "rootfs tarball")
	if err != nil {
		e.errorf("%v", err)
		return exitFailure
	}
	defer cleanup()
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	ctx, stop, ok := e.watch(c)
	if !ok {
		return exitFailure
	}
	defer stop()
	_, id, err := c.ImportImage(ctx, f, fs.Arg(1), opts)
	if err != nil {
		e.callErr(ifGone(err, "during the import", "the import was interrupted: run `pelagos import` again"))
		return exitFailure
	}
	if !*quiet {
		fmt.Fprintln(e.stdout, id)
	}
	return exitOK
}

func rmiCmd(e *env, args []string) int {
	fs := e.flags("rmi")
	force := fs.BoolP("force", "f", false, "also remove the containers that use the image")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		e.errorf("\"pelagos rmi\" requires at least 1 argument: pelagos rmi [-f] IMAGE [IMAGE...]")
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	code := exitOK
	for _, name := range fs.Args() {
		removed, err := c.RemoveImage(e.ctx, name, *force)
		if err != nil {
			e.callErr(err)
			code = rmCode(code, err, dbus.ErrImageInUse)
			continue
		}
		fmt.Fprintf(e.stdout, "Untagged: %s\n", name)
		if len(removed) > 0 {
			fmt.Fprintf(e.stdout, "Deleted: %s\n", removed[len(removed)-1])
		}
	}
	return code
}

// imagePruneCmd removes images no container uses: dangling ones (no
// name), or with -a all of them.
func imagePruneCmd(e *env, args []string) int {
	fs := e.flags("image prune")
	all := fs.BoolP("all", "a", false, "remove every image no container uses, not only unnamed ones")
	fs.BoolP("force", "f", false, "do not ask (pelagos never asks)")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	imgs, err := c.ListImages(e.ctx)
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	for _, img := range imgs {
		if len(img.Names) > 0 && !*all {
			continue
		}
		removed, err := c.RemoveImage(e.ctx, img.ID, false)
		if dbus.CodeOf(err) == dbus.ErrImageInUse {
			continue
		}
		if err != nil {
			e.callErr(err)
			return exitFailure
		}
		for _, id := range removed {
			fmt.Fprintln(e.stdout, id)
		}
	}
	return exitOK
}

func tagCmd(e *env, args []string) int {
	fs := e.flags("tag")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() < 2 {
		e.errorf("\"pelagos tag\" requires at least 2 arguments: pelagos tag IMAGE NAME [NAME...]")
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	path, err := c.GetImage(e.ctx, fs.Arg(0))
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	for _, n := range fs.Args()[1:] {
		if _, err := c.TagImage(e.ctx, path, n); err != nil {
			e.callErr(err)
			return exitFailure
		}
	}
	return exitOK
}

func untagCmd(e *env, args []string) int {
	fs := e.flags("untag")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() < 1 {
		e.errorf("\"pelagos untag\" requires at least 1 argument: pelagos untag IMAGE [NAME...]")
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	path, err := c.GetImage(e.ctx, fs.Arg(0))
	if err == nil {
		_, err = c.UntagImage(e.ctx, path, fs.Args()[1:])
	}
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	return exitOK
}

func imageInspectCmd(e *env, args []string) int {
	fs := e.flags("image inspect")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		e.errorf("\"pelagos image inspect\" requires at least 1 argument: pelagos image inspect IMAGE [IMAGE...]")
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	var out []json.RawMessage
	code := exitOK
	for _, n := range fs.Args() {
		path, err := c.GetImage(e.ctx, n)
		var js string
		if err == nil {
			js, err = c.InspectImage(e.ctx, path)
		}
		if err != nil {
			e.callErr(err)
			code = exitFailure
			continue
		}
		out = append(out, json.RawMessage(js))
	}
	if len(out) > 0 {
		b, _ := json.MarshalIndent(out, "", "     ")
		fmt.Fprintln(e.stdout, string(b))
	}
	return code
}

func saveCmd(e *env, args []string) int {
	fs := e.flags("save")
	output := fs.StringP("output", "o", "", "write to this file instead of stdout")
	format := fs.String("format", "docker-archive", "oci-archive or docker-archive")
	fs.BoolP("multi-image-archive", "m", true, "accepted for podman compatibility: several images always go in one archive")
	fs.BoolP("quiet", "q", false, "accepted for podman compatibility (save prints nothing)")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		e.errorf("\"pelagos save\" requires at least 1 argument: pelagos save [-o FILE] [--format oci-archive|docker-archive] IMAGE [IMAGE...]")
		return exitFailure
	}
	if *format != "oci-archive" && *format != "docker-archive" {
		e.errorf("--format %q: use oci-archive or docker-archive", *format)
		return exitFailure
	}
	out, commit, abort, err := e.archiveOutput(*output)
	if err != nil {
		e.errorf("%v", err)
		return exitFailure
	}
	defer abort()
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	ctx, stop, ok := e.watch(c)
	if !ok {
		return exitFailure
	}
	defer stop()
	if err := c.SaveImages(ctx, fs.Args(), out, *format); err != nil {
		e.callErr(ifGone(err, "during the save", "the archive was not written: run `pelagos save` again"))
		return exitFailure
	}
	if err := commit(); err != nil {
		e.errorf("%v", err)
		return exitFailure
	}
	return exitOK
}

// archiveOutput opens where `save` writes: stdout (never a terminal), or
// a temporary file beside path that commit renames into place, so a
// failed save neither leaves half an archive nor clobbers an existing
// file. Where the directory is not writable but the file is, the file
// is written in place and removed again if the save fails.
func (e *env) archiveOutput(path string) (out *os.File, commit func() error, abort func(), err error) {
	if path == "" {
		if fi, err := e.stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return nil, nil, nil, fmt.Errorf("refusing to write an archive to a terminal: use -o FILE or redirect stdout")
		}
		return e.stdout, func() error { return nil }, func() {}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err == nil {
		done := false
		commit = func() error {
			if err := f.Chmod(0o644); err != nil {
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			done = true
			return os.Rename(f.Name(), path)
		}
		abort = func() {
			if !done {
				f.Close()
				os.Remove(f.Name())
			}
		}
		return f, commit, abort, nil
	}
	f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("write %s: %w", path, err)
	}
	done := false
	commit = func() error { done = true; return f.Close() }
	abort = func() {
		if !done {
			f.Close()
			os.Remove(path)
		}
	}
	return f, commit, abort, nil
}

func historyCmd(e *env, args []string) int {
	fs := e.flags("history")
	noTrunc := fs.Bool("no-trunc", false, "do not truncate output")
	quiet := fs.BoolP("quiet", "q", false, "print only the image IDs")
	human := fs.BoolP("human", "H", true, "sizes and dates in human-readable form")
	format := fs.String("format", "", "Go template over .ID .Created .CreatedAt .CreatedBy .Size .Comment, or json")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		e.errorf("\"pelagos history\" requires exactly 1 argument: pelagos history [--no-trunc] IMAGE")
		return exitFailure
	}
	tmpl, err := parseFormat(*format)
	if err != nil {
		e.errorf("--format: %v", err)
		return exitFailure
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	path, err := c.GetImage(e.ctx, fs.Arg(0))
	var hist []dbus.HistoryEntry
	if err == nil {
		hist, err = c.ImageHistory(e.ctx, path)
	}
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	type row struct {
		ID        string `json:"id"`
		Created   int64  `json:"created"`
		CreatedAt string `json:"-"`
		CreatedBy string `json:"createdBy"`
		Size      any    `json:"size"`
		Comment   string `json:"comment"`
	}
	now := time.Now()
	rows := make([]row, 0, len(hist))
	for _, h := range hist {
		r := row{ID: "<missing>", Created: h.Created / 1e6, CreatedBy: h.CreatedBy, Size: h.Size, Comment: h.Comment}
		if h.ID != "" {
			r.ID = shortID(h.ID, *noTrunc || *format == "json")
		}
		switch {
		case h.Created == 0:
			r.CreatedAt = "unknown"
		case *human:
			r.CreatedAt = ago(time.UnixMicro(h.Created), now)
		default:
			r.CreatedAt = time.UnixMicro(h.Created).Format(time.RFC3339)
		}
		if *format != "json" && *human {
			r.Size = humanSize(h.Size)
		}
		if !*noTrunc && *format == "" && len(r.CreatedBy) > 45 {
			r.CreatedBy = r.CreatedBy[:42] + "..."
		}
		rows = append(rows, r)
	}
	switch {
	case *quiet:
		for _, r := range rows {
			fmt.Fprintln(e.stdout, r.ID)
		}
	case *format != "":
		code, _ := printFormatted(e, *format, tmpl, rows)
		return code
	default:
		tw := newTable(e.stdout)
		fmt.Fprintln(tw, "ID\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", r.ID, r.CreatedAt, r.CreatedBy, r.Size, r.Comment)
		}
		tw.Flush()
	}
	return exitOK
}
