package tests

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestBusctlWithoutFds is the script path of the README: create, start,
// wait, read state and output, remove — with busctl alone.
func TestBusctlWithoutFds(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	const mgr = "io.pelagos.Pelagos1.Manager"
	r := s.busctl(t, "call", "--", "io.pelagos.Pelagos1", "/io/pelagos/Pelagos1", mgr, "CreateContainer", "a{sv}", "3",
		"Image", "s", "localhost/busybox",
		"Name", "s", "scripted",
		"Command", "as", "3", "sh", "-c", "echo to-log; echo err-log >&2; exit 5")
	m := regexp.MustCompile(`^os "(/io/pelagos/Pelagos1/container/([0-9a-f]{64}))" "([0-9a-f]{64})"`).FindStringSubmatch(r.Stdout)
	if r.Code != 0 || m == nil || m[2] != m[3] {
		t.Fatalf("CreateContainer: %s", r)
	}
	path := m[1]
	defer s.pelagos(t, "rm", "-f", "scripted")
	const ctr = "io.pelagos.Pelagos1.Container"
	if r := s.busctl(t, "get-property", "io.pelagos.Pelagos1", path, ctr, "State"); r.Stdout != "s \"created\"\n" {
		t.Fatalf("State after create: %s", r)
	}
	if r := s.busctl(t, "call", "io.pelagos.Pelagos1", path, ctr, "Start", "a{sv}", "0"); r.Code != 0 {
		t.Fatalf("Start: %s", r)
	}
	if r := s.busctl(t, "--timeout=60", "call", "io.pelagos.Pelagos1", path, ctr, "Wait"); r.Stdout != "i 5\n" {
		t.Fatalf("Wait: %s", r)
	}
	if r := s.busctl(t, "get-property", "io.pelagos.Pelagos1", path, ctr, "State", "ExitCode"); r.Stdout != "s \"exited\"\ni 5\n" {
		t.Fatalf("State/ExitCode: %s", r)
	}
	r = s.busctl(t, "get-property", "io.pelagos.Pelagos1", path, ctr, "LogPath")
	logPath := strings.Trim(strings.TrimPrefix(strings.TrimSpace(r.Stdout), "s "), `"`)
	log, err := os.ReadFile(logPath)
	// CRI records: time, stream, F (full line), the line. Each stream
	// keeps its order; across the two, records go in the order they were
	// read, which two pipes cannot make exact (conmon neither).
	if err != nil || !regexp.MustCompile(`(?m)^\S+Z stdout F to-log$`).Match(log) || !regexp.MustCompile(`(?m)^\S+Z stderr F err-log$`).Match(log) || strings.Count(string(log), "\n") != 2 {
		t.Fatalf("log %s: %q %v", logPath, log, err)
	}
	// The container shows in the ObjectManager, then goes.
	if r := s.busctl(t, "call", "io.pelagos.Pelagos1", "/io/pelagos/Pelagos1", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"); !strings.Contains(r.Stdout, path) {
		t.Fatalf("GetManagedObjects lacks %s: %s", path, r)
	}
	if r := s.busctl(t, "call", "io.pelagos.Pelagos1", "/io/pelagos/Pelagos1", mgr, "RemoveContainer", "sb", "scripted", "false"); r.Code != 0 {
		t.Fatalf("RemoveContainer: %s", r)
	}
	if r := s.busctl(t, "call", "io.pelagos.Pelagos1", "/io/pelagos/Pelagos1", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"); strings.Contains(r.Stdout, path) {
		t.Fatalf("removed container still managed: %s", r)
	}
	if _, err := os.Stat(logPath); !os.IsNotExist(err) {
		t.Fatalf("container directory survived removal: %v", err)
	}
}

func TestBusArgumentsValidated(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	const mgr = "io.pelagos.Pelagos1.Manager"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"CreateContainer", "a{sv}", "1", "Image", "i", "3"}, `option "Image" must be a string`},
		{[]string{"CreateContainer", "a{sv}", "2", "Image", "s", "localhost/busybox", "Bogus", "b", "true"}, "unknown container option(s) Bogus"},
		{[]string{"CreateContainer", "a{sv}", "0"}, "no image given"},
		{[]string{"LoadImageFromFile", "s", "relative.tar"}, "is not absolute"},
		{[]string{"GetContainer", "s", ""}, "empty container name"},
		{[]string{"GetContainer", "s", "nonexistent"}, "no such container"},
		{[]string{"GetImage", "s", "localhost/none"}, "no such image"},
	} {
		r := s.busctl(t, append([]string{"call", "io.pelagos.Pelagos1", "/io/pelagos/Pelagos1", mgr}, tc.args...)...)
		if r.Code == 0 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%v: want failure %q, got %s", tc.args, tc.want, r)
		}
	}
	// Introspection serves the interface file.
	r := s.busctl(t, "introspect", "io.pelagos.Pelagos1", "/io/pelagos/Pelagos1", mgr)
	for _, want := range []string{".CreateContainer", ".ListContainers", ".LoadImage", ".ContainerStateChanged", ".StorageDriver"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("introspection lacks %s:\n%s", want, r.Stdout)
		}
	}
	// The service answers well-formed calls after the bad ones.
	if r := s.busctl(t, "get-property", "io.pelagos.Pelagos1", "/io/pelagos/Pelagos1", mgr, "APIVersion"); r.Stdout != "u 1\n" {
		t.Fatalf("APIVersion: %s", r)
	}
}
