package network

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PortHolder is what holds a host port, as far as the caller may see:
// the socket's owner is always known, the process only when the caller
// may read its descriptors (its own, in its own user namespace).
type PortHolder struct {
	// Pid is the process with the socket open, 0 when none is visible.
	Pid int
	// Name is that process's command name (/proc/PID/comm).
	Name string
	// Pasta says the process is a pasta; NetNS is then the namespace
	// handle it serves (its --netns argument), which names the
	// container it was started for.
	Pasta bool
	NetNS string
	// Known says a socket bound to the port was found at all; Mine
	// that the caller's uid owns it.
	Known, Mine bool
}

// PortInUseError says which published host port is taken, and by what.
// It matches ErrPortInUse with errors.Is.
type PortInUseError struct {
	Port   PortMapping
	Holder PortHolder
}

// Addr is the taken host address as HOST:PORT/PROTO.
func (e *PortInUseError) Addr() string {
	ip := e.Port.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	return net.JoinHostPort(ip, strconv.Itoa(int(e.Port.HostPort))) + "/" + e.Port.Proto
}

func (e *PortInUseError) Error() string {
	h := e.Holder
	switch {
	case h.Pasta:
		return fmt.Sprintf("%v: %s is taken by the pasta (pid %d) of another container: choose another host port", ErrPortInUse, e.Addr(), h.Pid)
	case h.Pid > 0:
		return fmt.Sprintf("%v: %s is taken by %s (pid %d), not a pelagos container: choose another host port", ErrPortInUse, e.Addr(), h.Name, h.Pid)
	case h.Mine:
		return fmt.Sprintf("%v: %s is taken by another program of yours, not a pelagos container: stop it or choose another host port", ErrPortInUse, e.Addr())
	case h.Known:
		return fmt.Sprintf("%v: %s is taken by a program of another user: choose another host port", ErrPortInUse, e.Addr())
	}
	return fmt.Sprintf("%v: %s is taken by another container or program: choose another host port", ErrPortInUse, e.Addr())
}

// Unwrap makes the error match ErrPortInUse.
func (e *PortInUseError) Unwrap() error { return ErrPortInUse }

// FindPortHolder looks for the socket bound to the host side of p (a
// listening one for TCP) and the process of the caller's that has it
// open. It reads /proc only, and is meant for explaining a refusal.
func FindPortHolder(p PortMapping) PortHolder {
	inodes, mine := boundSockets(p)
	if len(inodes) == 0 {
		return PortHolder{}
	}
	h := PortHolder{Known: true, Mine: mine}
	pid := socketProcess(inodes)
	if pid == 0 {
		return h
	}
	h.Pid = pid
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	h.Name = strings.TrimSpace(string(comm))
	if IsPasta(pid) {
		h.Pasta, h.NetNS = true, pastaNetNS(pid)
	}
	return h
}

// boundSockets returns the inodes of the sockets that take p's host
// port: listening TCP sockets or bound UDP ones, on p's address or on a
// wildcard one; and whether one of them is the caller's (the uid column
// is in the reader's user namespace).
func boundSockets(p PortMapping) (inodes map[string]bool, mine bool) {
	files := []string{"/proc/net/tcp", "/proc/net/tcp6"}
	if p.Proto == "udp" {
		files = []string{"/proc/net/udp", "/proc/net/udp6"}
	}
	want, _ := netip.ParseAddr(p.HostIP)
	uid := strconv.Itoa(os.Geteuid())
	inodes = map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 {
				continue
			}
			if p.Proto != "udp" && fields[3] != "0A" { // TCP_LISTEN
				continue
			}
			addr, port, ok := parseProcAddr(fields[1])
			if !ok || port != p.HostPort {
				continue
			}
			if want.IsValid() && !want.IsUnspecified() && !addr.IsUnspecified() && addr.Unmap() != want.Unmap() {
				continue
			}
			if fields[9] != "0" {
				inodes[fields[9]] = true
				mine = mine || fields[7] == uid
			}
		}
	}
	return inodes, mine
}

// parseProcAddr reads an address of /proc/net/{tcp,udp}{,6}: hex words
// in host (little-endian) order, a colon and the port in hex.
func parseProcAddr(s string) (netip.Addr, uint16, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.Addr{}, 0, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.Addr{}, 0, false
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.Addr{}, 0, false
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	addr, _ := netip.AddrFromSlice(raw)
	return addr, uint16(port), true
}

// socketProcess is the first process whose descriptors the caller may
// read that has one of the socket inodes open, or 0.
func socketProcess(inodes map[string]bool) int {
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", e.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue // another user's, or gone
		}
		for _, fd := range fds {
			l, err := os.Readlink(filepath.Join(dir, fd.Name()))
			if err != nil || !strings.HasPrefix(l, "socket:[") {
				continue
			}
			if inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] {
				return pid
			}
		}
	}
	return 0
}

// pastaNetNS is the --netns argument of the pasta pid, or "".
func pastaNetNS(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	for i, a := range args {
		if a == "--netns" && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--netns="); ok {
			return v
		}
	}
	return ""
}
