package ctrlog

import (
	"bytes"
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
