package cli

import (
	"context"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestInterrupts sends real signals to the test process, which the
// handling under test catches.
func TestInterrupts(t *testing.T) {
	exits := make(chan int, 4)
	in, ctx := startInterrupts(context.Background(), func(code int) { exits <- code }, 50*time.Millisecond)
	defer in.stop()
	raise := func(s unix.Signal) {
		t.Helper()
		if err := unix.Kill(os.Getpid(), s); err != nil {
			t.Fatal(err)
		}
	}

	// A claimed signal goes to the claim; the command goes on.
	got := make(chan os.Signal, 1)
	release := in.take(func(s os.Signal) { got <- s })
	raise(unix.SIGTERM)
	select {
	case s := <-got:
		if s != unix.SIGTERM {
			t.Fatalf("claim got %v", s)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the claim did not get the signal")
	}
	if ctx.Err() != nil || in.code(7) != 7 {
		t.Fatalf("a claimed signal ended the command: %v, code %d", ctx.Err(), in.code(7))
	}

	// The second one ends it: the context is cancelled with the signal
	// as cause, the code is 128+N, and the CLI exits after the grace.
	raise(unix.SIGINT)
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the second signal did not end the command")
	}
	release()
	if err := context.Cause(ctx); !isInterrupted(err) || err.Error() != "interrupted by SIGINT" {
		t.Fatalf("cause %v", err)
	}
	if c := in.code(7); c != 130 {
		t.Fatalf("code %d, want 130", c)
	}
	select {
	case c := <-exits:
		if c != 130 {
			t.Fatalf("exit %d after the grace, want 130", c)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no exit after the grace period")
	}

	// One more: out at once.
	raise(unix.SIGTERM)
	select {
	case c := <-exits:
		if c != 143 {
			t.Fatalf("exit %d on a further SIGTERM, want 143", c)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a further signal did not exit")
	}
}

func TestInterruptsNil(t *testing.T) {
	var in *interrupts // as in tests that build an env by hand
	in.take(func(os.Signal) {})()
	in.stop()
	if in.code(3) != 3 {
		t.Fatal("a nil interrupts changed the code")
	}
}
