package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestUserNamespaceModes: --userns=keep-id gives the user their own uid,
// gid and name inside, so files in a bind-mounted home directory keep
// their owner both ways; --userns=auto gives each container a private,
// disjoint range of subordinate ids; --uidmap maps exactly what it says.
// The host's view of the processes' uids is the proof, not the
// container's own.
func TestUserNamespaceModes(t *testing.T) {
	needRoot(t)
	s := S.main
	withBusybox(t, s)
	uid, gid := s.u.UID, s.u.GID
	start := subIDStart(t, s.u.Name)

	// keep-id, with a directory of the user's home bind-mounted.
	proj := filepath.Join(s.u.Home, "keepid-proj")
	os.RemoveAll(proj)
	if err := os.MkdirAll(proj, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(proj)
	if err := os.WriteFile(filepath.Join(proj, "mine"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chown(proj, uid, gid)
	os.Chown(filepath.Join(proj, "mine"), uid, gid)
	r := s.pelagos(t, "run", "--rm", "--userns=keep-id", "-v", proj+":/proj", "localhost/busybox", "sh", "-c",
		`id -u; id -g; id -un; echo "$HOME"; stat -c %u:%g /proj/mine; echo new > /proj/made; grep -c CapEff:.0000000000000000 /proc/self/status`)
	want := strings.Join([]string{strconv.Itoa(uid), strconv.Itoa(gid), s.u.Name, s.u.Home, strconv.Itoa(uid) + ":" + strconv.Itoa(gid), "1"}, "\n") + "\n"
	if r.Code != 0 || r.Stdout != want {
		t.Fatalf("keep-id: got %s\nwant stdout %q", r, want)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(proj, "made"), &st); err != nil || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Fatalf("a file made under keep-id is owned by %d:%d on the host (%v), want the user's %d:%d", st.Uid, st.Gid, err, uid, gid)
	}
	// The image's files still belong to root inside, and root can be had.
	r = s.pelagos(t, "run", "--rm", "--userns=keep-id", "-u", "0", "localhost/busybox", "sh", "-c", "stat -c %u:%g /bin/busybox /etc/passwd; id -u; touch /etc/ok && echo ok")
	if r.Code != 0 || r.Stdout != "0:0\n0:0\n0\nok\n" {
		t.Fatalf("keep-id as root: %s", r)
	}
	// A running keep-id container: its process is the user on the host,
	// and exec enters its user namespace.
	id := strings.TrimSpace(s.mustPelagos(t, "run", "-d", "--name", "kid", "--userns=keep-id", "localhost/busybox", "sleep", "60"))
	defer s.pelagos(t, "rm", "-f", "kid")
	if got := hostUID(t, containerPid(t, s, id)); got != uid {
		t.Errorf("keep-id process runs as host uid %d, want the user's %d", got, uid)
	}
	if r := s.pelagos(t, "exec", "kid", "id", "-u"); r.Code != 0 || strings.TrimSpace(r.Stdout) != strconv.Itoa(uid) {
		t.Errorf("exec in a keep-id container: %s", r)
	}
	if r := s.pelagos(t, "exec", "-u", "0", "kid", "cat", "/proc/self/uid_map"); r.Code != 0 || len(strings.Fields(r.Stdout)) != 9 {
		t.Errorf("exec -u 0 in a keep-id container, uid_map: %s", r)
	}
	if r := s.pelagos(t, "inspect", "--format", "{{.HostConfig.UsernsMode}}", "kid"); strings.TrimSpace(r.Stdout) != "keep-id" {
		t.Errorf("inspect UsernsMode: %s", r)
	}

	// auto: two containers, two disjoint ranges, neither containing the
	// user's own uid; root inside is a subordinate id outside.
	var bases []int
	for _, name := range []string{"auto1", "auto2"} {
		id := strings.TrimSpace(s.mustPelagos(t, "run", "-d", "--name", name, "--userns=auto", "localhost/busybox", "sleep", "60"))
		defer s.pelagos(t, "rm", "-f", name)
		r := s.pelagos(t, "exec", name, "cat", "/proc/self/uid_map")
		f := strings.Fields(r.Stdout)
		if r.Code != 0 || len(f) != 3 || f[0] != "0" || f[2] != "1024" {
			t.Fatalf("%s uid_map: %s", name, r)
		}
		base, _ := strconv.Atoi(f[1])
		if base < 1 {
			t.Fatalf("%s: the automatic range includes the user (%s)", name, r.Stdout)
		}
		if got := hostUID(t, containerPid(t, s, id)); got != start+base-1 {
			t.Errorf("%s: root runs as host uid %d, want subuid %d", name, got, start+base-1)
		}
		if r := s.pelagos(t, "exec", name, "sh", "-c", "touch /etc/auto && stat -c %u /etc/passwd"); r.Code != 0 || r.Stdout != "0\n" {
			t.Errorf("%s: the image is not root's inside: %s", name, r)
		}
		bases = append(bases, base)
	}
	if d := bases[1] - bases[0]; d < 1024 && d > -1024 {
		t.Errorf("automatic ranges overlap: %v", bases)
	}

	// A new named volume becomes the auto container's root's, so it can
	// write there.
	if r := s.pelagos(t, "run", "--rm", "--userns=auto", "-v", "autovol:/data", "localhost/busybox", "sh", "-c", "echo hi > /data/f && stat -c %u /data/f"); r.Code != 0 || r.Stdout != "0\n" {
		t.Errorf("writing a new volume under --userns=auto: %s", r)
	}
	s.pelagos(t, "volume", "rm", "autovol")

	// --uidmap: exactly the given map; root is subuid start+99.
	id = strings.TrimSpace(s.mustPelagos(t, "run", "-d", "--name", "mapped", "--uidmap", "0:100:500", "localhost/busybox", "sleep", "60"))
	defer s.pelagos(t, "rm", "-f", "mapped")
	if r := s.pelagos(t, "exec", "mapped", "cat", "/proc/self/uid_map", "/proc/self/gid_map"); strings.Join(strings.Fields(r.Stdout), " ") != "0 100 500 0 100 500" {
		t.Errorf("--uidmap 0:100:500: %s", r)
	}
	if got := hostUID(t, containerPid(t, s, id)); got != start+99 {
		t.Errorf("--uidmap 0:100:500: root runs as host uid %d, want %d", got, start+99)
	}

	// Bad values: one line naming the flag and the form, exit 125,
	// nothing created.
	before := s.mustPelagos(t, "ps", "-aq")
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--userns", "bogus"}, "--userns"},
		{[]string{"--userns", "auto:size=x"}, "auto:size=N"},
		{[]string{"--userns", "auto:size=10000000"}, "no free range"},
		{[]string{"--userns", "keep-id:uid=99999999"}, "keep-id needs"},
		{[]string{"--uidmap", "0:1"}, "CONTAINER_ID:HOST_ID:SIZE"},
		{[]string{"--uidmap", "0:70000:10"}, "are not yours"},
		{[]string{"--uidmap", "5:1:10"}, "container id 0 is not mapped"},
		{[]string{"--uidmap", "0:1:10", "--uidmap", "5:100:10"}, "overlap"},
		{[]string{"--userns", "keep-id", "--uidmap", "0:1:10"}, "conflict"},
		{[]string{"--userns", "keep-id", "--network", "container:kid"}, "conflict"},
	} {
		args := append(append([]string{"run", "--rm"}, tc.flags...), "localhost/busybox", "true")
		r := s.pelagos(t, args...)
		if r.Code != 125 || !strings.Contains(r.Stderr, tc.want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("%v: want one line with %q and exit 125, got %s", tc.flags, tc.want, r)
		}
	}
	if after := s.mustPelagos(t, "ps", "-aq"); after != before {
		t.Errorf("a refused run left a container: before %q after %q", before, after)
	}
}
