package session

import (
	"fmt"
	"strings"

	godbus "github.com/godbus/dbus/v5"

	"github.com/pelagos-containers/pelagos/network"
	"github.com/pelagos-containers/pelagos/privhelper/client"
)

// HostInfo implements the method of the same name: what this machine
// lets containers have, and, where something is missing, why, so a user
// (or `pelagos info`) sees at once what a refusal will say.
func (a *managerAPI) HostInfo() (map[string]string, *godbus.Error) {
	defer a.m.track()()
	m := a.m
	info := map[string]string{}

	if why := network.Unavailable(); why != nil {
		info["network.pasta"] = "unavailable: " + why.Error()
	} else {
		m.pastaVersionOnce.Do(func() { m.pastaVersion = network.PastaVersion() })
		v := m.pastaVersion
		if v == "" {
			v = "of unknown version"
		}
		info["network.pasta"] = "available (passt " + v + ")"
	}
	var nets []client.Network
	err := m.priv.call(m.ctx, func(c *client.Client) (err error) {
		nets, err = c.ListNetworks(m.ctx)
		return err
	})
	if err != nil {
		info["network.root"] = "unavailable: " + err.Error()
	} else {
		info["network.root"] = fmt.Sprintf("available through pelagos-privhelper (%d network(s) of yours)", len(nets))
	}

	if cg := m.cgroups.get(); cg.Reason != "" {
		info["cgroups"] = "limits unavailable: " + cg.Reason
	} else {
		info["cgroups"] = "v2, delegated: " + strings.Join(cg.Controllers, " ")
	}

	var lsms []string
	for _, l := range []string{"apparmor", "selinux"} {
		if lsmEnabled(l) {
			lsms = append(lsms, l)
		}
	}
	if len(lsms) == 0 {
		lsms = []string{"none active"}
	}
	info["security.modules"] = strings.Join(lsms, " ")
	info["security.seccomp"] = "default (Docker's profile), minimal, iouring, unconfined or a JSON profile"
	info["userns.modes"] = "host (default), keep-id, auto, --uidmap/--gidmap"
	if m.ns.SingleMapping {
		info["userns.modes"] = "host only: add ranges for your user to /etc/subuid and /etc/subgid for keep-id, auto and --uidmap"
	}
	info["wasm"] = "wasip1 modules run in-process (wazero)"
	return info, nil
}
