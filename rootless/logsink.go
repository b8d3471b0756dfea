package rootless

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pelagos-containers/pelagos/ctrlog"
)

// envLogSink names the descriptor on which the service hands container
// output pipes to the outer process.
const envLogSink = "_PELAGOS_LOG_SINK"

// The outer process writes container logs. It outlives a crash of the
// service, so output keeps reaching the log files while no service runs,
// and a container never blocks on a full pipe nobody reads.

// logRequest is the payload of one message on the sink socket; the
// message carries the read end of the pipe as SCM_RIGHTS.
type logRequest struct {
	Path   string `json:"path"`
	Stream string `json:"stream"`
}

// logSinkPair makes the socket pair: the outer keeps the first, the
// service gets the second.
func logSinkPair() (outer, inner *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("create log sink: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "log-sink"), os.NewFile(uintptr(fds[1]), "log-sink-service"), nil
}

// serveLogs receives pipes from the service until it goes away and
// copies each into its log file; wg counts the copies under way.
func serveLogs(sock *os.File, wg *sync.WaitGroup) {
	defer sock.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			return // the service ended
		}
		fd := -1
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if fds, err := unix.ParseUnixRights(&m); err == nil {
					for _, f := range fds {
						if fd < 0 {
							fd = f
						} else {
							unix.Close(f)
						}
					}
				}
			}
		}
		var req logRequest
		if fd < 0 || json.Unmarshal(buf[:n], &req) != nil || req.Path == "" || (req.Stream != ctrlog.Stdout && req.Stream != ctrlog.Stderr) {
			if fd >= 0 {
				unix.Close(fd)
			}
			continue
		}
		src := os.NewFile(uintptr(fd), "container-"+req.Stream)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer src.Close()
			copyToLog(req.Path, req.Stream, src)
		}()
	}
}

// copyToLog appends src's output to the log at path. Should the file be
// unwritable, the output is still drained, so the container never
// blocks on it.
func copyToLog(path, stream string, src *os.File) {
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		ctrlog.Copy(discard{}, src, stream, time.Now)
		return
	}
	defer dst.Close()
	ctrlog.Copy(dst, src, stream, time.Now)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// LogSink is the socket on which the service hands container output to
// the outer process, or nil when there is none (the service runs without
// an outer process, as root). The descriptor is made close-on-exec, so
// no container or helper inherits it.
func LogSink() *os.File {
	n, err := strconv.Atoi(os.Getenv(envLogSink))
	if err != nil || n < 3 {
		return nil
	}
	os.Unsetenv(envLogSink)
	if _, err := unix.FcntlInt(uintptr(n), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return nil
	}
	return os.NewFile(uintptr(n), "log-sink")
}

// SendLog asks the outer process to copy the pipe r (the read end of a
// container's stdout or stderr) into the log at path.
func SendLog(sink *os.File, path, stream string, r *os.File) error {
	b, err := json.Marshal(logRequest{Path: path, Stream: stream})
	if err != nil {
		return err
	}
	rights := unix.UnixRights(int(r.Fd()))
	for {
		err = unix.Sendmsg(int(sink.Fd()), b, rights, nil, 0)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("hand %s of a container to the log writer: %w", stream, err)
	}
	return nil
}
