// Package rootless puts the pelagos service into the calling user's user
// namespace and answers questions about that namespace.
package rootless

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// IDMap is one line of a uid_map or gid_map: Size ids starting at HostID
// outside appear as ContainerID onwards inside.
type IDMap struct {
	ContainerID uint32
	HostID      uint32
	Size        uint32
}

// SubIDRange is one range delegated to a user in /etc/subuid or /etc/subgid.
type SubIDRange struct {
	Start uint32
	Size  uint32
}

// ParseSubIDFile reads an /etc/subuid-style file and returns the ranges that
// belong to the user named name or with numeric id. Malformed lines are
// skipped, as shadow-utils does.
func ParseSubIDFile(r io.Reader, name string, id uint32) ([]SubIDRange, error) {
	var out []SubIDRange
	idStr := strconv.FormatUint(uint64(id), 10)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 || (f[0] != name && f[0] != idStr) {
			continue
		}
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		size, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || size == 0 {
			continue
		}
		out = append(out, SubIDRange{Start: uint32(start), Size: uint32(size)})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// LookupSubIDs returns the user's ranges from path (normally /etc/subuid or
// /etc/subgid). A missing file means no ranges.
func LookupSubIDs(path, name string, id uint32) ([]SubIDRange, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	r, err := ParseSubIDFile(f, name, id)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return r, nil
}

// BuildMaps maps container id 0 to the user's own id and the delegated
// ranges, in order, to container ids 1 and up — the layout podman uses, so
// images extracted by either tool have the same owners on disk.
func BuildMaps(own uint32, ranges []SubIDRange) []IDMap {
	maps := []IDMap{{ContainerID: 0, HostID: own, Size: 1}}
	next := uint32(1)
	for _, r := range ranges {
		maps = append(maps, IDMap{ContainerID: next, HostID: r.Start, Size: r.Size})
		next += r.Size
	}
	return maps
}

// FormatMapArgs renders maps as the argument triples newuidmap takes.
func FormatMapArgs(maps []IDMap) []string {
	args := make([]string, 0, 3*len(maps))
	for _, m := range maps {
		args = append(args,
			strconv.FormatUint(uint64(m.ContainerID), 10),
			strconv.FormatUint(uint64(m.HostID), 10),
			strconv.FormatUint(uint64(m.Size), 10))
	}
	return args
}

// ParseProcMap parses the text of /proc/PID/uid_map.
func ParseProcMap(text string) ([]IDMap, error) {
	var out []IDMap
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("malformed id map line %q", line)
		}
		var v [3]uint64
		for i := range f {
			n, err := strconv.ParseUint(f[i], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("malformed id map line %q: %w", line, err)
			}
			v[i] = n
		}
		out = append(out, IDMap{ContainerID: uint32(v[0]), HostID: uint32(v[1]), Size: uint32(v[2])})
	}
	return out, nil
}

// MappedCount is the number of ids a map covers.
func MappedCount(maps []IDMap) uint64 {
	var n uint64
	for _, m := range maps {
		n += uint64(m.Size)
	}
	return n
}
