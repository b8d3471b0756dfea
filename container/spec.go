// Package container spawns a container process: new namespaces, the root
// filesystem and its kernel filesystems, pivot_root, the user and the
// environment, then the command. The parent half runs in pelagosd; the
// child half (Init) runs in a fresh copy of the pelagosd binary that is
// PID 1 of the new PID namespace until it executes the command.
package container

// Spec is everything the child needs to set up and start one container.
// The service builds it from the image config and the user's options and
// hands it to the child over a pipe as JSON.
type Spec struct {
	// Rootfs is the mounted root filesystem, a path in the service's
	// mount namespace.
	Rootfs string `json:"rootfs"`
	// Hostname is set in the new UTS namespace.
	Hostname string `json:"hostname"`
	// Args is the full command line: entrypoint followed by command.
	Args []string `json:"args"`
	// Env is the environment of the command, KEY=VALUE.
	Env []string `json:"env"`
	// Cwd is the working directory inside the container; created when
	// missing, as Docker does.
	Cwd string `json:"cwd"`
	// User is "", "name", "uid", "uid:gid", "name:group" resolved against
	// the image's /etc/passwd and /etc/group.
	User string `json:"user"`
	// Files maps a path inside the container (/etc/hosts, /etc/hostname,
	// /etc/resolv.conf) to a file in the service's namespace that is
	// bind-mounted over it.
	Files map[string]string `json:"files"`
	// Mounts are the user's volumes, binds and tmpfs mounts, applied in
	// order (parents before children).
	Mounts []Mount `json:"mounts,omitempty"`
	// Terminal gives the command a new pseudo-terminal of the
	// container's own devpts as stdin, stdout, stderr and controlling
	// terminal; its master is handed to the parent (Process.Terminal).
	Terminal bool `json:"terminal,omitempty"`
	// Rows and Cols are the terminal's initial size.
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`

	// Capabilities is the bounding set: all a root command keeps, the
	// most a non-root one can gain.
	Capabilities []string `json:"capabilities"`
	// NoNewPrivileges stops setuid binaries and file capabilities from
	// granting anything.
	NoNewPrivileges bool `json:"noNewPrivileges"`
	// SeccompBPF is the compiled system call filter (CompileSeccomp);
	// empty runs unconfined.
	SeccompBPF []byte `json:"seccompBPF,omitempty"`
	// MaskedPaths are hidden (an empty read-only tmpfs or /dev/null).
	MaskedPaths []string `json:"maskedPaths,omitempty"`
	// ReadonlyPaths are remounted read-only.
	ReadonlyPaths []string `json:"readonlyPaths,omitempty"`
	// ReadonlyRootfs makes / read-only (--read-only).
	ReadonlyRootfs bool `json:"readonlyRootfs,omitempty"`
	// AppArmorProfile and ProcessLabel confine the command with the
	// AppArmor profile or SELinux label given, from its execve on.
	AppArmorProfile string `json:"apparmorProfile,omitempty"`
	ProcessLabel    string `json:"processLabel,omitempty"`
	// Rlimits are set before the command starts (--ulimit).
	Rlimits []Rlimit `json:"rlimits,omitempty"`
	// Sysctls are namespaced kernel parameters, "net.ipv4.ip_forward" → "1".
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// GroupAdd are extra supplementary groups, ids or names from the
	// image's /etc/group (--group-add).
	GroupAdd []string `json:"groupAdd,omitempty"`
	// Devices are host device nodes bind-mounted into the container.
	Devices []Device `json:"devices,omitempty"`
	// Init keeps a minimal init as PID 1 that forwards signals to the
	// command and reaps orphaned processes (--init).
	Init bool `json:"init,omitempty"`
	// NetNS is "" for a new network namespace, NetNSHost to share the
	// service's, or the path of a namespace to join (another
	// container's /proc/PID/ns/net).
	NetNS string `json:"netns,omitempty"`
	// Wasm, when set, is the WebAssembly module (a path inside the
	// container) the init runs in-process instead of executing Args[0];
	// Args[1:] are its arguments. WasmCache is a directory of the
	// service for compiled modules.
	Wasm      string `json:"wasm,omitempty"`
	WasmCache string `json:"wasmCache,omitempty"`
	// InitBinary is the program the child runs (InitBinary()); empty
	// means this one. Only the parent uses it.
	InitBinary string `json:"-"`
	// UIDMappings and GIDMappings, when set, give the container a user
	// namespace of its own, nested in the service's, with these maps
	// (host ids are the service's ids). Only the parent uses them.
	UIDMappings []IDMapping `json:"-"`
	// PrivateUserNS tells the child it runs in such a namespace.
	PrivateUserNS bool        `json:"privateUserns,omitempty"`
	GIDMappings   []IDMapping `json:"-"`
}

// IDMapping maps Size ids from ContainerID inside a nested user
// namespace to HostID in the service's.
type IDMapping struct {
	ContainerID uint32 `json:"containerId"`
	HostID      uint32 `json:"hostId"`
	Size        uint32 `json:"size"`
}

// NetNSHost in Spec.NetNS shares the service's network namespace.
const NetNSHost = "host"

// Mount is one bind or tmpfs mount into the container.
type Mount struct {
	// Type is "bind" or "tmpfs".
	Type string `json:"type"`
	// Source is a path in the service's namespace (bind only).
	Source string `json:"source,omitempty"`
	// Destination is the path inside the container; symlinks in the
	// image are resolved inside the root.
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"readOnly,omitempty"`
	// Flags are extra mount flags (MS_NOEXEC, MS_NOSUID, MS_NODEV).
	Flags uintptr `json:"flags,omitempty"`
	// Data is the tmpfs option string (size=, mode=, ...).
	Data string `json:"data,omitempty"`
}

// Rlimit is one resource limit.
type Rlimit struct {
	Resource int    `json:"resource"`
	Soft     uint64 `json:"soft"`
	Hard     uint64 `json:"hard"`
}

// Device is a host device made available in the container, read-write
// (a read-only mount cannot restrict a device node).
type Device struct {
	Source, Destination string
}

// Exit codes follow Docker: the command's own status, or these when the
// command never ran.
const (
	ExitSetupFailed  = 125 // pelagos itself failed
	ExitCannotInvoke = 126 // the command exists but cannot be executed
	ExitNotFound     = 127 // the command does not exist
	ExitSignalBase   = 128 // 128+N: the command was killed by signal N
	initProcessArgv0 = "pelagos-init"
	initSpecFD       = 3
	initStatusFD     = 4
	initGoFD         = 5
	initConsoleFD    = 6
)

// message is one line the child writes on its status pipe.
type message struct {
	Stage string `json:"stage"`           // "ready" or "error"
	Error string `json:"error,omitempty"` // what failed, for "error"
	Code  int    `json:"code,omitempty"`  // exit code the failure maps to
}
