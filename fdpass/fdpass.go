// Package fdpass sends and receives one file descriptor over a unix
// socket (SCM_RIGHTS): how a terminal master made inside a container
// reaches the service or the CLI.
package fdpass

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Send sends fd over the socket sock.
func Send(sock, fd int) error {
	return unix.Sendmsg(sock, []byte{'f'}, unix.UnixRights(fd), nil, 0)
}

// Receive reads one descriptor from sock; the socket closing first is
// an error.
func Receive(sock *os.File, name string) (*os.File, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if n == 0 || oobn == 0 {
		return nil, errors.New("no file descriptor received")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("malformed control message: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("expected one file descriptor: %v", err)
	}
	return os.NewFile(uintptr(fds[0]), name), nil
}
