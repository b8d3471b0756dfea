package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	godbus "github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	"github.com/pelagos-containers/pelagos/container"
	pdbus "github.com/pelagos-containers/pelagos/dbus"
	"github.com/pelagos-containers/pelagos/images"
	"github.com/pelagos-containers/pelagos/rootless"
)

// Version is the service's version.
const Version = "0.1.0"

// Manager owns the containers and images of one user and serves them on
// the bus.
type Manager struct {
	ctx    context.Context
	log    *slog.Logger
	paths  Paths
	ns     *rootless.Namespace
	store  *images.Store
	server *pdbus.Server
	// seccomp caches compiled profiles.
	seccomp seccompCache
	jobs    jobs
	// stopping is set once the service shuts down: runs that end now
	// are left to the next service.
	stopping atomic.Bool
	// holderMu orders requests to the holder with its replacement.
	holderMu sync.Mutex
	// initBinary is what containers' init and exec processes run.
	initBinary string
	// pastaVersion is asked of pasta once, when first needed.
	pastaVersionOnce sync.Once
	pastaWarnOnce    sync.Once
	pastaVersion     string
	cgroups          cgroups
	// priv is the connection to pelagos-privhelper (root networking),
	// hosts the names of the running containers on bridge networks.
	priv  privhelper
	hosts hostsIndex

	mu         sync.Mutex
	containers map[string]*ctr // by id
	imageObjs  map[string]*pdbus.Object
	// networkObjs are the user's bridge networks on the bus, by name.
	networkObjs map[string]*pdbus.Object
	lastCall    time.Time
	inflight    int // calls in progress
}

// NewManager loads the saved containers and exports the manager, its
// containers and its images on server.
func NewManager(ctx context.Context, log *slog.Logger, paths Paths, ns *rootless.Namespace, store *images.Store, server *pdbus.Server) (*Manager, error) {
	m := &Manager{
		ctx: ctx, log: log, paths: paths, ns: ns, store: store, server: server,
		containers: map[string]*ctr{}, imageObjs: map[string]*pdbus.Object{}, networkObjs: map[string]*pdbus.Object{}, lastCall: time.Now(),
	}
	m.initBinary = container.InitBinary()
	if err := os.MkdirAll(paths.Containers(), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", paths.Containers(), err)
	}
	mapSize := rootless.MappedCount(ns.UIDMap)
	props := map[string]*prop.Prop{
		"Version":       constProp(Version),
		"APIVersion":    constProp(pdbus.APIVersion),
		"StorageDriver": constProp(store.Driver()),
		"GraphRoot":     constProp(store.GraphRoot()),
		"StateDir":      constProp(paths.Containers()),
		"Rootless":      constProp(!ns.Rootful),
		"IDMapSize":     constProp(mapSize),
	}
	if _, err := server.Export(pdbus.ManagerPath, pdbus.ManagerInterface, &managerAPI{m}, props); err != nil {
		return nil, err
	}
	if err := m.loadContainers(); err != nil {
		return nil, err
	}
	m.sweepNetDirs()
	if err := m.syncImages(); err != nil {
		return nil, err
	}
	m.restartAtStart()
	return m, nil
}

// restartAtStart starts the containers whose policy says to when the
// service starts: "always" ones, and "unless-stopped" ones the user did
// not stop.
func (m *Manager) restartAtStart() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.containers {
		c.mu.Lock()
		r := &c.rec
		due := r.State != pdbus.StateRunning &&
			(r.Restart.Name == "always" || r.Restart.Name == "unless-stopped" && !r.StoppedByUser)
		if due {
			r.StoppedByUser = false
		}
		c.mu.Unlock()
		if due {
			go c.restartLater()
		}
	}
}

func constProp(v any) *prop.Prop {
	return &prop.Prop{Value: v, Writable: false, Emit: prop.EmitConst}
}

// touch records that a client did something, for the idle timer.
func (m *Manager) touch() {
	m.mu.Lock()
	m.lastCall = time.Now()
	m.mu.Unlock()
}

// track marks a call in progress until the returned func runs, so the
// service never exits idle under a long call (a load, a blocking Wait).
func (m *Manager) track() func() {
	m.mu.Lock()
	m.inflight++
	m.lastCall = time.Now()
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		m.inflight--
		m.lastCall = time.Now()
		m.mu.Unlock()
	}
}

// Idle reports whether nothing runs and no call came for d.
func (m *Manager) Idle(d time.Duration) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inflight > 0 || time.Since(m.lastCall) < d || m.busyJobs() {
		return false
	}
	for _, c := range m.containers {
		if c.running() {
			return false
		}
	}
	return true
}

// emit sends a Manager signal.
func (m *Manager) emit(name string, args ...any) {
	if err := m.server.Conn().Emit(pdbus.ManagerPath, pdbus.ManagerInterface+"."+name, args...); err != nil {
		m.log.Warn("emit signal", "signal", name, "err", err)
	}
}

// lookup finds a container by exact id, exact name or unique id prefix.
func (m *Manager) lookup(nameOrID string) (*ctr, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if nameOrID == "" {
		return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "empty container name or id")
	}
	if c, ok := m.containers[nameOrID]; ok {
		return c, nil
	}
	for _, c := range m.containers {
		// c.rec.ID never changes; "" marks a name being reserved.
		if c.rec.ID != "" && c.name() == nameOrID {
			return c, nil
		}
	}
	if isHexPrefix(nameOrID) {
		var match *ctr
		for id, c := range m.containers {
			if strings.HasPrefix(id, nameOrID) {
				if match != nil {
					return nil, pdbus.Errorf(pdbus.ErrNoSuchContainer, "container id prefix %q is ambiguous: give more characters", nameOrID)
				}
				match = c
			}
		}
		if match != nil {
			return match, nil
		}
	}
	return nil, pdbus.Errorf(pdbus.ErrNoSuchContainer, "no such container: %s", nameOrID)
}

// nameTaken must be called with m.mu held.
func (m *Manager) nameTakenLocked(name string) *ctr {
	for _, c := range m.containers {
		if c.name() == name {
			return c
		}
	}
	return nil
}

// loadContainers brings back the containers saved by earlier runs of the
// service.
func (m *Manager) loadContainers() error {
	entries, err := os.ReadDir(m.paths.Containers())
	if err != nil {
		return fmt.Errorf("read %s: %w", m.paths.Containers(), err)
	}
	layers, err := m.store.Layers()
	if err != nil {
		return err
	}
	haveLayer := map[string]bool{}
	for _, id := range layers {
		haveLayer[id] = true
	}
	for _, e := range entries {
		dir := filepath.Join(m.paths.Containers(), e.Name())
		rec, err := loadRecord(dir)
		if err != nil || rec.ID != e.Name() || !haveLayer[rec.ID] {
			// A create that died half-way: no record, or no layer.
			// Nothing of it is usable; release what exists.
			m.log.Warn("removing incomplete container", "id", e.Name(), "err", err)
			m.store.DeleteLayer(e.Name())
			os.RemoveAll(dir)
			continue
		}
		c := &ctr{m: m, dir: dir, rec: *rec}
		c.recover()
		if c.rec.AutoRemove && c.rec.State == pdbus.StateExited {
			// An --rm container that ended while no service ran.
			m.store.DeleteLayer(rec.ID)
			os.RemoveAll(dir)
			continue
		}
		if err := c.export(); err != nil {
			return err
		}
		m.containers[rec.ID] = c
	}
	return nil
}

// syncImages makes the image objects match the store.
func (m *Manager) syncImages() error {
	imgs, err := m.store.List()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, img := range imgs {
		seen[img.ID] = true
		m.mu.Lock()
		obj, ok := m.imageObjs[img.ID]
		m.mu.Unlock()
		if ok {
			setProp(obj.Props, pdbus.ImageIface, "Names", img.Names)
			continue
		}
		props := map[string]*prop.Prop{
			"Id":      constProp(img.ID),
			"Names":   {Value: img.Names, Emit: prop.EmitTrue},
			"Digest":  constProp(img.Digest),
			"Created": constProp(usec(img.Created)),
			"Size":    constProp(img.Size),
		}
		obj, err := m.server.Export(pdbus.ImagePath(img.ID), pdbus.ImageIface, &imageAPI{m: m, id: img.ID}, props)
		if err != nil {
			return err
		}
		m.mu.Lock()
		m.imageObjs[img.ID] = obj
		m.mu.Unlock()
		m.emit("ImageAdded", obj.Path, img.ID)
	}
	m.mu.Lock()
	var gone []string
	for id := range m.imageObjs {
		if !seen[id] {
			gone = append(gone, id)
			delete(m.imageObjs, id)
		}
	}
	m.mu.Unlock()
	sort.Strings(gone)
	for _, id := range gone {
		m.server.Unexport(pdbus.ImagePath(id))
		m.emit("ImageRemoved", pdbus.ImagePath(id), id)
	}
	return nil
}

// Shutdown is called when the service stops. Running containers keep
// running: they do not depend on the service.
func (m *Manager) Shutdown() {
	m.stopping.Store(true)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.containers {
		c.mu.Lock()
		if c.rec.State == pdbus.StateRunning {
			m.log.Info("leaving container running", "id", c.rec.ID, "name", c.rec.Name)
		}
		c.mu.Unlock()
	}
}

// asDBusErr maps internal errors to named API errors.
func asDBusErr(err error) *godbus.Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, images.ErrNoSuchImage):
		return pdbus.ToDBus(pdbus.Errorf(pdbus.ErrNoSuchImage, "%v", err))
	case errors.Is(err, images.ErrImageInUse):
		return pdbus.ToDBus(pdbus.Errorf(pdbus.ErrImageInUse, "%v", err))
	case errors.Is(err, images.ErrInvalidReference):
		return pdbus.ToDBus(pdbus.Errorf(pdbus.ErrInvalidReference, "%v", err))
	case errors.Is(err, images.ErrInvalidArchive):
		return pdbus.ToDBus(pdbus.Errorf(pdbus.ErrInvalidArchive, "%v", err))
	case errors.Is(err, images.ErrInvalidArgument):
		return pdbus.ToDBus(pdbus.Errorf(pdbus.ErrInvalidArgument, "%v", err))
	case errors.Is(err, images.ErrAuth):
		return pdbus.ToDBus(pdbus.Errorf(pdbus.ErrAuthFailed, "%v", err))
	case errors.Is(err, images.ErrNotLoggedIn):
		return pdbus.ToDBus(pdbus.Errorf(pdbus.ErrNotLoggedIn, "%v", err))
	}
	return pdbus.ToDBus(err)
}
