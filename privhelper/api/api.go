// Package api holds the names that make up the io.pelagos.PrivHelper1
// contract on the system bus: the bus name, object path and interface, the
// polkit actions the helper checks and the D-Bus error names it returns. The
// helper and its client both import it so the two cannot drift apart.
package api

const (
	// BusName is the well-known name the helper owns on the system bus.
	BusName = "io.pelagos.PrivHelper1"
	// ObjectPath is the helper's only object.
	ObjectPath = "/io/pelagos/PrivHelper1"
	// Interface is the helper's interface on ObjectPath.
	Interface = "io.pelagos.PrivHelper1"

	// ActionNetwork is the polkit action for creating and removing networks,
	// attaching and detaching namespaces and forwarding host ports >= 1024.
	ActionNetwork = "io.pelagos.privhelper.network"
	// ActionPrivilegedPort is the stricter polkit action also needed to
	// forward a host port below 1024.
	ActionPrivilegedPort = "io.pelagos.privhelper.publish-privileged-port"

	// RulesExample is where packages install the example polkit rule that
	// denial messages point administrators to.
	RulesExample = "/usr/share/doc/pelagos/50-pelagos.rules.example"

	// DefaultNetwork is the name of each user's default network, created on
	// first use by Attach.
	DefaultNetwork = "bridge"
)

// D-Bus error names returned by the helper.
const (
	ErrorPrefix          = Interface + ".Error."
	ErrorNotAuthorized   = ErrorPrefix + "NotAuthorized"
	ErrorInvalidArgument = ErrorPrefix + "InvalidArgument"
	ErrorNotFound        = ErrorPrefix + "NotFound"
	ErrorExists          = ErrorPrefix + "Exists"
	ErrorBusy            = ErrorPrefix + "Busy"
	ErrorPortInUse       = ErrorPrefix + "PortInUse"
	ErrorAddressInUse    = ErrorPrefix + "AddressInUse"
	ErrorFailed          = ErrorPrefix + "Failed"
)

// Introspection is the interface's XML, served by the helper and documented
// in docs/privhelper.md.
const Introspection = `<interface name="io.pelagos.PrivHelper1">
  <!-- CreateNetwork: a bridge network owned by the caller. options: subnet (s, private CIDR), gateway (s), internal (b). -->
  <method name="CreateNetwork">
    <arg name="name" type="s" direction="in"/>
    <arg name="options" type="a{sv}" direction="in"/>
    <arg name="subnet" type="s" direction="out"/>
    <arg name="gateway" type="s" direction="out"/>
    <arg name="bridge" type="s" direction="out"/>
  </method>
  <!-- RemoveNetwork: refused (Error.Busy) while the network has leases. -->
  <method name="RemoveNetwork">
    <arg name="name" type="s" direction="in"/>
  </method>
  <!-- ListNetworks: the caller's networks as (name, subnet, gateway, bridge, internal). -->
  <method name="ListNetworks">
    <arg name="networks" type="a(ssssb)" direction="out"/>
  </method>
  <!-- Attach: a veth from the network's bridge into the network namespace netns (an nsfs fd owned by the caller). options: ip (s), ifname (s), container (s). -->
  <method name="Attach">
    <arg name="netns" type="h" direction="in"/>
    <arg name="network" type="s" direction="in"/>
    <arg name="options" type="a{sv}" direction="in"/>
    <arg name="lease" type="s" direction="out"/>
    <arg name="address" type="s" direction="out"/>
    <arg name="gateway" type="s" direction="out"/>
    <arg name="ifname" type="s" direction="out"/>
    <arg name="mac" type="s" direction="out"/>
  </method>
  <!-- Detach: remove a lease, its link and its forwards. -->
  <method name="Detach">
    <arg name="lease" type="s" direction="in"/>
  </method>
  <!-- ListLeases: the caller's leases as (lease, network, address, container, ifname). -->
  <method name="ListLeases">
    <arg name="leases" type="a(sssss)" direction="out"/>
  </method>
  <!-- AddForward: forward host_ip:host_port (proto tcp|udp; "" or 0.0.0.0 = every IPv4 address) to the lease's container_port. -->
  <method name="AddForward">
    <arg name="lease" type="s" direction="in"/>
    <arg name="proto" type="s" direction="in"/>
    <arg name="host_ip" type="s" direction="in"/>
    <arg name="host_port" type="q" direction="in"/>
    <arg name="container_port" type="q" direction="in"/>
    <arg name="forward" type="s" direction="out"/>
  </method>
  <!-- RemoveForward: remove a forward and release its host port. -->
  <method name="RemoveForward">
    <arg name="forward" type="s" direction="in"/>
  </method>
  <!-- ListForwards: the caller's forwards as (forward, lease, proto, host_ip, host_port, container_port). -->
  <method name="ListForwards">
    <arg name="forwards" type="a(ssssqq)" direction="out"/>
  </method>
</interface>`
