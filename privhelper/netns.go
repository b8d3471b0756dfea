package privhelper

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ioctls on nsfs files (linux/nsfs.h).
const (
	nsGetUserns   = 0xb701 // _IO(0xb7, 0x1)
	nsGetNstype   = 0xb703 // _IO(0xb7, 0x3)
	nsGetOwnerUID = 0xb704 // _IO(0xb7, 0x4)
)

// checkNetns verifies that fd is a network namespace the caller uid may ask
// the helper to wire up: an nsfs file of type CLONE_NEWNET, not the host's
// own namespace, and (unless uid is root) owned by a user namespace that uid
// created. It trusts only the kernel's answers about the fd, never a pid or
// path from the caller.
func checkNetns(fd int, uid uint32, hostIno uint64) error {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return invalidf("netns fd: %v", err)
	}
	if sfs.Type != unix.NSFS_MAGIC {
		return invalidf("netns fd is not a namespace file")
	}
	t, err := unix.IoctlRetInt(fd, nsGetNstype)
	if err != nil {
		return invalidf("netns fd: namespace type: %v", err)
	}
	if t != unix.CLONE_NEWNET {
		return invalidf("netns fd is not a network namespace")
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return invalidf("netns fd: %v", err)
	}
	if st.Ino == hostIno {
		return invalidf("netns fd is the host's network namespace")
	}
	if uid == 0 {
		return nil
	}
	usernsFD, err := unix.IoctlRetInt(fd, nsGetUserns)
	if err != nil {
		// EPERM: owned by a user namespace outside ours, i.e. not the caller's.
		return invalidf("netns fd: owning user namespace: %v", err)
	}
	defer unix.Close(usernsFD)
	owner, err := unix.IoctlGetUint32(usernsFD, nsGetOwnerUID)
	if err != nil {
		return invalidf("netns fd: owner: %v", err)
	}
	if owner != uid {
		return invalidf("netns fd: the network namespace does not belong to you")
	}
	return nil
}

// hostNetnsIno returns the inode of the initial network namespace (pid 1's),
// which no caller may attach to.
func hostNetnsIno() (uint64, error) {
	fi, err := os.Stat("/proc/1/ns/net")
	if err != nil {
		return 0, fmt.Errorf("host network namespace: %w", err)
	}
	st, ok := fi.Sys().(*unix.Stat_t)
	if !ok {
		return 0, fmt.Errorf("host network namespace: no inode")
	}
	return st.Ino, nil
}
