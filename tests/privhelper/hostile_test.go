package privhelper_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/pelagos-containers/pelagos/privhelper/api"
)

type opts = map[string]dbus.Variant

func v(x any) dbus.Variant { return dbus.MakeVariant(x) }

// Hostile input for every method, sent raw (as root, whom the test rule
// authorises, so that validation rather than polkit is what refuses): the
// helper must answer each with an error, stay up and change nothing.
func TestHostileInputs(t *testing.T) {
	conn, err := dbus.Connect(E.busAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	obj := conn.Object(api.BusName, api.ObjectPath)
	callm := func(method string, args ...any) *dbus.Call {
		return obj.Call(api.Interface+"."+method, 0, args...)
	}

	// A valid lease of root's, for the cases that need one to get far.
	c := startContainer(t, userA)
	nsf, err := os.Open("/proc/" + c.netns() + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer nsf.Close()
	var id, addr, gw, ifname, mac string
	if err := callm("Attach", dbus.UnixFD(nsf.Fd()), "bridge", opts{}).Store(&id, &addr, &gw, &ifname, &mac); err != nil {
		t.Fatalf("root attach: %v", err)
	}
	defer callm("Detach", id)
	if err := callm("CreateNetwork", "taken", opts{"subnet": v("10.251.0.0/24")}).Err; err != nil {
		t.Fatal(err)
	}
	defer callm("RemoveNetwork", "taken")

	pid := helperPID(t)
	fdsBefore := countFDs(t, pid)
	before := snapshot(t)
	listsBefore := rootLists(t, callm)
	fd := func() dbus.UnixFD { return dbus.UnixFD(nsf.Fd()) }
	huge := strings.Repeat("x", 1<<20)

	cases := []struct {
		name   string
		method string
		args   []any
	}{
		{"empty name", "CreateNetwork", []any{"", opts{}}},
		{"leading dash", "CreateNetwork", []any{"-x", opts{}}},
		{"space", "CreateNetwork", []any{"a b", opts{}}},
		{"slash", "CreateNetwork", []any{"../etc", opts{}}},
		{"unicode", "CreateNetwork", []any{"dév", opts{}}},
		{"65 chars", "CreateNetwork", []any{strings.Repeat("a", 65), opts{}}},
		{"huge name", "CreateNetwork", []any{huge, opts{}}},
		{"public subnet", "CreateNetwork", []any{"n1", opts{"subnet": v("8.8.8.0/24")}}},
		{"huge subnet", "CreateNetwork", []any{"n1", opts{"subnet": v("10.0.0.0/8")}}},
		{"host bits", "CreateNetwork", []any{"n1", opts{"subnet": v("10.252.0.5/24")}}},
		{"bad prefix", "CreateNetwork", []any{"n1", opts{"subnet": v("192.168.1.0/33")}}},
		{"ipv6 subnet", "CreateNetwork", []any{"n1", opts{"subnet": v("fd00::/64")}}},
		{"garbage subnet", "CreateNetwork", []any{"n1", opts{"subnet": v(huge)}}},
		{"overlapping subnet", "CreateNetwork", []any{"n1", opts{"subnet": v("10.251.0.128/25")}}},
		{"host route subnet", "CreateNetwork", []any{"n1", opts{"subnet": v("172.31.254.0/29")}}},
		{"existing name", "CreateNetwork", []any{"taken", opts{}}},
		{"unknown key", "CreateNetwork", []any{"n1", opts{"mtu": v(uint32(1500))}}},
		{"subnet not a string", "CreateNetwork", []any{"n1", opts{"subnet": v(int32(5))}}},
		{"internal not a bool", "CreateNetwork", []any{"n1", opts{"internal": v("yes")}}},
		{"gateway without subnet", "CreateNetwork", []any{"n1", opts{"gateway": v("10.253.0.1")}}},
		{"gateway outside", "CreateNetwork", []any{"n1", opts{"subnet": v("10.253.0.0/24"), "gateway": v("10.254.0.1")}}},
		{"gateway is broadcast", "CreateNetwork", []any{"n1", opts{"subnet": v("10.253.0.0/24"), "gateway": v("10.253.0.255")}}},
		{"wrong signature", "CreateNetwork", []any{int32(1)}},
		{"no args", "CreateNetwork", nil},

		{"remove bad name", "RemoveNetwork", []any{"../x"}},
		{"remove missing", "RemoveNetwork", []any{"nonesuch"}},
		{"remove busy", "RemoveNetwork", []any{"bridge"}},
		{"remove wrong type", "RemoveNetwork", []any{uint16(3)}},

		{"attach bad network", "Attach", []any{fd(), "a b", opts{}}},
		{"attach missing network", "Attach", []any{fd(), "nonesuch", opts{}}},
		{"attach ip outside", "Attach", []any{fd(), "bridge", opts{"ip": v("8.8.8.8")}}},
		// godbus cannot send a message much larger than the socket buffer
		// together with an fd (short write), so fd-carrying garbage is 4 KiB.
		{"attach ip garbage", "Attach", []any{fd(), "bridge", opts{"ip": v(huge[:4096])}}},
		{"attach ip taken", "Attach", []any{fd(), "bridge", opts{"ip": v(strings.Split(addr, "/")[0])}}},
		{"attach ip is gateway", "Attach", []any{fd(), "bridge", opts{"ip": v(gw)}}},
		{"attach ifname slash", "Attach", []any{fd(), "bridge", opts{"ifname": v("a/b")}}},
		{"attach ifname long", "Attach", []any{fd(), "bridge", opts{"ifname": v(strings.Repeat("e", 16))}}},
		{"attach ifname lo", "Attach", []any{fd(), "bridge", opts{"ifname": v("lo")}}},
		{"attach ifname taken", "Attach", []any{fd(), "bridge", opts{}}},
		{"attach bad label", "Attach", []any{fd(), "bridge", opts{"container": v("bad label!")}}},
		{"attach unknown key", "Attach", []any{fd(), "bridge", opts{"mtu": v(uint32(9000))}}},
		{"attach wrong type", "Attach", []any{fd(), "bridge", opts{"ifname": v(true)}}},
		{"attach no fd", "Attach", []any{"bridge", "bridge", opts{}}},
		{"attach fd elsewhere", "CreateNetwork", []any{fd(), "bridge", opts{}}},

		{"detach empty", "Detach", []any{""}},
		{"detach path", "Detach", []any{"../../x"}},
		{"detach huge", "Detach", []any{huge}},
		{"detach unknown", "Detach", []any{"0000000000"}},

		{"forward bad lease", "AddForward", []any{"zz", "tcp", "", uint16(18100), uint16(80)}},
		{"forward unknown lease", "AddForward", []any{"0000000000", "tcp", "", uint16(18100), uint16(80)}},
		{"forward icmp", "AddForward", []any{id, "icmp", "", uint16(18100), uint16(80)}},
		{"forward TCP", "AddForward", []any{id, "TCP", "", uint16(18100), uint16(80)}},
		{"forward bad ip", "AddForward", []any{id, "tcp", "256.1.1.1", uint16(18100), uint16(80)}},
		{"forward ipv6", "AddForward", []any{id, "tcp", "::1", uint16(18100), uint16(80)}},
		{"forward multicast", "AddForward", []any{id, "tcp", "224.0.0.1", uint16(18100), uint16(80)}},
		{"forward broadcast", "AddForward", []any{id, "udp", "255.255.255.255", uint16(18100), uint16(80)}},
		{"forward not ours", "AddForward", []any{id, "tcp", "10.99.99.99", uint16(18100), uint16(80)}},
		{"forward huge ip", "AddForward", []any{id, "tcp", huge, uint16(18100), uint16(80)}},
		{"forward port 0", "AddForward", []any{id, "tcp", "", uint16(0), uint16(80)}},
		{"forward cport 0", "AddForward", []any{id, "tcp", "", uint16(18100), uint16(0)}},
		{"forward int32 port", "AddForward", []any{id, "tcp", "", int32(18100), int32(80)}},

		{"unforward bad", "RemoveForward", []any{"x"}},
		{"unforward unknown", "RemoveForward", []any{"0000000000"}},
		{"unknown method", "Frobnicate", []any{"x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := callm(tc.method, tc.args...).Err
			if err == nil {
				t.Fatalf("%s(%v) succeeded", tc.method, short(tc.args))
			}
			var de dbus.Error
			if e, ok := err.(dbus.Error); ok {
				de = e
			} else if e, ok := err.(*dbus.Error); ok {
				de = *e
			}
			if de.Name == api.ErrorFailed || de.Name == "" {
				t.Errorf("%s: %v (want a specific error, not Failed)", tc.method, err)
			}
		})
	}
	if p := helperPID(t); p != pid {
		t.Fatalf("helper changed from pid %d to %d: it crashed", pid, p)
	}
	// fds sent with refused calls (and with calls to methods that take
	// none) are closed, not kept.
	if n := countFDs(t, pid); n > fdsBefore {
		t.Errorf("helper fds: %d before the hostile calls, %d after", fdsBefore, n)
	}
	if now := snapshot(t); !reflect.DeepEqual(now, before) {
		t.Fatalf("hostile calls changed the host: %+v -> %+v", before, now)
	}
	if after := rootLists(t, callm); !reflect.DeepEqual(after, listsBefore) {
		t.Fatalf("hostile calls changed the state: %v -> %v", listsBefore, after)
	}
	// Introspection describes the interface.
	var xml string
	if err := conn.Object(api.BusName, api.ObjectPath).Call("org.freedesktop.DBus.Introspectable.Introspect", 0).Store(&xml); err != nil || !strings.Contains(xml, `<method name="Attach">`) {
		t.Errorf("Introspect: %v, %.200s", err, xml)
	}
}

func rootLists(t *testing.T, callm func(string, ...any) *dbus.Call) []any {
	t.Helper()
	var nets, leases, fwds []any
	if err := callm("ListNetworks").Store(&nets); err != nil {
		t.Fatal(err)
	}
	if err := callm("ListLeases").Store(&leases); err != nil {
		t.Fatal(err)
	}
	if err := callm("ListForwards").Store(&fwds); err != nil {
		t.Fatal(err)
	}
	return []any{nets, leases, fwds}
}

func short(args []any) string {
	s := strings.ReplaceAll(strings.TrimSpace(strings.Join(strings.Fields(strings.Repeat(" ", 0)+fmtArgs(args)), " ")), "\n", " ")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

func fmtArgs(args []any) string {
	var b strings.Builder
	for _, a := range args {
		s, _ := a.(string)
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		b.WriteString(s + " ")
	}
	return b.String()
}
