package tests

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLifecycleVerbs(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	defer s.pelagos(t, "rm", "-f", "lc", "stubborn")
	id := strings.TrimSpace(s.mustPelagos(t, "run", "-d", "--name", "lc", "localhost/busybox", "sh", "-c",
		`trap "echo bye; exit 9" TERM; echo run >> /state; cat /state | wc -l; while :; do sleep 0.1; done`))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want a 64-hex id", id)
	}
	waitLog(t, s, "lc", "1\n")
	if out := s.mustPelagos(t, "stop", "lc"); out != "lc\n" {
		t.Fatalf("stop: %q", out)
	}
	if out := s.mustPelagos(t, "wait", "lc"); out != "9\n" {
		t.Fatalf("wait after stop: %q", out)
	}
	if out := s.mustPelagos(t, "stop", "lc"); out != "lc\n" { // already stopped: fine
		t.Fatalf("second stop: %q", out)
	}
	// start runs it again on the same writable layer.
	s.mustPelagos(t, "start", "lc")
	waitLog(t, s, "lc", "2\n")
	if out := s.mustPelagos(t, "logs", "--tail", "2", "lc"); out != "bye\n2\n" {
		t.Fatalf("logs --tail 2: %q", out)
	}
	var insp []struct {
		ID    string `json:"Id"`
		State struct {
			Status  string
			Running bool
			Pid     int
		}
		Config struct{ Cmd []string }
	}
	if err := json.Unmarshal([]byte(s.mustPelagos(t, "inspect", "lc")), &insp); err != nil || len(insp) != 1 {
		t.Fatalf("inspect JSON: %v", err)
	}
	if insp[0].ID != id || insp[0].State.Status != "running" || !insp[0].State.Running || insp[0].State.Pid == 0 || insp[0].Config.Cmd[0] != "sh" {
		t.Fatalf("inspect: %+v", insp[0])
	}
	s.mustPelagos(t, "restart", "-t", "5", "lc")
	waitLog(t, s, "lc", "3\n")
	s.mustPelagos(t, "kill", "-s", "TERM", "lc")
	if out := s.mustPelagos(t, "wait", "lc"); out != "9\n" {
		t.Fatalf("wait after kill -s TERM: %q", out)
	}

	// A command that ignores SIGTERM is killed after the timeout.
	s.mustPelagos(t, "run", "-d", "--name", "stubborn", "localhost/busybox", "sh", "-c", `trap "" TERM; echo up; while :; do sleep 0.1; done`)
	waitLog(t, s, "stubborn", "up\n")
	start := time.Now()
	s.mustPelagos(t, "stop", "-t", "1", "stubborn")
	if d := time.Since(start); d < time.Second || d > 10*time.Second {
		t.Errorf("stop -t 1 took %v", d)
	}
	if out := s.mustPelagos(t, "wait", "stubborn"); out != "137\n" {
		t.Fatalf("killed after the grace period: %q", out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"stop", "nosuch"}, "no such container"},
		{[]string{"kill", "-s", "BOGUS", "lc"}, "invalid signal"},
		{[]string{"kill", "lc"}, "is not running"},
		{[]string{"logs", "nosuch"}, "no such container"},
		{[]string{"inspect", "nosuch"}, "no such object"},
		{[]string{"inspect", "--type", "container", "nosuch"}, "no such container"},
		{[]string{"start", "-a", "lc", "stubborn"}, "requires 1 argument"},
	} {
		if r := s.pelagos(t, tc.args...); r.Code == 0 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%v: want failure %q, got %s", tc.args, tc.want, r)
		}
	}
}

// waitLog waits until the container's log ends with want.
func waitLog(t *testing.T, s *userSession, name, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var out string
	for time.Now().Before(deadline) {
		out = s.pelagos(t, "logs", name).Stdout
		if strings.HasSuffix(out, want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("log of %s never ended with %q: %q", name, want, out)
}

func TestRestartPolicies(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	defer s.pelagos(t, "rm", "-f", "flaky", "forever")
	// on-failure:2 — the first run and two restarts, then it stays down.
	s.mustPelagos(t, "run", "-d", "--name", "flaky", "--restart", "on-failure:2", "localhost/busybox", "sh", "-c", "echo try; exit 3")
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(s.pelagos(t, "logs", "flaky").Stdout, "try") < 3 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // a fourth run would show up by now
	if n := strings.Count(s.pelagos(t, "logs", "flaky").Stdout, "try"); n != 3 {
		t.Fatalf("on-failure:2 ran %d times, want 3", n)
	}
	// always: restarts until stopped; stop holds it.
	s.mustPelagos(t, "run", "-d", "--name", "forever", "--restart", "always", "localhost/busybox", "sh", "-c", "echo up; sleep 0.2")
	deadline = time.Now().Add(20 * time.Second)
	for strings.Count(s.pelagos(t, "logs", "forever").Stdout, "up") < 3 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	s.mustPelagos(t, "stop", "forever")
	n := strings.Count(s.pelagos(t, "logs", "forever").Stdout, "up")
	time.Sleep(1500 * time.Millisecond)
	if m := strings.Count(s.pelagos(t, "logs", "forever").Stdout, "up"); m != n || n < 3 {
		t.Fatalf("always: %d runs before stop, %d after: stop must hold it", n, m)
	}
	// A new service starts "always" containers again.
	if err := killAndWait(s.servicePid(t)); err != nil {
		t.Fatal(err)
	}
	s.mustPelagos(t, "ps")
	deadline = time.Now().Add(20 * time.Second)
	for strings.Count(s.pelagos(t, "logs", "forever").Stdout, "up") == n && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if m := strings.Count(s.pelagos(t, "logs", "forever").Stdout, "up"); m == n {
		t.Fatal("the new service did not start the always container")
	}
	if r := s.pelagos(t, "run", "--rm", "--restart", "always", "localhost/busybox", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "conflict") {
		t.Fatalf("--rm with --restart: %s", r)
	}
	if r := s.pelagos(t, "run", "--restart", "sometimes", "localhost/busybox", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "use no, on-failure") {
		t.Fatalf("bad --restart: %s", r)
	}
}

func TestEventsCommand(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	cmd, out := s.startPelagos(t, "events", "--format", "json", "--filter", "type=container")
	time.Sleep(500 * time.Millisecond) // subscribed
	id := strings.TrimSpace(s.mustPelagos(t, "run", "-d", "--name", "evented", "localhost/busybox", "sh", "-c", "exit 4"))
	s.mustPelagos(t, "wait", "evented")
	s.mustPelagos(t, "rm", "evented")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), `"Status":"remove"`) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd)
	var actions []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ev struct {
			Type, Status, ID  string
			ContainerExitCode *int
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if ev.ID != id || ev.Type != "container" {
			continue
		}
		a := ev.Status
		if ev.ContainerExitCode != nil {
			a += ":" + strconv.Itoa(*ev.ContainerExitCode)
		}
		actions = append(actions, a)
	}
	if strings.Join(actions, ",") != "create,start,died:4,remove" {
		t.Fatalf("events: %v\n%s", actions, out.String())
	}
}

func TestPsFormatFilterRenamePrune(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	defer s.pelagos(t, "rm", "-f", "fmt-run", "fmt-done", "renamed")
	s.mustPelagos(t, "run", "-d", "--name", "fmt-run", "localhost/busybox", "sleep", "60")
	s.pelagos(t, "run", "--name", "fmt-done", "localhost/busybox", "sh", "-c", "exit 2")
	if out := s.mustPelagos(t, "ps", "--format", "{{.Names}} {{.State}}", "--filter", "name=fmt-"); out != "fmt-run running\n" {
		t.Fatalf("ps --format: %q", out)
	}
	if out := s.mustPelagos(t, "ps", "-a", "--filter", "status=exited", "--filter", "name=fmt-", "--format", "{{.Names}}:{{.ExitCode}}"); out != "fmt-done:2\n" {
		t.Fatalf("ps --filter status=exited: %q", out)
	}
	if out := s.mustPelagos(t, "ps", "-l", "--format", "{{.Names}}"); out != "fmt-done\n" {
		t.Fatalf("ps -l: %q", out)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(s.mustPelagos(t, "ps", "--format", "json", "--filter", "name=fmt-run")), &rows); err != nil || len(rows) != 1 || rows[0]["Names"] != "fmt-run" {
		t.Fatalf("ps --format json: %v %v", rows, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ps", "--format", "{{.Nope}}"}, "can't evaluate field Nope"},
		{[]string{"ps", "--format", "{{"}, "--format"},
		{[]string{"ps", "--filter", "color=red"}, "use KEY=VALUE with KEY one of"},
		{[]string{"rename", "fmt-done", "fmt-run"}, "already in use"},
		{[]string{"rename", "fmt-done", "bad/name"}, "invalid container name"},
	} {
		if r := s.pelagos(t, tc.args...); r.Code != 125 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%v: want exit 125 and %q, got %s", tc.args, tc.want, r)
		}
	}
	s.mustPelagos(t, "rename", "fmt-done", "renamed")
	if out := s.mustPelagos(t, "ps", "-a", "--filter", "name=renamed", "--format", "{{.Names}}"); out != "renamed\n" {
		t.Fatalf("rename: %q", out)
	}
	out := s.mustPelagos(t, "container", "prune")
	if !strings.Contains(s.mustPelagos(t, "ps", "-a"), "fmt-run") || strings.Contains(s.mustPelagos(t, "ps", "-a"), "renamed") || out == "" {
		t.Fatalf("container prune must remove exited containers only: %q", out)
	}
}

// TestLabels: -l sets labels; ps filters on them; inspect shows them.
func TestLabels(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	s.mustPelagos(t, "run", "-d", "--name", "labelled", "-l", "app=web", "--label", "tier", "localhost/busybox", "sleep", "30")
	defer s.pelagos(t, "rm", "-f", "labelled")
	s.mustPelagos(t, "run", "-d", "--name", "plain", "localhost/busybox", "sleep", "30")
	defer s.pelagos(t, "rm", "-f", "plain")
	for filter, want := range map[string]string{"label=app=web": "labelled\n", "label=tier": "labelled\n", "label=app=db": "", "label=app": "labelled\n"} {
		if out := s.mustPelagos(t, "ps", "--filter", filter, "--format", "{{.Names}}"); out != want {
			t.Errorf("ps --filter %s: %q, want %q", filter, out, want)
		}
	}
	if out := s.mustPelagos(t, "inspect", "labelled"); !strings.Contains(out, `"app": "web"`) || !strings.Contains(out, `"tier": ""`) {
		t.Errorf("inspect lacks the labels:\n%s", out)
	}
	if res := s.pelagos(t, "run", "--rm", "-l", "=x", "localhost/busybox", "true"); res.Code != 125 || !strings.Contains(res.Stderr, "label") {
		t.Errorf("bad label: %s", res)
	}
}

// TestLogsStreamsAndTimes: a detached container's stdout and stderr stay
// apart and in order, with times for -t, --since, --until and --tail.
func TestLogsStreamsAndTimes(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	s.mustPelagos(t, "run", "-d", "--name", "lg", "--network", "none", "localhost/busybox", "sh", "-c", "echo out1; echo err1 >&2; echo out2; printf partial; sleep 0.2; echo late")
	defer s.pelagos(t, "rm", "-f", "lg")
	s.mustPelagos(t, "wait", "lg")
	res := s.pelagos(t, "logs", "lg")
	if res.Code != 0 || res.Stdout != "out1\nout2\npartiallate\n" || res.Stderr != "err1\n" {
		t.Fatalf("logs: %s", res)
	}
	res = s.pelagos(t, "logs", "-t", "lg")
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\S* out1\n`).MatchString(res.Stdout) {
		t.Fatalf("logs -t: %s", res)
	}
	if out := s.mustPelagos(t, "logs", "--since", "1h", "lg"); !strings.Contains(out, "out1") {
		t.Fatalf("logs --since 1h: %q", out)
	}
	if res := s.pelagos(t, "logs", "--until", "2000-01-01", "lg"); res.Stdout != "" || res.Stderr != "" {
		t.Fatalf("logs --until 2000-01-01: %s", res)
	}
	if out := s.mustPelagos(t, "logs", "--tail", "1", "lg"); out != "partiallate\n" {
		t.Fatalf("logs --tail 1: %q", out)
	}
	if res := s.pelagos(t, "logs", "--since", "yesterday-ish", "lg"); res.Code != 125 || !strings.Contains(res.Stderr, "--since") {
		t.Fatalf("bad --since: %s", res)
	}
}

// TestLogsSurviveServiceCrash: output keeps reaching the log while the
// service is dead, and `logs -f` follows across the restart.
func TestLogsSurviveServiceCrash(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	s.mustPelagos(t, "run", "-d", "--name", "ticker", "--network", "none", "localhost/busybox", "sh", "-c", "for i in $(seq 1 30); do echo tick$i; sleep 0.1; done; echo done >&2")
	defer s.pelagos(t, "rm", "-f", "ticker")
	follow, out := s.startPelagos(t, "logs", "-f", "ticker")
	time.Sleep(500 * time.Millisecond)
	if err := killAndWait(s.servicePid(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3500 * time.Millisecond) // the container ends while no service runs
	if code := waitExit(t, follow); code != 0 || !strings.Contains(out.String(), "tick30\n") || !strings.Contains(out.String(), "done\n") {
		t.Fatalf("logs -f across a service crash: exit %d, %q", code, out.String())
	}
	res := s.pelagos(t, "logs", "ticker")
	if res.Code != 0 || !strings.HasPrefix(res.Stdout, "tick1\ntick2\n") || !strings.HasSuffix(res.Stdout, "tick30\n") || res.Stderr != "done\n" {
		t.Fatalf("logs after the crash: %s", res)
	}
}

// TestStopSignal: stop sends --stop-signal first; a command that traps it
// exits on its own before the grace period.
func TestStopSignal(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	s.mustPelagos(t, "run", "-d", "--name", "stopsig", "--network", "none", "--stop-signal", "SIGUSR1", "localhost/busybox",
		"sh", "-c", "trap 'echo got-usr1; exit 7' USR1; while :; do sleep 0.1; done")
	defer s.pelagos(t, "rm", "-f", "stopsig")
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	s.mustPelagos(t, "stop", "-t", "10", "stopsig")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stop waited %v: the stop signal was not delivered", d)
	}
	if out := s.mustPelagos(t, "logs", "stopsig"); out != "got-usr1\n" {
		t.Fatalf("logs: %q", out)
	}
	if out := s.mustPelagos(t, "inspect", "stopsig"); !strings.Contains(out, `"StopSignal": "SIGUSR1"`) || !strings.Contains(out, `"ExitCode": 7`) {
		t.Fatalf("inspect:\n%s", out)
	}
	if res := s.pelagos(t, "run", "--rm", "--stop-signal", "SIGNOPE", "localhost/busybox", "true"); res.Code != 125 || !strings.Contains(res.Stderr, "stop signal") {
		t.Fatalf("bad stop signal: %s", res)
	}
}

// TestTop: top lists a running container's processes with the pids it
// sees; a stopped one is a clear error.
func TestTop(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	s.mustPelagos(t, "run", "-d", "--name", "topped", "--network", "none", "localhost/busybox", "sh", "-c", "sleep 300 & sleep 301")
	defer s.pelagos(t, "rm", "-f", "topped")
	// sh runs its last command in its own place: sleep 301 is PID 1,
	// once both commands have been executed.
	ok := func(out string) bool {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return len(lines) == 3 && strings.HasPrefix(lines[0], "USER") &&
			regexp.MustCompile(`^0\s+1\s+0\s.*sleep 301$`).MatchString(lines[1]) &&
			regexp.MustCompile(`^0\s+\d+\s+1\s.*sleep 300$`).MatchString(lines[2])
	}
	var out string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !ok(out); time.Sleep(50 * time.Millisecond) {
		out = s.mustPelagos(t, "top", "topped")
	}
	if !ok(out) {
		t.Fatalf("top:\n%s", out)
	}
	s.mustPelagos(t, "stop", "-t", "0", "topped")
	if res := s.pelagos(t, "top", "topped"); res.Code != 125 || !strings.Contains(res.Stderr, "not running") {
		t.Fatalf("top of a stopped container: %s", res)
	}
}

// TestHealthChecks: a health check runs periodically in the container;
// its verdicts move Health between starting, unhealthy and healthy, as
// ps, inspect and healthcheck run show.
func TestHealthChecks(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	s.mustPelagos(t, "run", "-d", "--name", "hc", "--network", "none", "--health-cmd", "test -e /tmp/ok",
		"--health-interval", "200ms", "--health-retries", "2", "localhost/busybox", "sleep", "60")
	defer s.pelagos(t, "rm", "-f", "hc")
	waitPs := func(want string) {
		t.Helper()
		var out string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			out = s.mustPelagos(t, "ps", "--filter", "name=hc", "--format", "{{.Status}}")
			if strings.Contains(out, "("+want+")") {
				return
			}
		}
		t.Fatalf("ps never showed (%s): %q", want, out)
	}
	waitPs("unhealthy")
	if out := s.mustPelagos(t, "ps", "--filter", "health=unhealthy", "--format", "{{.Names}}"); out != "hc\n" {
		t.Fatalf("ps --filter health=unhealthy: %q", out)
	}
	s.mustPelagos(t, "exec", "hc", "touch", "/tmp/ok")
	waitPs("healthy")
	insp := s.mustPelagos(t, "inspect", "hc")
	if !strings.Contains(insp, `"Status": "healthy"`) || !strings.Contains(insp, `"FailingStreak": 0`) || !strings.Contains(insp, `"ExitCode": 0,`) {
		t.Fatalf("inspect State.Health:\n%s", insp)
	}
	if res := s.pelagos(t, "healthcheck", "run", "hc"); res.Code != 0 || res.Stdout != "healthy\n" {
		t.Fatalf("healthcheck run: %s", res)
	}
	s.mustPelagos(t, "exec", "hc", "rm", "/tmp/ok")
	if res := s.pelagos(t, "healthcheck", "run", "hc"); res.Code != 1 || res.Stdout != "unhealthy\n" {
		t.Fatalf("healthcheck run, failing: %s", res)
	}

	// A check that hangs is killed at its timeout, inside the container too.
	s.mustPelagos(t, "run", "-d", "--name", "hc2", "--network", "none", "--health-cmd", "sleep 30",
		"--health-timeout", "300ms", "--health-interval", "disable", "localhost/busybox", "sleep", "60")
	defer s.pelagos(t, "rm", "-f", "hc2")
	start := time.Now()
	if res := s.pelagos(t, "healthcheck", "run", "hc2"); res.Code != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("healthcheck run with a timeout: %s after %v", res, time.Since(start))
	}
	time.Sleep(200 * time.Millisecond)
	if out := s.mustPelagos(t, "top", "hc2"); strings.Contains(out, "sleep 30") {
		t.Fatalf("the timed-out check still runs:\n%s", out)
	}
	if out := s.mustPelagos(t, "inspect", "hc2"); !strings.Contains(out, "timed out") {
		t.Fatalf("inspect lacks the timeout:\n%s", out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--health-cmd", "true", "--health-interval", "1ms"}, "--health-interval"},
		{[]string{"--health-cmd", "true", "--no-healthcheck"}, "conflict"},
		{[]string{"--health-retries", "2"}, "--health-cmd"},
		{[]string{"--health-cmd", "[not json"}, "JSON"},
	} {
		res := s.pelagos(t, append(append([]string{"run", "--rm"}, tc.args...), "localhost/busybox", "true")...)
		if res.Code != 125 || !strings.Contains(res.Stderr, tc.want) {
			t.Errorf("%v: want exit 125 and %q, got %s", tc.args, tc.want, res)
		}
	}
	s.mustPelagos(t, "run", "-d", "--name", "nohc", "--network", "none", "localhost/busybox", "sleep", "60")
	defer s.pelagos(t, "rm", "-f", "nohc")
	if res := s.pelagos(t, "healthcheck", "run", "nohc"); res.Code != 125 || !strings.Contains(res.Stderr, "no health check") {
		t.Fatalf("healthcheck run without a check: %s", res)
	}
}

// TestPauseWithoutFreezer: where no cgroup v2 freezer is delegated (as on
// this machine), pause fails saying why and changes nothing.
func TestPauseWithoutFreezer(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	s.mustPelagos(t, "run", "-d", "--name", "pz", "--network", "none", "localhost/busybox", "sleep", "60")
	defer s.pelagos(t, "rm", "-f", "pz")
	res := s.pelagos(t, "pause", "pz")
	if data, _ := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); len(data) > 0 && res.Code == 0 {
		t.Skip("a cgroup v2 freezer is available here: the error path cannot be tested")
	}
	if res.Code != 125 || !strings.Contains(res.Stderr, "freezer") || strings.Count(strings.TrimSpace(res.Stderr), "\n") != 0 {
		t.Fatalf("pause without a freezer: %s", res)
	}
	if out := s.mustPelagos(t, "inspect", "pz"); !strings.Contains(out, `"Paused": false`) || !strings.Contains(out, `"Status": "running"`) {
		t.Fatalf("inspect after a refused pause:\n%s", out)
	}
	s.mustPelagos(t, "stop", "-t", "0", "pz")
	if res := s.pelagos(t, "unpause", "pz"); res.Code != 125 || !strings.Contains(res.Stderr, "not running") {
		t.Fatalf("unpause of a stopped container: %s", res)
	}
}

// TestAttachStreamsAndSize: run -a picks the streams shown; ps -s shows
// the writable layer's size.
func TestAttachStreamsAndSize(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	res := s.pelagos(t, "run", "--rm", "--network", "none", "-a", "stderr", "localhost/busybox", "sh", "-c", "echo out; echo err >&2")
	if res.Code != 0 || res.Stdout != "" || res.Stderr != "err\n" {
		t.Fatalf("run -a stderr: %s", res)
	}
	if res := s.pelagos(t, "run", "-d", "-a", "stdout", "localhost/busybox", "true"); res.Code != 125 || !strings.Contains(res.Stderr, "--attach and --detach") {
		t.Fatalf("run -d -a: %s", res)
	}
	s.mustPelagos(t, "run", "-d", "--name", "sized", "--network", "none", "localhost/busybox", "sh", "-c", "head -c 3000000 /dev/zero > /big; sleep 60")
	defer s.pelagos(t, "rm", "-f", "sized")
	var out string
	want := regexp.MustCompile(`^3(\.0\d*)? MB \(virtual \d`)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		// The file may still be being written: wait for all of it.
		if out = s.mustPelagos(t, "ps", "-s", "--filter", "name=sized", "--format", "{{.Size}}"); want.MatchString(out) {
			break
		}
	}
	if !want.MatchString(out) {
		t.Fatalf("ps -s: %q", out)
	}
}

// TestAmbiguousIDPrefix: a prefix that fits two containers is refused,
// naming the problem, and nothing is acted on.
func TestAmbiguousIDPrefix(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	byFirst := map[byte][]string{}
	var ids []string
	for i := 0; i < 17; i++ { // 17 ids, 16 hex digits: two share a first digit
		id := strings.TrimSpace(s.mustPelagos(t, "run", "-d", "--network", "none", "-l", "batch=ambiguous", "localhost/busybox", "true"))
		ids = append(ids, id)
		byFirst[id[0]] = append(byFirst[id[0]], id)
	}
	defer s.pelagos(t, append([]string{"rm", "-f"}, ids...)...)
	for first, group := range byFirst {
		if len(group) < 2 {
			continue
		}
		res := s.pelagos(t, "rm", "-f", string(first))
		if res.Code == 0 || !strings.Contains(res.Stderr, "ambiguous") {
			t.Fatalf("rm of an ambiguous prefix: %s", res)
		}
		if n := len(strings.Fields(s.mustPelagos(t, "ps", "-aq", "--filter", "label=batch=ambiguous"))); n != 17 {
			t.Fatalf("%d containers left after a refused rm, want 17", n)
		}
		return
	}
	t.Fatal("no two ids share a first digit (impossible)")
}

// TestForegroundRunIsLogged: a run attached to the terminal keeps its
// streams apart and complete for the caller, and `pelagos logs` shows it
// afterwards, as with podman.
func TestForegroundRunIsLogged(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	r := s.pelagos(t, "run", "--name", "fglog", "--network", "none", "localhost/busybox", "sh", "-c", "echo out1; echo err1 >&2; printf 'no newline'; echo; echo out2; exit 4")
	defer s.pelagos(t, "rm", "-f", "fglog")
	if r.Code != 4 || r.Stdout != "out1\nno newline\nout2\n" || !strings.Contains(r.Stderr, "err1\n") {
		t.Fatalf("foreground run: %s", r)
	}
	l := s.pelagos(t, "logs", "fglog")
	if l.Code != 0 || l.Stdout != "out1\nno newline\nout2\n" || l.Stderr != "err1\n" {
		t.Errorf("logs of a foreground run: %s", l)
	}
	// --log-driver passthrough and none keep nothing; a bad driver is named.
	for _, d := range []string{"passthrough", "none"} {
		name := "fg" + d
		r := s.pelagos(t, "run", "--name", name, "--log-driver", d, "--network", "none", "localhost/busybox", "echo", "shown")
		if r.Code != 0 || r.Stdout != "shown\n" {
			t.Errorf("--log-driver %s: %s", d, r)
		}
		if l := s.pelagos(t, "logs", name); l.Code != 0 || l.Stdout != "" {
			t.Errorf("logs with --log-driver %s: %s", d, l)
		}
		s.pelagos(t, "rm", name)
	}
	if r := s.pelagos(t, "run", "--rm", "--log-driver", "journald", "localhost/busybox", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "--log-driver") {
		t.Errorf("--log-driver journald: %s", r)
	}
	// A burst of output right before exit reaches the caller whole
	// before the run returns.
	r = s.pelagos(t, "run", "--rm", "--network", "none", "localhost/busybox", "seq", "1", "20000")
	if lines := strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n"); r.Code != 0 || len(lines) != 20000 || lines[19999] != "20000" {
		t.Errorf("seq 1 20000: exit %d, %d lines", r.Code, len(lines))
	}
}
