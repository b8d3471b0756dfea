package privhelper

import (
	"net/netip"
	"strings"

	"github.com/godbus/dbus/v5"

	"github.com/pelagos-containers/pelagos/privhelper/ipam"
)

const maxNameLen = 64

// ValidateName checks a network name: [a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}.
func ValidateName(s string) error {
	if !wordOK(s, maxNameLen, "_.-") {
		return invalidf("invalid name %.80q: want 1-%d of [a-zA-Z0-9_.-] starting with a letter or digit", s, maxNameLen)
	}
	return nil
}

// ValidateID checks a lease or forward id as the helper makes them.
func ValidateID(s string) error {
	if len(s) != idLen || strings.TrimLeft(s, "0123456789abcdef") != "" {
		return invalidf("invalid id %.80q", s)
	}
	return nil
}

// ValidateIfname checks an interface name for the container side of a
// veth: at most 15 bytes (IFNAMSIZ-1), no path or alias characters.
func ValidateIfname(s string) error {
	if !wordOK(s, 15, "_.-") || s == "lo" {
		return invalidf("invalid interface name %.80q: want 1-15 of [a-zA-Z0-9_.-], not lo", s)
	}
	return nil
}

// ValidateLabel checks a container label (an id or name, for listing).
func ValidateLabel(s string) error {
	if s != "" && !wordOK(s, 128, "_.:-") {
		return invalidf("invalid container label %.80q: want up to 128 of [a-zA-Z0-9_.:-]", s)
	}
	return nil
}

func wordOK(s string, max int, extra string) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if alnum {
			continue
		}
		if i == 0 || strings.IndexByte(extra, c) < 0 {
			return false
		}
	}
	return true
}

// privateRanges are the RFC 1918 ranges a user network may use.
var privateRanges = [...]netip.Prefix{
	netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, 0}), 8),
	netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, 0, 0}), 12),
	netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, 0, 0}), 16),
}

// ParseSubnet parses a network's subnet: canonical IPv4 CIDR notation, a
// prefix length from /16 to /29 and inside an RFC 1918 range, so a user can
// neither shadow public addresses nor claim a huge slice of the host's.
func ParseSubnet(s string) (netip.Prefix, error) {
	if len(s) > 18 {
		return netip.Prefix{}, invalidf("invalid subnet %.80q", s)
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, invalidf("invalid subnet %q: want an IPv4 CIDR such as 10.90.0.0/24", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, invalidf("invalid subnet %q: host bits set (did you mean %s?)", s, p.Masked())
	}
	if p.Bits() < 16 || p.Bits() > 29 {
		return netip.Prefix{}, invalidf("invalid subnet %q: prefix length must be /16 to /29", s)
	}
	for _, r := range privateRanges {
		if r.Bits() <= p.Bits() && r.Contains(p.Addr()) {
			return p, nil
		}
	}
	return netip.Prefix{}, invalidf("invalid subnet %q: not inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16", s)
}

// ParseAddr parses a dotted-quad IPv4 address.
func ParseAddr(s string) (netip.Addr, error) {
	if len(s) > 15 {
		return netip.Addr{}, invalidf("invalid address %.80q", s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, invalidf("invalid address %q: want an IPv4 address", s)
	}
	return a, nil
}

// ParseHostIP parses the host side of a forward: "" or 0.0.0.0 mean every
// IPv4 address of the host (returned as the unspecified address); otherwise
// a unicast address that is not multicast or broadcast.
func ParseHostIP(s string) (netip.Addr, error) {
	if s == "" {
		return netip.IPv4Unspecified(), nil
	}
	a, err := ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return netip.Addr{}, invalidf("invalid host address %q: not a unicast address", s)
	}
	return a, nil
}

// ValidateProto checks a forward's protocol.
func ValidateProto(s string) error {
	if s != "tcp" && s != "udp" {
		return invalidf("invalid protocol %.80q: want tcp or udp", s)
	}
	return nil
}

// ValidatePort checks a port number (1-65535).
func ValidatePort(what string, p uint16) error {
	if p == 0 {
		return invalidf("invalid %s 0: want 1-65535", what)
	}
	return nil
}

// NetworkOptions are CreateNetwork's options.
type NetworkOptions struct {
	Subnet   netip.Prefix // zero: pick from the pool
	Gateway  netip.Addr   // zero: the subnet's first address
	Internal bool         // no way out of the network
}

// ParseNetworkOptions checks CreateNetwork's a{sv}: keys subnet (s),
// gateway (s), internal (b). Unknown keys and wrong types are refused so a
// misspelt option is never silently ignored.
func ParseNetworkOptions(opts map[string]dbus.Variant) (NetworkOptions, error) {
	var o NetworkOptions
	var gw string
	for k, v := range opts {
		var err error
		switch k {
		case "subnet":
			var s string
			if s, err = optValue[string](k, v); err == nil {
				o.Subnet, err = ParseSubnet(s)
			}
		case "gateway":
			gw, err = optValue[string](k, v)
		case "internal":
			o.Internal, err = optValue[bool](k, v)
		default:
			err = invalidf("unknown option %.80q", k)
		}
		if err != nil {
			return NetworkOptions{}, err
		}
	}
	if _, ok := opts["gateway"]; ok {
		if !o.Subnet.IsValid() {
			return NetworkOptions{}, invalidf("option gateway needs option subnet")
		}
		a, err := ParseAddr(gw)
		if err != nil {
			return NetworkOptions{}, err
		}
		if !ipam.IsHost(o.Subnet, a) {
			return NetworkOptions{}, invalidf("gateway %s is not a host address of %s", a, o.Subnet)
		}
		o.Gateway = a
	}
	return o, nil
}

// AttachOptions are Attach's options.
type AttachOptions struct {
	IP        netip.Addr // zero: the next free address
	Ifname    string     // default eth0
	Container string     // a label for listings
}

// ParseAttachOptions checks Attach's a{sv}: keys ip (s), ifname (s),
// container (s).
func ParseAttachOptions(opts map[string]dbus.Variant) (AttachOptions, error) {
	o := AttachOptions{Ifname: "eth0"}
	for k, v := range opts {
		s, err := optValue[string](k, v)
		switch {
		case k != "ip" && k != "ifname" && k != "container": // a CreateNetwork option such as subnet
			err = invalidf("unknown option %.80q", k)
		case err != nil:
		case k == "ip":
			o.IP, err = ParseAddr(s)
		case k == "ifname":
			o.Ifname, err = s, ValidateIfname(s)
		default:
			o.Container, err = s, ValidateLabel(s)
		}
		if err != nil {
			return AttachOptions{}, err
		}
	}
	return o, nil
}

// optValue returns option k's value, refusing any type other than T so that
// a mistyped option is never silently ignored.
func optValue[T any](k string, v dbus.Variant) (T, error) {
	x, ok := v.Value().(T)
	if !ok {
		return x, invalidf("option %q must have type %s, not %s", k, dbus.SignatureOf(x), v.Signature())
	}
	return x, nil
}
