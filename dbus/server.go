package dbus

import (
	"encoding/xml"
	"fmt"
	"sort"
	"strings"
	"sync"

	godbus "github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"
)

// Interfaces parses InterfaceXML into godbus introspection data, keyed by
// interface name.
func Interfaces() (map[string]introspect.Interface, error) {
	var n introspect.Node
	if err := xml.Unmarshal([]byte(InterfaceXML), &n); err != nil {
		return nil, fmt.Errorf("parse interface XML: %w", err)
	}
	out := make(map[string]introspect.Interface, len(n.Interfaces))
	for _, i := range n.Interfaces {
		out[i.Name] = i
	}
	return out, nil
}

// Server exports objects with their methods, properties and
// introspection data, and serves org.freedesktop.DBus.ObjectManager at its
// root so that clients learn of objects through InterfacesAdded and
// InterfacesRemoved instead of polling.
type Server struct {
	conn   *godbus.Conn
	root   godbus.ObjectPath
	ifaces map[string]introspect.Interface

	mu sync.Mutex
	// exportMu serializes Conn.Export: godbus reads its object map
	// without a lock while exporting, so two exports at once race.
	exportMu sync.Mutex
	objects  map[godbus.ObjectPath]*Object
}

// Object is one exported object with one pelagos interface.
type Object struct {
	Path  godbus.ObjectPath
	Iface string
	// Props serves the interface's properties; Set on it emits
	// PropertiesChanged.
	Props *prop.Properties
}

// NewServer exports the ObjectManager at root.
func NewServer(conn *godbus.Conn, root godbus.ObjectPath) (*Server, error) {
	ifaces, err := Interfaces()
	if err != nil {
		return nil, err
	}
	s := &Server{conn: conn, root: root, ifaces: ifaces, objects: map[godbus.ObjectPath]*Object{}}
	if err := conn.Export(objectManager{s}, root, ObjectManagerIface); err != nil {
		return nil, fmt.Errorf("export object manager: %w", err)
	}
	return s, nil
}

// Conn is the connection the server exports on.
func (s *Server) Conn() *godbus.Conn { return s.conn }

type objectManager struct{ s *Server }

// GetManagedObjects implements org.freedesktop.DBus.ObjectManager.
func (o objectManager) GetManagedObjects() (map[godbus.ObjectPath]map[string]map[string]godbus.Variant, *godbus.Error) {
	o.s.mu.Lock()
	objs := make([]*Object, 0, len(o.s.objects))
	for _, obj := range o.s.objects {
		objs = append(objs, obj)
	}
	o.s.mu.Unlock()
	out := make(map[godbus.ObjectPath]map[string]map[string]godbus.Variant, len(objs))
	for _, obj := range objs {
		if obj.Path == o.s.root {
			continue // the spec: the manager lists its children
		}
		all, err := obj.Props.GetAll(obj.Iface)
		if err != nil {
			return nil, err
		}
		out[obj.Path] = map[string]map[string]godbus.Variant{obj.Iface: all}
	}
	return out, nil
}

// Export serves methods (a Go value whose exported methods implement the
// interface) and props at path, and announces the object.
func (s *Server) Export(path godbus.ObjectPath, iface string, methods any, props map[string]*prop.Prop) (*Object, error) {
	spec, ok := s.ifaces[iface]
	if !ok {
		return nil, fmt.Errorf("export %s: interface %s is not in the interface XML", path, iface)
	}
	s.exportMu.Lock()
	defer s.exportMu.Unlock()
	if err := s.conn.Export(methods, path, iface); err != nil {
		return nil, fmt.Errorf("export %s: %w", path, err)
	}
	p, err := prop.Export(s.conn, path, prop.Map{iface: props})
	if err != nil {
		s.conn.Export(nil, path, iface)
		return nil, fmt.Errorf("export properties of %s: %w", path, err)
	}
	node := &introspect.Node{
		Name: string(path),
		Interfaces: []introspect.Interface{
			// NewIntrospectable adds Introspectable and Peer itself.
			prop.IntrospectData, spec,
		},
	}
	if path == s.root {
		node.Interfaces = append(node.Interfaces, objectManagerIntrospectData)
		node.Children = []introspect.Node{{Name: "container"}, {Name: "image"}, {Name: "job"}}
	}
	if err := s.conn.Export(introspect.NewIntrospectable(node), path, "org.freedesktop.DBus.Introspectable"); err != nil {
		return nil, fmt.Errorf("export introspection of %s: %w", path, err)
	}
	obj := &Object{Path: path, Iface: iface, Props: p}
	s.mu.Lock()
	s.objects[path] = obj
	s.mu.Unlock()
	if path != s.root {
		all, _ := p.GetAll(iface)
		s.conn.Emit(s.root, ObjectManagerIface+".InterfacesAdded", path, map[string]map[string]godbus.Variant{iface: all})
		s.refreshParents()
	}
	return obj, nil
}

// Unexport removes the object at path and announces its removal.
func (s *Server) Unexport(path godbus.ObjectPath) {
	s.mu.Lock()
	obj, ok := s.objects[path]
	delete(s.objects, path)
	s.mu.Unlock()
	if !ok {
		return
	}
	s.exportMu.Lock()
	defer s.exportMu.Unlock()
	s.conn.Export(nil, path, obj.Iface)
	s.conn.Export(nil, path, PropertiesIface)
	s.conn.Export(nil, path, "org.freedesktop.DBus.Introspectable")
	s.conn.Emit(s.root, ObjectManagerIface+".InterfacesRemoved", path, []string{obj.Iface})
	s.refreshParents()
}

// refreshParents keeps `busctl tree` working: the intermediate nodes
// (…/container, …/image) list their children in their introspection.
// Call with exportMu held.
func (s *Server) refreshParents() {
	s.mu.Lock()
	children := map[string][]introspect.Node{}
	for p := range s.objects {
		dir, leaf := splitPath(p)
		if dir != "" && dir != string(s.root) {
			children[dir] = append(children[dir], introspect.Node{Name: leaf})
		}
	}
	s.mu.Unlock()
	for _, dir := range []string{string(s.root) + "/container", string(s.root) + "/image", string(s.root) + "/job"} {
		kids := children[dir]
		sort.Slice(kids, func(i, j int) bool { return kids[i].Name < kids[j].Name })
		node := &introspect.Node{Name: dir, Children: kids}
		s.conn.Export(introspect.NewIntrospectable(node), godbus.ObjectPath(dir), "org.freedesktop.DBus.Introspectable")
	}
}

func splitPath(p godbus.ObjectPath) (string, string) {
	i := strings.LastIndex(string(p), "/")
	if i <= 0 {
		return "", string(p)
	}
	return string(p)[:i], string(p)[i+1:]
}

var objectManagerIntrospectData = introspect.Interface{
	Name: ObjectManagerIface,
	Methods: []introspect.Method{{
		Name: "GetManagedObjects",
		Args: []introspect.Arg{{Name: "objects", Type: "a{oa{sa{sv}}}", Direction: "out"}},
	}},
	Signals: []introspect.Signal{
		{Name: "InterfacesAdded", Args: []introspect.Arg{{Name: "object", Type: "o"}, {Name: "interfaces", Type: "a{sa{sv}}"}}},
		{Name: "InterfacesRemoved", Args: []introspect.Arg{{Name: "object", Type: "o"}, {Name: "interfaces", Type: "as"}}},
	},
}
