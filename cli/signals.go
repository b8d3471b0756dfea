package cli

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// interruptGrace is how long a command ended by SIGINT or SIGTERM has to
// return (restore the terminal, close the connection) before the CLI
// exits anyway: a blocked call must not keep it alive.
const interruptGrace = time.Second

// interrupted is the cause of the command's context when SIGINT or
// SIGTERM ended it.
type interrupted struct{ sig unix.Signal }

func (i *interrupted) Error() string { return "interrupted by " + unix.SignalName(i.sig) }

// isInterrupted reports whether err comes from a signal that ended the
// command; such errors are not printed, the exit code says it all.
func isInterrupted(err error) bool {
	var i *interrupted
	return errors.As(err, &i)
}

// interrupts is the CLI's handling of SIGINT and SIGTERM. By default the
// first one ends the command: its context is cancelled (so every call
// returns at once) and the CLI exits 128+N, as shells expect of a
// program a signal ended. A command may claim the first signal for a
// meaning of its own — forward it to the container, cancel a pull —
// and then a second one ends it.
type interrupts struct {
	cancel context.CancelCauseFunc
	ch     chan os.Signal
	exit   func(int)     // os.Exit, at the grace period's end
	grace  time.Duration // interruptGrace

	mu      sync.Mutex
	claim   func(os.Signal) // the command's use of the next signal, nil when none
	claimed bool            // claim already had its signal
	ended   unix.Signal     // the signal that ended the command, 0 when none
}

// newInterrupts starts handling SIGINT and SIGTERM for a command run with
// the returned context.
func newInterrupts(parent context.Context) (*interrupts, context.Context) {
	return startInterrupts(parent, os.Exit, interruptGrace)
}

// startInterrupts is newInterrupts with the way out and its delay given.
func startInterrupts(parent context.Context, exit func(int), grace time.Duration) (*interrupts, context.Context) {
	ctx, cancel := context.WithCancelCause(parent)
	in := &interrupts{cancel: cancel, ch: make(chan os.Signal, 4), exit: exit, grace: grace}
	signal.Notify(in.ch, unix.SIGINT, unix.SIGTERM)
	go in.loop()
	return in, ctx
}

func (in *interrupts) loop() {
	for s := range in.ch {
		sig := s.(unix.Signal)
		in.mu.Lock()
		claim := in.claim
		if claim != nil && !in.claimed {
			in.claimed = true
			in.mu.Unlock()
			claim(s)
			continue
		}
		first := in.ended == 0
		if first {
			in.ended = sig
		}
		in.mu.Unlock()
		if !first {
			in.exit(128 + int(sig)) // asked twice: now
			continue
		}
		in.cancel(&interrupted{sig})
		time.AfterFunc(in.grace, func() { in.exit(128 + int(sig)) })
	}
}

// stop ends the handling; signals get their default effect again.
func (in *interrupts) stop() {
	if in == nil {
		return
	}
	signal.Stop(in.ch)
	close(in.ch)
}

// code is the exit code of a command that returned code: 128+N when
// signal N ended it, whatever it returned then.
func (in *interrupts) code(code int) int {
	if in == nil {
		return code
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.ended != 0 {
		return 128 + int(in.ended)
	}
	return code
}

// take gives the next SIGINT or SIGTERM to fn instead of ending the
// command; a second one still ends it. fn runs on the signal loop and
// must not block. The returned function gives the signals back.
func (in *interrupts) take(fn func(os.Signal)) (release func()) {
	if in == nil {
		return func() {}
	}
	in.mu.Lock()
	in.claim, in.claimed = fn, false
	in.mu.Unlock()
	return func() {
		in.mu.Lock()
		in.claim, in.claimed = nil, false
		in.mu.Unlock()
	}
}
