package privhelper

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// tableName is the helper's only nftables table (family inet). The helper
// never lists, flushes or edits any other table.
const tableName = "pelagos"

// ruleset is the helper's whole table, computed from State.
type ruleset struct {
	guard, forward, prerouting, output, postrouting []*nftables.Rule
}

func (r *ruleset) empty() bool {
	return len(r.guard)+len(r.forward)+len(r.prerouting)+len(r.output)+len(r.postrouting) == 0
}

// buildRuleset computes the rules for the networks that have a bridge (that
// is, leases) and for every forward:
//
//   - forward: traffic from one pelagos bridge to another pelagos bridge is
//     dropped (two users' containers cannot reach each other); an internal
//     network's bridge exchanges traffic with nothing but itself.
//   - postrouting: a non-internal network is masqueraded when it leaves
//     through another interface; connections the host makes from loopback
//     into a bridge are masqueraded to the gateway, because the container
//     would otherwise answer 127.0.0.1 to itself.
//   - guard (prerouting, before conntrack NAT): packets arriving on a
//     pelagos bridge addressed to 127.0.0.0/8 are dropped. route_localnet on
//     the bridge would otherwise let a container (root in its namespace)
//     reach the host's loopback-only services; legitimate replies to
//     loopback connections still carry the gateway address at this point.
//   - prerouting and output: each forward DNATs its host address (or every
//     local address when bound to all) and port to the container, for
//     packets arriving from outside and for those the host sends itself.
func buildRuleset(s *State) *ruleset {
	r := &ruleset{}
	active := map[string]*Network{}
	for _, l := range s.Leases {
		if n := s.network(l.UID, l.Network); n != nil {
			active[n.Bridge] = n
		}
	}
	for _, n := range s.Networks { // state order keeps the rules stable
		if active[n.Bridge] == nil {
			continue
		}
		if n.Internal {
			r.forward = append(r.forward,
				rule(ifname(unix.NFT_META_IIFNAME, n.Bridge, true), ifname(unix.NFT_META_OIFNAME, n.Bridge, false), verdict(expr.VerdictDrop)),
				rule(ifname(unix.NFT_META_OIFNAME, n.Bridge, true), ifname(unix.NFT_META_IIFNAME, n.Bridge, false), verdict(expr.VerdictDrop)))
		} else {
			r.forward = append(r.forward, rule(
				ifname(unix.NFT_META_IIFNAME, n.Bridge, true),
				ifnamePrefix(unix.NFT_META_OIFNAME, bridgePrefix),
				ifname(unix.NFT_META_OIFNAME, n.Bridge, false),
				verdict(expr.VerdictDrop)))
			r.postrouting = append(r.postrouting, rule(
				ipv4(), srcIn(n.Subnet),
				ifname(unix.NFT_META_OIFNAME, n.Bridge, false),
				[]expr.Any{&expr.Masq{}}))
		}
		r.postrouting = append(r.postrouting, rule(
			ipv4(), ifname(unix.NFT_META_OIFNAME, n.Bridge, true),
			srcIn(netip.MustParsePrefix("127.0.0.0/8")),
			[]expr.Any{&expr.Masq{}}))
	}
	if len(active) > 0 {
		r.guard = append(r.guard, rule(ipv4(), ifnamePrefix(unix.NFT_META_IIFNAME, bridgePrefix),
			dstIn(netip.MustParsePrefix("127.0.0.0/8")), verdict(expr.VerdictDrop)))
	}
	for _, f := range s.Forwards {
		if l := s.lease(f.UID, f.Lease); l != nil {
			r.prerouting = append(r.prerouting, dnat(f, l.Addr))
			r.output = append(r.output, dnat(f, l.Addr))
		}
	}
	return r
}

// dnat is the rule for one forward.
func dnat(f *Forward, to netip.Addr) *nftables.Rule {
	var match []expr.Any
	match = append(match, ipv4()...)
	if f.HostIP.IsUnspecified() {
		// Every address of the host, loopback included, and nothing routed
		// through it to somewhere else.
		match = append(match,
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)})
	} else {
		a := f.HostIP.As4()
		match = append(match,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]})
	}
	proto := byte(unix.IPPROTO_TCP)
	if f.Proto == "udp" {
		proto = unix.IPPROTO_UDP
	}
	ta := to.As4()
	match = append(match,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(f.HostPort)},
		&expr.Immediate{Register: 1, Data: ta[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(f.ContainerPort)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true})
	return &nftables.Rule{Exprs: match}
}

func rule(parts ...[]expr.Any) *nftables.Rule {
	var e []expr.Any
	for _, p := range parts {
		e = append(e, p...)
	}
	return &nftables.Rule{Exprs: e}
}

func ipv4() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}
}

// ifname matches an interface name exactly (eq) or anything else (!eq).
func ifname(key uint32, name string, eq bool) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	op := expr.CmpOpEq
	if !eq {
		op = expr.CmpOpNeq
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKey(key), Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: b},
	}
}

// ifnamePrefix matches interface names starting with prefix, as nft's
// "name*" does: the comparison covers the prefix's bytes only.
func ifnamePrefix(key uint32, prefix string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKey(key), Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(prefix)},
	}
}

func srcIn(p netip.Prefix) []expr.Any { return addrIn(12, p) }

func dstIn(p netip.Prefix) []expr.Any { return addrIn(16, p) }

// addrIn matches the IPv4 address at offset (12 source, 16 destination)
// against prefix p.
func addrIn(offset uint32, p netip.Prefix) []expr.Any {
	a := p.Masked().Addr().As4()
	mask := make([]byte, 4)
	for i := 0; i < p.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
	}
}

func verdict(k expr.VerdictKind) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: k}}
}

// applyRuleset replaces the helper's table with r in one netlink batch, so
// the kernel never sees a half-built table: the table is added (a no-op if
// it exists), deleted and, unless r is empty, rebuilt.
func applyRuleset(r *ruleset) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := &nftables.Table{Name: tableName, Family: nftables.TableFamilyINet}
	c.AddTable(t)
	c.DelTable(t)
	if !r.empty() {
		c.AddTable(t)
		accept := nftables.ChainPolicyAccept
		chains := []struct {
			name  string
			typ   nftables.ChainType
			hook  *nftables.ChainHook
			prio  *nftables.ChainPriority
			rules []*nftables.Rule
		}{
			{"guard", nftables.ChainTypeFilter, nftables.ChainHookPrerouting, nftables.ChainPriorityRaw, r.guard},
			{"forward", nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter, r.forward},
			{"prerouting", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest, r.prerouting},
			{"output", nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest, r.output},
			{"postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource, r.postrouting},
		}
		for _, ch := range chains {
			chain := c.AddChain(&nftables.Chain{Name: ch.name, Table: t, Type: ch.typ, Hooknum: ch.hook, Priority: ch.prio, Policy: &accept})
			for _, rl := range ch.rules {
				rl.Table, rl.Chain = t, chain
				c.AddRule(rl)
			}
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("write nftables table inet %s: %w", tableName, err)
	}
	return nil
}
