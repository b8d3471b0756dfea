// Package nsjoin moves a starting program into the user and mount
// namespaces named by its environment, before the Go runtime starts.
//
// setns(2) into a user namespace is refused to a process with more than
// one thread, and a Go program has several before main runs; so the move
// is made by a C constructor, which runs while the process still has one
// thread. Programs that may be started this way (pelagosd, the holder)
// import this package for its side effect.
//
// The variable is _PELAGOS_NSJOIN=USERFD:MNTFD, two descriptors the
// parent opened on /proc/PID/ns/user and /proc/PID/ns/mnt of the process
// whose namespaces are to be shared. MNTFD "-" asks for a new mount
// namespace instead (copied from the current one). The descriptors are
// closed and the variable removed, so nothing started later sees them.
package nsjoin

/*
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void pelagos_nsjoin_fail(const char *what) {
	dprintf(2, "pelagos: join the user's namespaces: %s: %s (if pelagos-holder was left by another login, "
	           "`pkill -u $USER pelagos-holder` makes the next call start a new one)\n", what, strerror(errno));
	_exit(125);
}

__attribute__((constructor)) static void pelagos_nsjoin(void) {
	const char *v = getenv("_PELAGOS_NSJOIN");
	if (v == NULL || *v == '\0')
		return;
	char *end;
	long ufd = strtol(v, &end, 10);
	if (end == v || *end != ':' || ufd < 3) {
		errno = EINVAL;
		pelagos_nsjoin_fail("malformed _PELAGOS_NSJOIN");
	}
	const char *m = end + 1;
	// The user namespace first: it gives the capabilities the mount
	// namespace needs (CAP_SYS_ADMIN over its owner, CAP_SYS_CHROOT).
	if (setns((int)ufd, CLONE_NEWUSER) < 0)
		pelagos_nsjoin_fail("setns user");
	close((int)ufd);
	if (strcmp(m, "-") == 0) {
		if (unshare(CLONE_NEWNS) < 0)
			pelagos_nsjoin_fail("unshare mount");
	} else {
		long mfd = strtol(m, &end, 10);
		if (end == m || *end != '\0' || mfd < 3) {
			errno = EINVAL;
			pelagos_nsjoin_fail("malformed _PELAGOS_NSJOIN");
		}
		if (setns((int)mfd, CLONE_NEWNS) < 0)
			pelagos_nsjoin_fail("setns mount");
		close((int)mfd);
	}
	unsetenv("_PELAGOS_NSJOIN");
}
*/
import "C"

// Env is the variable the constructor reads.
const Env = "_PELAGOS_NSJOIN"
