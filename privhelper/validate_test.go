package privhelper

import (
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/pelagos-containers/pelagos/privhelper/api"
)

func isInvalid(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Name == api.ErrorInvalidArgument
}

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{
		"bridge": true, "dev": true, "a": true, "A-b_c.9": true, strings.Repeat("a", 64): true,
		"": false, "-a": false, ".a": false, "_a": false, "a b": false, "a/b": false, "dév": false,
		strings.Repeat("a", 65): false, "a\n": false,
	} {
		if err := ValidateName(name); (err == nil) != ok || (err != nil && !isInvalid(err)) {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestParseSubnet(t *testing.T) {
	for s, ok := range map[string]bool{
		"10.90.0.0/24": true, "172.16.5.0/24": true, "192.168.100.0/29": true, "10.1.0.0/16": true,
		"8.8.8.0/24": false, "10.0.0.0/8": false, "10.1.2.3/24": false, "172.32.0.0/24": false,
		"192.168.0.0/30": false, "fd00::/64": false, "": false, "10.1.0.0": false, "10.1.0.0/24/": false,
	} {
		if _, err := ParseSubnet(s); (err == nil) != ok {
			t.Errorf("ParseSubnet(%q) = %v, want ok=%v", s, err, ok)
		}
	}
}

func TestParseHostIP(t *testing.T) {
	for s, ok := range map[string]bool{
		"": true, "0.0.0.0": true, "127.0.0.1": true, "192.168.1.5": true,
		"224.0.0.1": false, "255.255.255.255": false, "::1": false, "1.2.3": false, "x": false,
	} {
		if _, err := ParseHostIP(s); (err == nil) != ok {
			t.Errorf("ParseHostIP(%q) = %v, want ok=%v", s, err, ok)
		}
	}
	if a, _ := ParseHostIP(""); !a.IsUnspecified() {
		t.Errorf(`ParseHostIP("") = %s, want 0.0.0.0`, a)
	}
}

func TestParseOptions(t *testing.T) {
	v := dbus.MakeVariant
	good, err := ParseNetworkOptions(map[string]dbus.Variant{"subnet": v("10.9.0.0/24"), "gateway": v("10.9.0.254"), "internal": v(true)})
	if err != nil || good.Gateway != netip.MustParseAddr("10.9.0.254") || !good.Internal {
		t.Fatalf("good network options: %+v, %v", good, err)
	}
	for name, o := range map[string]map[string]dbus.Variant{
		"unknown":          {"mtu": v(uint32(1500))},
		"subnet type":      {"subnet": v(int32(1))},
		"internal type":    {"internal": v("true")},
		"gateway alone":    {"gateway": v("10.9.0.1")},
		"gateway outside":  {"subnet": v("10.9.0.0/24"), "gateway": v("10.10.0.1")},
		"gateway network":  {"subnet": v("10.9.0.0/24"), "gateway": v("10.9.0.0")},
		"attach option":    {"ifname": v("eth0")},
		"subnet malformed": {"subnet": v("10.9.0.0/24x")},
	} {
		if _, err := ParseNetworkOptions(o); !isInvalid(err) {
			t.Errorf("network options %s: %v, want InvalidArgument", name, err)
		}
	}
	a, err := ParseAttachOptions(nil)
	if err != nil || a.Ifname != "eth0" {
		t.Fatalf("default attach options: %+v, %v", a, err)
	}
	for name, o := range map[string]map[string]dbus.Variant{
		"unknown":      {"subnet": v("10.9.0.0/24")},
		"ip type":      {"ip": v(uint32(5))},
		"ifname lo":    {"ifname": v("lo")},
		"ifname long":  {"ifname": v("abcdefghijklmnop")},
		"ifname colon": {"ifname": v("eth0:1")},
		"label":        {"container": v("a b")},
	} {
		if _, err := ParseAttachOptions(o); !isInvalid(err) {
			t.Errorf("attach options %s: %v, want InvalidArgument", name, err)
		}
	}
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)

// FuzzValidators checks that no input makes a validator panic, and that
// what they accept is what the contract says.
// Run: go test -fuzz FuzzValidators ./privhelper/
func FuzzValidators(f *testing.F) {
	for _, s := range []string{"bridge", "", "10.89.0.0/24", "0.0.0.0", "8.8.8.8/32", "a\x00b", "eth0", "ctr:1", "ffffffffff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := ValidateName(s); err == nil && !nameRE.MatchString(s) {
			t.Fatalf("ValidateName accepted %q", s)
		} else if err != nil && nameRE.MatchString(s) {
			t.Fatalf("ValidateName refused %q", s)
		}
		if p, err := ParseSubnet(s); err == nil {
			if !p.Addr().Is4() || p.Masked() != p || p.Bits() < 16 || p.Bits() > 29 || !p.Addr().IsPrivate() {
				t.Fatalf("ParseSubnet accepted %q as %s", s, p)
			}
		}
		if a, err := ParseHostIP(s); err == nil && (!a.Is4() || a.IsMulticast()) {
			t.Fatalf("ParseHostIP accepted %q as %s", s, a)
		}
		if err := ValidateIfname(s); err == nil && (len(s) > 15 || strings.ContainsAny(s, "/: \x00") || s == "lo") {
			t.Fatalf("ValidateIfname accepted %q", s)
		}
		if err := ValidateID(s); err == nil && len(s) != idLen {
			t.Fatalf("ValidateID accepted %q", s)
		}
		ValidateLabel(s)
		ValidateProto(s)
		ParseAttachOptions(map[string]dbus.Variant{"ip": dbus.MakeVariant(s), "ifname": dbus.MakeVariant(s), "container": dbus.MakeVariant(s)})
		ParseNetworkOptions(map[string]dbus.Variant{s: dbus.MakeVariant(s)})
	})
}
