package session

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/pelagos-containers/pelagos/container"
	pdbus "github.com/pelagos-containers/pelagos/dbus"
	"github.com/pelagos-containers/pelagos/rootless"
)

// User namespace modes of a container (--userns).
const (
	usernsDefault = ""        // the service's own: container root is the user
	usernsKeepID  = "keep-id" // the user's own uid and gid inside
	usernsAuto    = "auto"    // a private subrange per container
	usernsMap     = "map"     // --uidmap/--gidmap as given
)

// autoDefaultSize is how many ids --userns=auto gives a container unless
// told otherwise (auto:size=N), as podman's smallest automatic range.
const autoDefaultSize = 1024

// usernsConfig is how a container's user namespace is made. The maps'
// host ids are ids of the service's namespace (0 is the user, 1… the
// subordinate ids), as podman's rootless --uidmap.
type usernsConfig struct {
	Mode   string                `json:"mode,omitempty"`
	UIDMap []container.IDMapping `json:"uidMap,omitempty"`
	GIDMap []container.IDMapping `json:"gidMap,omitempty"`
	// KeepID is the user as the container sees them under keep-id.
	KeepID *keepIDUser `json:"keepId,omitempty"`
}

// keepIDUser is the user's identity inside a keep-id container.
type keepIDUser struct {
	UID, GID     uint32
	Name, Home   string
	Shell, Gecos string
}

// Private reports whether the container gets a user namespace of its own.
func (u usernsConfig) Private() bool { return len(u.UIDMap) > 0 }

// String is the mode as inspect shows it (HostConfig.UsernsMode).
func (u usernsConfig) String() string {
	switch u.Mode {
	case usernsAuto:
		return fmt.Sprintf("auto:size=%d", mappedSize(u.UIDMap))
	case usernsMap:
		return "private"
	}
	return u.Mode
}

// mappedSize is the number of ids maps cover.
func mappedSize(maps []container.IDMapping) uint64 {
	var n uint64
	for _, m := range maps {
		n += uint64(m.Size)
	}
	return n
}

// rootID is the service id that the container's root maps to.
func rootID(maps []container.IDMapping) (uint32, bool) {
	for _, m := range maps {
		if m.ContainerID == 0 && m.Size > 0 {
			return m.HostID, true
		}
	}
	return 0, false
}

// parseUserNS turns --userns, --uidmap and --gidmap into a config. used
// lists the service ids other containers' automatic ranges hold; it is
// asked only for --userns=auto.
func (m *Manager) parseUserNS(cfg pdbus.ContainerConfig, used func() [][2]uint32) (usernsConfig, error) {
	mode, opts, _ := strings.Cut(cfg.UserNS, ":")
	bad := func(format string, a ...any) (usernsConfig, error) {
		return usernsConfig{}, pdbus.Errorf(pdbus.ErrInvalidArgument, format, a...)
	}
	if len(cfg.UIDMap)+len(cfg.GIDMap) > 0 {
		if mode != "" && mode != "private" {
			return bad("--userns %s and --uidmap/--gidmap conflict: give one of them", cfg.UserNS)
		}
		return m.explicitMaps(cfg.UIDMap, cfg.GIDMap)
	}
	if m.ns.Rootful || m.ns.SingleMapping {
		if mode != "" && mode != "host" {
			return bad("--userns %s needs subordinate ids: add a range for your user to /etc/subuid and /etc/subgid (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER) and restart pelagosd", cfg.UserNS)
		}
		return usernsConfig{}, nil
	}
	switch mode {
	case "", "host":
		if opts != "" {
			return bad("--userns %s takes no options", cfg.UserNS)
		}
		return usernsConfig{}, nil
	case usernsKeepID:
		return m.keepID(cfg.UserNS, opts)
	case usernsAuto:
		size := uint32(autoDefaultSize)
		for _, o := range splitOpts(opts) {
			k, v, _ := strings.Cut(o, "=")
			n, err := strconv.ParseUint(v, 10, 32)
			if k != "size" || err != nil || n == 0 {
				return bad("--userns %s: unknown option %q; use auto or auto:size=N", cfg.UserNS, o)
			}
			size = uint32(n)
		}
		base, ok := findFree(m.serviceIDs(m.ns.UIDMap), used(), size)
		if !ok {
			return bad("--userns auto: no free range of %d ids is left among your %d subordinate ids: remove containers that use --userns=auto, or ask for a smaller one with auto:size=N", size, rootless.MappedCount(m.ns.UIDMap)-1)
		}
		if gbase, gok := findFree(m.serviceIDs(m.ns.GIDMap), nil, size); !gok || gbase > base {
			return bad("--userns auto: your subordinate gid range is smaller than your uid range: give both the same size in /etc/subgid")
		}
		maps := []container.IDMapping{{ContainerID: 0, HostID: base, Size: size}}
		return usernsConfig{Mode: usernsAuto, UIDMap: maps, GIDMap: maps}, nil
	case "private", "nomap":
		return bad("--userns %s is not supported: use keep-id, auto or --uidmap", mode)
	}
	return bad("--userns %q: unknown mode; use keep-id[:uid=U,gid=G], auto[:size=N], host, or --uidmap/--gidmap", cfg.UserNS)
}

// keepID maps the user's own uid and gid (or the ones given) to the
// service's id 0 — the user on the host — and every other container id
// to a subordinate id, so files the user owns on the host are theirs in
// the container too.
func (m *Manager) keepID(arg, opts string) (usernsConfig, error) {
	uid, gid := m.ns.UID, m.ns.GID
	for _, o := range splitOpts(opts) {
		k, v, _ := strings.Cut(o, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || (k != "uid" && k != "gid") {
			return usernsConfig{}, pdbus.Errorf(pdbus.ErrInvalidArgument, "--userns %s: unknown option %q; use keep-id, keep-id:uid=U or keep-id:uid=U,gid=G", arg, o)
		}
		if k == "uid" {
			uid = uint32(n)
		} else {
			gid = uint32(n)
		}
	}
	uidMap, err := keepIDMap(uid, rootless.MappedCount(m.ns.UIDMap))
	if err != nil {
		return usernsConfig{}, pdbus.Errorf(pdbus.ErrInvalidArgument, "--userns %s: uid %d %v", arg, uid, err)
	}
	gidMap, err := keepIDMap(gid, rootless.MappedCount(m.ns.GIDMap))
	if err != nil {
		return usernsConfig{}, pdbus.Errorf(pdbus.ErrInvalidArgument, "--userns %s: gid %d %v", arg, gid, err)
	}
	who := &keepIDUser{UID: uid, GID: gid, Name: "user", Home: "/home/user", Shell: "/bin/sh"}
	if u, err := user.LookupId(strconv.FormatUint(uint64(m.ns.UID), 10)); err == nil {
		who.Name, who.Home, who.Gecos = u.Username, u.HomeDir, u.Name
	}
	return usernsConfig{Mode: usernsKeepID, UIDMap: uidMap, GIDMap: gidMap, KeepID: who}, nil
}

// keepIDMap maps id to the service's 0 and the ids around it to the
// subordinate ids 1…total-1 in order.
func keepIDMap(id uint32, total uint64) ([]container.IDMapping, error) {
	if uint64(id) >= total {
		return nil, fmt.Errorf("is beyond your %d subordinate ids: keep-id needs at least %d in /etc/subuid and /etc/subgid", total-1, uint64(id)+1)
	}
	var maps []container.IDMapping
	if id > 0 {
		maps = append(maps, container.IDMapping{ContainerID: 0, HostID: 1, Size: id})
	}
	maps = append(maps, container.IDMapping{ContainerID: id, HostID: 0, Size: 1})
	if rest := total - uint64(id) - 1; rest > 0 {
		maps = append(maps, container.IDMapping{ContainerID: id + 1, HostID: id + 1, Size: uint32(rest)})
	}
	return maps, nil
}

// explicitMaps checks --uidmap/--gidmap CONTAINER:HOST:SIZE triples
// against the ids the service has. Without --gidmap the uid maps serve
// for groups too, as in podman.
func (m *Manager) explicitMaps(uidSpecs, gidSpecs []string) (usernsConfig, error) {
	if len(gidSpecs) == 0 {
		gidSpecs = uidSpecs
	}
	if len(uidSpecs) == 0 {
		uidSpecs = gidSpecs
	}
	uids, err := parseIDMaps("--uidmap", uidSpecs, rootless.MappedCount(m.ns.UIDMap))
	if err != nil {
		return usernsConfig{}, err
	}
	gids, err := parseIDMaps("--gidmap", gidSpecs, rootless.MappedCount(m.ns.GIDMap))
	if err != nil {
		return usernsConfig{}, err
	}
	return usernsConfig{Mode: usernsMap, UIDMap: uids, GIDMap: gids}, nil
}

// parseIDMaps parses CONTAINER:HOST:SIZE maps; host ids must lie among
// the total ids of the service and neither side may overlap.
func parseIDMaps(flag string, specs []string, total uint64) ([]container.IDMapping, error) {
	var maps []container.IDMapping
	for _, s := range specs {
		parts := strings.Split(s, ":")
		var v [3]uint64
		ok := len(parts) == 3
		for i := 0; ok && i < 3; i++ {
			n, err := strconv.ParseUint(parts[i], 10, 32)
			v[i], ok = n, err == nil
		}
		if !ok || v[2] == 0 {
			return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "%s %q: use CONTAINER_ID:HOST_ID:SIZE, e.g. %s 0:1:65536 (host ids count from your user namespace: 0 is you, 1… your subordinate ids)", flag, s, flag)
		}
		if v[1]+v[2] > total || v[0]+v[2] > 1<<32-1 {
			return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "%s %s: host ids %d-%d are not yours: your user namespace has ids 0-%d (0 is you, the rest come from /etc/subuid and /etc/subgid)", flag, s, v[1], v[1]+v[2]-1, total-1)
		}
		maps = append(maps, container.IDMapping{ContainerID: uint32(v[0]), HostID: uint32(v[1]), Size: uint32(v[2])})
	}
	for i, a := range maps {
		for _, b := range maps[:i] {
			if overlaps(a.ContainerID, a.Size, b.ContainerID, b.Size) || overlaps(a.HostID, a.Size, b.HostID, b.Size) {
				return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "%s: the maps %d:%d:%d and %d:%d:%d overlap", flag, b.ContainerID, b.HostID, b.Size, a.ContainerID, a.HostID, a.Size)
			}
		}
	}
	if _, ok := rootID(maps); !ok {
		return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "%s: container id 0 is not mapped; add a map for it, e.g. %s 0:1:1", flag, flag)
	}
	return maps, nil
}

func overlaps(a, an, b, bn uint32) bool {
	return uint64(a) < uint64(b)+uint64(bn) && uint64(b) < uint64(a)+uint64(an)
}

func splitOpts(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// serviceIDs are the ranges of ids of the service's namespace an
// automatic range may take: all but 0, the user.
func (m *Manager) serviceIDs(maps []rootless.IDMap) [][2]uint32 {
	var out [][2]uint32
	for _, r := range maps {
		start, end := r.ContainerID, r.ContainerID+r.Size
		if start == 0 {
			start = 1
		}
		if start < end {
			out = append(out, [2]uint32{start, end})
		}
	}
	return out
}

// findFree returns the first start of size free ids in avail (ranges
// [start, end)) that overlaps none of used.
func findFree(avail, used [][2]uint32, size uint32) (uint32, bool) {
	sort.Slice(used, func(i, j int) bool { return used[i][0] < used[j][0] })
	for _, r := range avail {
		start := r[0]
		for _, u := range used {
			if uint64(start)+uint64(size) <= uint64(u[0]) {
				break
			}
			if u[1] > start {
				start = u[1]
			}
		}
		if uint64(start)+uint64(size) <= uint64(r[1]) {
			return start, true
		}
	}
	return 0, false
}

// autoRangesLocked lists the service ids every container made with
// --userns=auto holds. Call with m.mu held.
func (m *Manager) autoRangesLocked() [][2]uint32 {
	var out [][2]uint32
	for _, c := range m.containers {
		c.mu.Lock()
		u := c.rec.UserNS
		c.mu.Unlock()
		if u.Mode == usernsAuto {
			for _, r := range u.UIDMap {
				out = append(out, [2]uint32{r.HostID, r.HostID + r.Size})
			}
		}
	}
	return out
}

// keepIDFiles writes the /etc/passwd and /etc/group a keep-id container
// gets: the image's, plus the user's entries when the image lacks them.
// They go beside the container's state and are bind-mounted read-only.
func (c *ctr) keepIDFiles(rootfs string, files map[string]string) error {
	k := c.rec.UserNS.KeepID
	if k == nil {
		return nil
	}
	for _, f := range []struct {
		path, line string
		id         uint32
	}{
		{"/etc/passwd", fmt.Sprintf("%s:x:%d:%d:%s:%s:%s", k.Name, k.UID, k.GID, k.Gecos, k.Home, k.Shell), k.UID},
		{"/etc/group", fmt.Sprintf("%s:x:%d:", k.Name, k.GID), k.GID},
	} {
		p, err := securejoin.SecureJoin(rootfs, f.path)
		if err != nil {
			return fmt.Errorf("keep-id: %s: %w", f.path, err)
		}
		old, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("keep-id: read the image's %s: %w", f.path, err)
		}
		if hasID(old, f.id) {
			continue
		}
		if len(old) > 0 && !bytes.HasSuffix(old, []byte("\n")) {
			old = append(old, '\n')
		}
		out := filepath.Join(c.dir, "keep-id-"+filepath.Base(f.path))
		if err := os.WriteFile(out, append(old, f.line+"\n"...), 0o644); err != nil {
			return fmt.Errorf("keep-id: write %s: %w", f.path, err)
		}
		// Root's inside, as the image's own file is.
		uid, _ := rootID(c.rec.UserNS.UIDMap)
		gid, _ := rootID(c.rec.UserNS.GIDMap)
		if err := os.Chown(out, int(uid), int(gid)); err != nil {
			return fmt.Errorf("keep-id: %s: %w", f.path, err)
		}
		files[f.path] = out
	}
	return nil
}

// hasID reports whether a passwd or group file has an entry with id in
// its third field.
func hasID(data []byte, id uint32) bool {
	sc := bufio.NewScanner(bytes.NewReader(data))
	want := strconv.FormatUint(uint64(id), 10)
	for sc.Scan() {
		if f := strings.Split(sc.Text(), ":"); len(f) > 2 && f[2] == want {
			return true
		}
	}
	return false
}

// chownEmptyVolumes gives the named volumes of a container with a user
// namespace of its own to the container's root while they are still
// empty, as podman does; otherwise they belong to an id the namespace
// does not map and its root could not write to them.
func (c *ctr) chownEmptyVolumes() error {
	uid, ok := rootID(c.rec.UserNS.UIDMap)
	if !ok {
		return nil
	}
	gid, _ := rootID(c.rec.UserNS.GIDMap)
	root := c.m.paths.volumesRoot() + string(filepath.Separator)
	for _, mnt := range c.rec.Mounts {
		if mnt.Type != "bind" || !strings.HasPrefix(mnt.Source, root) {
			continue
		}
		entries, err := os.ReadDir(mnt.Source)
		if err != nil || len(entries) > 0 {
			continue
		}
		if err := os.Lchown(mnt.Source, int(uid), int(gid)); err != nil {
			return fmt.Errorf("give volume %s to the container's root: %w", mnt.Source, err)
		}
	}
	return nil
}
