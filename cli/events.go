package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	godbus "github.com/godbus/dbus/v5"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// event is one line of `pelagos events`, podman's names.
type event struct {
	Time     string `json:"Time"`
	Type     string `json:"Type"`
	Action   string `json:"Status"`
	ID       string `json:"ID"`
	ExitCode *int32 `json:"ContainerExitCode,omitempty"`
	Detail   string `json:"Detail,omitempty"`
}

// toEvent turns a manager signal into an event; ok is false for others.
func toEvent(sig *godbus.Signal, now time.Time) (event, bool) {
	e := event{Time: now.Format(time.RFC3339Nano)}
	member := strings.TrimPrefix(sig.Name, pdbus.ManagerInterface+".")
	str := func(i int) string {
		if i < len(sig.Body) {
			if s, ok := sig.Body[i].(string); ok {
				return s
			}
		}
		return ""
	}
	switch member {
	case "ContainerAdded":
		e.Type, e.Action, e.ID = "container", "create", str(1)
	case "ContainerRemoved":
		e.Type, e.Action, e.ID = "container", "remove", str(1)
	case "ContainerStateChanged":
		e.Type, e.ID = "container", str(1)
		switch str(2) {
		case pdbus.StateRunning:
			e.Action = "start"
		case pdbus.StateExited:
			e.Action = "died"
			if len(sig.Body) > 3 {
				if code, ok := sig.Body[3].(int32); ok {
					e.ExitCode = &code
				}
			}
		default:
			e.Action = str(2)
		}
	case "ContainerHealthChanged":
		e.Type, e.Action, e.ID, e.Detail = "container", "health_status", str(1), str(2)
	case "ImageAdded":
		e.Type, e.Action, e.ID = "image", "add", str(1)
	case "ImageRemoved":
		e.Type, e.Action, e.ID = "image", "remove", str(1)
	case "JobFinished":
		p, _ := sig.Body[0].(godbus.ObjectPath)
		e.Type, e.Action, e.ID, e.Detail = "job", str(1), pathID(p), str(4)
	default:
		return e, false
	}
	return e, true
}

func eventsCmd(e *env, args []string) int {
	fs := e.flags("events")
	format := fs.String("format", "", "json for one JSON object per line")
	filters := fs.StringArray("filter", nil, "type=container|image|job, or container=ID-prefix")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if *format != "" && *format != "json" {
		e.errorf("--format %q: only json is supported", *format)
		return exitFailure
	}
	match := map[string][]string{}
	for _, f := range *filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok || (k != "type" && k != "container" && k != "event") {
			e.errorf("--filter %q: use type=container|image|job, container=ID or event=ACTION", f)
			return exitFailure
		}
		match[k] = append(match[k], v)
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	conn := c.Conn()
	opts := []godbus.MatchOption{godbus.WithMatchSender(pdbus.BusName), godbus.WithMatchInterface(pdbus.ManagerInterface)}
	if err := conn.AddMatchSignal(opts...); err != nil {
		e.callErr(err)
		return exitFailure
	}
	// Make sure the service runs, so its signals can come.
	if _, err := c.ManagerProperties(e.ctx); err != nil {
		e.callErr(err)
		return exitFailure
	}
	ch := make(chan *godbus.Signal, 64)
	conn.Signal(ch)
	// Ctrl-C is how one ends events: exit 0, as ever. The stream goes
	// on across a restart of the service (an idle exit, a crash): the
	// match is on the well-known name, so the next one's signals come.
	stop := make(chan os.Signal, 1)
	release := e.signals.take(func(s os.Signal) { stop <- s })
	defer release()
	for {
		select {
		case <-stop:
			return exitOK
		case <-e.ctx.Done():
			return exitFailure // a second signal: its exit code
		case sig, ok := <-ch:
			if !ok {
				e.errorf("the session bus connection closed")
				return exitFailure
			}
			ev, ok := toEvent(sig, time.Now())
			if !ok || !eventMatches(ev, match) {
				continue
			}
			if *format == "json" {
				b, _ := json.Marshal(ev)
				fmt.Fprintln(e.stdout, string(b))
				continue
			}
			line := fmt.Sprintf("%s %s %s %s", ev.Time, ev.Type, ev.Action, ev.ID)
			if ev.ExitCode != nil {
				line += fmt.Sprintf(" (exit code %d)", *ev.ExitCode)
			}
			if ev.Detail != "" {
				line += " (" + ev.Detail + ")"
			}
			fmt.Fprintln(e.stdout, line)
		}
	}
}

func eventMatches(ev event, match map[string][]string) bool {
	return matchAny(match["type"], func(v string) bool { return v == ev.Type }) &&
		matchAny(match["event"], func(v string) bool { return v == ev.Action }) &&
		matchAny(match["container"], func(v string) bool { return ev.Type == "container" && strings.HasPrefix(ev.ID, v) })
}
