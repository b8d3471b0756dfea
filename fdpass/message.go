package fdpass

import (
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by ReceiveMessage when the other side has gone.
var ErrClosed = errors.New("socket closed by the other side")

// SendMessage writes v as one JSON message on a SOCK_SEQPACKET socket,
// with files as SCM_RIGHTS.
func SendMessage(sock int, v any, files ...int) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var oob []byte
	if len(files) > 0 {
		oob = unix.UnixRights(files...)
	}
	for {
		err = unix.Sendmsg(sock, b, oob, nil, 0)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// ReceiveMessage reads one JSON message of at most maxSize bytes into v
// and returns the descriptors that came with it (close-on-exec), at most
// maxFiles. The buffer is as large as the message, not as the limit:
// the long-lived processes that use this keep their memory small.
func ReceiveMessage(sock int, v any, maxSize, maxFiles int) ([]int, error) {
	oob := make([]byte, unix.CmsgSpace(maxFiles*4))
	for {
		size, _, err := unix.Recvfrom(sock, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		buf := make([]byte, min(max(size, 1), maxSize))
		n, oobn, flags, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var fds []int
		if oobn > 0 {
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, m := range msgs {
					if got, err := unix.ParseUnixRights(&m); err == nil {
						fds = append(fds, got...)
					}
				}
			}
		}
		if n == 0 {
			CloseAll(fds)
			return nil, ErrClosed
		}
		if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
			CloseAll(fds)
			return nil, fmt.Errorf("message over %d bytes or %d descriptors", maxSize, maxFiles)
		}
		if err := json.Unmarshal(buf[:n], v); err != nil {
			CloseAll(fds)
			return nil, fmt.Errorf("malformed message: %w", err)
		}
		return fds, nil
	}
}

// CloseAll closes descriptors.
func CloseAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
