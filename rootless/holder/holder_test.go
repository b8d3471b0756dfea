package holder

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// A record naming a process that is not the holder (gone, or its pid
// reused by another program) is never trusted, and is removed.
func TestDialRefusesStaleRecords(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  Record
		why  string
	}{
		{"gone", Record{Pid: 1 << 30, Start: 1}, "is gone"},
		{"reused", Record{Pid: os.Getpid(), Start: StartTime(os.Getpid())}, "now belongs to"},
		{"restarted", Record{Pid: os.Getpid(), Start: StartTime(os.Getpid()) + 1}, "now belongs to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := writeRecord(dir, tc.rec); err != nil {
				t.Fatal(err)
			}
			_, err := Dial(dir)
			if !errors.Is(err, ErrNoHolder) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("Dial = %v, want ErrNoHolder saying %q", err, tc.why)
			}
			if _, err := os.Stat(recordPath(dir)); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("the stale record was kept")
			}
		})
	}
	dir := t.TempDir()
	os.WriteFile(recordPath(dir), []byte("not json"), 0o600)
	if _, err := Dial(dir); !errors.Is(err, ErrNoHolder) {
		t.Fatalf("Dial of a corrupt record = %v", err)
	}
	if _, err := Dial(t.TempDir()); err != ErrNoHolder {
		t.Fatalf("Dial with no record = %v", err)
	}
}

func TestExitRecords(t *testing.T) {
	dir := t.TempDir()
	if _, _, ok := ReadExitRecord(dir, 5, 9, 0); ok {
		t.Fatal("a record out of nothing")
	}
	if err := writeExitRecord(dir, 5, 9, 137); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := ReadExitRecord(dir, 5, 10, 0); ok {
		t.Fatal("the record of another process with the same pid was taken")
	}
	code, at, ok := ReadExitRecord(dir, 5, 9, time.Second)
	if !ok || code != 137 || time.Since(at) > time.Minute {
		t.Fatalf("ReadExitRecord = %d %v %v", code, at, ok)
	}
	if _, _, ok := ReadExitRecord(dir, 5, 9, 0); ok {
		t.Fatal("a record was read twice")
	}
}

func TestLockIsExclusive(t *testing.T) {
	dir := t.TempDir()
	a, err := tryLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := tryLock(dir); err == nil {
		b.Close()
		t.Fatal("two holders of the lock")
	}
	a.Close()
	b, err := tryLock(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	b.Close()
}
