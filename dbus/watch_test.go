package dbus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	godbus "github.com/godbus/dbus/v5"
)

// privateBus starts a dbus-daemon of the test's own and returns its
// address.
func privateBus(t *testing.T) (string, *exec.Cmd) {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skip("dbus-daemon is not installed")
	}
	dir := t.TempDir()
	addr := "unix:path=" + filepath.Join(dir, "bus")
	conf := fmt.Sprintf(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`, addr)
	confFile := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dbus-daemon", "--config-file="+confFile, "--nofork", "--nopidfile")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(filepath.Join(dir, "bus")); err == nil {
			return addr, cmd
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the test bus did not come up")
	return "", nil
}

func dial(t *testing.T, addr string) *godbus.Conn {
	t.Helper()
	conn, err := godbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// blocker is a method that answers only when told to.
type blocker struct{ release chan struct{} }

func (b blocker) Block() *godbus.Error {
	<-b.release
	return nil
}

// fakeService takes BusName on a connection of its own; its Block
// method never answers.
func fakeService(t *testing.T, addr string) *godbus.Conn {
	t.Helper()
	conn := dial(t, addr)
	b := blocker{release: make(chan struct{})}
	t.Cleanup(func() { close(b.release) })
	if err := conn.Export(b, ManagerPath, ManagerInterface); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName(BusName, godbus.NameFlagDoNotQueue); err != nil || reply != godbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("request %s: %v %v", BusName, reply, err)
	}
	return conn
}

func wantGone(t *testing.T, ctx context.Context, busClosed bool) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("the watch did not notice")
	}
	var ge *ServiceGoneError
	if err := context.Cause(ctx); !errors.Is(err, ErrServiceGone) || !errors.As(err, &ge) || ge.BusClosed != busClosed {
		t.Fatalf("cause %v, want ErrServiceGone with BusClosed %v", err, busClosed)
	}
}

func TestWatchServiceLeaves(t *testing.T) {
	addr, _ := privateBus(t)
	svc := fakeService(t, addr)
	c := NewClient(dial(t, addr))
	ctx, stop, err := c.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// A call in flight ends with the watch's error.
	done := make(chan error, 1)
	go func() { done <- c.call(ctx, c.mgr, ManagerInterface, "Block", nil) }()
	time.Sleep(100 * time.Millisecond)
	svc.Close()
	wantGone(t, ctx, false)
	select {
	case err := <-done:
		if !errors.Is(err, ErrServiceGone) {
			t.Fatalf("call in flight: %v, want ErrServiceGone", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the call in flight did not end")
	}
}

func TestWatchNameReleasedConnectionStays(t *testing.T) {
	addr, _ := privateBus(t)
	svc := fakeService(t, addr)
	c := NewClient(dial(t, addr))
	ctx, stop, err := c.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// An idle exit that a late call stopped: the name goes, the
	// connection stays and still answers what it has.
	if _, err := svc.ReleaseName(BusName); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
		t.Fatalf("the watch ended while the connection stays: %v", context.Cause(ctx))
	case <-time.After(300 * time.Millisecond):
	}
	svc.Close()
	wantGone(t, ctx, false)
}

func TestWatchBusCloses(t *testing.T) {
	addr, bus := privateBus(t)
	fakeService(t, addr)
	c := NewClient(dial(t, addr))
	ctx, stop, err := c.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	bus.Process.Kill()
	wantGone(t, ctx, true)
}

func TestWatchNoService(t *testing.T) {
	addr, _ := privateBus(t)
	c := NewClient(dial(t, addr))
	// Nothing owns the name and nothing can be activated.
	if _, _, err := c.Watch(context.Background()); !IsServiceUnknown(err) {
		t.Fatalf("watch without a service: %v, want ServiceUnknown", err)
	}
}

func TestWatchStop(t *testing.T) {
	addr, _ := privateBus(t)
	fakeService(t, addr)
	c := NewClient(dial(t, addr))
	ctx, stop, err := c.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stop()
	stop() // twice is fine
	if err := context.Cause(ctx); errors.Is(err, ErrServiceGone) {
		t.Fatalf("a stopped watch says the service went: %v", err)
	}
}
