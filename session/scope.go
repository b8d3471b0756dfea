package session

import (
	"fmt"
	"os"

	godbus "github.com/godbus/dbus/v5"
)

// moveHolderToScope puts the holder (and so every monitor and container
// it will parent) into a transient systemd scope of its own, when a
// systemd user manager runs: stopping or restarting pelagosd.service then
// kills only the service, as podman's containers live in scopes outside
// podman's unit. Without systemd (or when it refuses) nothing changes and
// the holder stays where it was started.
func (m *Manager) moveHolderToScope() {
	conn := m.server.Conn()
	var has bool
	if err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, "org.freedesktop.systemd1").Store(&has); err != nil || !has {
		return
	}
	pid := m.ns.Holder.Pid()
	type property struct {
		Name  string
		Value godbus.Variant
	}
	type aux struct {
		Name  string
		Props []property
	}
	props := []property{
		{"Description", godbus.MakeVariant("pelagos containers of " + userName())},
		{"PIDs", godbus.MakeVariant([]uint32{uint32(pid)})},
		// Containers with resource limits get cgroups of their own
		// below the holder's.
		{"Delegate", godbus.MakeVariant(true)},
	}
	name := fmt.Sprintf("pelagos-holder-%d.scope", pid)
	obj := conn.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
	var job godbus.ObjectPath
	err := obj.Call("org.freedesktop.systemd1.Manager.StartTransientUnit", 0, name, "fail", props, []aux{}).Store(&job)
	if err != nil {
		m.log.Warn("move pelagos-holder into a systemd scope: containers may be stopped with pelagosd.service", "err", err)
		return
	}
	m.log.Info("pelagos-holder runs in its own scope", "unit", name)
}

func userName() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return fmt.Sprint(os.Getuid())
}
