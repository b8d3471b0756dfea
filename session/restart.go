package session

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// shouldRestart applies the restart policy to an exit; a container the
// user stopped stays stopped.
func (c *ctr) shouldRestart(code int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &c.rec
	if c.removed || r.StoppedByUser {
		return false
	}
	switch r.Restart.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return code != 0 && (r.Restart.MaxRetries == 0 || r.RestartCount < r.Restart.MaxRetries)
	}
	return false
}

// restartLater starts the container again after a backoff that grows
// with the restarts (100 ms doubling, at most 10 s), output to its log.
func (c *ctr) restartLater() {
	c.mu.Lock()
	n := c.rec.RestartCount
	c.mu.Unlock()
	delay := 100 * time.Millisecond << min(n, 7)
	delay = min(delay, 10*time.Second)
	time.Sleep(delay)
	c.mu.Lock()
	if c.removed || c.rec.StoppedByUser || c.rec.State == pdbus.StateRunning {
		c.mu.Unlock()
		return
	}
	c.rec.RestartCount++
	c.mu.Unlock()
	if err := c.startLogged(); err != nil {
		c.m.log.Warn("restart container", "id", c.rec.ID, "err", err)
	}
}

// startLogged starts the container with stdin from /dev/null and its
// output appended to its log file.
func (c *ctr) startLogged() error {
	stdio, release, err := c.logStdio()
	if err != nil {
		return fmt.Errorf("set up the log: %w", err)
	}
	defer release()
	_, err = c.start(c.m.ctx, stdio, nil)
	return err
}

// parseRestart reads --restart no|on-failure[:N]|always|unless-stopped.
func parseRestart(s string) (restartPolicy, error) {
	name, max, hasMax := strings.Cut(s, ":")
	p := restartPolicy{Name: name}
	switch name {
	case "", "no":
		p.Name = "no"
		if hasMax {
			break
		}
		return p, nil
	case "always", "unless-stopped":
		if !hasMax {
			return p, nil
		}
	case "on-failure":
		if !hasMax {
			return p, nil
		}
		n, err := strconv.Atoi(max)
		if err == nil && n >= 0 {
			p.MaxRetries = n
			return p, nil
		}
	}
	return p, pdbus.Errorf(pdbus.ErrInvalidArgument, "--restart %q: use no, on-failure[:MAX], always or unless-stopped", s)
}

func (c *ctr) setStoppedByUser(v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec.StoppedByUser != v {
		c.rec.StoppedByUser = v
		if !v {
			c.rec.RestartCount = 0
		}
		c.rec.save(c.dir)
	}
}
