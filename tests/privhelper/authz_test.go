package privhelper_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	errNotAuthorized = "io.pelagos.PrivHelper1.Error.NotAuthorized"
	errInvalid       = "io.pelagos.PrivHelper1.Error.InvalidArgument"
	errNotFound      = "io.pelagos.PrivHelper1.Error.NotFound"
)

// A host port below 1024 needs the stricter action: pha has it, phb not.
func TestPrivilegedPort(t *testing.T) {
	before := snapshot(t)
	for _, u := range []string{userA, userB} {
		c := startContainer(t, u)
		var l lease
		must(t, &l, u, "attach", c.netns(), "bridge")
		if u == userA {
			var fwd string
			must(t, &fwd, u, "fwd", l.ID, "tcp", "127.0.0.1", "988", "80")
			must(t, nil, u, "unfwd", fwd)
		} else {
			msg := refused(t, errNotAuthorized, u, "fwd", l.ID, "tcp", "127.0.0.1", "988", "80")
			if !strings.Contains(msg, "io.pelagos.privhelper.publish-privileged-port") {
				t.Errorf("denial does not name the action: %s", msg)
			}
			var fwds []any
			must(t, &fwds, u, "fwds")
			if len(fwds) != 0 {
				t.Errorf("denied forward exists: %v", fwds)
			}
		}
		must(t, nil, u, "detach", l.ID)
	}
	assertClean(t, before)
}

// A user outside group pelagos is denied every method with the action
// named, and nothing is created.
func TestNotInGroupDenied(t *testing.T) {
	before := snapshot(t)
	c := startContainer(t, userC)
	for _, args := range [][]string{
		{"attach", c.netns(), "bridge"},
		{"create", "dev"},
		{"nets"},
		{"leases"},
		{"detach", "0123456789"},
		{"fwd", "0123456789", "tcp", "", "18081", "80"},
	} {
		msg := refused(t, errNotAuthorized, userC, args...)
		if !strings.Contains(msg, "io.pelagos.privhelper.network") || !strings.Contains(msg, "group pelagos") {
			t.Errorf("%v: denial %q does not name the action and how to get it", args, msg)
		}
	}
	// Interactive authorisation asked for, no agent: still a clean denial.
	refused(t, errNotAuthorized, userC, "-i", "attach", c.netns(), "bridge")
	if now := snapshot(t); len(now.Links) != len(before.Links) || now.NftRules != before.NftRules {
		t.Fatalf("denied calls changed the host: %+v -> %+v", before, now)
	}
}

// Forged namespaces: another user's container, a pipe, a plain file, the
// host's namespace, a non-network namespace. All refused, nothing made.
func TestForgedNetns(t *testing.T) {
	before := snapshot(t)
	ca := startContainer(t, userA)
	cb := startContainer(t, userB)
	plain := filepath.Join(E.dir, "plain")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user, what string
	}{
		{userA, "pipe"},
		{userA, "file:" + plain},
		{userA, "path:/proc/self/ns/net"},  // the host's namespace, opened by the caller
		{userA, "path:/proc/self/ns/user"}, // not a network namespace
		{userA, "path:/proc/self/ns/uts"},
	} {
		refused(t, errInvalid, tc.user, "attach", tc.what, "bridge")
	}
	// Another user's namespace. A user cannot open another user's
	// /proc/PID/ns/net, so the fd is one root opened and passed down to a
	// phclient running as pha (fd 3).
	f, err := os.Open("/proc/" + cb.netns() + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if msg := refusedWithFile(t, errInvalid, userA, f, "attach", "path:/proc/self/fd/3", "bridge"); !strings.Contains(msg, "does not belong to you") {
		t.Errorf("another user's netns: %s", msg)
	}
	_ = ca
	var leases []any
	must(t, &leases, userA, "leases")
	if len(leases) != 0 {
		t.Fatalf("forged attaches left leases: %v", leases)
	}
	if now := snapshot(t); len(now.Links) != len(before.Links) || now.NftRules != before.NftRules {
		t.Fatalf("forged attaches changed the host: %+v -> %+v", before, now)
	}
}

// User B can neither see nor change user A's networks, leases or forwards;
// the answer is NotFound, as for something that does not exist.
func TestOwnership(t *testing.T) {
	before := snapshot(t)
	ca := startContainer(t, userA)
	must(t, nil, userA, "create", "dev", "subnet=10.250.7.0/24")
	var l lease
	must(t, &l, userA, "attach", ca.netns(), "dev")
	var fwd string
	must(t, &fwd, userA, "fwd", l.ID, "tcp", "", "18082", "80")

	// B sees nothing of A's, and may have its own "dev" (but not A's subnet).
	for _, what := range []string{"nets", "leases", "fwds"} {
		out, err := call(t, userB, what)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"dev", "10.250.7.", l.ID, fwd} {
			if strings.Contains(out, secret) {
				t.Errorf("%s as B shows A's %s: %s", what, secret, out)
			}
		}
	}
	refused(t, errNotFound, userB, "detach", l.ID)
	refused(t, errNotFound, userB, "unfwd", fwd)
	refused(t, errNotFound, userB, "rmnet", "dev")
	refused(t, errNotFound, userB, "fwd", l.ID, "tcp", "", "18083", "80")
	refused(t, errInvalid, userB, "create", "dev", "subnet=10.250.7.0/25")
	must(t, nil, userB, "create", "dev")
	must(t, nil, userB, "rmnet", "dev")

	// A's things are intact.
	var leases []lease
	must(t, &leases, userA, "leases")
	if len(leases) != 1 || leases[0].ID != l.ID {
		t.Fatalf("A's leases after B's attempts: %+v", leases)
	}
	refused(t, "io.pelagos.PrivHelper1.Error.Busy", userA, "rmnet", "dev")
	must(t, nil, userA, "detach", l.ID)
	must(t, nil, userA, "rmnet", "dev")
	assertClean(t, before)
}
