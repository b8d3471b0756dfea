package privhelper

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/pelagos-containers/pelagos/privhelper/ipam"
)

// Addresses handed out survive a save and load, and are never handed out
// twice; a full subnet reports exhaustion.
func TestIPAMPersisted(t *testing.T) {
	dir := t.TempDir()
	st, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	n := &Network{UID: 1000, Name: "dev", Subnet: netip.MustParsePrefix("10.9.0.0/29"), Gateway: netip.MustParseAddr("10.9.0.1"), Bridge: "plg-br0"}
	s.Networks = append(s.Networks, n)
	seen := map[netip.Addr]bool{}
	for i := 0; i < 5; i++ { // .2-.6; .1 is the gateway
		// Reload between allocations, as a restarted helper would.
		if s, err = st.Load(); err != nil && i > 0 {
			t.Fatal(err)
		}
		if i == 0 {
			s.Networks = append(s.Networks, n)
		}
		net := s.network(1000, "dev")
		a, err := ipam.NextAddr(net.Subnet, s.usedAddrs(net))
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if seen[a] || a == net.Gateway {
			t.Fatalf("allocation %d: %s handed out twice", i, a)
		}
		seen[a] = true
		id, _ := newID()
		s.Leases = append(s.Leases, &Lease{ID: id, UID: 1000, Network: "dev", Addr: a})
		if err := st.Save(s); err != nil {
			t.Fatal(err)
		}
	}
	s, _ = st.Load()
	net := s.network(1000, "dev")
	if _, err := ipam.NextAddr(net.Subnet, s.usedAddrs(net)); !errors.Is(err, ipam.ErrExhausted) {
		t.Fatalf("full network: %v, want ErrExhausted", err)
	}
	// Another user's network of the same name does not share addresses.
	if s.network(1001, "dev") != nil {
		t.Fatal("network visible to another uid")
	}
	// Saving leaves no temp files behind.
	es, _ := os.ReadDir(dir)
	if len(es) != 1 || es[0].Name() != filepath.Base(st.path) {
		t.Fatalf("state dir holds %v", es)
	}
}

func TestRemoveLeaseTakesForwards(t *testing.T) {
	s := &State{
		Leases:   []*Lease{{ID: "aaaaaaaaaa"}, {ID: "bbbbbbbbbb"}},
		Forwards: []*Forward{{ID: "f1", Lease: "aaaaaaaaaa"}, {ID: "f2", Lease: "bbbbbbbbbb"}},
	}
	s.removeLease("aaaaaaaaaa")
	if len(s.Leases) != 1 || len(s.Forwards) != 1 || s.Forwards[0].ID != "f2" {
		t.Fatalf("after removeLease: %+v %+v", s.Leases, s.Forwards)
	}
}

func TestLoadRejectsGarbage(t *testing.T) {
	dir := t.TempDir()
	st, _ := NewStore(dir)
	os.WriteFile(st.path, []byte("{not json"), 0o600)
	if _, err := st.Load(); err == nil {
		t.Fatal("Load accepted a corrupt state")
	}
}
