// Package dbus is the pelagos D-Bus contract: the interface XML (the
// source of truth, embedded here), the names, object paths and error
// names it fixes, the conversion of option dictionaries, an object server
// with org.freedesktop.DBus.ObjectManager, and a typed client.
package dbus

import (
	_ "embed"
	"fmt"
	"strings"

	godbus "github.com/godbus/dbus/v5"
)

// InterfaceXML is the introspection data of every pelagos interface.
//
//go:embed io.pelagos.Pelagos1.xml
var InterfaceXML string

// Names fixed by the contract.
const (
	BusName          = "io.pelagos.Pelagos1"
	ManagerPath      = godbus.ObjectPath("/io/pelagos/Pelagos1")
	ManagerInterface = "io.pelagos.Pelagos1.Manager"
	ContainerIface   = "io.pelagos.Pelagos1.Container"
	ImageIface       = "io.pelagos.Pelagos1.Image"
	JobIface         = "io.pelagos.Pelagos1.Job"
	NetworkIface     = "io.pelagos.Pelagos1.Network"
	ErrorPrefix      = "io.pelagos.Pelagos1.Error."
	APIVersion       = uint32(1)

	ObjectManagerIface = "org.freedesktop.DBus.ObjectManager"
	PropertiesIface    = "org.freedesktop.DBus.Properties"
)

// ContainerPath is the object path of the container with the given id.
func ContainerPath(id string) godbus.ObjectPath {
	return godbus.ObjectPath(fmt.Sprintf("%s/container/%s", ManagerPath, id))
}

// ImagePath is the object path of the image with the given id.
func ImagePath(id string) godbus.ObjectPath {
	return godbus.ObjectPath(fmt.Sprintf("%s/image/%s", ManagerPath, id))
}

// NetworkPath is the object path of the user's network name. Network
// names may hold "." and "-", which object paths may not: every byte
// other than a letter or digit is written as _XX (its hex value).
func NetworkPath(name string) godbus.ObjectPath {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	return godbus.ObjectPath(fmt.Sprintf("%s/network/%s", ManagerPath, b.String()))
}

// Container states.
const (
	StateCreated = "created"
	StateRunning = "running"
	StateExited  = "exited"
)

// JobPath is the object path of the job with the given number.
func JobPath(n uint64) godbus.ObjectPath {
	return godbus.ObjectPath(fmt.Sprintf("%s/job/%d", ManagerPath, n))
}

// Job results, as JobFinished reports them.
const (
	JobDone      = "done"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)
