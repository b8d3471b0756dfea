package privhelper

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/pelagos-containers/pelagos/privhelper/api"
	"github.com/pelagos-containers/pelagos/privhelper/ipam"
)

// stateVersion is bumped when State changes incompatibly.
const stateVersion = 1

// idLen is the length of lease and forward ids: 10 hex digits, so a host
// link name built from one ("plgv" + id) fits IFNAMSIZ.
const idLen = 10

// Link name prefixes. Every link the helper makes starts with one of them, so
// reconciliation can find leftovers without touching anyone else's links.
const (
	bridgePrefix = "plg-br"
	vethPrefix   = "plgv"
)

// State is everything the helper has made, persisted so that a restart (or a
// kill -9) can find and undo it. IPAM lives here too: a lease's address is
// taken exactly as long as its record exists.
type State struct {
	Version    int        `json:"version"`
	NextBridge int        `json:"next_bridge"` // suffix for the next bridge name
	Networks   []*Network `json:"networks"`
	Leases     []*Lease   `json:"leases"`
	Forwards   []*Forward `json:"forwards"`
	// IPForwardWas is net.ipv4.ip_forward before the helper turned it on,
	// "" when the helper did not change it; restored when the last lease goes.
	IPForwardWas string `json:"ip_forward_was,omitempty"`
}

// Network is one user's bridge network.
type Network struct {
	UID      uint32       `json:"uid"`
	Name     string       `json:"name"`
	Subnet   netip.Prefix `json:"subnet"`
	Gateway  netip.Addr   `json:"gateway"`
	Bridge   string       `json:"bridge"`
	Internal bool         `json:"internal,omitempty"`
}

// Lease is one veth into a container's network namespace.
type Lease struct {
	ID        string     `json:"id"`
	UID       uint32     `json:"uid"`
	Network   string     `json:"network"`
	Addr      netip.Addr `json:"addr"`
	MAC       string     `json:"mac"`
	Ifname    string     `json:"ifname"`
	Container string     `json:"container,omitempty"`
	// Ready is set once the link is fully configured; a lease found not
	// ready on start was interrupted and is undone.
	Ready bool `json:"ready"`
}

// HostIf is the name of the lease's host-side veth.
func (l *Lease) HostIf() string { return vethPrefix + l.ID }

// Forward is one published host port.
type Forward struct {
	ID            string     `json:"id"`
	UID           uint32     `json:"uid"`
	Lease         string     `json:"lease"`
	Proto         string     `json:"proto"`
	HostIP        netip.Addr `json:"host_ip"` // unspecified = every address
	HostPort      uint16     `json:"host_port"`
	ContainerPort uint16     `json:"container_port"`
}

// network returns uid's network called name, or nil.
func (s *State) network(uid uint32, name string) *Network {
	for _, n := range s.Networks {
		if n.UID == uid && n.Name == name {
			return n
		}
	}
	return nil
}

// lease returns uid's lease id, or nil.
func (s *State) lease(uid uint32, id string) *Lease {
	for _, l := range s.Leases {
		if l.UID == uid && l.ID == id {
			return l
		}
	}
	return nil
}

// leasesOf returns the leases on uid's network name.
func (s *State) leasesOf(uid uint32, name string) []*Lease {
	var out []*Lease
	for _, l := range s.Leases {
		if l.UID == uid && l.Network == name {
			out = append(out, l)
		}
	}
	return out
}

// usedAddrs returns the addresses taken on uid's network name.
func (s *State) usedAddrs(n *Network) map[netip.Addr]bool {
	used := map[netip.Addr]bool{n.Gateway: true}
	for _, l := range s.leasesOf(n.UID, n.Name) {
		used[l.Addr] = true
	}
	return used
}

// pickAddr returns the address for a new lease on n: want if it is a free
// host address of n's subnet, else (want zero) the lowest free one.
func (s *State) pickAddr(n *Network, want netip.Addr) (netip.Addr, error) {
	used := s.usedAddrs(n)
	switch {
	case !want.IsValid():
		a, err := ipam.NextAddr(n.Subnet, used)
		if err != nil {
			return a, fmt.Errorf("network %s: %w", n.Name, err)
		}
		return a, nil
	case !ipam.IsHost(n.Subnet, want):
		return want, invalidf("address %s is not a host address of %s", want, n.Subnet)
	case used[want]:
		return want, newError(api.ErrorAddressInUse, "address %s is already in use on network %s", want, n.Name)
	}
	return want, nil
}

func (s *State) removeLease(id string) {
	s.Leases = slices.DeleteFunc(s.Leases, func(l *Lease) bool { return l.ID == id })
	s.Forwards = slices.DeleteFunc(s.Forwards, func(f *Forward) bool { return f.Lease == id })
}

// newID returns a random lease or forward id.
func newID() (string, error) {
	b := make([]byte, idLen/2)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Store reads and writes State in one file.
type Store struct {
	path string
}

// NewStore returns a Store keeping its file in dir, created 0700 if needed.
func NewStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	return &Store{path: filepath.Join(dir, "state.json")}, nil
}

// Load reads the state; a missing file is an empty state.
func (st *Store) Load() (*State, error) {
	b, err := os.ReadFile(st.path)
	if errors.Is(err, os.ErrNotExist) {
		return &State{Version: stateVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse state %s: %w", st.path, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("state %s: version %d, want %d", st.path, s.Version, stateVersion)
	}
	return &s, nil
}

// Save writes the state atomically: a temp file in the same directory,
// synced, then renamed over the old one, so a crash leaves either the old
// or the new state and never half of one.
func (st *Store) Save(s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(st.path), ".state-*.json")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, st.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}
