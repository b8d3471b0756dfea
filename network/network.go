// Package network describes how a rootless container is networked: the
// mode (pasta, none, host, another container's namespace), published
// ports, DNS and extra hosts, and runs pasta(1) to give a private network
// namespace its connectivity.
package network

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// ErrInvalid is returned for network options that make no sense.
var ErrInvalid = errors.New("invalid network option")

// Mode kinds.
const (
	Pasta     = "pasta"     // private namespace, connected by pasta (the default)
	None      = "none"      // private namespace with loopback only
	Host      = "host"      // the host's network namespace
	Container = "container" // another container's namespace
	// Bridge is root networking: the container's namespace is wired by
	// pelagos-privhelper into one or more of the user's bridge networks
	// ("bridge" is each user's default one).
	Bridge = "bridge"
)

// DefaultBridge is the name of each user's default bridge network.
const DefaultBridge = "bridge"

// validNetworkName is a network name as pelagos-privhelper accepts it.
var validNetworkName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)

// ValidNetworkName reports whether s can name a network.
func ValidNetworkName(s string) bool { return validNetworkName.MatchString(s) }

// The addresses pasta gives a container: its own, the gateway (which
// reaches the host's loopback only with host loopback access on), and
// the DNS forwarder. Chosen as slirp4netns did, so they are familiar.
const (
	ContainerIP  = "10.0.2.100"
	Gateway      = "10.0.2.2"
	DNSForwarder = "10.0.2.3"
	prefixLen    = "24"
)

// Mode is a parsed --network value.
type Mode struct {
	Kind string
	// Target names the container whose namespace is shared (Container).
	Target string
	// PastaArgs are extra pasta options from pasta:OPT,OPT.
	PastaArgs []string
	// HostLoopback lets the container reach services on the host's
	// loopback through the gateway address (pasta's gateway mapping;
	// --network pasta:--map-gw). Off by default, as in podman: a
	// container should not reach what the host keeps to itself.
	HostLoopback bool
	// Networks are the bridge networks to join, the first primary
	// (Bridge).
	Networks []string `json:",omitempty"`
}

// String is the mode as the user would write it.
func (m Mode) String() string {
	switch m.Kind {
	case Container:
		return "container:" + m.Target
	case Bridge:
		return strings.Join(m.Networks, ",")
	case Pasta:
		opts := m.PastaArgs
		if m.HostLoopback {
			opts = append([]string{"--map-gw"}, opts...)
		}
		if len(opts) > 0 {
			return "pasta:" + strings.Join(opts, ",")
		}
	}
	return m.Kind
}

// pastaRefused are pasta options pelagos sets itself; letting the user
// pass them would break its bookkeeping or the container's isolation.
var pastaRefused = map[string]string{
	"--netns": "", "--userns": "", "--netns-only": "", "-P": "", "--pid": "", "-f": "", "--foreground": "",
	"--runas": "", "-l": "", "--log-file": "", "-F": "", "--fd": "", "--no-netns-quit": "",
	"-T": "", "--tcp-ns": "", "-U": "", "--udp-ns": "", "-t": "", "--tcp-ports": "", "-u": "", "--udp-ports": "",
}

// ParseMode reads a --network value: "" or "pasta[:OPT,...]" (the
// default), "none", "loopback" (the same), "host", "private" (the
// default), "container:NAME". Root networking modes are refused with
// what to use instead.
func ParseMode(s string) (Mode, error) {
	kind, opts, hasOpts := strings.Cut(s, ":")
	switch kind {
	case "", "private", Pasta:
		m := Mode{Kind: Pasta}
		if !hasOpts {
			return m, nil
		}
		if kind != Pasta {
			return Mode{}, fmt.Errorf("%w: --network %q: only pasta takes options (pasta:OPT,OPT)", ErrInvalid, s)
		}
		for _, o := range strings.Split(opts, ",") {
			o = strings.TrimSpace(o)
			if o == "" {
				continue
			}
			name, _, _ := strings.Cut(o, "=")
			if _, bad := pastaRefused[name]; bad {
				return Mode{}, fmt.Errorf("%w: --network pasta option %q is set by pelagos itself (publish ports with -p)", ErrInvalid, o)
			}
			if o == "--map-gw" || o == "map-gw" {
				m.HostLoopback = true
				continue
			}
			if !strings.HasPrefix(o, "-") {
				return Mode{}, fmt.Errorf("%w: --network pasta option %q: options start with - (see pasta(1))", ErrInvalid, o)
			}
			m.PastaArgs = append(m.PastaArgs, o)
		}
		return m, nil
	case None, "loopback":
		if hasOpts {
			return Mode{}, fmt.Errorf("%w: --network %s takes no options", ErrInvalid, kind)
		}
		return Mode{Kind: None}, nil
	case Host:
		if hasOpts {
			return Mode{}, fmt.Errorf("%w: --network host takes no options", ErrInvalid)
		}
		return Mode{Kind: Host}, nil
	case Container:
		if opts == "" {
			return Mode{}, fmt.Errorf("%w: --network container: needs a container name or id (container:NAME)", ErrInvalid)
		}
		return Mode{Kind: Container, Target: opts}, nil
	case "slirp4netns", "ns":
		return Mode{}, fmt.Errorf("%w: --network %s is not available in pelagos: use the default (pasta), none, host, container:NAME, or bridge / a network of yours (root networking)", ErrInvalid, kind)
	}
	if hasOpts {
		return Mode{}, fmt.Errorf("%w: --network %q: a bridge network takes no options", ErrInvalid, s)
	}
	if !validNetworkName.MatchString(s) {
		return Mode{}, fmt.Errorf("%w: unknown network %q: use pasta (the default), none, host, container:NAME, bridge, or the name of a network of yours (pelagos network ls)", ErrInvalid, s)
	}
	return Mode{Kind: Bridge, Networks: []string{s}}, nil
}

// PortMapping is one published port.
type PortMapping struct {
	HostIP   string // "" for every address
	HostPort uint16 // 0 until one is chosen
	CtrPort  uint16
	Proto    string // "tcp" or "udp"
}

// String is podman's form: 127.0.0.1:8080->80/tcp.
func (p PortMapping) String() string {
	ip := p.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	return fmt.Sprintf("%s->%d/%s", net.JoinHostPort(ip, strconv.Itoa(int(p.HostPort))), p.CtrPort, p.Proto)
}

// ParsePublish reads one -p value: [[HOSTIP:][HOSTPORT]:]CTRPORT[/PROTO]
// where ports may be ranges (8000-8010:80-90) and PROTO is tcp, udp,
// both or tcp,udp. A missing host port is left 0, to be chosen later.
func ParsePublish(spec string) ([]PortMapping, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: -p %q: %s (use [[HOSTIP:][HOSTPORT]:]CTRPORT[/tcp|udp|both], e.g. 8080:80 or 127.0.0.1:8080:80/udp)", ErrInvalid, spec, why)
	}
	rest, proto, _ := strings.Cut(spec, "/")
	var protos []string
	switch proto {
	case "", "tcp":
		protos = []string{"tcp"}
	case "udp":
		protos = []string{"udp"}
	case "both", "tcp,udp", "udp,tcp":
		protos = []string{"tcp", "udp"}
	default:
		return nil, bad("unknown protocol " + strconv.Quote(proto))
	}
	hostIP := ""
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 || len(rest) < end+2 || rest[end+1] != ':' {
			return nil, bad("an IPv6 host address goes in brackets: [::1]:8080:80")
		}
		hostIP, rest = rest[1:end], rest[end+2:]
		if ip := net.ParseIP(hostIP); ip == nil || ip.To4() != nil {
			return nil, bad("not an IPv6 address: " + hostIP)
		}
	}
	parts := strings.Split(rest, ":")
	var hostPart, ctrPart string
	switch len(parts) {
	case 1:
		ctrPart = parts[0]
	case 2:
		hostPart, ctrPart = parts[0], parts[1]
	case 3:
		if hostIP != "" {
			return nil, bad("too many colons")
		}
		hostIP, hostPart, ctrPart = parts[0], parts[1], parts[2]
		if ip := net.ParseIP(hostIP); ip == nil || ip.To4() == nil {
			return nil, bad("not an IPv4 address: " + strconv.Quote(hostIP))
		}
	default:
		return nil, bad("too many colons")
	}
	ctrLo, ctrHi, err := portRange(ctrPart)
	if err != nil {
		return nil, bad("container port: " + err.Error())
	}
	var hostLo uint16
	if hostPart != "" {
		lo, hi, err := portRange(hostPart)
		if err != nil {
			return nil, bad("host port: " + err.Error())
		}
		if hi-lo != ctrHi-ctrLo {
			return nil, bad("the host and container ranges differ in length")
		}
		hostLo = lo
	}
	var out []PortMapping
	for _, pr := range protos {
		for i := 0; i <= int(ctrHi-ctrLo); i++ {
			m := PortMapping{HostIP: hostIP, CtrPort: ctrLo + uint16(i), Proto: pr}
			if hostLo != 0 {
				m.HostPort = hostLo + uint16(i)
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// portRange reads "80" or "80-90".
func portRange(s string) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err = port(a)
	if err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = port(b); err != nil {
			return 0, 0, err
		}
		if hi < lo {
			return 0, 0, fmt.Errorf("range %s ends before it starts", s)
		}
	}
	return lo, hi, nil
}

func port(s string) (uint16, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return uint16(n), nil
}

// ParseAddHost reads --add-host NAME:IP (NAME=IP is accepted too; IPv6
// addresses may be bracketed) and returns the /etc/hosts line.
func ParseAddHost(s string) (string, error) {
	i := strings.IndexAny(s, ":=")
	if i <= 0 {
		return "", fmt.Errorf("%w: --add-host %q: use NAME:IP, e.g. db.local:192.0.2.10", ErrInvalid, s)
	}
	name, addr := s[:i], strings.Trim(s[i+1:], "[]")
	if addr == "host-gateway" {
		return "", fmt.Errorf("%w: --add-host %q: host-gateway is written as host.containers.internal already", ErrInvalid, s)
	}
	if net.ParseIP(addr) == nil {
		return "", fmt.Errorf("%w: --add-host %q: %q is not an IP address", ErrInvalid, s, addr)
	}
	for _, n := range strings.Split(name, ",") {
		if !validHostname(n) {
			return "", fmt.Errorf("%w: --add-host %q: %q is not a host name", ErrInvalid, s, n)
		}
	}
	return addr + "\t" + strings.ReplaceAll(name, ",", " "), nil
}

func validHostname(n string) bool {
	if n == "" || len(n) > 253 {
		return false
	}
	for _, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// CheckDNS validates --dns servers, --dns-search domains and
// --dns-option values before they reach /etc/resolv.conf.
func CheckDNS(servers, search, options []string) error {
	for _, s := range servers {
		if net.ParseIP(s) == nil {
			return fmt.Errorf("%w: --dns %q is not an IP address", ErrInvalid, s)
		}
	}
	for _, d := range search {
		if d != "." && !validHostname(strings.TrimSuffix(d, ".")) {
			return fmt.Errorf("%w: --dns-search %q is not a domain", ErrInvalid, d)
		}
	}
	for _, o := range options {
		if o == "" || strings.ContainsAny(o, " \t\n#;") {
			return fmt.Errorf("%w: --dns-option %q: one resolv.conf option such as ndots:2", ErrInvalid, o)
		}
	}
	return nil
}
