package container

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// credential is who the command runs as inside the container.
type credential struct {
	UID, GID uint32
	Groups   []uint32
}

// passwdEntry is one line of an /etc/passwd file.
type passwdEntry struct {
	Name     string
	UID, GID uint32
	Home     string
}

// groupEntry is one line of an /etc/group file.
type groupEntry struct {
	Name    string
	GID     uint32
	Members []string
}

// parsePasswd reads /etc/passwd lines; malformed ones are skipped, as libc
// does.
func parsePasswd(path string) ([]passwdEntry, error) {
	var out []passwdEntry
	err := scanColonFile(path, func(f []string) {
		if len(f) < 7 {
			return
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 == nil && err2 == nil {
			out = append(out, passwdEntry{Name: f[0], UID: uint32(uid), GID: uint32(gid), Home: f[5]})
		}
	})
	return out, err
}

// parseGroup reads /etc/group lines.
func parseGroup(path string) ([]groupEntry, error) {
	var out []groupEntry
	err := scanColonFile(path, func(f []string) {
		if len(f) < 4 {
			return
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			return
		}
		var members []string
		if f[3] != "" {
			members = strings.Split(f[3], ",")
		}
		out = append(out, groupEntry{Name: f[0], GID: uint32(gid), Members: members})
	})
	return out, err
}

func scanColonFile(path string, fn func([]string)) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fn(strings.Split(line, ":"))
	}
	return sc.Err()
}

// resolveUser turns the image's or the caller's user string into ids,
// reading the container's own /etc/passwd and /etc/group (we are already
// inside its root). It returns the home directory too, for $HOME.
func resolveUser(spec string) (credential, string, error) {
	users, err := parsePasswd("/etc/passwd")
	if err != nil {
		return credential{}, "", fmt.Errorf("read /etc/passwd of the image: %w", err)
	}
	groups, err := parseGroup("/etc/group")
	if err != nil {
		return credential{}, "", fmt.Errorf("read /etc/group of the image: %w", err)
	}
	return lookupUser(spec, users, groups)
}

func lookupUser(spec string, users []passwdEntry, groups []groupEntry) (credential, string, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		userPart = "0"
	}
	var cred credential
	home := "/"
	var name string
	if n, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		cred.UID = uint32(n)
		cred.GID = uint32(n)
		if cred.UID == 0 {
			cred.GID = 0
		}
		for _, u := range users {
			if u.UID == cred.UID {
				cred.GID, home, name = u.GID, u.Home, u.Name
				break
			}
		}
	} else {
		found := false
		for _, u := range users {
			if u.Name == userPart {
				cred.UID, cred.GID, home, name, found = u.UID, u.GID, u.Home, u.Name, true
				break
			}
		}
		if !found {
			return credential{}, "", fmt.Errorf("unable to find user %s: no matching entries in passwd file", userPart)
		}
	}
	if hasGroup && groupPart != "" {
		if n, err := strconv.ParseUint(groupPart, 10, 32); err == nil {
			cred.GID = uint32(n)
		} else {
			found := false
			for _, g := range groups {
				if g.Name == groupPart {
					cred.GID, found = g.GID, true
					break
				}
			}
			if !found {
				return credential{}, "", fmt.Errorf("unable to find group %s: no matching entries in group file", groupPart)
			}
		}
	}
	// Supplementary groups from /etc/group, as login would set them.
	if name != "" {
		for _, g := range groups {
			for _, m := range g.Members {
				if m == name && g.GID != cred.GID {
					cred.Groups = append(cred.Groups, g.GID)
				}
			}
		}
	}
	if home == "" {
		home = "/"
	}
	return cred, home, nil
}

// applyCredential switches to the container user. setgroups is skipped
// when the namespace denies it (a single-id map), where only the one id
// exists anyway.
func applyCredential(c credential) error {
	groups := make([]int, len(c.Groups))
	for i, g := range c.Groups {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil && !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("set supplementary groups: %w", err)
	}
	if err := syscall.Setgid(int(c.GID)); err != nil {
		return fmt.Errorf("set gid %d: %w (is it mapped? see /etc/subgid)", c.GID, err)
	}
	if err := syscall.Setuid(int(c.UID)); err != nil {
		return fmt.Errorf("set uid %d: %w (is it mapped? see /etc/subuid)", c.UID, err)
	}
	return nil
}

// enterWorkdir changes to the working directory, creating it (owned by
// the container user) when the image lacks it, as Docker does.
func enterWorkdir(dir string, c credential) error {
	if dir == "" {
		dir = "/"
	}
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("working directory %q is not absolute", dir)
	}
	if err := unix.Chdir(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create working directory %s: %w", dir, err)
	}
	if err := os.Chown(dir, int(c.UID), int(c.GID)); err != nil {
		return fmt.Errorf("chown working directory %s: %w", dir, err)
	}
	if err := unix.Chdir(dir); err != nil {
		return fmt.Errorf("enter working directory %s: %w", dir, err)
	}
	return nil
}

// DefaultPath is the PATH a container gets when its image sets none (the
// OCI/Docker default).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// withDefaultEnv adds what every container gets unless set: PATH,
// HOSTNAME and HOME.
func withDefaultEnv(env []string, hostname, home string) []string {
	out := append([]string(nil), env...)
	if _, ok := lookupEnv(out, "PATH"); !ok {
		out = append(out, "PATH="+DefaultPath)
	}
	if _, ok := lookupEnv(out, "HOSTNAME"); !ok {
		out = append(out, "HOSTNAME="+hostname)
	}
	if _, ok := lookupEnv(out, "HOME"); !ok {
		out = append(out, "HOME="+home)
	}
	return out
}

func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

func envValue(env []string, key string) string {
	v, _ := lookupEnv(env, key)
	return v
}

// lookPath finds an executable the way execvp does, but with the
// container's PATH rather than this process's.
func lookPath(file, path string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	if file == "" {
		return "", errors.New("exec: empty command name")
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", file)
}

// addGroups appends --group-add groups, by id or by name from the
// image's /etc/group (we are inside its root).
func addGroups(have []uint32, add []string) ([]uint32, error) {
	if len(add) == 0 {
		return have, nil
	}
	groups, err := parseGroup("/etc/group")
	if err != nil {
		return nil, fmt.Errorf("read /etc/group of the image: %w", err)
	}
	for _, g := range add {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			have = append(have, uint32(n))
			continue
		}
		found := false
		for _, e := range groups {
			if e.Name == g {
				have, found = append(have, e.GID), true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("--group-add %s: no such group in the image's /etc/group", g)
		}
	}
	return have, nil
}

// CheckUser resolves a -u/--user value against the /etc/passwd and
// /etc/group of the root filesystem at rootfs, as the container will, so
// that a name the image lacks is refused before anything runs.
func CheckUser(rootfs, spec string) error {
	paths := make([]string, 2)
	for i, p := range []string{"/etc/passwd", "/etc/group"} {
		full, err := securejoin.SecureJoin(rootfs, p)
		if err != nil {
			return fmt.Errorf("resolve %s in the image: %w", p, err)
		}
		paths[i] = full
	}
	users, err := parsePasswd(paths[0])
	if err != nil {
		return fmt.Errorf("read /etc/passwd of the image: %w", err)
	}
	groups, err := parseGroup(paths[1])
	if err != nil {
		return fmt.Errorf("read /etc/group of the image: %w", err)
	}
	_, _, err = lookupUser(spec, users, groups)
	return err
}

// NamedUser reports whether a -u/--user value names a user or group
// (rather than only numbers), which needs the image to resolve.
func NamedUser(spec string) bool {
	for _, part := range strings.SplitN(spec, ":", 2) {
		if _, err := strconv.ParseUint(part, 10, 32); part != "" && err != nil {
			return true
		}
	}
	return false
}
