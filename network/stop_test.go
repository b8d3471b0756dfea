package network

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// fakePasta runs sleep under a name IsPasta accepts, with SIGTERM
// ignored when stubborn.
func fakePasta(t *testing.T, stubborn bool) *exec.Cmd {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program")
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "pasta.test")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "60")
	if stubborn {
		// An ignored signal stays ignored across exec.
		cmd = exec.Command("sh", "-c", `trap "" TERM; exec "$0" 60`, bin)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Wait for the exec, so /proc/PID/exe names the fake.
	for i := 0; i < 200 && !IsPasta(cmd.Process.Pid); i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if !IsPasta(cmd.Process.Pid) {
		t.Fatalf("%s does not pass for pasta", bin)
	}
	return cmd
}

// exitedWithin reports whether cmd's process ends within d.
func exitedWithin(cmd *exec.Cmd, d time.Duration) bool {
	done := make(chan struct{})
	go func() { cmd.Process.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func TestStopPasta(t *testing.T) {
	yes := func() bool { return true }
	t.Run("term", func(t *testing.T) {
		cmd := fakePasta(t, false)
		t0 := time.Now()
		if err := StopPasta(context.Background(), cmd.Process.Pid, yes); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d > pastaTermGrace {
			t.Errorf("SIGTERM took %s", d)
		}
		if !exitedWithin(cmd, time.Second) {
			t.Fatal("still running after StopPasta returned")
		}
	})
	t.Run("kill", func(t *testing.T) {
		cmd := fakePasta(t, true)
		if err := StopPasta(context.Background(), cmd.Process.Pid, yes); err != nil {
			t.Fatal(err)
		}
		if !exitedWithin(cmd, time.Second) {
			t.Fatal("a pasta ignoring SIGTERM still runs after StopPasta returned")
		}
	})
	t.Run("someone else", func(t *testing.T) {
		// The recorded identity no longer matches: never signalled.
		cmd := fakePasta(t, false)
		if err := StopPasta(context.Background(), cmd.Process.Pid, func() bool { return false }); err != nil {
			t.Fatal(err)
		}
		if exitedWithin(cmd, 200*time.Millisecond) {
			t.Fatal("a process that is not the recorded pasta was signalled")
		}
	})
	t.Run("not pasta", func(t *testing.T) {
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		time.Sleep(50 * time.Millisecond)
		if err := StopPasta(context.Background(), cmd.Process.Pid, yes); err != nil {
			t.Fatal(err)
		}
		if exitedWithin(cmd, 200*time.Millisecond) {
			t.Fatal("a program other than pasta was signalled")
		}
	})
	t.Run("gone", func(t *testing.T) {
		cmd := exec.Command("true")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		if err := StopPasta(context.Background(), cmd.Process.Pid, yes); err != nil {
			t.Fatalf("a pasta that is gone: %v", err)
		}
	})
}

func TestFindPortHolder(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	for _, ip := range []string{"", "127.0.0.1", "0.0.0.0"} {
		h := FindPortHolder(PortMapping{HostIP: ip, HostPort: port, Proto: "tcp"})
		if !h.Known || !h.Mine || h.Pid != os.Getpid() || h.Pasta {
			t.Errorf("host ip %q: %+v, want this process (%d)", ip, h, os.Getpid())
		}
	}
	if h := FindPortHolder(PortMapping{HostIP: "127.0.0.2", HostPort: port, Proto: "tcp"}); h.Known {
		t.Errorf("a socket on 127.0.0.1 was taken for one on 127.0.0.2: %+v", h)
	}
	if h := FindPortHolder(PortMapping{HostPort: port, Proto: "udp"}); h.Known {
		t.Errorf("a TCP socket was taken for a UDP one: %+v", h)
	}
	err = CheckPortsFree([]PortMapping{{HostIP: "127.0.0.1", HostPort: port, CtrPort: 80, Proto: "tcp"}})
	var pe *PortInUseError
	if !errors.As(err, &pe) || pe.Holder.Pid != os.Getpid() {
		t.Fatalf("CheckPortsFree: %v", err)
	}
	if want := "127.0.0.1:" + strconv.Itoa(int(port)) + "/tcp"; pe.Addr() != want {
		t.Errorf("Addr() = %q, want %q", pe.Addr(), want)
	}
}

func TestParseProcAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		addr string
		port uint16
	}{
		{"0100007F:1F90", "127.0.0.1", 8080},
		{"00000000:0050", "0.0.0.0", 80},
		{"00000000000000000000000001000000:0016", "::1", 22},
		{"0000000000000000FFFF00000100007F:01BB", "::ffff:127.0.0.1", 443},
	} {
		a, p, ok := parseProcAddr(tc.in)
		if !ok || a != netip.MustParseAddr(tc.addr) || p != tc.port {
			t.Errorf("parseProcAddr(%q) = %v %d %v, want %s %d", tc.in, a, p, ok, tc.addr, tc.port)
		}
	}
	for _, bad := range []string{"", "0100007F", "zz:0050", "0100007F:zz", "01:0050"} {
		if _, _, ok := parseProcAddr(bad); ok {
			t.Errorf("parseProcAddr(%q) accepted", bad)
		}
	}
}
