// Command pelagos-privhelper owns io.pelagos.PrivHelper1 on the system bus
// and sets up bridge networking for rootless users after polkit agrees. The
// bus starts it on demand; it exits when idle and holding no leases.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pelagos-containers/pelagos/privhelper"
)

func main() {
	var cfg privhelper.Config
	flag.StringVar(&cfg.StateDir, "state-dir", privhelper.DefaultStateDir, "directory for the helper's state")
	flag.DurationVar(&cfg.IdleTimeout, "idle-timeout", time.Minute, "exit after this long idle with no leases (0 = never)")
	flag.StringVar(&cfg.BusAddress, "bus-address", "", "D-Bus address to serve on (default: $DBUS_STARTER_ADDRESS, else the system bus)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "pelagos-privhelper: must run as root (the system bus starts it)")
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := privhelper.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "pelagos-privhelper:", err)
		os.Exit(1)
	}
}
