package session

import (
	"fmt"
	"sort"
	"strings"

	godbus "github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
	"github.com/pelagos-containers/pelagos/network"
	"github.com/pelagos-containers/pelagos/privhelper/client"
)

// The user's bridge networks live in pelagos-privhelper; the service
// shows them on the session bus as Manager methods and as one object per
// network, kept in step whenever they are listed, made or removed.

// networkRow is one row of ListNetworks: name, subnet, gateway, bridge
// interface, internal, and the names of the containers that use it.
type networkRow struct {
	Name, Subnet, Gateway, Bridge string
	Internal                      bool
	Containers                    []string
}

// networkUsers lists the containers (in any state) that join network.
func (m *Manager) networkUsers(name string) []*ctr {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*ctr
	for _, c := range m.containers {
		c.mu.Lock()
		mode := c.rec.Network.Mode
		c.mu.Unlock()
		if mode.Kind != network.Bridge {
			continue
		}
		for _, n := range mode.Networks {
			if n == name {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// listNetworks asks the helper for the user's networks and brings the
// network objects in step.
func (m *Manager) listNetworks() ([]client.Network, error) {
	var nets []client.Network
	err := m.priv.call(m.ctx, func(c *client.Client) (err error) {
		nets, err = c.ListNetworks(m.ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	m.syncNetworkObjects(nets)
	return nets, nil
}

// syncNetworkObjects exports an object for each network and drops those
// of networks that are gone.
func (m *Manager) syncNetworkObjects(nets []client.Network) {
	seen := map[string]bool{}
	for _, n := range nets {
		seen[n.Name] = true
		m.mu.Lock()
		_, ok := m.networkObjs[n.Name]
		m.mu.Unlock()
		if ok {
			continue
		}
		props := map[string]*prop.Prop{
			"Name":     constProp(n.Name),
			"Subnet":   constProp(n.Subnet.String()),
			"Gateway":  constProp(n.Gateway.String()),
			"Bridge":   constProp(n.Bridge),
			"Internal": constProp(n.Internal),
		}
		obj, err := m.server.Export(pdbus.NetworkPath(n.Name), pdbus.NetworkIface, &struct{}{}, props)
		if err != nil {
			m.log.Warn("export network", "name", n.Name, "err", err)
			continue
		}
		m.mu.Lock()
		m.networkObjs[n.Name] = obj
		m.mu.Unlock()
	}
	m.mu.Lock()
	var gone []string
	for name := range m.networkObjs {
		if !seen[name] {
			gone = append(gone, name)
			delete(m.networkObjs, name)
		}
	}
	m.mu.Unlock()
	for _, name := range gone {
		m.server.Unexport(pdbus.NetworkPath(name))
	}
}

// CreateNetwork implements the method of the same name.
func (a *managerAPI) CreateNetwork(name string, options map[string]godbus.Variant) (godbus.ObjectPath, *godbus.Error) {
	defer a.m.track()()
	o, err := pdbus.ParseNetworkOptions(options)
	if err != nil {
		return "", asDBusErr(err)
	}
	if !network.ValidNetworkName(name) {
		return "", asDBusErr(pdbus.Errorf(pdbus.ErrInvalidArgument, "network name %q: use letters, digits, _, . and - (up to 64, starting with a letter or digit)", name))
	}
	err = a.m.priv.call(a.m.ctx, func(c *client.Client) error {
		_, err := c.CreateNetwork(a.m.ctx, name, client.NetworkOptions{Subnet: o.Subnet, Gateway: o.Gateway, Internal: o.Internal})
		return err
	})
	if err != nil {
		return "", asDBusErr(err)
	}
	a.m.listNetworks()
	return pdbus.NetworkPath(name), nil
}

// ListNetworks implements the method of the same name.
func (a *managerAPI) ListNetworks() ([]networkRow, *godbus.Error) {
	defer a.m.track()()
	nets, err := a.m.listNetworks()
	if err != nil {
		return nil, asDBusErr(err)
	}
	rows := []networkRow{}
	for _, n := range nets {
		row := networkRow{Name: n.Name, Subnet: n.Subnet.String(), Gateway: n.Gateway.String(), Bridge: n.Bridge, Internal: n.Internal, Containers: []string{}}
		for _, c := range a.m.networkUsers(n.Name) {
			row.Containers = append(row.Containers, c.name())
		}
		sort.Strings(row.Containers)
		rows = append(rows, row)
	}
	return rows, nil
}

// RemoveNetwork implements the method of the same name.
func (a *managerAPI) RemoveNetwork(name string, force bool) *godbus.Error {
	defer a.m.track()()
	if !network.ValidNetworkName(name) {
		return asDBusErr(pdbus.Errorf(pdbus.ErrNoSuchNetwork, "no such network: %q", name))
	}
	users := a.m.networkUsers(name)
	if len(users) > 0 && !force {
		var names []string
		for _, c := range users {
			names = append(names, c.name())
		}
		sort.Strings(names)
		return asDBusErr(pdbus.Errorf(pdbus.ErrNetworkInUse, "network %s is used by container(s) %s: remove them first, or use `pelagos network rm -f`", name, strings.Join(names, ", ")))
	}
	for _, c := range users {
		if err := a.m.removeContainer(c, true); err != nil {
			return asDBusErr(err)
		}
	}
	err := a.m.priv.call(a.m.ctx, func(c *client.Client) error { return c.RemoveNetwork(a.m.ctx, name) })
	a.m.listNetworks()
	return asDBusErr(err)
}

// PruneNetworks implements the method of the same name.
func (a *managerAPI) PruneNetworks() ([]string, *godbus.Error) {
	defer a.m.track()()
	nets, err := a.m.listNetworks()
	if err != nil {
		return nil, asDBusErr(err)
	}
	removed := []string{}
	for _, n := range nets {
		if n.Name == network.DefaultBridge || len(a.m.networkUsers(n.Name)) > 0 {
			continue
		}
		err := a.m.priv.call(a.m.ctx, func(c *client.Client) error { return c.RemoveNetwork(a.m.ctx, n.Name) })
		if err != nil {
			return removed, asDBusErr(fmt.Errorf("prune %s: %w", n.Name, err))
		}
		removed = append(removed, n.Name)
	}
	a.m.listNetworks()
	return removed, nil
}
