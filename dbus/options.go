package dbus

import (
	"sort"
	"strings"

	godbus "github.com/godbus/dbus/v5"
)

// ContainerConfig is the a{sv} argument of Manager.CreateContainer.
type ContainerConfig struct {
	Image      string
	Command    []string
	Entrypoint []string // nil: the image's; [""]: none
	Name       string
	Env        []string
	WorkingDir string
	User       string
	Hostname   string
	AutoRemove bool
	// Isolation: see the interface XML.
	CapAdd      []string
	CapDrop     []string
	SecurityOpt []string
	Privileged  bool
	ReadOnly    bool
	// ReadOnlyTmpfs (default true) gives a ReadOnly root tmpfs on /tmp,
	// /var/tmp and /run.
	ReadOnlyTmpfs bool
	// Volumes are -v specs, Tmpfs --tmpfs specs.
	Volumes []string
	Tmpfs   []string
	// Ulimits (NAME=SOFT[:HARD]), Sysctls (KEY=VALUE), GroupAdd (ids or
	// names) and Devices (/dev/X[:/dev/Y][:rwm]).
	Ulimits  []string
	Sysctls  []string
	GroupAdd []string
	Devices  []string
	// Limits, applied with cgroup v2 where delegated: Memory and
	// MemorySwap are sizes ("512m"), CPUs a number ("1.5").
	Memory     string
	MemorySwap string
	CPUs       string
	CPUShares  uint64
	CpusetCPUs string
	PidsLimit  int64
	// Cgroups is "enabled" (default) or "disabled": run without limits.
	Cgroups string
	// Restart is no, on-failure[:N], always or unless-stopped.
	Restart string
	// Init runs a minimal init as PID 1 (--init).
	Init bool
	// Network is the --network mode; Publish are -p specs; DNS,
	// DNSSearch, DNSOptions and AddHosts shape resolv.conf and hosts.
	// MacAddress and IP are refused rootless, with the reason.
	Network    string
	Publish    []string
	DNS        []string
	DNSSearch  []string
	DNSOptions []string
	AddHosts   []string
	MacAddress string
	IP         string
	// Labels are KEY=VALUE metadata (-l/--label), added to the image's.
	Labels []string
	// StopSignal replaces the image's StopSignal (default SIGTERM).
	StopSignal string
	// Health check: HealthCmd (a shell command or a JSON array) and the
	// rest override the image's HEALTHCHECK; NoHealthcheck turns it off.
	HealthCmd         string
	HealthInterval    string
	HealthTimeout     string
	HealthStartPeriod string
	HealthRetries     int64
	NoHealthcheck     bool
	// MaskedPaths are hidden in the container on top of the defaults.
	MaskedPaths []string
	// UserNS is the --userns mode (keep-id[:uid=U,gid=G], auto[:size=N],
	// host); UIDMap and GIDMap are --uidmap/--gidmap CONTAINER:HOST:SIZE
	// triples whose host ids count in the user's namespace.
	UserNS string
	UIDMap []string
	GIDMap []string
	// AppArmorProfile and SELinuxLabel confine the command where that
	// security module is active (--apparmor-profile, --selinux-label).
	AppArmorProfile string
	SELinuxLabel    string
	// Networks are more bridge networks after Network (repeated
	// --network); NAT asks for the default bridge (--nat); Links are
	// NAME[:ALIAS] names of other containers (--link); DNSBackend is
	// "builtin"; DefaultSubnet is the default bridge's subnet when it is
	// made (--default-subnet).
	Networks      []string
	PublishAll    bool
	NAT           bool
	Links         []string
	DNSBackend    string
	DefaultSubnet string
}

// ImportOptions is the a{sv} argument of Manager.ImportImage.
type ImportOptions struct {
	Cmd        []string
	Entrypoint []string
	Env        []string
	WorkingDir string
	User       string
	Message    string
	// ExposedPorts are PORT/PROTO entries (EXPOSE).
	ExposedPorts []string
}

// Options encodes the config for the bus, leaving out unset fields.
func (c ContainerConfig) Options() map[string]godbus.Variant {
	m := map[string]godbus.Variant{"Image": godbus.MakeVariant(c.Image)}
	putStrings(m, "Command", c.Command)
	putStrings(m, "Entrypoint", c.Entrypoint)
	putString(m, "Name", c.Name)
	putStrings(m, "Env", c.Env)
	putString(m, "WorkingDir", c.WorkingDir)
	putString(m, "User", c.User)
	putString(m, "Hostname", c.Hostname)
	if c.AutoRemove {
		m["AutoRemove"] = godbus.MakeVariant(true)
	}
	putStrings(m, "CapAdd", c.CapAdd)
	putStrings(m, "CapDrop", c.CapDrop)
	putStrings(m, "SecurityOpt", c.SecurityOpt)
	if c.Privileged {
		m["Privileged"] = godbus.MakeVariant(true)
	}
	if c.ReadOnly {
		m["ReadOnly"] = godbus.MakeVariant(true)
		m["ReadOnlyTmpfs"] = godbus.MakeVariant(c.ReadOnlyTmpfs)
	}
	putStrings(m, "Volumes", c.Volumes)
	putStrings(m, "Tmpfs", c.Tmpfs)
	putStrings(m, "Ulimits", c.Ulimits)
	putStrings(m, "Sysctls", c.Sysctls)
	putStrings(m, "GroupAdd", c.GroupAdd)
	putStrings(m, "Devices", c.Devices)
	putString(m, "Memory", c.Memory)
	putString(m, "MemorySwap", c.MemorySwap)
	putString(m, "CPUs", c.CPUs)
	if c.CPUShares != 0 {
		m["CPUShares"] = godbus.MakeVariant(c.CPUShares)
	}
	putString(m, "CpusetCPUs", c.CpusetCPUs)
	if c.PidsLimit != 0 {
		m["PidsLimit"] = godbus.MakeVariant(c.PidsLimit)
	}
	putString(m, "Cgroups", c.Cgroups)
	putString(m, "Restart", c.Restart)
	if c.Init {
		m["Init"] = godbus.MakeVariant(true)
	}
	putString(m, "Network", c.Network)
	putStrings(m, "Publish", c.Publish)
	putStrings(m, "DNS", c.DNS)
	putStrings(m, "DNSSearch", c.DNSSearch)
	putStrings(m, "DNSOptions", c.DNSOptions)
	putStrings(m, "AddHosts", c.AddHosts)
	putString(m, "MacAddress", c.MacAddress)
	putString(m, "IP", c.IP)
	putStrings(m, "Labels", c.Labels)
	putString(m, "StopSignal", c.StopSignal)
	putString(m, "HealthCmd", c.HealthCmd)
	putString(m, "HealthInterval", c.HealthInterval)
	putString(m, "HealthTimeout", c.HealthTimeout)
	putString(m, "HealthStartPeriod", c.HealthStartPeriod)
	if c.HealthRetries != 0 {
		m["HealthRetries"] = godbus.MakeVariant(c.HealthRetries)
	}
	if c.NoHealthcheck {
		m["NoHealthcheck"] = godbus.MakeVariant(true)
	}
	putStrings(m, "MaskedPaths", c.MaskedPaths)
	putString(m, "UserNS", c.UserNS)
	putStrings(m, "UIDMap", c.UIDMap)
	putStrings(m, "GIDMap", c.GIDMap)
	putString(m, "AppArmorProfile", c.AppArmorProfile)
	putString(m, "SELinuxLabel", c.SELinuxLabel)
	putStrings(m, "Networks", c.Networks)
	if c.NAT {
		m["NAT"] = godbus.MakeVariant(true)
	}
	if c.PublishAll {
		m["PublishAll"] = godbus.MakeVariant(true)
	}
	putStrings(m, "Links", c.Links)
	putString(m, "DNSBackend", c.DNSBackend)
	putString(m, "DefaultSubnet", c.DefaultSubnet)
	return m
}

// Options encodes the import options for the bus.
func (o ImportOptions) Options() map[string]godbus.Variant {
	m := map[string]godbus.Variant{}
	putStrings(m, "Cmd", o.Cmd)
	putStrings(m, "Entrypoint", o.Entrypoint)
	putStrings(m, "Env", o.Env)
	putString(m, "WorkingDir", o.WorkingDir)
	putString(m, "User", o.User)
	putString(m, "Message", o.Message)
	putStrings(m, "ExposedPorts", o.ExposedPorts)
	return m
}

func putString(m map[string]godbus.Variant, k, v string) {
	if v != "" {
		m[k] = godbus.MakeVariant(v)
	}
}

func putStrings(m map[string]godbus.Variant, k string, v []string) {
	if v != nil {
		m[k] = godbus.MakeVariant(v)
	}
}

// decoder reads typed values out of an a{sv} and remembers the first
// problem, so a parser reads like a list of fields.
type decoder struct {
	m    map[string]godbus.Variant
	seen map[string]bool
	err  error
}

func newDecoder(m map[string]godbus.Variant) *decoder {
	return &decoder{m: m, seen: map[string]bool{}}
}

// get reads key into dst when present, remembering a type mismatch.
func get[T any](d *decoder, key string, dst *T) {
	d.seen[key] = true
	v, ok := d.m[key]
	if !ok || d.err != nil {
		return
	}
	val, ok := v.Value().(T)
	if !ok {
		want := godbus.SignatureOf(*dst).String()
		d.err = Errorf(ErrInvalidArgument, "option %q must be %s (%s), got %s", key, typeNames[want], want, v.Signature())
		return
	}
	*dst = val
}

var typeNames = map[string]string{
	"s": "a string", "as": "a string array", "b": "a boolean",
	"q": "a uint16", "t": "a uint64", "x": "an int64",
}

func (d *decoder) str(key string, dst *string)    { get(d, key, dst) }
func (d *decoder) boolean(key string, dst *bool)  { get(d, key, dst) }
func (d *decoder) uint16(key string, dst *uint16) { get(d, key, dst) }
func (d *decoder) uint64(key string, dst *uint64) { get(d, key, dst) }
func (d *decoder) int64(key string, dst *int64)   { get(d, key, dst) }
func (d *decoder) strs(key string, dst *[]string) {
	get(d, key, dst)
	if *dst == nil && d.m[key].Value() != nil {
		*dst = []string{} // present but empty stays distinct from absent
	}
}

// finish reports the first type error, or else any key nobody asked for.
func (d *decoder) finish(what string) error {
	if d.err != nil {
		return d.err
	}
	var unknown, known []string
	for k := range d.m {
		if !d.seen[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	for k := range d.seen {
		known = append(known, k)
	}
	sort.Strings(unknown)
	sort.Strings(known)
	return Errorf(ErrInvalidArgument, "unknown %s option(s) %s; known: %s", what, strings.Join(unknown, ", "), strings.Join(known, ", "))
}

// ParseContainerConfig decodes and checks the a{sv} of CreateContainer.
func ParseContainerConfig(m map[string]godbus.Variant) (ContainerConfig, error) {
	c := ContainerConfig{ReadOnlyTmpfs: true}
	d := newDecoder(m)
	d.str("Image", &c.Image)
	d.strs("Command", &c.Command)
	d.strs("Entrypoint", &c.Entrypoint)
	d.str("Name", &c.Name)
	d.strs("Env", &c.Env)
	d.str("WorkingDir", &c.WorkingDir)
	d.str("User", &c.User)
	d.str("Hostname", &c.Hostname)
	d.boolean("AutoRemove", &c.AutoRemove)
	d.strs("CapAdd", &c.CapAdd)
	d.strs("CapDrop", &c.CapDrop)
	d.strs("SecurityOpt", &c.SecurityOpt)
	d.boolean("Privileged", &c.Privileged)
	d.boolean("ReadOnly", &c.ReadOnly)
	d.boolean("ReadOnlyTmpfs", &c.ReadOnlyTmpfs)
	d.strs("Volumes", &c.Volumes)
	d.strs("Tmpfs", &c.Tmpfs)
	d.strs("Ulimits", &c.Ulimits)
	d.strs("Sysctls", &c.Sysctls)
	d.strs("GroupAdd", &c.GroupAdd)
	d.strs("Devices", &c.Devices)
	d.str("Memory", &c.Memory)
	d.str("MemorySwap", &c.MemorySwap)
	d.str("CPUs", &c.CPUs)
	d.uint64("CPUShares", &c.CPUShares)
	d.str("CpusetCPUs", &c.CpusetCPUs)
	d.int64("PidsLimit", &c.PidsLimit)
	d.str("Cgroups", &c.Cgroups)
	d.str("Restart", &c.Restart)
	d.boolean("Init", &c.Init)
	d.str("Network", &c.Network)
	d.strs("Publish", &c.Publish)
	d.strs("DNS", &c.DNS)
	d.strs("DNSSearch", &c.DNSSearch)
	d.strs("DNSOptions", &c.DNSOptions)
	d.strs("AddHosts", &c.AddHosts)
	d.str("MacAddress", &c.MacAddress)
	d.str("IP", &c.IP)
	d.strs("Labels", &c.Labels)
	d.str("StopSignal", &c.StopSignal)
	d.str("HealthCmd", &c.HealthCmd)
	d.str("HealthInterval", &c.HealthInterval)
	d.str("HealthTimeout", &c.HealthTimeout)
	d.str("HealthStartPeriod", &c.HealthStartPeriod)
	d.int64("HealthRetries", &c.HealthRetries)
	d.boolean("NoHealthcheck", &c.NoHealthcheck)
	d.strs("MaskedPaths", &c.MaskedPaths)
	d.str("UserNS", &c.UserNS)
	d.strs("UIDMap", &c.UIDMap)
	d.strs("GIDMap", &c.GIDMap)
	d.str("AppArmorProfile", &c.AppArmorProfile)
	d.str("SELinuxLabel", &c.SELinuxLabel)
	d.strs("Networks", &c.Networks)
	d.boolean("NAT", &c.NAT)
	d.boolean("PublishAll", &c.PublishAll)
	d.strs("Links", &c.Links)
	d.str("DNSBackend", &c.DNSBackend)
	d.str("DefaultSubnet", &c.DefaultSubnet)
	if err := d.finish("container"); err != nil {
		return c, err
	}
	return c, nil
}

// NetworkOptions is the a{sv} argument of Manager.CreateNetwork.
type NetworkOptions struct {
	Subnet, Gateway string
	Internal        bool
}

// Options encodes the network options for the bus.
func (o NetworkOptions) Options() map[string]godbus.Variant {
	m := map[string]godbus.Variant{}
	putString(m, "Subnet", o.Subnet)
	putString(m, "Gateway", o.Gateway)
	if o.Internal {
		m["Internal"] = godbus.MakeVariant(true)
	}
	return m
}

// ParseNetworkOptions decodes and checks the a{sv} of CreateNetwork.
func ParseNetworkOptions(m map[string]godbus.Variant) (NetworkOptions, error) {
	var o NetworkOptions
	d := newDecoder(m)
	d.str("Subnet", &o.Subnet)
	d.str("Gateway", &o.Gateway)
	d.boolean("Internal", &o.Internal)
	return o, d.finish("network")
}

// ParseImportOptions decodes and checks the a{sv} of ImportImage.
func ParseImportOptions(m map[string]godbus.Variant) (ImportOptions, error) {
	var o ImportOptions
	d := newDecoder(m)
	d.strs("ExposedPorts", &o.ExposedPorts)
	d.strs("Cmd", &o.Cmd)
	d.strs("Entrypoint", &o.Entrypoint)
	d.strs("Env", &o.Env)
	d.str("WorkingDir", &o.WorkingDir)
	d.str("User", &o.User)
	d.str("Message", &o.Message)
	return o, d.finish("import")
}

// ParseNoOptions checks that an a{sv} reserved for the future is empty.
func ParseNoOptions(m map[string]godbus.Variant, what string) error {
	return newDecoder(m).finish(what)
}

// TerminalOptions is the a{sv} argument of Container.StartWithTerminal.
type TerminalOptions struct {
	Rows, Columns uint16
}

// Options encodes the terminal options for the bus.
func (o TerminalOptions) Options() map[string]godbus.Variant {
	m := map[string]godbus.Variant{}
	if o.Rows > 0 && o.Columns > 0 {
		m["Rows"] = godbus.MakeVariant(o.Rows)
		m["Columns"] = godbus.MakeVariant(o.Columns)
	}
	return m
}

// ParseTerminalOptions decodes and checks the a{sv} of StartWithTerminal.
func ParseTerminalOptions(m map[string]godbus.Variant) (TerminalOptions, error) {
	var o TerminalOptions
	d := newDecoder(m)
	d.uint16("Rows", &o.Rows)
	d.uint16("Columns", &o.Columns)
	return o, d.finish("terminal")
}

// RegistryOptions are the options every registry call shares.
type RegistryOptions struct {
	TLSVerify bool
	// AuthFile is an absolute path replacing the default auth.json.
	AuthFile string
	// Creds is USER[:PASSWORD], used instead of stored credentials.
	Creds string
}

func (o RegistryOptions) put(m map[string]godbus.Variant) {
	m["TLSVerify"] = godbus.MakeVariant(o.TLSVerify)
	putString(m, "AuthFile", o.AuthFile)
	putString(m, "Creds", o.Creds)
}

func (o *RegistryOptions) get(d *decoder) {
	o.TLSVerify = true
	d.boolean("TLSVerify", &o.TLSVerify)
	d.str("AuthFile", &o.AuthFile)
	d.str("Creds", &o.Creds)
}

// PullOptions is the a{sv} argument of Manager.PullImage.
type PullOptions struct {
	RegistryOptions
	// Platform is OS/ARCH[/VARIANT].
	Platform string
}

// Options encodes the pull options for the bus.
func (o PullOptions) Options() map[string]godbus.Variant {
	m := map[string]godbus.Variant{}
	o.put(m)
	putString(m, "Platform", o.Platform)
	return m
}

// ParsePullOptions decodes and checks the a{sv} of PullImage.
func ParsePullOptions(m map[string]godbus.Variant) (PullOptions, error) {
	var o PullOptions
	d := newDecoder(m)
	o.get(d)
	d.str("Platform", &o.Platform)
	return o, d.finish("pull")
}

// PushOptions is the a{sv} argument of Manager.PushImage.
type PushOptions struct {
	RegistryOptions
	// Format is "" (keep), "oci" or "v2s2".
	Format string
}

// Options encodes the push options for the bus.
func (o PushOptions) Options() map[string]godbus.Variant {
	m := map[string]godbus.Variant{}
	o.put(m)
	putString(m, "Format", o.Format)
	return m
}

// ParsePushOptions decodes and checks the a{sv} of PushImage.
func ParsePushOptions(m map[string]godbus.Variant) (PushOptions, error) {
	var o PushOptions
	d := newDecoder(m)
	o.get(d)
	d.str("Format", &o.Format)
	return o, d.finish("push")
}

// LoginOptions is the a{sv} argument of Manager.Login and Logout.
type LoginOptions struct {
	TLSVerify bool
	AuthFile  string
	// All (Logout only) removes the credentials of every registry.
	All bool
}

// Options encodes the login options for the bus.
func (o LoginOptions) Options() map[string]godbus.Variant {
	m := map[string]godbus.Variant{"TLSVerify": godbus.MakeVariant(o.TLSVerify)}
	putString(m, "AuthFile", o.AuthFile)
	if o.All {
		m["All"] = godbus.MakeVariant(true)
	}
	return m
}

// ParseLoginOptions decodes and checks the a{sv} of Login and Logout.
func ParseLoginOptions(m map[string]godbus.Variant) (LoginOptions, error) {
	o := LoginOptions{TLSVerify: true}
	d := newDecoder(m)
	d.boolean("TLSVerify", &o.TLSVerify)
	d.str("AuthFile", &o.AuthFile)
	d.boolean("All", &o.All)
	return o, d.finish("login")
}

// ExecOptions is the a{sv} argument of Container.ExecWithStdio.
type ExecOptions struct {
	Env        []string
	WorkingDir string
	User       string
	// Detach (ExecWithStdio only) returns 0 once the command runs.
	Detach bool
}

// Options encodes the exec options for the bus.
func (o ExecOptions) Options() map[string]godbus.Variant {
	m := map[string]godbus.Variant{}
	putStrings(m, "Env", o.Env)
	putString(m, "WorkingDir", o.WorkingDir)
	putString(m, "User", o.User)
	if o.Detach {
		m["Detach"] = godbus.MakeVariant(true)
	}
	return m
}

// ParseExecOptions decodes and checks the a{sv} of ExecWithStdio.
func ParseExecOptions(m map[string]godbus.Variant) (ExecOptions, error) {
	var o ExecOptions
	d := newDecoder(m)
	d.strs("Env", &o.Env)
	d.str("WorkingDir", &o.WorkingDir)
	d.str("User", &o.User)
	d.boolean("Detach", &o.Detach)
	return o, d.finish("exec")
}

// ExecTerminalOptions is the a{sv} argument of Container.ExecWithTerminal.
type ExecTerminalOptions struct {
	ExecOptions
	Rows, Columns uint16
}

// Options encodes the options for the bus.
func (o ExecTerminalOptions) Options() map[string]godbus.Variant {
	m := o.ExecOptions.Options()
	if o.Rows > 0 && o.Columns > 0 {
		m["Rows"] = godbus.MakeVariant(o.Rows)
		m["Columns"] = godbus.MakeVariant(o.Columns)
	}
	return m
}

// ParseExecTerminalOptions decodes and checks the a{sv} of ExecWithTerminal.
func ParseExecTerminalOptions(m map[string]godbus.Variant) (ExecTerminalOptions, error) {
	var o ExecTerminalOptions
	d := newDecoder(m)
	d.strs("Env", &o.Env)
	d.str("WorkingDir", &o.WorkingDir)
	d.str("User", &o.User)
	d.uint16("Rows", &o.Rows)
	d.uint16("Columns", &o.Columns)
	return o, d.finish("exec")
}
