// Command pelagos-monitor watches one running container: it is the
// container's parent, copies its output into its log, keeps its terminal
// and records its exit code, so that none of that depends on pelagosd
// staying alive. pelagos-holder starts it for pelagosd.
package main

import (
	"os"

	"github.com/pelagos-containers/pelagos/monitor"
)

func main() {
	os.Exit(monitor.Main(os.Args[1:], os.Stderr))
}
