package rootless

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	// ID, when not 0, asks for a second descriptor in the message (the
	// client's own output, which gets every byte as it comes) and for a
	// logDone with this id once the copy has ended.
	ID uint64 `json:"id,omitempty"`
}

// logDone is what the outer process answers when a copy with an ID has
// ended: the container's side of the pipe is closed and all is written.
type logDone struct {
	Done uint64 `json:"done"`
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
	// Copies answer on the socket when they end, perhaps after the
	// service went away: closed under the same lock.
	var sendMu sync.Mutex
	closed := false
	defer func() {
		sendMu.Lock()
		closed = true
		sock.Close()
		sendMu.Unlock()
	}()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(8))
	for {
		n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			return // the service ended
		}
		var fds []int
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if got, err := unix.ParseUnixRights(&m); err == nil {
					fds = append(fds, got...)
				}
			}
		}
		var req logRequest
		want := 1
		ok := json.Unmarshal(buf[:n], &req) == nil && req.Path != "" && (req.Stream == ctrlog.Stdout || req.Stream == ctrlog.Stderr)
		if req.ID != 0 {
			want = 2
		}
		if !ok || len(fds) != want {
			for _, f := range fds {
				unix.Close(f)
			}
			continue
		}
		src := os.NewFile(uintptr(fds[0]), "container-"+req.Stream)
		var tee *os.File
		if want == 2 {
			tee = os.NewFile(uintptr(fds[1]), "client-"+req.Stream)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			copyToLog(req.Path, req.Stream, src, tee)
			src.Close()
			if tee != nil {
				tee.Close()
				b, _ := json.Marshal(logDone{Done: req.ID})
				sendMu.Lock()
				if !closed {
					unix.Sendmsg(int(sock.Fd()), b, nil, nil, 0)
				}
				sendMu.Unlock()
			}
		}()
	}
}

// copyToLog appends src's output to the log at path, and, with a tee,
// hands every byte to it as soon as it is read. Should the file be
// unwritable, the output is still drained, so the container never
// blocks on it.
func copyToLog(path, stream string, src, tee *os.File) {
	var r io.Reader = src
	if tee != nil {
		r = io.TeeReader(src, &bestEffort{w: tee})
	}
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		ctrlog.Copy(discard{}, r, stream, time.Now)
		return
	}
	defer dst.Close()
	ctrlog.Copy(dst, r, stream, time.Now)
}

// bestEffort writes to w until a write fails (the client went away),
// then drops the rest: the log still gets everything.
type bestEffort struct {
	w      io.Writer
	failed bool
}

func (b *bestEffort) Write(p []byte) (int, error) {
	if !b.failed {
		if _, err := b.w.Write(p); err != nil {
			b.failed = true
		}
	}
	return len(p), nil
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
// container's stdout or stderr) into the log at path. With tee (the
// client's own stdout or stderr) every byte also goes there as it comes,
// and the outer process answers id on the sink when the copy has ended
// (ReadLogDone); id must then not be 0.
func SendLog(sink *os.File, path, stream string, r, tee *os.File, id uint64) error {
	req, fds := logRequest{Path: path, Stream: stream}, []int{int(r.Fd())}
	if tee != nil {
		req.ID, fds = id, append(fds, int(tee.Fd()))
	}
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	rights := unix.UnixRights(fds...)
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

// ReadLogDone reads the next copy-ended answer from the sink; it fails
// once the outer process is gone.
func ReadLogDone(sink *os.File) (uint64, error) {
	buf := make([]byte, 256)
	for {
		n, _, _, _, err := unix.Recvmsg(int(sink.Fd()), buf, nil, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, io.EOF
		}
		var d logDone
		if json.Unmarshal(buf[:n], &d) == nil && d.Done != 0 {
			return d.Done, nil
		}
	}
}
