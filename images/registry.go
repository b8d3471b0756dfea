package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"
)

// ErrAuth is returned when a registry refuses the credentials, or wants
// some and has none.
var ErrAuth = errors.New("authentication failed")

// ErrNotLoggedIn is returned by Logout for a registry without stored
// credentials.
var ErrNotLoggedIn = errors.New("not logged in")

// RegistryOptions are what every talk with a registry shares: pull, push
// and login.
type RegistryOptions struct {
	// TLSVerify false allows plain HTTP and unverified certificates for
	// every registry of this call; registries.conf can set it per
	// registry with insecure = true.
	TLSVerify bool
	// AuthFile replaces the default containers-auth.json
	// ($XDG_RUNTIME_DIR/containers/auth.json); an absolute path.
	AuthFile string
	// Creds, "USER[:PASSWORD]", are used instead of stored credentials.
	Creds string
}

// systemContext is the store's context with o applied.
func (s *Store) systemContext(o RegistryOptions) (*types.SystemContext, error) {
	sys := *s.sys
	if !o.TLSVerify {
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
		sys.OCIInsecureSkipTLSVerify = true
	}
	if o.AuthFile != "" {
		if !filepath.IsAbs(o.AuthFile) {
			return nil, fmt.Errorf("%w: --authfile %q must be an absolute path", ErrInvalidArgument, o.AuthFile)
		}
		sys.AuthFilePath = filepath.Clean(o.AuthFile)
	}
	if o.Creds != "" {
		user, pass, _ := strings.Cut(o.Creds, ":")
		if user == "" {
			return nil, fmt.Errorf("%w: --creds needs USER[:PASSWORD], got an empty user name", ErrInvalidArgument)
		}
		sys.DockerAuthConfig = &types.DockerAuthConfig{Username: user, Password: pass}
	}
	// A service has no terminal to ask on: never prompt for a short name.
	permissive := types.ShortNameModePermissive
	sys.ShortNameMode = &permissive
	// The library caches registries.conf for the life of the process; a
	// long-lived service must see the user's edits at the next call.
	sysregistriesv2.InvalidateCache()
	return &sys, nil
}

// ErrInvalidArgument is returned for options that make no sense.
var ErrInvalidArgument = errors.New("invalid argument")

// registryKey is what containers-auth.json(5) files credentials under:
// HOST[:PORT][/NAMESPACE...].
var registryKey = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$`)

// normalizeRegistry accepts what users type after `login` (a bare host, a
// docker:// or https:// URL, a trailing slash) and returns the key
// credentials are stored under, and the host to check them against.
func normalizeRegistry(r string) (key, host string, err error) {
	key = r
	for _, p := range []string{"docker://", "https://", "http://"} {
		key = strings.TrimPrefix(key, p)
	}
	key = strings.TrimSuffix(key, "/")
	if key == "" {
		return "", "", fmt.Errorf("%w: no registry given: name one, e.g. quay.io or 127.0.0.1:5000", ErrInvalidArgument)
	}
	if len(key) > 255 || !registryKey.MatchString(key) {
		return "", "", fmt.Errorf("%w: %q is not a registry: use HOST[:PORT][/NAMESPACE], e.g. quay.io or 127.0.0.1:5000", ErrInvalidArgument, r)
	}
	host, _, _ = strings.Cut(key, "/")
	return key, host, nil
}

// Login checks the credentials against the registry and, when it accepts
// them, stores them in containers-auth.json (or a credential helper
// configured for the registry). It returns where they went.
func (s *Store) Login(ctx context.Context, registry, user, password string, o RegistryOptions) (string, error) {
	key, host, err := normalizeRegistry(registry)
	if err != nil {
		return "", err
	}
	if user == "" {
		return "", fmt.Errorf("%w: no user name given for %s", ErrInvalidArgument, key)
	}
	if password == "" {
		return "", fmt.Errorf("%w: no password given for %s", ErrInvalidArgument, key)
	}
	o.Creds = ""
	sys, err := s.systemContext(o)
	if err != nil {
		return "", err
	}
	if err := docker.CheckAuth(ctx, sys, user, password, host); err != nil {
		return "", fmt.Errorf("login to %s: %w", key, explainRegistryErr(host, err))
	}
	where, err := config.SetCredentials(sys, key, user, password)
	if err != nil {
		return "", fmt.Errorf("store credentials for %s: %w", key, err)
	}
	return where, nil
}

// Logout removes the stored credentials of registry, or of every
// registry when registry is "" and all is set.
func (s *Store) Logout(registry string, all bool, o RegistryOptions) error {
	o.Creds = ""
	sys, err := s.systemContext(o)
	if err != nil {
		return err
	}
	if all {
		if err := config.RemoveAllAuthentication(sys); err != nil {
			return fmt.Errorf("remove all credentials: %w", err)
		}
		return nil
	}
	key, _, err := normalizeRegistry(registry)
	if err != nil {
		return err
	}
	err = config.RemoveAuthentication(sys, key)
	if errors.Is(err, config.ErrNotLoggedIn) {
		if auth, gerr := config.GetCredentials(sys, key); gerr == nil && (auth.Username != "" || auth.IdentityToken != "") {
			return fmt.Errorf("%w to %s with pelagos: the credentials come from elsewhere (~/.docker/config.json or a credential helper); remove them there, e.g. with docker logout %s", ErrNotLoggedIn, key, key)
		}
		return fmt.Errorf("%w to %s", ErrNotLoggedIn, key)
	}
	if err != nil {
		return fmt.Errorf("remove credentials for %s: %w", key, err)
	}
	return nil
}

// explainDiskFull names a full disk and what to do about it.
func (s *Store) explainDiskFull(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("no space left on the disk of %s: free some space (pelagos image prune -a removes unused images) and retry: %w", s.GraphRoot(), err)
	}
	return err
}

// explainRegistryErr turns a registry's 401 into ErrAuth with a hint, and
// names a connection cut in the middle of a blob.
func explainRegistryErr(host string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "unexpected EOF") {
		where := "the source"
		if host != "" {
			where = "registry " + host
		}
		return fmt.Errorf("%s stopped sending in the middle of a blob; nothing was stored, retry when it is reachable: %w", where, err)
	}
	var unauth docker.ErrUnauthorizedForCredentials
	if errors.As(err, &unauth) || strings.Contains(err.Error(), "authentication required") {
		return fmt.Errorf("%w: registry %s answered 401 Unauthorized (%v): check the user name and password, or run pelagos login %s", ErrAuth, host, err, host)
	}
	return err
}
