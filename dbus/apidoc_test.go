package dbus

import (
	"bytes"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/dbus-api.md from the interface XML")

const apiDocPath = "../docs/dbus-api.md"

// TestAPIDocMatchesXML keeps docs/dbus-api.md generated from the XML, the
// single source of truth: `go test ./dbus -run APIDoc -update` rewrites it.
func TestAPIDocMatchesXML(t *testing.T) {
	doc, err := renderAPIDoc(InterfaceXML)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(apiDocPath, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile(apiDocPath)
	if err != nil || !bytes.Equal(have, doc) {
		t.Fatalf("%s is out of date with the interface XML: run `go test ./dbus -run APIDoc -update` (%v)", apiDocPath, err)
	}
}

// renderAPIDoc walks the XML, attaching each comment to the element that
// follows it.
func renderAPIDoc(src string) ([]byte, error) {
	var b strings.Builder
	b.WriteString("# The pelagos D-Bus API (generated from dbus/io.pelagos.Pelagos1.xml)\n\n")
	b.WriteString("Do not edit: run `go test ./dbus -run APIDoc -update` after changing the XML.\n")
	d := xml.NewDecoder(strings.NewReader(src))
	d.Strict = false
	var comment, iface, method string
	first := true
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch tk := tok.(type) {
		case xml.Comment:
			comment = cleanComment(string(tk))
			if first {
				fmt.Fprintf(&b, "\n%s\n", comment)
				first, comment = false, ""
			}
		case xml.StartElement:
			attr := func(n string) string {
				for _, a := range tk.Attr {
					if a.Name.Local == n {
						return a.Value
					}
				}
				return ""
			}
			switch tk.Name.Local {
			case "interface":
				iface = attr("name")
				fmt.Fprintf(&b, "\n## %s\n\n%s\n", iface, comment)
			case "property":
				fmt.Fprintf(&b, "\n- property `%s` `%s` (%s)", attr("name"), attr("type"), attr("access"))
				if comment != "" {
					fmt.Fprintf(&b, ": %s", oneLine(comment))
				}
				b.WriteString("\n")
			case "method", "signal":
				method = attr("name")
				fmt.Fprintf(&b, "\n### %s %s.%s\n\n", tk.Name.Local, iface, method)
				if comment != "" {
					fmt.Fprintf(&b, "%s\n\n", comment)
				}
			case "arg":
				dir := attr("direction")
				if dir == "" {
					dir = "out"
				}
				fmt.Fprintf(&b, "- %s `%s` `%s`\n", dir, attr("name"), attr("type"))
			}
			comment = ""
		}
	}
	return []byte(b.String()), nil
}

func cleanComment(c string) string {
	lines := strings.Split(strings.TrimSpace(c), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, "\n")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
