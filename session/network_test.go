package session

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pelagos-containers/pelagos/network"
)

// TestPastaServes: a start waits only for a pasta that serves no running
// container: its own previous run's, or one whose namespace handle is
// gone; one that serves another container is that container's port.
func TestPastaServes(t *testing.T) {
	runtime := t.TempDir()
	c := &ctr{m: &Manager{paths: Paths{Runtime: runtime, Data: t.TempDir()}}, rec: record{ID: "self0123456789", Name: "self"}}
	handle := func(id string) string { return filepath.Join(runtime, "net", id, "netns") }
	if err := os.MkdirAll(filepath.Dir(handle("other")), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(handle("other"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		h       network.PortHolder
		id      string
		serving bool
	}{
		{"not pasta", network.PortHolder{Pid: 7, Name: "nc", Known: true}, "", false},
		{"pasta of someone else's", network.PortHolder{Pid: 7, Pasta: true, NetNS: "/run/user/9/pelagos/net/x/netns"}, "", false},
		{"pasta of ours, running", network.PortHolder{Pid: 7, Pasta: true, NetNS: handle("other")}, "other", true},
		{"pasta of ours, handle gone", network.PortHolder{Pid: 7, Pasta: true, NetNS: handle("gone")}, "gone", false},
		{"our own previous run", network.PortHolder{Pid: 7, Pasta: true, NetNS: handle(c.rec.ID)}, c.rec.ID, false},
	} {
		id, serving := c.pastaServes(tc.h)
		if id != tc.id || serving != tc.serving {
			t.Errorf("%s: pastaServes = %q, %v; want %q, %v", tc.name, id, serving, tc.id, tc.serving)
		}
	}
	if n := c.containerName("0123456789abcdef"); n != "0123456789ab" {
		t.Errorf("name of a container without a record: %q", n)
	}
}
