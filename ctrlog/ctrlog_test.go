package ctrlog

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func TestCopyAndParse(t *testing.T) {
	at := time.Date(2026, 11, 29, 4, 10, 11, 123456789, time.UTC)
	var out bytes.Buffer
	long := strings.Repeat("x", maxRecord+10)
	in := "one\ntwo\n" + long + "\nlast-no-newline"
	if err := Copy(&out, strings.NewReader(in), Stderr, func() time.Time { return at }); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(out.String(), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if lines[0] != "2026-11-29T04:10:11.123456789Z stderr F one\n" {
		t.Fatalf("first record %q", lines[0])
	}
	var got strings.Builder
	for _, l := range lines {
		rec, ok := Parse([]byte(l))
		if !ok || rec.Stream != Stderr || !rec.Time.Equal(at) {
			t.Fatalf("parse %q: %+v %v", l, rec, ok)
		}
		got.Write(rec.Data)
	}
	if got.String() != in {
		t.Fatalf("round trip lost data: %d bytes in, %d out", len(in), got.Len())
	}
	if rec, ok := Parse([]byte("plain old line\n")); ok || rec.Stream != Stdout || string(rec.Data) != "plain old line\n" {
		t.Fatalf("legacy line: %+v %v", rec, ok)
	}
}

// TestCopyWritesWholeRecordsBeforeWaiting: a line already read reaches
// the log before Copy waits for the rest of a half-written one, and no
// Write splits a record.
func TestCopyWritesWholeRecordsBeforeWaiting(t *testing.T) {
	pr, pw := io.Pipe()
	w := &recordingWriter{got: make(chan string, 10)}
	done := make(chan error, 1)
	go func() { done <- Copy(w, pr, Stdout, func() time.Time { return time.Unix(0, 0) }) }()
	go pw.Write([]byte("one\ntwo\npartial"))
	for _, want := range []string{"one", "two"} {
		select {
		case got := <-w.got:
			if !strings.Contains(got, " F "+want+"\n") {
				t.Fatalf("record %q: got %q", want, got)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%q did not reach the log while the next line was incomplete", want)
		}
	}
	pw.Write([]byte(" line\n"))
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(w.got)
	var rest []string
	for g := range w.got {
		rest = append(rest, g)
	}
	if strings.Join(rest, "") != "1970-01-01T00:00:00Z stdout F partial line\n" {
		t.Fatalf("last record: %q", rest)
	}
}

// recordingWriter hands each Write's records, one per message, to got,
// and checks that every Write holds whole records.
type recordingWriter struct{ got chan string }

func (w *recordingWriter) Write(p []byte) (int, error) {
	if len(p) == 0 || p[len(p)-1] != '\n' {
		return 0, fmt.Errorf("a write ends inside a record: %q", p)
	}
	for _, rec := range strings.SplitAfter(string(p), "\n") {
		if rec != "" {
			w.got <- rec
		}
	}
	return len(p), nil
}
