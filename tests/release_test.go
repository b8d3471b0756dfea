package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// snapshot counts what containers leave behind: mounts in the service's
// mount namespace, the user's processes, container directories, image
// store container records and exported bus objects.
type snapshot struct {
	mounts, procs, dirs, layers, objects int
}

func takeSnapshot(t *testing.T, s *userSession) snapshot {
	t.Helper()
	pid := s.servicePid(t)
	if pid == 0 {
		t.Fatal("no service")
	}
	mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(s.u.Home, ".local/share/pelagos")
	r := s.busctl(t, "tree", "--list", "io.pelagos.Pelagos1")
	return snapshot{
		mounts:  strings.Count(string(mi), "\n"),
		procs:   len(userProcesses(s.u.UID)),
		dirs:    countEntries(t, filepath.Join(data, "containers")),
		layers:  strings.Count(readOr(filepath.Join(data, "storage/overlay-containers/containers.json")), `"id"`),
		objects: strings.Count(r.Stdout, "/container/"),
	}
}

// settledSnapshot counts again for a moment until the counts match want:
// pasta is told to go when a run ends and finishes exiting in the
// background (its teardown takes ~25 ms).
func settledSnapshot(t *testing.T, s *userSession, want snapshot) snapshot {
	t.Helper()
	got := takeSnapshot(t, s)
	for deadline := time.Now().Add(3 * time.Second); got != want && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		got = takeSnapshot(t, s)
	}
	return got
}

// quietSnapshot waits until no pasta of an earlier run is still exiting
// (they finish in the background), then counts.
func quietSnapshot(t *testing.T, s *userSession) snapshot {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); (pastaProcesses(s.u.UID) > 0 || exitingProcesses(s.u.UID) > 0) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	return takeSnapshot(t, s)
}

// exitingProcesses counts the user's processes that are on their way out
// (their command line is already gone).
func exitingProcesses(uid int) int {
	n := 0
	for _, p := range userProcesses(uid) {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p)); err == nil && len(b) == 0 {
			n++
		}
	}
	return n
}

func readOr(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func TestResourcesReleased(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	before := quietSnapshot(t, s)
	t.Logf("before: %+v (%s)", before, describeProcs(s.u.UID))
	for i := 0; i < 20; i++ {
		s.mustPelagos(t, "run", "--rm", "localhost/busybox", "true")
	}
	s.pelagos(t, "run", "--rm", "localhost/busybox", "nosuchcommand") // a failed start
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("bg%d", i)
		s.mustPelagos(t, "run", "-d", "--name", name, "localhost/busybox", "sleep", "300")
	}
	mid := takeSnapshot(t, s)
	if mid.dirs != before.dirs+5 || mid.objects != before.objects+5 || mid.mounts <= before.mounts {
		t.Fatalf("detached containers not visible in counts: before %+v, running %+v", before, mid)
	}
	for i := 0; i < 5; i++ {
		s.mustPelagos(t, "rm", "-f", fmt.Sprintf("bg%d", i))
	}
	// pasta is told to go when a run ends and finishes exiting in the
	// background (it takes ~25 ms to tear down its buffers): allow it a
	// moment.
	after := settledSnapshot(t, s, before)
	if after != before {
		t.Fatalf("resources leaked: before %+v, after %+v\nprocesses now: %s", before, after, describeProcs(s.u.UID))
	}
}

func describeProcs(uid int) string {
	var out []string
	for _, p := range userProcesses(uid) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		out = append(out, fmt.Sprintf("%d:%s", p, strings.ReplaceAll(string(b), "\x00", " ")))
	}
	return strings.Join(out, "; ")
}

// TestConcurrentDetachedRuns: 50 `run -d` from separate CLI processes at
// once all succeed with unique names, and all go away again.
func TestConcurrentDetachedRuns(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	before := quietSnapshot(t, s)
	t.Logf("before: %+v (%s)", before, describeProcs(s.u.UID))
	const n = 50
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.pelagos(t, "run", "-d", "--network", "none", "-l", "batch=concurrent", "localhost/busybox", "sleep", "60")
		}()
	}
	wg.Wait()
	ids := map[string]bool{}
	for i, r := range results {
		id := strings.TrimSpace(r.Stdout)
		if r.Code != 0 || len(id) != 64 {
			t.Errorf("run %d: %s", i, r)
		}
		ids[id] = true
	}
	if len(ids) != n {
		t.Errorf("%d distinct ids from %d runs", len(ids), n)
	}
	names := strings.Fields(s.mustPelagos(t, "ps", "--filter", "label=batch=concurrent", "--format", "{{.Names}}"))
	seen := map[string]bool{}
	for _, nm := range names {
		if seen[nm] {
			t.Errorf("name %s given twice", nm)
		}
		seen[nm] = true
	}
	if len(names) != n {
		t.Errorf("ps shows %d of the %d containers", len(names), n)
	}
	args := append([]string{"rm", "-f"}, names...)
	s.mustPelagos(t, args...)
	after := settledSnapshot(t, s, before)
	if after != before {
		t.Fatalf("resources leaked: before %+v, after %+v\nprocesses now: %s", before, after, describeProcs(s.u.UID))
	}
}

// TestManyRunRmCycles: 500 run/rm cycles leave zero leftover mounts,
// processes, files and bus objects.
func TestManyRunRmCycles(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	before := quietSnapshot(t, s)
	for i := 0; i < 500; i++ {
		args := []string{"run", "--rm", "localhost/busybox", "true"}
		if i%2 == 1 {
			// Half of them create and remove in two steps, as scripts do.
			args = []string{"run", "--name", "cycle", "--network", "none", "localhost/busybox", "true"}
		}
		if r := s.pelagos(t, args...); r.Code != 0 {
			t.Fatalf("cycle %d: %s", i, r)
		}
		if i%2 == 1 {
			s.mustPelagos(t, "rm", "cycle")
		}
	}
	after := settledSnapshot(t, s, before)
	if after != before {
		t.Fatalf("resources leaked after 500 cycles: before %+v, after %+v\nprocesses now: %s", before, after, describeProcs(s.u.UID))
	}
}
