package tests

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// portFree tells whether the test can bind 127.0.0.1:port at once, and
// if not, why.
func portFree(port int) error {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	return l.Close()
}

// answers checks that the web server of container name answers on port.
func answers(t *testing.T, s *userSession, name string, port int, when string) {
	t.Helper()
	body, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil || body != "hello-from-"+name+"\n" {
		t.Fatalf("%s: GET through the published port: %q, %v\n%s\n%s", when, body, err, s.pelagos(t, "ps", "-a"), s.pelagos(t, "logs", name))
	}
}

// TestPublishedPortStopStart: a container publishing a port is stopped
// and started 20 times; stop releases the host port before it returns
// (its pasta is gone, not still exiting), each start binds it again and
// the port answers; once the container is removed no pasta of the user
// is left.
func TestPublishedPortStopStart(t *testing.T) {
	needPasta(t)
	s := S.main
	withBusybox(t, s)
	before := pastaProcesses(s.u.UID)
	port := freeTCPPort(t)
	s.mustPelagos(t, "run", "-d", "--name", "cycler", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "localhost/busybox", "sh", "-c", httpdCmd)
	defer s.pelagos(t, "rm", "-f", "cycler")
	answers(t, s, "cycler", port, "first run")
	for i := 0; i < 20; i++ {
		s.mustPelagos(t, "stop", "-t", "1", "cycler")
		if err := portFree(port); err != nil {
			t.Fatalf("cycle %d: host port %d still bound once stop returned: %v", i, port, err)
		}
		if r := s.pelagos(t, "start", "cycler"); r.Code != 0 {
			t.Fatalf("cycle %d: start: %s", i, r)
		}
		answers(t, s, "cycler", port, fmt.Sprintf("cycle %d", i))
	}
	s.mustPelagos(t, "rm", "-f", "cycler")
	if n := pastaProcesses(s.u.UID); n != before {
		t.Fatalf("%d pasta processes before, %d once the container was removed", before, n)
	}
}

// TestPublishedPortAcrossServiceKill: the service that started a
// container's pasta is killed; the next one (activated by the next
// call) stops that pasta, releases its port and starts the container
// again on the same port, several times.
func TestPublishedPortAcrossServiceKill(t *testing.T) {
	needPasta(t)
	s := S.main
	withBusybox(t, s)
	before := pastaProcesses(s.u.UID)
	port := freeTCPPort(t)
	s.mustPelagos(t, "run", "-d", "--name", "phoenix", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "localhost/busybox", "sh", "-c", httpdCmd)
	defer s.pelagos(t, "rm", "-f", "phoenix")
	answers(t, s, "phoenix", port, "first run")
	for i := 0; i < 3; i++ {
		pid := s.servicePid(t)
		if pid == 0 {
			t.Fatal("no pelagosd owns the bus name")
		}
		if err := killAndWait(pid); err != nil {
			t.Fatal(err)
		}
		answers(t, s, "phoenix", port, fmt.Sprintf("round %d, the service killed", i))
		// The pasta serving the port now belongs to a dead service.
		s.mustPelagos(t, "stop", "-t", "1", "phoenix")
		if np := s.servicePid(t); np == 0 || np == pid {
			t.Fatalf("round %d: service not re-activated: old %d new %d", i, pid, np)
		}
		if err := portFree(port); err != nil {
			t.Fatalf("round %d: host port %d still bound once stop returned: %v", i, port, err)
		}
		if r := s.pelagos(t, "start", "phoenix"); r.Code != 0 {
			t.Fatalf("round %d: start after the service was killed: %s", i, r)
		}
		answers(t, s, "phoenix", port, fmt.Sprintf("round %d, started again", i))
	}
	s.mustPelagos(t, "rm", "-f", "phoenix")
	if n := pastaProcesses(s.u.UID); n != before {
		t.Fatalf("%d pasta processes before, %d once the container was removed", before, n)
	}
}

// TestPublishedPortHeldByOther: a host port that a program other than
// pelagos holds fails the start at once (only an exiting pasta of the
// user's is waited for), naming the port and whose program holds it;
// the container starts once the port is free.
func TestPublishedPortHeldByOther(t *testing.T) {
	needPasta(t)
	s := S.main
	withBusybox(t, s)
	port := freeTCPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s.mustPelagos(t, "run", "-d", "--name", "squatted", "-p", addr+":80", "localhost/busybox", "sh", "-c", httpdCmd)
	defer s.pelagos(t, "rm", "-f", "squatted")
	s.mustPelagos(t, "stop", "-t", "0", "squatted")
	refused := func(holder string, want ...string) {
		t.Helper()
		t0 := time.Now()
		r := s.pelagos(t, "start", "squatted")
		if r.Code == 0 {
			t.Fatalf("start with the port held by %s succeeded", holder)
		}
		for _, w := range append(want, addr, "taken") {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("port held by %s: the error lacks %q: %s", holder, w, r)
			}
		}
		if d := time.Since(t0); d > 2*time.Second {
			t.Errorf("port held by %s: the refusal took %s", holder, d)
		}
	}
	// Root's socket.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	refused("root", "another user")
	l.Close()
	// The user's own program. (The service, in its user namespace, may
	// not read the descriptors of processes outside it, so it cannot
	// name the program; the socket's owner it knows.)
	nc := exec.Command("busybox", "nc", "-l", "-p", strconv.Itoa(port))
	nc.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred()}
	if err := nc.Start(); err != nil {
		t.Fatal(err)
	}
	defer nc.Process.Kill()
	for i := 0; i < 100 && portFree(port) == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	refused("busybox nc", "program of yours")
	nc.Process.Kill()
	nc.Wait()
	s.mustPelagos(t, "start", "squatted")
	answers(t, s, "squatted", port, "after the port was freed")
}
