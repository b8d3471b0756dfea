package cli

import (
	"fmt"
	"runtime"
	"sort"
)

func versionCmd(e *env, args []string) int {
	fs := e.flags("version")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	fmt.Fprintf(e.stdout, "Client:\n  Version:     %s\n  Go version:  %s\n  OS/Arch:     %s/%s\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	c, err := e.connect(e.ctx)
	if err != nil {
		fmt.Fprintf(e.stdout, "Server:\n  unreachable: %v\n", err)
		return exitOK
	}
	defer c.Close()
	props, err := c.ManagerProperties(e.ctx)
	if err != nil {
		fmt.Fprintf(e.stdout, "Server:\n  unreachable: %v\n", err)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "Server:\n  Version:     %v\n  API version: %v\n", props["Version"].Value(), props["APIVersion"].Value())
	return exitOK
}

func infoCmd(e *env, args []string) int {
	fs := e.flags("info")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	c, ok := e.client()
	if !ok {
		return exitFailure
	}
	defer c.Close()
	props, err := c.ManagerProperties(e.ctx)
	if err != nil {
		e.callErr(err)
		return exitFailure
	}
	v := func(k string) any {
		if p, ok := props[k]; ok {
			return p.Value()
		}
		return "?"
	}
	fmt.Fprintf(e.stdout, "host:\n  rootless: %v\n  idMappings:\n    uidsMapped: %v\n", v("Rootless"), v("IDMapSize"))
	if n, ok := v("IDMapSize").(uint64); ok && n == 1 {
		fmt.Fprintln(e.stdout, "    warning: only your own uid is mapped; add ranges to /etc/subuid and /etc/subgid")
	}
	if info, err := c.HostInfo(e.ctx); err == nil {
		keys := make([]string, 0, len(info))
		for k := range info {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(e.stdout, "  %s: %s\n", k, info[k])
		}
	}
	fmt.Fprintf(e.stdout, "store:\n  graphDriverName: %v\n  graphRoot: %v\n  containerStateDir: %v\n", v("StorageDriver"), v("GraphRoot"), v("StateDir"))
	fmt.Fprintf(e.stdout, "version:\n  client: %s\n  service: %v\n  apiVersion: %v\n", Version, v("Version"), v("APIVersion"))
	return exitOK
}
