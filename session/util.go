package session

import (
	"errors"
	"strings"

	"go.podman.io/image/v5/docker/reference"
)

// shellJoin renders argv for display, quoting what a shell would need.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`|&;<>()*?[]{}~#") {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}

// isNameError reports whether err came from parsing an image reference.
func isNameError(err error) bool {
	return errors.Is(err, reference.ErrReferenceInvalidFormat) || errors.Is(err, reference.ErrNameNotCanonical) ||
		errors.Is(err, reference.ErrNameTooLong) || errors.Is(err, reference.ErrTagInvalidFormat) ||
		strings.Contains(err.Error(), "invalid image name")
}
