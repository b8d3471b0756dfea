// Package session is pelagosd, the per-user service: it owns the user's
// containers and images, keeps their state on disk, and serves them on the
// session bus as io.pelagos.Pelagos1.
package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"time"

	godbus "github.com/godbus/dbus/v5"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
	"github.com/pelagos-containers/pelagos/images"
	"github.com/pelagos-containers/pelagos/rootless"
)

// Main runs the service and returns its exit code.
func Main(args []string, stderr io.Writer) int {
	fs := pflag.NewFlagSet("pelagosd", pflag.ContinueOnError)
	idle := fs.Duration("idle-timeout", 60*time.Second, "exit after this long with no container running and no call (0: never)")
	verbose := fs.BoolP("verbose", "v", false, "log debug messages")
	version := fs.Bool("version", false, "print the version and exit")
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *version {
		fmt.Fprintln(os.Stdout, "pelagosd", Version)
		return 0
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT)
	defer stop()
	ns, err := enter(ctx, log, stderr)
	if err != nil {
		log.Error("enter the user's namespaces", "err", err)
		return 1
	}
	if err := serve(ctx, log, ns, *idle); err != nil {
		log.Error("pelagosd failed", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, log *slog.Logger, ns *rootless.Namespace, idle time.Duration) error {
	paths, err := DefaultPaths(ns.UID)
	if err != nil {
		return err
	}
	for _, d := range []string{paths.Data, paths.Runtime} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	// Scratch files of loads that a crash interrupted.
	os.RemoveAll(paths.Tmp())
	// pasta goes to the background once a container's network is up;
	// as a child subreaper the service inherits and reaps it.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become a child subreaper: %w", err)
	}
	store, err := images.Open(images.Options{
		GraphRoot: paths.Storage(), RunRoot: paths.StorageRun(), TmpDir: paths.Tmp(),
		SingleMapping: ns.SingleMapping,
	})
	if err != nil {
		return err
	}
	defer store.Close()

	conn, err := connectBus(ctx, ns)
	if err != nil {
		return err
	}
	defer conn.Close()
	server, err := pdbus.NewServer(conn, pdbus.ManagerPath)
	if err != nil {
		return err
	}
	m, err := NewManager(ctx, log, paths, ns, store, server)
	if err != nil {
		return err
	}
	defer m.Shutdown()
	if ns.HolderIsNew {
		m.moveHolderToScope()
	}

	// Objects are exported before the name is taken, so the first call
	// that activated us finds them.
	reply, err := conn.RequestName(pdbus.BusName, godbus.NameFlagDoNotQueue)
	if err != nil {
		return fmt.Errorf("request bus name %s: %w", pdbus.BusName, err)
	}
	if reply != godbus.RequestNameReplyPrimaryOwner {
		return fmt.Errorf("bus name %s is already owned: another pelagosd runs for this user", pdbus.BusName)
	}
	log.Info("pelagosd ready", "version", Version, "driver", store.Driver(), "uids", rootless.MappedCount(ns.UIDMap), "data", paths.Data)

	tick := time.NewTicker(idleCheck(idle))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping on signal")
			return nil
		case <-conn.Context().Done():
			// The session ended (logout, dbus-run-session finished):
			// nobody can reach us any more.
			log.Info("stopping: the session bus went away")
			return nil
		case <-tick.C:
			if idle > 0 && m.Idle(idle) {
				// Release the name first: a new call then activates a
				// fresh service, while calls already addressed to us get
				// a moment to finish.
				conn.ReleaseName(pdbus.BusName)
				time.Sleep(time.Second)
				if !m.Idle(0) {
					// A call slipped in. Take the name back if no new
					// service has it; either way our children keep us.
					conn.RequestName(pdbus.BusName, godbus.NameFlagDoNotQueue)
					continue
				}
				log.Info("exiting: idle", "timeout", idle)
				return nil
			}
		}
	}
}

func idleCheck(idle time.Duration) time.Duration {
	if idle <= 0 || idle > 10*time.Second {
		return 10 * time.Second
	}
	return idle / 2
}

// connectBus connects to the session bus from inside the user namespace.
// There our uid is 0, but the bus knows us by our host uid, so EXTERNAL
// authentication must claim that one.
func connectBus(ctx context.Context, ns *rootless.Namespace) (*godbus.Conn, error) {
	addr := os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	if addr == "" {
		if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" {
			addr = "unix:path=" + rt + "/bus"
		}
	}
	if addr == "" {
		return nil, errors.New("no session bus: DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR are unset; pelagosd is started by D-Bus activation on the session bus")
	}
	uid := ns.UID
	if ns.Rootful {
		uid = uint32(os.Getuid())
	}
	conn, err := godbus.Connect(addr, godbus.WithContext(ctx), godbus.WithAuth(godbus.AuthExternal(strconv.FormatUint(uint64(uid), 10))))
	if err != nil {
		return nil, fmt.Errorf("connect to session bus %s: %w", addr, err)
	}
	return conn, nil
}

// enter joins the user's namespaces (see rootless.Enter). Outside, it
// does not return on success: the program executes itself again inside.
func enter(ctx context.Context, log *slog.Logger, stderr io.Writer) (*rootless.Namespace, error) {
	paths, err := DefaultPaths(uint32(os.Getuid()))
	if err != nil {
		return nil, err
	}
	return rootless.Enter(ctx, rootless.EnterOptions{
		RuntimeDir: paths.Runtime,
		ExitsDir:   paths.Exits(),
		Doors:      func() []rootless.Door { return doors(paths) },
		Warn:       stderr,
		Log:        func(msg string, args ...any) { log.Warn(msg, args...) },
	})
}

// doors lists the processes of running containers, monitors first, for
// a service that finds no holder: their namespaces are the ones to keep.
func doors(paths Paths) []rootless.Door {
	entries, _ := os.ReadDir(paths.Containers())
	var mons, ctrs []rootless.Door
	for _, e := range entries {
		r, err := loadRecord(filepath.Join(paths.Containers(), e.Name()))
		if err != nil || r.State != pdbus.StateRunning {
			continue
		}
		if r.Monitor.Pid > 0 {
			mons = append(mons, rootless.Door{Pid: r.Monitor.Pid, Start: r.Monitor.Start})
		}
		if r.Pid > 0 {
			ctrs = append(ctrs, rootless.Door{Pid: r.Pid, Start: r.PidStart})
		}
	}
	return append(mons, ctrs...)
}
