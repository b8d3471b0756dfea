package rootless

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseSubIDFile(t *testing.T) {
	in := "# comment\nalice:100000:65536\nbob:200000:1000\n1001:300000:10\nalice:500000:5\nbroken\nalice:x:1\nalice:1:0\n"
	got, err := ParseSubIDFile(strings.NewReader(in), "alice", 1001)
	if err != nil {
		t.Fatal(err)
	}
	want := []SubIDRange{{100000, 65536}, {300000, 10}, {500000, 5}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestBuildMaps(t *testing.T) {
	got := BuildMaps(1000, []SubIDRange{{100000, 65536}, {300000, 10}})
	want := []IDMap{{0, 1000, 1}, {1, 100000, 65536}, {65537, 300000, 10}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
	if args := FormatMapArgs(got[:2]); strings.Join(args, " ") != "0 1000 1 1 100000 65536" {
		t.Fatalf("args %v", args)
	}
	if MappedCount(got) != 65547 {
		t.Fatalf("count %d", MappedCount(got))
	}
}

func TestParseProcMap(t *testing.T) {
	got, err := ParseProcMap("         0       1000          1\n         1     100000      65536\n")
	if err != nil || !reflect.DeepEqual(got, []IDMap{{0, 1000, 1}, {1, 100000, 65536}}) {
		t.Fatalf("got %v %v", got, err)
	}
	if _, err := ParseProcMap("0 1000"); err == nil {
		t.Fatal("short line accepted")
	}
}
