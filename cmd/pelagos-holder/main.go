// Command pelagos-holder keeps a user's pelagos namespaces alive between
// service instances and parents the containers' monitors. pelagosd
// starts it; it exits by itself once no service and no container is left.
package main

import (
	"os"

	"github.com/pelagos-containers/pelagos/rootless/holder"
	_ "github.com/pelagos-containers/pelagos/rootless/nsjoin" // joins a running container's namespaces when asked
)

func main() {
	os.Exit(holder.Main(os.Args[1:], os.Stderr))
}
