package network

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mode
	}{
		{"", Mode{Kind: Pasta}},
		{"pasta", Mode{Kind: Pasta}},
		{"private", Mode{Kind: Pasta}},
		{"pasta:--map-gw,-4", Mode{Kind: Pasta, HostLoopback: true, PastaArgs: []string{"-4"}}},
		{"pasta:map-gw", Mode{Kind: Pasta, HostLoopback: true}},
		{"none", Mode{Kind: None}},
		{"loopback", Mode{Kind: None}},
		{"host", Mode{Kind: Host}},
		{"container:web", Mode{Kind: Container, Target: "web"}},
		{"bridge", Mode{Kind: Bridge, Networks: []string{"bridge"}}},
		{"devnet", Mode{Kind: Bridge, Networks: []string{"devnet"}}},
	} {
		got, err := ParseMode(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseMode(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"slirp4netns", "ns", "bad name", "-dash", "bridge:opt", "container:", "none:x", "host:x", "private:x", "pasta:--netns=/x", "pasta:-t,80", "pasta:nodash"} {
		if _, err := ParseMode(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseMode(%q): want ErrInvalid, got %v", bad, err)
		}
	}
	if s := (Mode{Kind: Pasta, HostLoopback: true, PastaArgs: []string{"-4"}}).String(); s != "pasta:--map-gw,-4" {
		t.Errorf("String() = %q", s)
	}
}

func TestParsePublish(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []PortMapping
	}{
		{"80", []PortMapping{{CtrPort: 80, Proto: "tcp"}}},
		{"8080:80", []PortMapping{{HostPort: 8080, CtrPort: 80, Proto: "tcp"}}},
		{"127.0.0.1:8080:80/udp", []PortMapping{{HostIP: "127.0.0.1", HostPort: 8080, CtrPort: 80, Proto: "udp"}}},
		{"127.0.0.1::80", []PortMapping{{HostIP: "127.0.0.1", CtrPort: 80, Proto: "tcp"}}},
		{"[::1]:8080:80", []PortMapping{{HostIP: "::1", HostPort: 8080, CtrPort: 80, Proto: "tcp"}}},
		{"8000-8001:80-81/both", []PortMapping{
			{HostPort: 8000, CtrPort: 80, Proto: "tcp"}, {HostPort: 8001, CtrPort: 81, Proto: "tcp"},
			{HostPort: 8000, CtrPort: 80, Proto: "udp"}, {HostPort: 8001, CtrPort: 81, Proto: "udp"}}},
	} {
		got, err := ParsePublish(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParsePublish(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0", "65536", "a:b", "1:2:3:4", "80/sctp", "90-80", "8000-8010:80-81", "1.2.3:80:80", "[::1:80:80", "[1.2.3.4]:80:80"} {
		if _, err := ParsePublish(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePublish(%q): want ErrInvalid, got %v", bad, err)
		}
	}
}

func TestAddHostAndDNS(t *testing.T) {
	if l, err := ParseAddHost("db.local:192.0.2.10"); err != nil || l != "192.0.2.10\tdb.local" {
		t.Errorf("ParseAddHost: %q %v", l, err)
	}
	if l, err := ParseAddHost("v6=[2001:db8::1]"); err != nil || l != "2001:db8::1\tv6" {
		t.Errorf("ParseAddHost v6: %q %v", l, err)
	}
	for _, bad := range []string{"nocolon", ":1.2.3.4", "x:notip", "bad name:1.2.3.4", "x:host-gateway"} {
		if _, err := ParseAddHost(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseAddHost(%q): want ErrInvalid, got %v", bad, err)
		}
	}
	if err := CheckDNS([]string{"1.1.1.1", "::1"}, []string{"example.org", "."}, []string{"ndots:2"}); err != nil {
		t.Error(err)
	}
	for _, tc := range [][3][]string{{{"x"}, nil, nil}, {nil, {"bad domain"}, nil}, {nil, nil, {"a b"}}, {nil, nil, {"x\nnameserver 6.6.6.6"}}} {
		if err := CheckDNS(tc[0], tc[1], tc[2]); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckDNS(%v): want ErrInvalid, got %v", tc, err)
		}
	}
}

func TestPastaArgs(t *testing.T) {
	args := strings.Join(pastaArgs(PastaConfig{NetNS: "/ns", PidFile: "/pid", Mode: Mode{Kind: Pasta},
		Ports: []PortMapping{{HostIP: "127.0.0.1", HostPort: 8080, CtrPort: 80, Proto: "tcp"}, {HostPort: 5353, CtrPort: 5353, Proto: "udp"}}}), " ")
	for _, want := range []string{"--netns /ns", "--pid /pid", "-a 10.0.2.100", "-g 10.0.2.2", "--dns-forward 10.0.2.3", "--no-map-gw", "-t 127.0.0.1/8080:80", "-u 5353:5353", "-T none", "-U none"} {
		if !strings.Contains(args, want) {
			t.Errorf("pasta args lack %q: %s", want, args)
		}
	}
	args = strings.Join(pastaArgs(PastaConfig{Mode: Mode{Kind: Pasta, HostLoopback: true}}), " ")
	if strings.Contains(args, "--no-map-gw") || !strings.Contains(args, "-t none") || !strings.Contains(args, "-u none") {
		t.Errorf("pasta args with map-gw and no ports: %s", args)
	}
}

func TestCheckUDPRemap(t *testing.T) {
	remap := []PortMapping{{HostPort: 5000, CtrPort: 53, Proto: "udp"}}
	if err := CheckUDPRemap(remap, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("old pasta: %v", err)
	}
	if err := CheckUDPRemap(remap, "2024_06_07"); err != nil {
		t.Errorf("new pasta: %v", err)
	}
	if err := CheckUDPRemap([]PortMapping{{HostPort: 5000, CtrPort: 53, Proto: "tcp"}}, ""); err != nil {
		t.Errorf("tcp remap on old pasta: %v", err)
	}
}
