package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// newTable writes columns separated by at least two spaces, as podman.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
}

// ago renders how long ago t was, in podman's words.
func ago(t time.Time, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	return humanDuration(now.Sub(t)) + " ago"
}

// humanDuration follows the wording of Docker's go-units.
func humanDuration(d time.Duration) string {
	s := int(d.Seconds())
	switch {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	m := int(d.Minutes())
	switch {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	h := int(d.Hours() + 0.5)
	switch {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}

// humanSize renders bytes in SI units with three significant digits, as
// podman images does ("2.19 MB").
func humanSize(n int64) string {
	if n < 0 {
		return "unknown"
	}
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	s := fmt.Sprintf("%.3g", f)
	if strings.Contains(s, "e") {
		s = fmt.Sprintf("%.0f", f)
	}
	return s + " " + units[i]
}

func shortID(id string, noTrunc bool) string {
	if noTrunc || len(id) <= 12 {
		return id
	}
	return id[:12]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// printFormatted prints rows as JSON (--format json) or one template
// execution per row; done is false when neither was asked for and the
// caller prints its table.
func printFormatted[T any](e *env, format string, tmpl *template.Template, rows []T) (code int, done bool) {
	switch {
	case format == "json":
		if rows == nil {
			rows = []T{}
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "    ")
		enc.Encode(rows)
		return exitOK, true
	case tmpl != nil:
		for _, r := range rows {
			if err := tmpl.Execute(e.stdout, r); err != nil {
				e.errorf("--format: %v", err)
				return exitFailure, true
			}
			fmt.Fprintln(e.stdout)
		}
		return exitOK, true
	}
	return exitOK, false
}

// removeEach removes every name, printing each one removed, and returns
// the exit code podman's rm commands use: 2 when one was refused for
// being in use (inUse: running, used by a container) without -f, 1 when
// one failed otherwise.
func removeEach(e *env, names []string, inUse pdbus.ErrorCode, remove func(name string) error) int {
	code := exitOK
	for _, n := range names {
		if err := remove(n); err != nil {
			e.callErr(err)
			code = rmCode(code, err, inUse)
			continue
		}
		fmt.Fprintln(e.stdout, n)
	}
	return code
}

// rmCode folds one failed removal into a removal command's exit code.
func rmCode(code int, err error, inUse pdbus.ErrorCode) int {
	if pdbus.CodeOf(err) == inUse {
		return 2
	}
	if code == exitOK {
		return 1
	}
	return code
}

// printInspect prints inspect output as podman does: an indented JSON
// array, nothing when empty.
func printInspect[T any](e *env, out []T) {
	if len(out) == 0 {
		return
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "     ")
	enc.Encode(out)
}
