// Package ipam is the address arithmetic of the privileged helper: picking a
// free subnet from a pool and a free host address inside a subnet. It keeps
// no state of its own; callers pass what is in use, so allocations are only
// as durable as the caller's persisted records.
package ipam

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrExhausted reports that no free subnet or address is left.
var ErrExhausted = errors.New("exhausted")

// NextSubnet returns the first prefix of length bits inside pool that
// overlaps none of used.
func NextSubnet(pool netip.Prefix, bits int, used []netip.Prefix) (netip.Prefix, error) {
	pool = pool.Masked()
	if !pool.Addr().Is4() || bits < pool.Bits() || bits > 30 {
		return netip.Prefix{}, fmt.Errorf("split %s into /%d: invalid size", pool, bits)
	}
	count := uint64(1) << (bits - pool.Bits())
	base := toUint(pool.Addr())
	step := uint32(1) << (32 - bits)
	for i := uint64(0); i < count; i++ {
		cand := netip.PrefixFrom(fromUint(base+uint32(i)*step), bits)
		free := true
		for _, u := range used {
			if cand.Overlaps(u) {
				free = false
				break
			}
		}
		if free {
			return cand, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /%d in %s: %w", bits, pool, ErrExhausted)
}

// Gateway returns the conventional gateway of subnet: its first host address.
func Gateway(subnet netip.Prefix) netip.Addr {
	return subnet.Masked().Addr().Next()
}

// Broadcast returns the last address of an IPv4 subnet.
func Broadcast(subnet netip.Prefix) netip.Addr {
	s := subnet.Masked()
	return fromUint(toUint(s.Addr()) | (uint32(1)<<(32-s.Bits()) - 1))
}

// IsHost reports whether a is a usable host address of subnet: inside it,
// and neither its network nor its broadcast address.
func IsHost(subnet netip.Prefix, a netip.Addr) bool {
	s := subnet.Masked()
	return a.Is4() && s.Contains(a) && a != s.Addr() && a != Broadcast(s)
}

// NextAddr returns the lowest host address of subnet that is not in used.
func NextAddr(subnet netip.Prefix, used map[netip.Addr]bool) (netip.Addr, error) {
	s := subnet.Masked()
	last := Broadcast(s)
	for a := s.Addr().Next(); a.IsValid() && a.Less(last); a = a.Next() {
		if !used[a] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address in %s: %w", s, ErrExhausted)
}

func toUint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func fromUint(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
