package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	godbus "github.com/godbus/dbus/v5"

	"github.com/pelagos-containers/pelagos/container"
	pdbus "github.com/pelagos-containers/pelagos/dbus"
	"github.com/pelagos-containers/pelagos/images"
)

// Health states.
const (
	healthNone      = ""
	healthStarting  = "starting"
	healthHealthy   = "healthy"
	healthUnhealthy = "unhealthy"
)

// healthConfig is a container's health check, from the image's
// HEALTHCHECK and the --health-* options.
type healthConfig struct {
	// Test is ["CMD", args...] or ["CMD-SHELL", command]; empty: none.
	Test        []string      `json:"test,omitempty"`
	Interval    time.Duration `json:"interval,omitempty"` // 0: only `healthcheck run`
	Timeout     time.Duration `json:"timeout,omitempty"`
	StartPeriod time.Duration `json:"startPeriod,omitempty"`
	Retries     int           `json:"retries,omitempty"`
}

func (h healthConfig) enabled() bool { return len(h.Test) > 1 }

// args is the command line a check runs.
func (h healthConfig) args() []string {
	if h.Test[0] == "CMD-SHELL" {
		return []string{"/bin/sh", "-c", h.Test[1]}
	}
	return h.Test[1:]
}

// savedHealth is the health state of the current run as the record
// keeps it.
type savedHealth struct {
	Status        string         `json:"status"`
	FailingStreak int            `json:"failingStreak"`
	Log           []healthResult `json:"log,omitempty"`
}

// healthResult is one check's outcome.
type healthResult struct {
	Start, End time.Time
	ExitCode   int
	Output     string
}

// healthState is what the checks found, in memory for the current run.
type healthState struct {
	Status        string
	FailingStreak int
	Log           []healthResult // the last five
	stop          context.CancelFunc
	running       sync.Mutex // one check at a time
}

// parseHealth decides a new container's health check.
func parseHealth(cfg pdbus.ContainerConfig, image *images.Healthcheck) (healthConfig, error) {
	invalid := func(format string, a ...any) error {
		return pdbus.Errorf(pdbus.ErrInvalidArgument, format, a...)
	}
	h := healthConfig{Interval: 30 * time.Second, Timeout: 30 * time.Second, Retries: 3}
	if image != nil && len(image.Test) > 0 && image.Test[0] != "NONE" {
		h.Test = image.Test
		if image.Interval > 0 {
			h.Interval = image.Interval
		}
		if image.Timeout > 0 {
			h.Timeout = image.Timeout
		}
		if image.Retries > 0 {
			h.Retries = image.Retries
		}
		h.StartPeriod = image.StartPeriod
	}
	if cfg.NoHealthcheck {
		if cfg.HealthCmd != "" {
			return h, invalid("--no-healthcheck and --health-cmd conflict")
		}
		return healthConfig{}, nil
	}
	if cfg.HealthCmd != "" {
		if strings.HasPrefix(strings.TrimSpace(cfg.HealthCmd), "[") {
			var args []string
			if err := json.Unmarshal([]byte(cfg.HealthCmd), &args); err != nil || len(args) == 0 {
				return h, invalid("--health-cmd %q: a JSON array of strings, or a shell command", cfg.HealthCmd)
			}
			h.Test = append([]string{"CMD"}, args...)
		} else {
			h.Test = []string{"CMD-SHELL", cfg.HealthCmd}
		}
	}
	for _, d := range []struct {
		flag, v string
		dst     *time.Duration
	}{{"--health-interval", cfg.HealthInterval, &h.Interval}, {"--health-timeout", cfg.HealthTimeout, &h.Timeout}, {"--health-start-period", cfg.HealthStartPeriod, &h.StartPeriod}} {
		switch {
		case d.v == "":
		case d.v == "disable" && d.flag == "--health-interval":
			*d.dst = 0
		default:
			v, err := time.ParseDuration(d.v)
			if err != nil || v < 0 || (v > 0 && v < 100*time.Millisecond) {
				return h, invalid("%s %q: a duration such as 30s (at least 100ms)", d.flag, d.v)
			}
			*d.dst = v
		}
	}
	if cfg.HealthRetries < 0 {
		return h, invalid("--health-retries %d: give 1 or more", cfg.HealthRetries)
	}
	if cfg.HealthRetries > 0 {
		h.Retries = int(cfg.HealthRetries)
	}
	if h.Timeout == 0 {
		h.Timeout = 30 * time.Second
	}
	if !h.enabled() {
		if cfg.HealthInterval != "" || cfg.HealthTimeout != "" || cfg.HealthStartPeriod != "" || cfg.HealthRetries != 0 {
			return h, invalid("--health-* options need a health check: give --health-cmd (the image has no HEALTHCHECK)")
		}
		return healthConfig{}, nil
	}
	return h, nil
}

// startHealth begins the periodic checks of a run that just started, or,
// with resume, of a run an earlier service started: that one goes on from
// the state the earlier service recorded (a healthy container stays
// healthy across a restart of the service). Call with c.mu held.
func (c *ctr) startHealth(resume bool) {
	if !c.rec.Health.enabled() {
		return
	}
	ctx, cancel := context.WithCancel(c.m.ctx)
	c.health = &healthState{Status: healthStarting, stop: cancel}
	if saved := c.rec.HealthRun; resume && saved != nil && saved.Status != "" {
		c.health.Status, c.health.FailingStreak, c.health.Log = saved.Status, saved.FailingStreak, saved.Log
	}
	c.publishHealthLocked()
	interval := c.rec.Health.Interval
	if interval == 0 {
		return // only `healthcheck run`
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.runHealthcheck(ctx)
			}
		}
	}()
}

// stopHealth ends the periodic checks of a run that ended. Call with
// c.mu held.
func (c *ctr) stopHealth() {
	if c.health != nil && c.health.stop != nil {
		c.health.stop()
	}
}

// runHealthcheck runs the check once, records the outcome and returns
// this check's verdict: healthy or unhealthy.
func (c *ctr) runHealthcheck(ctx context.Context) (string, error) {
	c.mu.Lock()
	h, cfg := c.health, c.rec.Health
	startedAt := c.rec.StartedAt
	c.mu.Unlock()
	if !cfg.enabled() {
		return "", pdbus.Errorf(pdbus.ErrInvalidArgument, "container %s has no health check: give --health-cmd when creating it", c.name())
	}
	if h == nil {
		return "", pdbus.Errorf(pdbus.ErrContainerNotRunning, "container %s is not running", c.name())
	}
	h.running.Lock()
	defer h.running.Unlock()
	res := healthResult{Start: time.Now()}
	var out bytes.Buffer
	code, err := c.checkOnce(ctx, cfg, &out)
	res.End, res.ExitCode = time.Now(), code
	res.Output = out.String()
	if err != nil {
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
			return "", err // the run ended
		}
		res.ExitCode, res.Output = -1, err.Error()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	verdict := healthUnhealthy
	if res.ExitCode == 0 {
		verdict = healthHealthy
	}
	if c.health != h {
		return verdict, nil // a new run began meanwhile
	}
	h.Log = append(h.Log, res)
	if len(h.Log) > 5 {
		h.Log = h.Log[len(h.Log)-5:]
	}
	switch {
	case res.ExitCode == 0:
		h.Status, h.FailingStreak = healthHealthy, 0
	case h.Status == healthStarting && time.Since(startedAt) < cfg.StartPeriod:
		// Failures while the container starts up do not count.
	default:
		h.FailingStreak++
		if h.FailingStreak >= cfg.Retries {
			h.Status = healthUnhealthy
		}
	}
	c.publishHealthLocked()
	return verdict, nil
}

// checkOnce runs the check's command in the container with the check's
// timeout, keeping up to 4 KiB of its output.
func (c *ctr) checkOnce(ctx context.Context, cfg healthConfig, out *bytes.Buffer) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			if out.Len() < 4096 {
				out.Write(buf[:min(n, 4096-out.Len())])
			}
			if err != nil {
				return
			}
		}
	}()
	code, err := c.exec(ctx, cfg.args(), execOptions{}, container.Stdio{Stdin: devnull, Stdout: w, Stderr: w}, nil, nil)
	w.Close()
	<-done
	r.Close()
	if ctx.Err() == context.DeadlineExceeded {
		return -1, fmt.Errorf("health check timed out after %v", cfg.Timeout)
	}
	return code, err
}

// publishHealthLocked announces the health state. Call with c.mu held.
func (c *ctr) publishHealthLocked() {
	if c.obj == nil || c.health == nil {
		return
	}
	h := c.health
	// Kept in the record, so a later service resumes from it.
	c.rec.HealthRun = &savedHealth{Status: h.Status, FailingStreak: h.FailingStreak, Log: h.Log}
	if err := c.rec.save(c.dir); err != nil {
		c.m.log.Warn("save health state", "id", c.rec.ID, "err", err)
	}
	setProp(c.obj.Props, pdbus.ContainerIface, "HealthFailingStreak", int32(h.FailingStreak))
	setProp(c.obj.Props, pdbus.ContainerIface, "HealthLog", healthLogRows(h.Log))
	if old, _ := c.obj.Props.Get(pdbus.ContainerIface, "Health"); old.Value() != h.Status {
		setProp(c.obj.Props, pdbus.ContainerIface, "Health", h.Status)
		c.m.emit("ContainerHealthChanged", c.obj.Path, c.rec.ID, h.Status)
	}
}

// healthLogRow is one element of the HealthLog property.
type healthLogRow struct {
	Start, End uint64
	ExitCode   int32
	Output     string
}

func healthLogRows(log []healthResult) []healthLogRow {
	rows := make([]healthLogRow, 0, len(log))
	for _, r := range log {
		rows = append(rows, healthLogRow{usec(r.Start), usec(r.End), int32(r.ExitCode), r.Output})
	}
	return rows
}

// healthStatus is the current health for listings ("" without a check
// or a run).
func (c *ctr) healthStatusLocked() string {
	if c.health == nil || c.rec.State != pdbus.StateRunning {
		return healthNone
	}
	return c.health.Status
}

// RunHealthcheck implements the method of the same name.
func (a *containerAPI) RunHealthcheck() (string, *godbus.Error) {
	defer a.c.m.track()()
	status, err := a.c.runHealthcheck(a.c.m.ctx)
	return status, asDBusErr(err)
}
