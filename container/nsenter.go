// pelagos-monitor is built with the tag pelagos_monitor and without cgo:
// it only starts containers (Start), and a static program without libc
// and libseccomp is a smaller process to keep per container.

//go:build !pelagos_monitor

package container

/*
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

// Entering another process's mount and PID namespaces must happen while
// the process has one thread, which in a Go program is only true before
// the runtime starts: hence this constructor. It runs in every pelagosd
// start and does nothing unless _PELAGOS_NSENTER names a container's
// first process (set only by Exec). Failures are reported as JSON on
// fd 4, Exec's status pipe.
// A new container that shares another's network namespace joins it here
// too, for the same reason: _PELAGOS_JOIN_NETNS names the descriptor.
static void pelagos_join_netns(void) {
	const char *fd = getenv("_PELAGOS_JOIN_NETNS");
	if (fd == NULL || *fd == '\0')
		return;
	int n = atoi(fd);
	if (n < 3 || setns(n, CLONE_NEWNET) < 0) {
		dprintf(4, "{\"stage\":\"error\",\"error\":\"join the network namespace of the other container: %s\",\"code\":125}\n", strerror(errno));
		_exit(125);
	}
	close(n);
	unsetenv("_PELAGOS_JOIN_NETNS");
}

__attribute__((constructor)) static void pelagos_nsenter(void) {
	pelagos_join_netns();
	const char *pid = getenv("_PELAGOS_NSENTER");
	if (pid == NULL || *pid == '\0')
		return;
	static const char *kinds[] = {"cgroup", "ipc", "uts", "net", "pid", "mnt"};
	int fds[6];
	char path[64];
	// A container with a user namespace of its own (--userns, --uidmap)
	// owns its other namespaces from there: enter it first. Joining
	// one's own user namespace is an error, so compare first.
	struct stat self, target;
	snprintf(path, sizeof path, "/proc/%s/ns/user", pid);
	if (stat(path, &target) == 0 && stat("/proc/self/ns/user", &self) == 0 &&
	    (self.st_ino != target.st_ino || self.st_dev != target.st_dev)) {
		int ufd = open(path, O_RDONLY | O_CLOEXEC);
		if (ufd < 0 || setns(ufd, CLONE_NEWUSER) < 0) {
			dprintf(4, "{\"stage\":\"error\",\"error\":\"join the container's user namespace: %s\",\"code\":125}\n", strerror(errno));
			_exit(125);
		}
		close(ufd);
	}
	for (int i = 0; i < 6; i++) {
		snprintf(path, sizeof path, "/proc/%s/ns/%s", pid, kinds[i]);
		fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0) {
			dprintf(4, "{\"stage\":\"error\",\"error\":\"open %s: %s (is the container still running?)\",\"code\":125}\n", path, strerror(errno));
			_exit(125);
		}
	}
	for (int i = 0; i < 6; i++) {
		if (setns(fds[i], 0) < 0) {
			dprintf(4, "{\"stage\":\"error\",\"error\":\"join the container's %s namespace: %s\",\"code\":125}\n", kinds[i], strerror(errno));
			_exit(125);
		}
		close(fds[i]);
	}
	// A new PID namespace applies to children only: fork, and let the
	// parent stand for the child's exit status.
	pid_t child = fork();
	if (child < 0) {
		dprintf(4, "{\"stage\":\"error\",\"error\":\"fork into the container: %s\",\"code\":125}\n", strerror(errno));
		_exit(125);
	}
	if (child == 0)
		return; // continue into the Go runtime, inside the container
	// Only the child may hold the status pipe: its EOF means exec.
	close(3);
	close(4);
	int st;
	while (waitpid(child, &st, 0) < 0) {
		if (errno != EINTR)
			_exit(125);
	}
	if (WIFEXITED(st))
		_exit(WEXITSTATUS(st));
	_exit(128 + WTERMSIG(st));
}
*/
import "C"
