// Command pelagosd is the per-user pelagos service on the session bus.
package main

import (
	"os"

	"go.podman.io/storage/pkg/reexec"

	"github.com/pelagos-containers/pelagos/container"
	_ "github.com/pelagos-containers/pelagos/rootless/nsjoin" // enters the holder's namespaces before the runtime starts
	"github.com/pelagos-containers/pelagos/session"
)

func main() {
	// The image store re-executes this binary to unpack layers in a
	// chroot; those copies run the store's helper and stop here.
	if reexec.Init() {
		return
	}
	if container.IsInit() {
		container.Init() // a container's first process; does not return
	}
	if container.IsExec() {
		container.ExecInit() // `pelagos exec` inside a container; does not return
	}
	os.Exit(session.Main(os.Args[1:], os.Stderr))
}
