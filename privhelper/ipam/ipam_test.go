package ipam

import (
	"errors"
	"net/netip"
	"testing"
)

func TestNextSubnet(t *testing.T) {
	pool := netip.MustParsePrefix("10.89.0.0/16")
	used := []netip.Prefix{netip.MustParsePrefix("10.89.0.0/24"), netip.MustParsePrefix("10.89.1.128/25")}
	got, err := NextSubnet(pool, 24, used)
	if err != nil || got != netip.MustParsePrefix("10.89.2.0/24") {
		t.Fatalf("NextSubnet = %v, %v; want 10.89.2.0/24", got, err)
	}
	// A host route covering the whole pool leaves nothing.
	_, err = NextSubnet(pool, 24, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("NextSubnet in a covered pool: %v, want ErrExhausted", err)
	}
}

func TestNextAddr(t *testing.T) {
	s := netip.MustParsePrefix("10.1.2.0/29") // hosts .1-.6
	used := map[netip.Addr]bool{netip.MustParseAddr("10.1.2.1"): true}
	seen := map[netip.Addr]bool{}
	for i := 0; i < 5; i++ {
		a, err := NextAddr(s, used)
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if seen[a] || !IsHost(s, a) {
			t.Fatalf("allocation %d gave %s twice or outside hosts", i, a)
		}
		seen[a], used[a] = true, true
	}
	if _, err := NextAddr(s, used); !errors.Is(err, ErrExhausted) {
		t.Fatalf("full subnet: %v, want ErrExhausted", err)
	}
}

func TestHostBounds(t *testing.T) {
	s := netip.MustParsePrefix("192.168.7.0/24")
	for _, c := range []struct {
		a    string
		want bool
	}{{"192.168.7.0", false}, {"192.168.7.255", false}, {"192.168.7.1", true}, {"192.168.8.1", false}} {
		if got := IsHost(s, netip.MustParseAddr(c.a)); got != c.want {
			t.Errorf("IsHost(%s) = %v", c.a, got)
		}
	}
	if g := Gateway(s); g != netip.MustParseAddr("192.168.7.1") {
		t.Errorf("Gateway = %s", g)
	}
}
