package privhelper

import (
	"fmt"

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
func checkNetns(fd int, uid uint32, host map[uint64]bool) error {
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
	if host[st.Ino] {
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

// hostNetnsInos returns the inodes of the network namespaces no caller may
// attach to: the helper's own (where it makes bridges: the host's) and pid
// 1's, when this process may look at pid 1 (a confined or containerised
// root may not).
func hostNetnsInos() (map[uint64]bool, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		return nil, fmt.Errorf("host network namespace: %w", err)
	}
	inos := map[uint64]bool{st.Ino: true}
	if unix.Stat("/proc/1/ns/net", &st) == nil {
		inos[st.Ino] = true
	}
	return inos, nil
}
