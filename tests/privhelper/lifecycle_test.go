package privhelper_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Two users' containers, each on its own default bridge, cannot reach each
// other, while each still reaches the outside.
func TestUsersIsolated(t *testing.T) {
	before := snapshot(t)
	ca, cb := startContainer(t, userA), startContainer(t, userB)
	var la, lb lease
	must(t, &la, userA, "attach", ca.netns(), "bridge")
	must(t, &lb, userB, "attach", cb.netns(), "bridge")
	serve(t, ca.pid, "0.0.0.0:7000")
	serve(t, cb.pid, "0.0.0.0:7000")
	if _, err := dial(t, ca.pid, lb.ip()+":7000"); err == nil {
		t.Errorf("A's container reached B's at %s", lb.ip())
	}
	if _, err := dial(t, cb.pid, la.ip()+":7000"); err == nil {
		t.Errorf("B's container reached A's at %s", la.ip())
	}
	up := serve(t, E.upPID, upPeer+":0")
	for _, c := range []*container{ca, cb} {
		if _, err := dial(t, c.pid, up); err != nil {
			t.Errorf("%s's container cannot reach upstream: %v", c.user, err)
		}
	}
	must(t, nil, userA, "detach", la.ID)
	must(t, nil, userB, "detach", lb.ID)
	assertClean(t, before)
}

// An internal network gets no way out, and cannot publish ports.
func TestInternalNetwork(t *testing.T) {
	before := snapshot(t)
	c := startContainer(t, userA)
	must(t, nil, userA, "create", "iso", "internal")
	var l lease
	must(t, &l, userA, "attach", c.netns(), "iso", "ifname=int0")
	if l.Ifname != "int0" {
		t.Fatalf("ifname %s", l.Ifname)
	}
	up := serve(t, E.upPID, upPeer+":0")
	if _, err := dial(t, c.pid, up); err == nil {
		t.Errorf("internal network reached upstream")
	}
	refused(t, errInvalid, userA, "fwd", l.ID, "tcp", "", "18090", "80")
	must(t, nil, userA, "detach", l.ID)
	must(t, nil, userA, "rmnet", "iso")
	assertClean(t, before)
}

// A container's namespace dying (its process killed) removes its veth,
// rules and lease with no Detach call and no client connected.
func TestNamespaceDeathCleansUp(t *testing.T) {
	before := snapshot(t)
	c := startContainer(t, userA)
	var l lease
	must(t, &l, userA, "attach", c.netns(), "bridge")
	must(t, nil, userA, "fwd", l.ID, "tcp", "", "18084", "80")
	c.kill()
	err := waitFor(15*time.Second, func() bool {
		out, _ := call(t, userA, "leases")
		return !strings.Contains(out, l.ID)
	})
	if err != nil {
		t.Fatalf("lease %s survived its namespace: %v", l.ID, err)
	}
	assertClean(t, before)
	// The host port is free again.
	if out, _ := call(t, userA, "fwds"); strings.Contains(out, "18084") {
		t.Fatalf("forward survived: %s", out)
	}
}

// The helper killed -9 while attaching: the next helper (activated by the
// next call) reconciles, keeping leases whose veth exists, dropping half-made
// ones and those whose namespace died while it was down; nothing leaks.
func TestKillAndReconcile(t *testing.T) {
	before := snapshot(t)
	keep := startContainer(t, userA)
	var kept lease
	must(t, &kept, userA, "attach", keep.netns(), "bridge")
	must(t, nil, userA, "fwd", kept.ID, "tcp", "", "18085", "80")
	doomed := startContainer(t, userA)
	var gone lease
	must(t, &gone, userA, "attach", doomed.netns(), "bridge")

	// Attach from several containers at once and kill the helper meanwhile.
	var wg sync.WaitGroup
	var cs []*container
	for i := 0; i < 6; i++ {
		cs = append(cs, startContainer(t, userA))
	}
	for _, c := range cs {
		wg.Add(1)
		go func() { defer wg.Done(); call(t, userA, "attach", c.netns(), "bridge") }()
	}
	time.Sleep(30 * time.Millisecond)
	killHelper()
	wg.Wait()
	killHelper() // an attach may have activated a new one; kill that too
	doomed.kill()

	var leases []lease
	must(t, &leases, userA, "leases") // activates a fresh helper
	ids := map[string]bool{}
	for _, l := range leases {
		ids[l.ID] = true
	}
	if !ids[kept.ID] || ids[gone.ID] {
		t.Fatalf("after restart: leases %v, want %s kept and %s gone", leases, kept.ID, gone.ID)
	}
	// Every lease listed has its veth, and every veth of ours has a lease.
	links := ourLinks()
	for _, l := range leases {
		if !contains(links, "plgv"+l.ID) {
			t.Errorf("lease %s has no veth", l.ID)
		}
	}
	for _, name := range links {
		if strings.HasPrefix(name, "plgv") && !ids[strings.TrimPrefix(name, "plgv")] {
			t.Errorf("veth %s has no lease", name)
		}
	}
	// The kept forward still works: its rule was rebuilt, its port re-held.
	serve(t, keep.pid, "0.0.0.0:80")
	if _, err := dial(t, 0, "127.0.0.1:18085"); err != nil {
		t.Errorf("forward after restart: %v", err)
	}
	for _, l := range leases {
		must(t, nil, userA, "detach", l.ID)
	}
	assertClean(t, before)
}

// 200 attach/detach cycles leave no links, rules, leases or fds behind.
func TestAttachDetachCycles(t *testing.T) {
	before := snapshot(t)
	c := startContainer(t, userB)
	must(t, nil, userB, "cycle", c.netns(), "bridge", "2") // warm up: helper running
	pid := helperPID(t)
	fds := countFDs(t, pid)
	must(t, nil, userB, "cycle", c.netns(), "bridge", "200")
	if p := helperPID(t); p != pid {
		t.Fatalf("helper restarted during the cycles (%d -> %d)", pid, p)
	}
	if n := countFDs(t, pid); n > fds {
		t.Errorf("helper fds: %d before, %d after 200 cycles", fds, n)
	}
	var leases []any
	must(t, &leases, userB, "leases")
	if len(leases) != 0 {
		t.Errorf("leases left: %v", leases)
	}
	assertClean(t, before)
}

func countFDs(t *testing.T, pid int) int {
	t.Helper()
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
