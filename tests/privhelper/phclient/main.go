// Command phclient is the privhelper integration tests' client: run as a
// test user, it opens what it is told to (a container's netns, a pipe, a
// file) and calls the helper through privhelper/client, printing results
// as JSON and errors as "ERROR <D-Bus name>: <message>" with exit status 2.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pelagos-containers/pelagos/privhelper/client"
)

func main() {
	args := os.Args[1:]
	interactive := false
	if len(args) > 0 && args[0] == "-i" {
		interactive, args = true, args[1:]
	}
	if len(args) == 0 {
		fail(errors.New("usage: phclient [-i] COMMAND ARGS..."))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Connect(ctx)
	if err != nil {
		fail(err)
	}
	defer c.Close()
	c.Interactive = interactive
	out, err := run(ctx, c, args[0], args[1:])
	if err != nil {
		fail(err)
	}
	if out != nil {
		json.NewEncoder(os.Stdout).Encode(out)
	}
}

func fail(err error) {
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Fprintf(os.Stderr, "ERROR %s: %s\n", e.Name, e.Message)
	} else {
		fmt.Fprintf(os.Stderr, "ERROR local: %v\n", err)
	}
	os.Exit(2)
}

// kv parses key=value arguments.
func kv(args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		m[k] = v
	}
	return m
}

// openNetns opens what an attach call passes: "PID" (its netns), "pipe",
// "file:PATH" or "path:PATH" (opened as given).
func openNetns(what string) (*os.File, error) {
	switch {
	case what == "pipe":
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		w.Close()
		return r, nil
	case strings.HasPrefix(what, "file:"), strings.HasPrefix(what, "path:"):
		return os.Open(what[5:])
	default:
		if _, err := strconv.Atoi(what); err != nil {
			return nil, fmt.Errorf("bad netns %q", what)
		}
		return os.Open("/proc/" + what + "/ns/net")
	}
}

func run(ctx context.Context, c *client.Client, cmd string, args []string) (any, error) {
	need := func(n int) error {
		if len(args) < n {
			return fmt.Errorf("%s needs %d arguments", cmd, n)
		}
		return nil
	}
	switch cmd {
	case "create":
		if err := need(1); err != nil {
			return nil, err
		}
		o := kv(args[1:])
		_, internal := o["internal"]
		return c.CreateNetwork(ctx, args[0], client.NetworkOptions{Subnet: o["subnet"], Gateway: o["gateway"], Internal: internal})
	case "rmnet":
		if err := need(1); err != nil {
			return nil, err
		}
		return nil, c.RemoveNetwork(ctx, args[0])
	case "nets":
		return c.ListNetworks(ctx)
	case "attach":
		if err := need(2); err != nil {
			return nil, err
		}
		f, err := openNetns(args[0])
		if err != nil {
			return nil, err
		}
		defer f.Close()
		o := kv(args[2:])
		return c.Attach(ctx, f, args[1], client.AttachOptions{IP: o["ip"], Ifname: o["ifname"], Container: o["container"]})
	case "detach":
		if err := need(1); err != nil {
			return nil, err
		}
		return nil, c.Detach(ctx, args[0])
	case "leases":
		return c.ListLeases(ctx)
	case "fwd":
		if err := need(5); err != nil {
			return nil, err
		}
		hp, err1 := strconv.ParseUint(args[3], 10, 16)
		cp, err2 := strconv.ParseUint(args[4], 10, 16)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		return c.AddForward(ctx, args[0], args[1], args[2], uint16(hp), uint16(cp))
	case "unfwd":
		if err := need(1); err != nil {
			return nil, err
		}
		return nil, c.RemoveForward(ctx, args[0])
	case "fwds":
		return c.ListForwards(ctx)
	case "cycle": // PID NETWORK N: attach and detach N times
		if err := need(3); err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(args[2])
		if err != nil {
			return nil, err
		}
		for i := 0; i < n; i++ {
			f, err := openNetns(args[0])
			if err != nil {
				return nil, err
			}
			l, err := c.Attach(ctx, f, args[1], client.AttachOptions{})
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("cycle %d: %w", i, err)
			}
			if err := c.Detach(ctx, l.ID); err != nil {
				return nil, fmt.Errorf("cycle %d: %w", i, err)
			}
		}
		return n, nil
	}
	return nil, fmt.Errorf("unknown command %q", cmd)
}
