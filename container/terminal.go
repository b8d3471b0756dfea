package container

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/pelagos-containers/pelagos/fdpass"
)

// openTerminal creates a pseudo-terminal in the container's devpts (we
// are already inside its root), sends the master to the parent over the
// console socket and returns the slave.
func openTerminal(rows, cols uint16, consoleFD int) (*os.File, error) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	defer master.Close()
	mfd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		return nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(mfd, unix.TIOCGPTN)
	if err != nil {
		return nil, fmt.Errorf("get pty number: %w", err)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open pty slave: %w", err)
	}
	if rows > 0 && cols > 0 {
		if err := unix.IoctlSetWinsize(mfd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
			slave.Close()
			return nil, fmt.Errorf("set terminal size: %w", err)
		}
	}
	if err := fdpass.Send(consoleFD, mfd); err != nil {
		slave.Close()
		return nil, fmt.Errorf("send terminal to the service: %w", err)
	}
	unix.Close(consoleFD)
	return slave, nil
}

// useTerminal makes the slave the command's stdio and controlling
// terminal, owned by the container user. We are a session leader
// (Setsid in Start), which TIOCSCTTY needs.
func useTerminal(slave *os.File, c credential) error {
	fd := int(slave.Fd())
	if err := unix.Fchown(fd, int(c.UID), -1); err != nil {
		return fmt.Errorf("chown terminal: %w", err)
	}
	for target := 0; target <= 2; target++ {
		if err := unix.Dup3(fd, target, 0); err != nil {
			return fmt.Errorf("terminal as fd %d: %w", target, err)
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	return slave.Close()
}
