package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrPortInUse is returned when a host port to publish is taken.
var ErrPortInUse = errors.New("host port in use")

// Unavailable says why pasta cannot run here, with the fix, or is nil.
func Unavailable() error {
	if _, err := exec.LookPath("pasta"); err != nil {
		return errors.New("pasta is not installed, so containers get loopback only: install it (apt install passt, dnf install passt)")
	}
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("pasta cannot open /dev/net/tun (%v), so containers get loopback only: make it usable by users (chmod 0666 /dev/net/tun, the mode desktops ship)", err)
	}
	f.Close()
	return nil
}

// PastaVersion is the release date pasta reports ("2024_06_07"), or ""
// when it reports none, as Debian 12's build (2023-03-09) does.
func PastaVersion() string {
	out, _ := exec.Command("pasta", "--version").CombinedOutput()
	for _, f := range strings.Fields(filterSyslogNoise(string(out))) {
		if len(f) >= 10 && f[4] == '_' && f[0] == '2' {
			return f[:10]
		}
	}
	return ""
}

// CanRemapUDP reports whether a pasta of this version (PastaVersion)
// forwards UDP to a container port other than the host port.
func CanRemapUDP(version string) bool { return version >= "2023_12" }

// CheckUDPRemap refuses UDP ports published on another container port
// when pasta is too old to forward them: Debian 12's pasta (2023-03)
// drops such datagrams silently, which is worse than a clear error.
func CheckUDPRemap(ports []PortMapping, version string) error {
	if CanRemapUDP(version) {
		return nil
	}
	for _, p := range ports {
		if p.Proto == "udp" && p.HostPort != p.CtrPort {
			return fmt.Errorf("%w: -p %d:%d/udp: this pasta (passt %s) cannot forward UDP to a different container port; publish it on the same port (-p %d:%d/udp) or install a newer passt", ErrInvalid, p.HostPort, p.CtrPort, orUnknown(version), p.CtrPort, p.CtrPort)
		}
	}
	return nil
}

func orUnknown(v string) string {
	if v == "" {
		return "of unknown version, older than 2023-12"
	}
	return v
}

// PastaConfig is what a container's pasta needs.
type PastaConfig struct {
	// NetNS is a file bound to the container's network namespace;
	// pasta quits by itself when it is removed.
	NetNS string
	// PidFile receives pasta's pid once it runs in the background.
	PidFile string
	Ports   []PortMapping
	Mode    Mode
}

// pastaArgs builds the command line: addresses fixed to ContainerIP,
// Gateway and DNSForwarder, only the published ports forwarded, nothing
// forwarded from the container back to the host's ports, and the
// gateway mapping to the host's loopback off unless asked for. Only
// options the oldest supported pasta (2023-03) knows are used.
func pastaArgs(c PastaConfig) []string {
	args := []string{"--config-net", "--quiet", "--netns", c.NetNS, "--pid", c.PidFile,
		"-a", ContainerIP, "-n", prefixLen, "-g", Gateway, "--dns-forward", DNSForwarder,
		"-T", "none", "-U", "none"}
	if !c.Mode.HostLoopback {
		args = append(args, "--no-map-gw")
	}
	var tcp, udp []string
	for _, p := range c.Ports {
		spec := fmt.Sprintf("%d:%d", p.HostPort, p.CtrPort)
		if p.HostIP != "" {
			spec = p.HostIP + "/" + spec
		}
		if p.Proto == "udp" {
			udp = append(udp, spec)
		} else {
			tcp = append(tcp, spec)
		}
	}
	for _, set := range []struct {
		flag  string
		specs []string
	}{{"-t", tcp}, {"-u", udp}} {
		if len(set.specs) == 0 {
			args = append(args, set.flag, "none")
		}
		for _, s := range set.specs {
			args = append(args, set.flag, s)
		}
	}
	return append(args, c.Mode.PastaArgs...)
}

// StartPasta runs pasta for a container and returns its pid once the
// namespace is configured (pasta goes to the background then). The
// caller stops it with StopPasta.
func StartPasta(ctx context.Context, c PastaConfig) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "pasta", pastaArgs(c)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(filterSyslogNoise(out.String()))
		if strings.Contains(msg, "Failed to bind") {
			return 0, fmt.Errorf("%w: %s: another container or program listens there; choose another host port", ErrPortInUse, msg)
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("pasta did not configure the network in time: %s", msg)
		}
		return 0, fmt.Errorf("pasta: %v: %s", err, msg)
	}
	b, err := os.ReadFile(c.PidFile)
	if err != nil {
		return 0, fmt.Errorf("pasta wrote no pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pasta pid file %s: %q", c.PidFile, b)
	}
	return pid, nil
}

// filterSyslogNoise drops the lines old pasta prints when it has no
// syslog to talk to.
func filterSyslogNoise(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "Failed to send") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// IsPasta tells whether pid is a pasta process (Debian runs it as
// passt.avx2 or pasta.avx2), so a recorded pid that was reused by
// something else is never signalled.
func IsPasta(pid int) bool {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return false
	}
	base := filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
	return strings.HasPrefix(base, "pasta") || strings.HasPrefix(base, "passt")
}

// BindNetNS makes file a handle on the network namespace of pid.
func BindNetNS(pid int, file string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	src := fmt.Sprintf("/proc/%d/ns/net", pid)
	if err := unix.Mount(src, file, "", unix.MS_BIND, ""); err != nil {
		os.Remove(file)
		return fmt.Errorf("bind %s to %s: %w", src, file, err)
	}
	return nil
}

// ReleaseNetNS removes a file made by BindNetNS; a pasta attached to it
// sees it go and quits.
func ReleaseNetNS(file string) error {
	if err := unix.Unmount(file, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", file, err)
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// UnprivilegedPortStart is the lowest port a user may bind on the host.
func UnprivilegedPortStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 1024
	}
	return n
}

// HostPortRules say what the host side of published ports may be.
type HostPortRules struct {
	// Privileged lets host ports below ip_unprivileged_port_start
	// through, for a publisher that checks them itself
	// (pelagos-privhelper, with its stricter polkit action).
	Privileged bool
	// SameUDP gives a UDP port with no host port the container port's
	// number where a user may bind it (for a pasta that cannot move UDP
	// to another port, see CanRemapUDP).
	SameUDP bool
}

// PrepareHostPorts checks the host side of published ports: a fixed
// port must be one the publisher may bind, and a missing one (-p
// CTRPORT) gets a port chosen now, a free one unless SameUDP applies.
func PrepareHostPorts(ports []PortMapping, r HostPortRules) error {
	min := UnprivilegedPortStart()
	for i := range ports {
		p := &ports[i]
		if p.HostPort == 0 && r.SameUDP && p.Proto == "udp" && int(p.CtrPort) >= min {
			p.HostPort = p.CtrPort
		}
		if p.HostPort != 0 {
			if !r.Privileged && int(p.HostPort) < min {
				return fmt.Errorf("%w: host port %d is below %d (net.ipv4.ip_unprivileged_port_start), which only root may publish: use a port of %d or more, or root networking (pelagos-privhelper)", ErrInvalid, p.HostPort, min, min)
			}
			continue
		}
		port, err := freePort(p.HostIP, p.Proto)
		if err != nil {
			return fmt.Errorf("choose a host port for %d/%s: %w", p.CtrPort, p.Proto, err)
		}
		p.HostPort = port
	}
	return nil
}

func freePort(ip, proto string) (uint16, error) {
	addr := net.JoinHostPort(ip, "0")
	if proto == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return uint16(c.LocalAddr().(*net.UDPAddr).Port), nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port), nil
}

// CheckPortsFree tries each host port, so that a taken one is reported
// by name before pasta starts: as a *PortInUseError that says what
// holds it.
func CheckPortsFree(ports []PortMapping) error {
	for _, p := range ports {
		addr := net.JoinHostPort(p.HostIP, strconv.Itoa(int(p.HostPort)))
		var err error
		if p.Proto == "udp" {
			var c net.PacketConn
			if c, err = net.ListenPacket("udp", addr); err == nil {
				c.Close()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen("tcp", addr); err == nil {
				l.Close()
			}
		}
		if errors.Is(err, unix.EADDRINUSE) {
			return &PortInUseError{Port: p, Holder: FindPortHolder(p)}
		}
	}
	return nil
}

// HostAddress is the host's first global IPv4 address on the interface
// of its default route: how a container reaches the host's services
// (those listening beyond loopback) through pasta. "" when there is none.
func HostAddress() string {
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 2 || f[1] != "00000000" {
			continue
		}
		ifc, err := net.InterfaceByName(f[0])
		if err != nil {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	return ""
}
