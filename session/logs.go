package session

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pelagos-containers/pelagos/container"
	"github.com/pelagos-containers/pelagos/ctrlog"
	"github.com/pelagos-containers/pelagos/rootless"
)

// logStdio makes the stdio of a run whose output goes to the container's
// log: stdin from /dev/null, stdout and stderr through pipes whose read
// ends the outer process copies into the log as CRI records, stream by
// stream (see ctrlog). Without an outer process this service copies
// them. release closes the service's copies once the container has its
// own.
func (c *ctr) logStdio() (stdio container.Stdio, release func(), err error) {
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return stdio, nil, err
	}
	var mine []*os.File
	release = func() {
		for _, f := range mine {
			f.Close()
		}
	}
	mine = append(mine, stdin)
	stdio.Stdin = stdin
	for _, stream := range []string{ctrlog.Stdout, ctrlog.Stderr} {
		r, w, err := os.Pipe()
		if err != nil {
			release()
			return stdio, nil, fmt.Errorf("create %s pipe: %w", stream, err)
		}
		mine = append(mine, w)
		if stream == ctrlog.Stdout {
			stdio.Stdout = w
		} else {
			stdio.Stderr = w
		}
		if c.m.logSink != nil {
			err = rootless.SendLog(c.m.logSink, c.logPath(), stream, r)
			r.Close()
			if err != nil {
				release()
				return stdio, nil, err
			}
			continue
		}
		go func(stream string) {
			defer r.Close()
			f, err := os.OpenFile(c.logPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600)
			if err != nil {
				c.m.log.Warn("open log", "id", c.rec.ID, "err", err)
				ctrlog.Copy(discard{}, r, stream, time.Now)
				return
			}
			defer f.Close()
			ctrlog.Copy(f, r, stream, time.Now)
		}(stream)
	}
	return stdio, release, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
