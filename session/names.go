package session

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// validName is Docker's rule for container names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func checkName(name string) error {
	if len(name) > 253 || !validName.MatchString(name) {
		return fmt.Errorf("invalid container name %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", name)
	}
	return nil
}

// validHostname is RFC 1123: labels of letters, digits and '-', joined
// by dots; the kernel takes at most 64 bytes.
var validHostname = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$`)

func checkHostname(h string) error {
	if len(h) > 64 || !validHostname.MatchString(h) {
		return fmt.Errorf("invalid hostname %q: use letters, digits, '-' and '.', at most 64 characters", h)
	}
	return nil
}

// nextDefaultName returns pelagos-N with the lowest N not in use, as the
// seed runtime names its containers.
func nextDefaultName(taken func(string) bool) string {
	for n := 1; ; n++ {
		name := "pelagos-" + strconv.Itoa(n)
		if !taken(name) {
			return name
		}
	}
}

// isHexPrefix reports whether s could be an id or id prefix.
func isHexPrefix(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}
