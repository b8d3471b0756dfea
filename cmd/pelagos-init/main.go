// Command pelagos-init is the first process of every pelagos container,
// and of every `pelagos exec`, until it executes the command. pelagosd
// starts it from beside itself: a small program starts in a fraction of
// the time the whole service takes (pelagosd can play the part too, when
// this one is not installed).
package main

import (
	"fmt"
	"os"

	"github.com/pelagos-containers/pelagos/container"
)

func main() {
	if container.IsInit() {
		container.Init() // does not return
	}
	if container.IsExec() {
		container.ExecInit() // does not return
	}
	fmt.Fprintln(os.Stderr, "pelagos-init: pelagosd starts this program for containers; it is not meant to be run by hand")
	os.Exit(125)
}
