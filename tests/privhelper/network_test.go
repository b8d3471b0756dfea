package privhelper_test

import (
	"strings"
	"testing"
	"time"
)

// An authorised user's container on the default network reaches a server
// outside through NAT, and a published port answers on a host address and
// on 127.0.0.1 as well as from outside.
func TestBridgeNATAndPublish(t *testing.T) {
	before := snapshot(t)
	c := startContainer(t, userA)
	var l lease
	must(t, &l, userA, "attach", c.netns(), "bridge", "container=ctr-a")
	if !strings.HasPrefix(l.Address, "10.89.") || l.Ifname != "eth0" {
		t.Fatalf("lease %+v: want a 10.89.x address on eth0", l)
	}

	up := serve(t, E.upPID, upPeer+":8081")
	saw, err := dial(t, c.pid, up)
	if err != nil {
		t.Fatalf("container -> upstream %s: %v", up, err)
	}
	if saw != upHost {
		t.Fatalf("upstream saw the container as %s, want the host's %s (masquerade)", saw, upHost)
	}

	serve(t, c.pid, "0.0.0.0:80")
	var fwd string
	must(t, &fwd, userA, "fwd", l.ID, "tcp", "", "18080", "80")
	for _, target := range []string{upHost + ":18080", "127.0.0.1:18080"} {
		if _, err := dial(t, 0, target); err != nil {
			t.Errorf("host -> %s (published): %v", target, err)
		}
	}
	if saw, err := dial(t, E.upPID, upHost+":18080"); err != nil {
		t.Errorf("upstream -> %s:18080 (published): %v", upHost, err)
	} else if saw != upPeer {
		t.Errorf("container saw the upstream client as %s, want %s", saw, upPeer)
	}

	// The port is held: nothing else can take it while the forward exists.
	refused(t, "io.pelagos.PrivHelper1.Error.PortInUse", userA, "fwd", l.ID, "tcp", "127.0.0.1", "18080", "80")

	must(t, nil, userA, "unfwd", fwd)
	if _, err := dial(t, 0, "127.0.0.1:18080"); err == nil {
		t.Errorf("127.0.0.1:18080 still answers after RemoveForward")
	}
	must(t, nil, userA, "detach", l.ID)
	assertClean(t, before)
}

// assertClean waits briefly for the host to match before.
func assertClean(t *testing.T, before hostSnapshot) {
	t.Helper()
	var now hostSnapshot
	err := waitFor(5*time.Second, func() bool {
		now = snapshot(t)
		return len(now.Links) == len(before.Links) && now.NftRules == before.NftRules && now.Forward == before.Forward
	})
	if err != nil {
		t.Fatalf("host not back to %+v: %+v", before, now)
	}
}
