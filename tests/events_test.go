package tests

import (
	"strings"
	"testing"
	"time"

	godbus "github.com/godbus/dbus/v5"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// watch connects to the user's session bus (as root, which the test bus
// allows) and collects every pelagos signal.
func watch(t *testing.T, s *userSession) (*godbus.Conn, chan *godbus.Signal) {
	t.Helper()
	conn, err := godbus.Connect(s.busAddr)
	if err != nil {
		t.Fatalf("connect to the user's bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.AddMatchSignal(godbus.WithMatchSender(pdbus.BusName)); err != nil {
		t.Fatal(err)
	}
	ch := make(chan *godbus.Signal, 256)
	conn.Signal(ch)
	return conn, ch
}

// expect waits for a signal that pred accepts, failing after 10 s.
func expect(t *testing.T, ch chan *godbus.Signal, what string, pred func(*godbus.Signal) bool) *godbus.Signal {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case sig := <-ch:
			if pred(sig) {
				return sig
			}
		case <-timeout:
			t.Fatalf("no %s signal", what)
			return nil
		}
	}
}

// TestSignalsFollowLifecycle: a GUI learns every change from signals,
// never by polling.
func TestSignalsFollowLifecycle(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	conn, ch := watch(t, s)
	client := pdbus.NewClient(conn)
	ctx := t.Context()

	path, id, err := client.CreateContainer(ctx, pdbus.ContainerConfig{Image: "localhost/busybox", Name: "watched", Command: []string{"sh", "-c", "exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, ch, "InterfacesAdded", func(sig *godbus.Signal) bool {
		return sig.Name == pdbus.ObjectManagerIface+".InterfacesAdded" && sig.Body[0] == path
	})
	expect(t, ch, "ContainerAdded", func(sig *godbus.Signal) bool {
		return sig.Name == pdbus.ManagerInterface+".ContainerAdded" && sig.Body[1] == id
	})
	if err := client.Start(ctx, path); err != nil {
		t.Fatal(err)
	}
	states := []string{}
	expect(t, ch, "PropertiesChanged State=exited", func(sig *godbus.Signal) bool {
		if sig.Name != pdbus.PropertiesIface+".PropertiesChanged" || sig.Path != path {
			return false
		}
		changed := sig.Body[1].(map[string]godbus.Variant)
		if v, ok := changed["State"]; ok {
			states = append(states, v.Value().(string))
			return v.Value() == pdbus.StateExited
		}
		return false
	})
	if strings.Join(states, ",") != "running,exited" {
		t.Errorf("State went %v, want running then exited", states)
	}
	sig := expect(t, ch, "ContainerStateChanged exited", func(sig *godbus.Signal) bool {
		return sig.Name == pdbus.ManagerInterface+".ContainerStateChanged" && sig.Body[2] == pdbus.StateExited
	})
	if sig.Body[3].(int32) != 3 {
		t.Errorf("exit code in signal: %v", sig.Body[3])
	}
	if err := client.RemoveContainer(ctx, "watched", false); err != nil {
		t.Fatal(err)
	}
	expect(t, ch, "InterfacesRemoved", func(sig *godbus.Signal) bool {
		return sig.Name == pdbus.ObjectManagerIface+".InterfacesRemoved" && sig.Body[0] == path
	})
	expect(t, ch, "ContainerRemoved", func(sig *godbus.Signal) bool {
		return sig.Name == pdbus.ManagerInterface+".ContainerRemoved" && sig.Body[1] == id
	})
}

// TestNamedErrors: clients branch on error names, not on prose.
func TestNamedErrors(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	conn, _ := watch(t, s)
	client := pdbus.NewClient(conn)
	ctx := t.Context()
	check := func(err error, want pdbus.ErrorCode) {
		t.Helper()
		if pdbus.CodeOf(err) != want {
			t.Errorf("want %s, got %v", want.Name(), err)
		}
	}
	_, err := client.GetContainer(ctx, "nope")
	check(err, pdbus.ErrNoSuchContainer)
	_, _, err = client.CreateContainer(ctx, pdbus.ContainerConfig{Image: "localhost/nope"})
	check(err, pdbus.ErrNoSuchImage)
	_, _, err = client.CreateContainer(ctx, pdbus.ContainerConfig{Image: "localhost/busybox", Hostname: "bad\nhost"})
	check(err, pdbus.ErrInvalidArgument)
	path, _, err := client.CreateContainer(ctx, pdbus.ContainerConfig{Image: "localhost/busybox", Name: "errs", Command: []string{"/no/such"}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.RemoveContainer(ctx, "errs", true)
	check(client.Start(ctx, path), pdbus.ErrCommandNotFound)
	_, _, err = client.CreateContainer(ctx, pdbus.ContainerConfig{Image: "localhost/busybox", Name: "errs"})
	check(err, pdbus.ErrNameInUse)
	check(client.Kill(ctx, path, "TERM"), pdbus.ErrContainerNotRunning)
	check(client.Kill(ctx, path, "NOSIG"), pdbus.ErrInvalidArgument)
	_, err = client.RemoveImage(ctx, "localhost/busybox", false)
	check(err, pdbus.ErrImageInUse)
}
