// Package monitor is pelagos-monitor, the small process that watches one
// running container, as conmon does for podman, and the messages the
// service exchanges with it.
//
// The monitor is started by pelagos-holder (so a container whose monitor
// dies still has the holder as its subreaper) and is the container's
// parent: it starts the container's init, copies the container's output
// into its log (and to a foreground client), keeps the terminal's master
// open, collects the exit code and writes it to the container's exit file
// before it exits. None of that depends on the service, which can die and
// come back at any time: a later service finds the monitor by its pid
// and learns how the run ended from the exit file.
//
// The container's stdout and stderr are pipes that the container holds
// open for reading as well as for writing, so its writes never fail with
// EPIPE when no monitor reads them: the output waits in the pipe until a
// monitor adopts the container again (Adopt), and no line is lost.
package monitor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/pelagos-containers/pelagos/container"
	"github.com/pelagos-containers/pelagos/fdpass"
)

// Name is the program's name, as ps shows it.
const Name = "pelagos-monitor"

// The monitor's descriptors, as the holder passes them.
const (
	ctlFD       = 3 // a SOCK_SEQPACKET socket to the service
	stdinFD     = 4 // the container's stdin
	teeStdoutFD = 5 // the client's stdout and stderr (Launch.Tee)
	teeStderrFD = 6
)

// Log drivers (Launch.LogDriver).
const (
	LogFile        = ""            // CRI records in LogPath
	LogPassthrough = "passthrough" // the client's files, unlogged
	LogNone        = "none"        // nothing kept
)

// Launch is what the service sends first: the container to start (or,
// with Adopt, the running container to watch again).
type Launch struct {
	// Spec is the container; InitBinary, UIDMappings and GIDMappings
	// travel beside it because they are not part of its JSON.
	Spec        container.Spec        `json:"spec"`
	InitBinary  string                `json:"initBinary"`
	UIDMappings []container.IDMapping `json:"uidMappings,omitempty"`
	GIDMappings []container.IDMapping `json:"gidMappings,omitempty"`
	// LogPath is the container's log; LogDriver how output is kept.
	LogPath   string `json:"logPath"`
	LogDriver string `json:"logDriver,omitempty"`
	// ExitFile is where the monitor writes how the run ended (Exit).
	ExitFile string `json:"exitFile"`
	// Tee says the client's stdout and stderr came along (fds 5 and 6):
	// output reaches them as it comes, as well as the log.
	Tee bool `json:"tee,omitempty"`
	// Adopt, when set, asks to watch a running container whose monitor
	// died, instead of starting one.
	Adopt *Adopt `json:"adopt,omitempty"`
}

// Adopt names a running container to watch again.
type Adopt struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
	// StdoutPipe and StderrPipe are the inodes of its output pipes
	// (Running); 0 when it has none (a terminal, --log-driver).
	StdoutPipe uint64 `json:"stdoutPipe,omitempty"`
	StderrPipe uint64 `json:"stderrPipe,omitempty"`
	// ExitsDir is where the holder records the exit code of a
	// container that became its child.
	ExitsDir string `json:"exitsDir"`
}

// Event is one message of the monitor to the service during a start.
type Event struct {
	// Cloned is the container's pid once its namespaces exist, while
	// its root filesystem is being prepared (start networking now).
	Cloned int `json:"cloned,omitempty"`
	// Ready is the container's pid once it is ready to execute the
	// command: the service answers with a Verdict.
	Ready int `json:"ready,omitempty"`
	// Running says the command runs; the terminal's master, if any,
	// comes with it as SCM_RIGHTS.
	Running *Running `json:"running,omitempty"`
	// Failed says the container could not start.
	Failed *Failure `json:"failed,omitempty"`
}

// Running describes a started container.
type Running struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
	// StdoutPipe and StderrPipe are the inodes of the output pipes
	// (for Adopt).
	StdoutPipe uint64 `json:"stdoutPipe,omitempty"`
	StderrPipe uint64 `json:"stderrPipe,omitempty"`
	// TerminalFD is the monitor's own descriptor of the terminal's
	// master, which a later service can copy (pidfd_getfd); -1 when
	// there is none.
	TerminalFD int `json:"terminalFd"`
}

// Failure is why a container did not start, with its Docker exit code.
type Failure struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
}

// Verdict is the service's answer to Ready: go on, or stop with Abort.
type Verdict struct {
	Go    bool     `json:"go,omitempty"`
	Abort *Failure `json:"abort,omitempty"`
}

// Exit is the content of the exit file.
type Exit struct {
	Pid        int       `json:"pid"`
	Code       int       `json:"code"`
	FinishedAt time.Time `json:"finishedAt"`
	// Error says why Code is not the command's own status, if so.
	Error string `json:"error,omitempty"`
}

// ReadExit reads the exit file of the run of pid; ok is false when there
// is none for that pid.
func ReadExit(path string, pid int) (Exit, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Exit{}, false
	}
	var e Exit
	if json.Unmarshal(b, &e) != nil || e.Pid != pid {
		return Exit{}, false
	}
	return e, true
}

func writeExit(path string, e Exit) error {
	b, _ := json.Marshal(e)
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// maxMessage bounds one message on the control socket (a Launch carries
// a compiled seccomp filter).
const maxMessage = 4 << 20

// Send writes one message on a control socket, with optional descriptors.
func Send(fd int, v any, files ...int) error { return fdpass.SendMessage(fd, v, files...) }

// ErrClosed is returned by Receive when the other side has gone.
var ErrClosed = fdpass.ErrClosed

// Receive reads one message into v and returns the descriptors that came
// with it (close-on-exec).
func Receive(fd int, v any) ([]int, error) { return fdpass.ReceiveMessage(fd, v, maxMessage, 4) }

func closeAll(fds []int) { fdpass.CloseAll(fds) }
