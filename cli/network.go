package cli

import (
	"fmt"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// networkCmd is `pelagos network create|ls|inspect|rm|prune`: the user's
// bridge networks, which pelagos-privhelper makes on the host.
func networkCmd(e *env, args []string) int {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprintln(e.stdout, "Manage bridge networks (root networking)\n\nUsage: pelagos network create|ls|inspect|rm|prune|connect|disconnect\n\n"+
			"  create [--subnet CIDR] [--gateway IP] [--internal] NAME | ls [-q] | inspect NAME... | rm [-f] NAME... | prune\n"+
			"  connect [--ip IP] NETWORK CONTAINER | disconnect NETWORK CONTAINER")
		if len(args) == 0 {
			return exitFailure
		}
		return exitOK
	}
	sub, rest := args[0], args[1:]
	fs := e.flags("network " + sub)
	quiet := fs.BoolP("quiet", "q", false, "print only names")
	force := fs.BoolP("force", "f", false, "also remove the containers that join the network")
	var o pdbus.NetworkOptions
	ip := ""
	if sub == "connect" {
		fs.StringVar(&ip, "ip", "", "the container's address on the network")
	}
	if sub == "create" {
		fs.StringVar(&o.Subnet, "subnet", "", "the network's IPv4 subnet, e.g. 10.89.7.0/24 (default: a free one of 10.89.0.0/16)")
		fs.StringVar(&o.Gateway, "gateway", "", "the host's address on it (default: the subnet's first)")
		fs.BoolVar(&o.Internal, "internal", false, "no way out of the network: containers reach only each other")
	}
	if code, ok := e.parse(fs, rest); !ok {
		return code
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	switch sub {
	case "create":
		if fs.NArg() != 1 {
			e.errorf("\"pelagos network create\" requires exactly 1 argument: pelagos network create [--subnet CIDR] NAME")
			return exitFailure
		}
		if _, err := c.CreateNetwork(e.ctx, fs.Arg(0), o); err != nil {
			e.callErr(err)
			return exitFailure
		}
		fmt.Fprintln(e.stdout, fs.Arg(0))
	case "ls", "list":
		rows, err := c.ListNetworks(e.ctx)
		if err != nil {
			e.callErr(err)
			return exitFailure
		}
		if *quiet {
			for _, r := range rows {
				fmt.Fprintln(e.stdout, r.Name)
			}
			return exitOK
		}
		tw := newTable(e.stdout)
		fmt.Fprintln(tw, "NAME\tSUBNET\tGATEWAY\tBRIDGE\tINTERNAL\tCONTAINERS")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%d\n", r.Name, r.Subnet, r.Gateway, r.Bridge, r.Internal, len(r.Containers))
		}
		tw.Flush()
	case "inspect":
		if fs.NArg() == 0 {
			e.errorf("\"pelagos network inspect\" requires at least 1 argument: pelagos network inspect NAME [NAME...]")
			return exitFailure
		}
		rows, err := c.ListNetworks(e.ctx)
		if err != nil {
			e.callErr(err)
			return exitFailure
		}
		byName := map[string]pdbus.NetworkSummary{}
		for _, r := range rows {
			byName[r.Name] = r
		}
		var out []map[string]any
		code := exitOK
		for _, n := range fs.Args() {
			r, ok := byName[n]
			if !ok {
				e.errorf("no such network: %s", n)
				code = exitFailure
				continue
			}
			out = append(out, map[string]any{
				"name": r.Name, "driver": "bridge", "network_interface": r.Bridge, "internal": r.Internal,
				"subnets":    []map[string]string{{"subnet": r.Subnet, "gateway": r.Gateway}},
				"containers": r.Containers,
			})
		}
		printInspect(e, out)
		return code
	case "rm", "remove":
		if fs.NArg() == 0 {
			e.errorf("\"pelagos network rm\" requires at least 1 argument: pelagos network rm [-f] NAME [NAME...]")
			return exitFailure
		}
		return removeEach(e, fs.Args(), pdbus.ErrNetworkInUse, func(n string) error { return c.RemoveNetwork(e.ctx, n, *force) })
	case "prune":
		removed, err := c.PruneNetworks(e.ctx)
		for _, n := range removed {
			fmt.Fprintln(e.stdout, n)
		}
		if err != nil {
			e.callErr(err)
			return exitFailure
		}
	case "connect", "disconnect":
		if fs.NArg() != 2 {
			e.errorf("\"pelagos network %s\" requires exactly 2 arguments: pelagos network %s NETWORK CONTAINER", sub, sub)
			return exitFailure
		}
		path, err := c.GetContainer(e.ctx, fs.Arg(1))
		if err == nil {
			if sub == "connect" {
				err = c.ConnectNetwork(e.ctx, path, fs.Arg(0), ip)
			} else {
				err = c.DisconnectNetwork(e.ctx, path, fs.Arg(0))
			}
		}
		if err != nil {
			e.callErr(err)
			return exitFailure
		}
	default:
		e.errorf("unknown command \"network %s\": use create, ls, inspect, rm, prune, connect or disconnect", sub)
		return exitFailure
	}
	return exitOK
}
