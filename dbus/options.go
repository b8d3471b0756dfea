package dbus

import (
	"fmt"
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
	// LogDriver is k8s-file (the default: output kept for `logs`),
	// passthrough (an attached run's output goes straight to the
	// caller, unlogged) or none (nothing is kept).
	LogDriver string
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

// fields ties each option key to the field holding it; one table
// serves both directions (encode, decoder.fields).
func (c *ContainerConfig) fields() []field {
	return []field{
		{"Image", &c.Image},
		{"Command", &c.Command},
		{"Entrypoint", &c.Entrypoint},
		{"Name", &c.Name},
		{"Env", &c.Env},
		{"WorkingDir", &c.WorkingDir},
		{"User", &c.User},
		{"Hostname", &c.Hostname},
		{"AutoRemove", &c.AutoRemove},
		{"CapAdd", &c.CapAdd},
		{"CapDrop", &c.CapDrop},
		{"SecurityOpt", &c.SecurityOpt},
		{"Privileged", &c.Privileged},
		{"ReadOnly", &c.ReadOnly},
		{"Volumes", &c.Volumes},
		{"Tmpfs", &c.Tmpfs},
		{"Ulimits", &c.Ulimits},
		{"Sysctls", &c.Sysctls},
		{"GroupAdd", &c.GroupAdd},
		{"Devices", &c.Devices},
		{"Memory", &c.Memory},
		{"MemorySwap", &c.MemorySwap},
		{"CPUs", &c.CPUs},
		{"CPUShares", &c.CPUShares},
		{"CpusetCPUs", &c.CpusetCPUs},
		{"PidsLimit", &c.PidsLimit},
		{"Cgroups", &c.Cgroups},
		{"Restart", &c.Restart},
		{"Init", &c.Init},
		{"Network", &c.Network},
		{"Publish", &c.Publish},
		{"DNS", &c.DNS},
		{"DNSSearch", &c.DNSSearch},
		{"DNSOptions", &c.DNSOptions},
		{"AddHosts", &c.AddHosts},
		{"MacAddress", &c.MacAddress},
		{"IP", &c.IP},
		{"Labels", &c.Labels},
		{"StopSignal", &c.StopSignal},
		{"HealthCmd", &c.HealthCmd},
		{"HealthInterval", &c.HealthInterval},
		{"HealthTimeout", &c.HealthTimeout},
		{"HealthStartPeriod", &c.HealthStartPeriod},
		{"HealthRetries", &c.HealthRetries},
		{"NoHealthcheck", &c.NoHealthcheck},
		{"MaskedPaths", &c.MaskedPaths},
		{"UserNS", &c.UserNS},
		{"UIDMap", &c.UIDMap},
		{"GIDMap", &c.GIDMap},
		{"AppArmorProfile", &c.AppArmorProfile},
		{"SELinuxLabel", &c.SELinuxLabel},
		{"Networks", &c.Networks},
		{"NAT", &c.NAT},
		{"PublishAll", &c.PublishAll},
		{"Links", &c.Links},
		{"DNSBackend", &c.DNSBackend},
		{"DefaultSubnet", &c.DefaultSubnet},
		{"LogDriver", &c.LogDriver},
	}
}

// Options encodes the config for the bus, leaving out unset fields.
func (c ContainerConfig) Options() map[string]godbus.Variant {
	m := encode(c.fields())
	if c.ReadOnly {
		// Only meaningful with ReadOnly, and its default is true.
		m["ReadOnlyTmpfs"] = godbus.MakeVariant(c.ReadOnlyTmpfs)
	}
	return m
}

// Options encodes the import options for the bus.
func (o ImportOptions) Options() map[string]godbus.Variant { return encode(o.fields()) }

func (o *ImportOptions) fields() []field {
	return []field{
		{"Cmd", &o.Cmd}, {"Entrypoint", &o.Entrypoint}, {"Env", &o.Env}, {"WorkingDir", &o.WorkingDir},
		{"User", &o.User}, {"Message", &o.Message}, {"ExposedPorts", &o.ExposedPorts},
	}
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

// field ties an option key to the struct field holding its value: a
// *string, *[]string, *bool, *uint16, *uint64 or *int64.
type field struct {
	key string
	ptr any
}

// encode puts the fields that are set in a new a{sv}: empty strings,
// false, 0 and nil slices are left out (an empty, non-nil slice is sent:
// it can mean "none" rather than "the default").
func encode(fields []field) map[string]godbus.Variant {
	m := map[string]godbus.Variant{}
	for _, f := range fields {
		switch p := f.ptr.(type) {
		case *string:
			putString(m, f.key, *p)
		case *[]string:
			putStrings(m, f.key, *p)
		case *bool:
			if *p {
				m[f.key] = godbus.MakeVariant(true)
			}
		case *uint16:
			if *p != 0 {
				m[f.key] = godbus.MakeVariant(*p)
			}
		case *uint64:
			if *p != 0 {
				m[f.key] = godbus.MakeVariant(*p)
			}
		case *int64:
			if *p != 0 {
				m[f.key] = godbus.MakeVariant(*p)
			}
		default:
			panic(fmt.Sprintf("dbus: option %q has an unsupported type %T", f.key, f.ptr))
		}
	}
	return m
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

// fields reads every field of a table.
func (d *decoder) fields(fs []field) {
	for _, f := range fs {
		switch p := f.ptr.(type) {
		case *string:
			d.str(f.key, p)
		case *[]string:
			d.strs(f.key, p)
		case *bool:
			d.boolean(f.key, p)
		case *uint16:
			d.uint16(f.key, p)
		case *uint64:
			d.uint64(f.key, p)
		case *int64:
			d.int64(f.key, p)
		default:
			panic(fmt.Sprintf("dbus: option %q has an unsupported type %T", f.key, f.ptr))
		}
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
	d.fields(c.fields())
	d.boolean("ReadOnlyTmpfs", &c.ReadOnlyTmpfs)
	return c, d.finish("container")
}

// NetworkOptions is the a{sv} argument of Manager.CreateNetwork.
type NetworkOptions struct {
	Subnet, Gateway string
	Internal        bool
}

// Options encodes the network options for the bus.
func (o NetworkOptions) Options() map[string]godbus.Variant { return encode(o.fields()) }

func (o *NetworkOptions) fields() []field {
	return []field{{"Subnet", &o.Subnet}, {"Gateway", &o.Gateway}, {"Internal", &o.Internal}}
}

// ParseNetworkOptions decodes and checks the a{sv} of CreateNetwork.
func ParseNetworkOptions(m map[string]godbus.Variant) (NetworkOptions, error) {
	var o NetworkOptions
	d := newDecoder(m)
	d.fields(o.fields())
	return o, d.finish("network")
}

// ParseImportOptions decodes and checks the a{sv} of ImportImage.
func ParseImportOptions(m map[string]godbus.Variant) (ImportOptions, error) {
	var o ImportOptions
	d := newDecoder(m)
	d.fields(o.fields())
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
func (o ExecOptions) Options() map[string]godbus.Variant { return encode(o.fields()) }

func (o *ExecOptions) fields() []field {
	return []field{{"Env", &o.Env}, {"WorkingDir", &o.WorkingDir}, {"User", &o.User}, {"Detach", &o.Detach}}
}

// ParseExecOptions decodes and checks the a{sv} of ExecWithStdio.
func ParseExecOptions(m map[string]godbus.Variant) (ExecOptions, error) {
	var o ExecOptions
	d := newDecoder(m)
	d.fields(o.fields())
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
