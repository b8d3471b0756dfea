// Package privhelper is pelagos-privhelper, the root helper that gives
// rootless users bridge networking after polkit agrees: it owns
// io.pelagos.PrivHelper1 on the system bus, keeps per-user networks, veth
// leases and port forwards in a persisted state, and cleans up after
// containers whose network namespace has died.
package privhelper

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/pelagos-containers/pelagos/privhelper/api"
)

// DefaultStateDir is where the helper keeps its state.
const DefaultStateDir = "/var/lib/pelagos-privhelper"

// Config configures Run.
type Config struct {
	StateDir    string        // default DefaultStateDir
	IdleTimeout time.Duration // exit after this long without calls and leases; 0 never
	BusAddress  string        // "" = the system bus (DBUS_SYSTEM_BUS_ADDRESS honoured)
	Log         *slog.Logger  // default: text to stderr
}

// sweepEvery is how often leases are checked against the host's links in
// case a link notification was lost.
const sweepEvery = 10 * time.Second

// Run serves io.pelagos.PrivHelper1 until ctx ends or the helper has been
// idle, with no leases, for cfg.IdleTimeout.
func Run(ctx context.Context, cfg Config) error {
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	log := cfg.Log
	store, err := NewStore(filepath.Clean(cfg.StateDir))
	if err != nil {
		return err
	}
	m, err := NewManager(store, log)
	if err != nil {
		return err
	}
	defer m.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Watch before reconciling, so that a link vanishing in between is seen.
	if err := watchLinks(ctx, m, log); err != nil {
		return err
	}
	if err := m.Reconcile(ctx); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}

	conn, err := connect(cfg.BusAddress)
	if err != nil {
		return err
	}
	defer conn.Close()
	svc := &service{ctx: ctx, conn: conn, m: m, last: time.Now()}
	if err := conn.Export(svc, api.ObjectPath, api.Interface); err != nil {
		return fmt.Errorf("export %s: %w", api.ObjectPath, err)
	}
	node := "<node>" + api.Introspection + introspect.IntrospectDataString + "</node>"
	if err := conn.Export(introspect.Introspectable(node), api.ObjectPath, "org.freedesktop.DBus.Introspectable"); err != nil {
		return fmt.Errorf("export introspection: %w", err)
	}
	reply, err := conn.RequestName(api.BusName, dbus.NameFlagDoNotQueue)
	if err != nil {
		return fmt.Errorf("request bus name %s: %w", api.BusName, err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		return fmt.Errorf("bus name %s is already owned", api.BusName)
	}
	log.Info("serving", "name", api.BusName, "leases", m.LeaseCount())

	tick := time.Second
	if cfg.IdleTimeout > 0 && cfg.IdleTimeout/4 < tick {
		tick = max(cfg.IdleTimeout/4, 50*time.Millisecond)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	lastSweep := time.Now()
	for {
		select {
		case <-ctx.Done():
			conn.ReleaseName(api.BusName)
			return nil
		case <-t.C:
		}
		if time.Since(lastSweep) >= sweepEvery {
			m.Sweep()
			lastSweep = time.Now()
		}
		if cfg.IdleTimeout > 0 && svc.idleFor() >= cfg.IdleTimeout && m.LeaseCount() == 0 {
			// Give up the name first: the bus then starts a fresh helper
			// for the next call instead of sending it to one that is leaving.
			conn.ReleaseName(api.BusName)
			log.Info("idle, exiting")
			return nil
		}
	}
}

// connect opens the bus connection: cfg's address, else the address the bus
// gave an activated service, else the system bus.
func connect(addr string) (*dbus.Conn, error) {
	if addr == "" {
		addr = os.Getenv("DBUS_STARTER_ADDRESS")
	}
	var conn *dbus.Conn
	var err error
	if addr != "" {
		conn, err = dbus.Connect(addr, dbus.WithIncomingInterceptor(closeStrayFDs))
	} else {
		conn, err = dbus.ConnectSystemBus(dbus.WithIncomingInterceptor(closeStrayFDs))
	}
	if err != nil {
		return nil, fmt.Errorf("connect to the system bus: %w", err)
	}
	return conn, nil
}

// watchLinks tells m about every deleted host link of the helper's, so a
// lease whose namespace died is cleaned up with no client connected.
func watchLinks(ctx context.Context, m *Manager, log *slog.Logger) error {
	ch := make(chan netlink.LinkUpdate, 256)
	err := netlink.LinkSubscribeWithOptions(ch, ctx.Done(), netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) { log.Warn("link notifications", "err", err) },
	})
	if err != nil {
		return fmt.Errorf("subscribe to link updates: %w", err)
	}
	go func() {
		for u := range ch {
			if u.Header.Type != unix.RTM_DELLINK {
				continue
			}
			if name := u.Attrs().Name; strings.HasPrefix(name, vethPrefix) {
				m.LinkGone(name)
			}
		}
	}()
	return nil
}
