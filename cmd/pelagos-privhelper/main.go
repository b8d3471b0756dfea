// Command pelagos-privhelper will own io.pelagos.PrivHelper1 on the system
// bus and set up root networking after polkit authorisation. It is not
// implemented yet; it refuses to start rather than pretend.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "pelagos-privhelper: root networking (bridge, NAT, published ports on a bridge) is not implemented yet; rootless containers do not need this helper")
	os.Exit(1)
}
