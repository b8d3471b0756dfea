// Command pelagos is the pelagos command line client.
package main

import (
	"os"

	"github.com/pelagos-containers/pelagos/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
