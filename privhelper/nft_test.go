package privhelper

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/nftables/expr"
)

func testState() *State {
	return &State{
		Networks: []*Network{
			{UID: 1, Name: "bridge", Subnet: netip.MustParsePrefix("10.89.0.0/24"), Gateway: netip.MustParseAddr("10.89.0.1"), Bridge: "plg-br0"},
			{UID: 2, Name: "iso", Subnet: netip.MustParsePrefix("10.89.1.0/24"), Gateway: netip.MustParseAddr("10.89.1.1"), Bridge: "plg-br1", Internal: true},
			{UID: 2, Name: "idle", Subnet: netip.MustParsePrefix("10.89.2.0/24"), Gateway: netip.MustParseAddr("10.89.2.1"), Bridge: "plg-br2"},
		},
		Leases: []*Lease{
			{ID: "aaaaaaaaaa", UID: 1, Network: "bridge", Addr: netip.MustParseAddr("10.89.0.2")},
			{ID: "bbbbbbbbbb", UID: 2, Network: "iso", Addr: netip.MustParseAddr("10.89.1.2")},
		},
		Forwards: []*Forward{
			{ID: "f", UID: 1, Lease: "aaaaaaaaaa", Proto: "tcp", HostIP: netip.IPv4Unspecified(), HostPort: 8080, ContainerPort: 80},
		},
	}
}

func TestBuildRuleset(t *testing.T) {
	r := buildRuleset(testState())
	// bridge: one isolation drop; iso: two drops; idle (no leases): none.
	if len(r.forward) != 3 {
		t.Errorf("forward rules: %d, want 3", len(r.forward))
	}
	// bridge: masquerade out + loopback masquerade; iso: loopback only.
	if len(r.postrouting) != 3 {
		t.Errorf("postrouting rules: %d, want 3", len(r.postrouting))
	}
	if len(r.guard) != 1 {
		t.Errorf("guard rules: %d, want 1", len(r.guard))
	}
	if len(r.prerouting) != 1 || len(r.output) != 1 {
		t.Fatalf("dnat rules: %d/%d, want 1/1", len(r.prerouting), len(r.output))
	}
	var nat *expr.NAT
	var target []byte
	for _, e := range r.prerouting[0].Exprs {
		switch x := e.(type) {
		case *expr.NAT:
			nat = x
		case *expr.Immediate:
			if x.Register == 1 {
				target = x.Data
			}
		}
	}
	if nat == nil || nat.Type != expr.NATTypeDestNAT || !bytes.Equal(target, []byte{10, 89, 0, 2}) {
		t.Errorf("forward rule does not DNAT to 10.89.0.2: %+v %v", nat, target)
	}
	for _, rl := range r.forward {
		if v, ok := rl.Exprs[len(rl.Exprs)-1].(*expr.Verdict); !ok || v.Kind != expr.VerdictDrop {
			t.Errorf("forward rule does not end in drop: %+v", rl.Exprs)
		}
	}
}

func TestEmptyRuleset(t *testing.T) {
	s := testState()
	s.Leases, s.Forwards = nil, nil
	if r := buildRuleset(s); !r.empty() {
		t.Errorf("no leases still gives rules: %+v", r)
	}
}

func TestIfnameMatch(t *testing.T) {
	e := ifname(0, "plg-br0", true)
	c := e[1].(*expr.Cmp)
	if len(c.Data) != 16 || string(c.Data[:7]) != "plg-br0" || c.Data[7] != 0 {
		t.Errorf("exact ifname match data %q", c.Data)
	}
	p := ifnamePrefix(0, "plg-br")[1].(*expr.Cmp)
	if string(p.Data) != "plg-br" {
		t.Errorf("prefix match data %q", p.Data)
	}
}
