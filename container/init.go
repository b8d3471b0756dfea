package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// IsInit reports whether this process was started by Start as a
// container's init and must call Init instead of its usual main.
func IsInit() bool {
	return len(os.Args) > 0 && os.Args[0] == initProcessArgv0 && os.Getpid() == 1
}

// Init is the child half of Start. It never returns: it either executes
// the container's command or reports why it could not and exits.
func Init() {
	// Namespaces, credentials and the working directory belong to the
	// process, but keep the whole setup on one thread to be safe with
	// calls that are per-thread in the kernel (prctl, setns).
	runtime.LockOSThread()
	status := os.NewFile(initStatusFD, "status")
	code, err := runInit(status)
	// Reaching here means the command did not start.
	b, _ := json.Marshal(message{Stage: "error", Error: err.Error(), Code: code})
	status.Write(append(b, '\n'))
	os.Exit(code)
}

func runInit(status *os.File) (int, error) {
	spec, err := readSpec()
	if err != nil {
		return ExitSetupFailed, err
	}
	// The status pipe must vanish when the command starts: its EOF is
	// the parent's signal that exec succeeded.
	unix.CloseOnExec(initStatusFD)
	unix.CloseOnExec(initGoFD)

	spec.WasmCache = openWasmCache(spec.WasmCache)
	if err := setupRootfs(spec); err != nil {
		return ExitSetupFailed, err
	}
	if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
		return ExitSetupFailed, fmt.Errorf("set hostname %q: %w", spec.Hostname, err)
	}
	if spec.NetNS == "" {
		if err := bringUpLoopback(); err != nil {
			return ExitSetupFailed, err
		}
	}
	var tty *os.File
	if spec.Terminal {
		if tty, err = openTerminal(spec.Rows, spec.Cols, initConsoleFD); err != nil {
			return ExitSetupFailed, err
		}
	}

	if _, err := status.Write([]byte("{\"stage\":\"ready\"}\n")); err != nil {
		return ExitSetupFailed, fmt.Errorf("report ready: %w", err)
	}
	goPipe := os.NewFile(initGoFD, "go")
	var b [1]byte
	if n, _ := goPipe.Read(b[:]); n != 1 {
		return ExitSetupFailed, errors.New("start cancelled by the service")
	}
	goPipe.Close()

	return enterCommand(spec, tty)
}

// enterCommand becomes the command, from inside the container: the user,
// its environment and working directory, the terminal, capabilities,
// no_new_privs and seccomp, then execve. It returns only on failure.
func enterCommand(spec *Spec, tty *os.File) (int, error) {
	cred, home, err := resolveUser(spec.User)
	if err != nil {
		return ExitSetupFailed, err
	}
	if cred.Groups, err = addGroups(cred.Groups, spec.GroupAdd); err != nil {
		return ExitSetupFailed, err
	}
	for _, rl := range spec.Rlimits {
		if err := unix.Setrlimit(rl.Resource, &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
			return ExitSetupFailed, fmt.Errorf("--ulimit %s=%d:%d: %w (a hard limit above your own needs root)", RlimitName(rl.Resource), rl.Soft, rl.Hard, err)
		}
	}
	env := withDefaultEnv(spec.Env, spec.Hostname, home)
	if err := enterWorkdir(spec.Cwd, cred); err != nil {
		return ExitSetupFailed, err
	}
	if tty != nil {
		if _, ok := lookupEnv(env, "TERM"); !ok {
			env = append(env, "TERM=xterm")
		}
		if !spec.Init { // under --init the child takes the terminal
			if err := useTerminal(tty, cred); err != nil {
				return ExitSetupFailed, err
			}
		}
	}
	// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which a
	// non-root user loses at setuid: load it first then.
	if !spec.NoNewPrivileges {
		if err := loadSeccompBPF(spec.SeccompBPF); err != nil {
			return ExitSetupFailed, err
		}
	}
	// The labels apply at execve; set them while the init may still
	// write its own attributes.
	if err := setExecLabels(spec.AppArmorProfile, spec.ProcessLabel); err != nil {
		return ExitSetupFailed, err
	}
	if err := limitCapabilities(spec.Capabilities); err != nil {
		return ExitSetupFailed, err
	}
	if !spec.Init {
		// Under --init, PID 1 stays root; the command's process gets
		// the user at fork (runAsInit).
		if err := applyCredential(cred); err != nil {
			return ExitSetupFailed, err
		}
	}
	if spec.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return ExitSetupFailed, fmt.Errorf("set no_new_privs: %w", err)
		}
		if err := loadSeccompBPF(spec.SeccompBPF); err != nil {
			return ExitSetupFailed, err
		}
	}
	if len(spec.Args) == 0 {
		return ExitSetupFailed, errors.New("no command specified")
	}
	if spec.Wasm != "" {
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, 0, 0, 0, 0); err != nil {
			return ExitSetupFailed, fmt.Errorf("clear parent death signal: %w", err)
		}
		runWasm(spec, env)
	}
	path, err := lookPath(spec.Args[0], envValue(env, "PATH"))
	if err != nil {
		return ExitNotFound, err
	}
	// Survive the service from here on (see Start).
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, 0, 0, 0, 0); err != nil {
		return ExitSetupFailed, fmt.Errorf("clear parent death signal: %w", err)
	}
	if spec.Init {
		err = runAsInit(path, spec.Args, env, cred, tty)
	} else {
		err = syscall.Exec(path, spec.Args, env)
	}
	switch {
	case errors.Is(err, unix.ENOENT):
		return ExitNotFound, fmt.Errorf("exec %s: no such file or directory", spec.Args[0])
	default:
		return ExitCannotInvoke, fmt.Errorf("exec %s: %v", spec.Args[0], err)
	}
}

// setExecLabels asks the security modules to confine the next execve:
// AppArmor's "exec PROFILE" and SELinux's exec context, both written to
// the calling thread's attributes (the init runs on one locked thread).
func setExecLabels(apparmor, selinux string) error {
	write := func(paths []string, value string) error {
		var err error
		for _, p := range paths {
			if err = os.WriteFile(p, []byte(value), 0); err == nil {
				return nil
			}
		}
		return err
	}
	if apparmor != "" {
		if err := write([]string{"/proc/thread-self/attr/apparmor/exec", "/proc/thread-self/attr/exec"}, "exec "+apparmor); err != nil {
			return fmt.Errorf("apply AppArmor profile %s: %w", apparmor, err)
		}
	}
	if selinux != "" {
		if err := write([]string{"/proc/thread-self/attr/exec"}, selinux); err != nil {
			return fmt.Errorf("apply SELinux label %s: %w", selinux, err)
		}
	}
	return nil
}

// becomeNamespaceRoot ends the setup with the user's own ids in a
// container that has a user namespace of its own (see Start): from here
// the init is root of that namespace, as in any other container, and
// the ambient capabilities that carried it here are gone.
func becomeNamespaceRoot() error {
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("clear supplementary groups: %w", err)
	}
	if err := syscall.Setresgid(0, 0, 0); err != nil {
		return fmt.Errorf("become gid 0 of the container's user namespace: %w", err)
	}
	if err := syscall.Setresuid(0, 0, 0); err != nil {
		return fmt.Errorf("become uid 0 of the container's user namespace: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	return nil
}

// bringUpLoopback sets lo up in the new network namespace; the kernel
// creates it down.
func bringUpLoopback() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	return nil
}

// readSpec reads the JSON spec the parent writes on fd 3.
func readSpec() (*Spec, error) {
	f := os.NewFile(initSpecFD, "spec")
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("read container spec: %w", err)
	}
	var spec Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("decode container spec: %w", err)
	}
	return &spec, nil
}
