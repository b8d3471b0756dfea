package session

import (
	"sort"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5/introspect"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// TestGoMatchesInterfaceXML keeps the served methods and the interface
// file in step: every method in the XML exists in Go with the same
// argument signature, and Go exports nothing the XML does not document.
func TestGoMatchesInterfaceXML(t *testing.T) {
	ifaces, err := pdbus.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for name, impl := range map[string]any{
		pdbus.ManagerInterface: &managerAPI{},
		pdbus.ContainerIface:   &containerAPI{},
		pdbus.ImageIface:       &imageAPI{},
		pdbus.JobIface:         &jobAPI{},
	} {
		spec, ok := ifaces[name]
		if !ok {
			t.Fatalf("interface %s missing from XML", name)
		}
		goMethods := map[string]string{}
		for _, m := range introspect.Methods(impl) {
			goMethods[m.Name] = signature(m)
		}
		xmlMethods := map[string]string{}
		for _, m := range spec.Methods {
			xmlMethods[m.Name] = signature(m)
		}
		for n, sig := range xmlMethods {
			if goMethods[n] != sig {
				t.Errorf("%s.%s: XML says %s, Go serves %q", name, n, sig, goMethods[n])
			}
		}
		for n := range goMethods {
			if _, ok := xmlMethods[n]; !ok {
				t.Errorf("%s.%s is served but not in the interface XML", name, n)
			}
		}
	}
}

func signature(m introspect.Method) string {
	var in, out []string
	for _, a := range m.Args {
		if a.Direction == "out" {
			out = append(out, a.Type)
		} else {
			in = append(in, a.Type)
		}
	}
	return "(" + strings.Join(in, "") + ")->(" + strings.Join(out, "") + ")"
}

func TestErrorNamesDocumented(t *testing.T) {
	codes := make([]string, 0, len(pdbus.AllErrorCodes))
	for _, c := range pdbus.AllErrorCodes {
		codes = append(codes, string(c))
		if !strings.Contains(pdbus.InterfaceXML, string(c)) {
			t.Errorf("error %s is not documented in the interface XML", c.Name())
		}
	}
	sort.Strings(codes)
}

func TestManagerPropertiesMatchXML(t *testing.T) {
	ifaces, err := pdbus.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Version": "s", "APIVersion": "u", "StorageDriver": "s", "GraphRoot": "s",
		"StateDir": "s", "Rootless": "b", "IDMapSize": "t",
	}
	got := map[string]string{}
	for _, p := range ifaces[pdbus.ManagerInterface].Properties {
		got[p.Name] = p.Type
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Manager property %s: XML type %q, service serves %q", k, got[k], v)
		}
	}
}
