package images

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"
)

// PushOptions tune a push.
type PushOptions struct {
	RegistryOptions
	// Format of the manifest written: "" keeps the image's, "oci" or
	// "v2s2" (Docker schema 2) convert.
	Format string
}

var manifestFormats = map[string]string{
	"oci":  imgspecv1.MediaTypeImageManifest,
	"v2s2": manifest.DockerV2Schema2MediaType,
}

// ParseDestination reads where a push goes: an explicit transport
// reference (docker://, oci:, oci-archive:, docker-archive:, dir:), or a
// registry reference without one. File destinations need an absolute
// path: the service does not share the caller's working directory.
func ParseDestination(dest string) (types.ImageReference, error) {
	explicit := false
	for _, t := range explicitTransports {
		if strings.HasPrefix(dest, t) {
			explicit = true
			if t != "docker://" {
				path := strings.TrimPrefix(dest, t)
				if !filepath.IsAbs(path) {
					return nil, fmt.Errorf("%w: %q: the path after %s must be absolute", ErrInvalidReference, dest, t)
				}
			}
		}
	}
	if !explicit {
		if _, err := reference.ParseNormalizedNamed(dest); err != nil {
			return nil, fmt.Errorf("%w: %q: %v (use REGISTRY/NAME[:TAG] or a transport such as oci:/path, dir:/path, docker-archive:/path)", ErrInvalidReference, dest, err)
		}
		dest = "docker://" + dest
	}
	ref, err := alltransports.ParseImageName(dest)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidReference, dest, err)
	}
	return ref, nil
}

// Push copies a stored image to dest (see ParseDestination) and returns
// the digest of the manifest it wrote.
func (s *Store) Push(ctx context.Context, img Image, dest string, opts PushOptions, report func(Progress)) (string, error) {
	destRef, err := ParseDestination(dest)
	if err != nil {
		return "", err
	}
	mime, ok := manifestFormats[opts.Format]
	if !ok && opts.Format != "" {
		return "", fmt.Errorf("%w: --format %q: use oci or v2s2", ErrInvalidArgument, opts.Format)
	}
	sys, err := s.systemContext(opts.RegistryOptions)
	if err != nil {
		return "", err
	}
	src, err := s.storeRef(img.ID)
	if err != nil {
		return "", err
	}
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		return "", fmt.Errorf("signature policy: %w", err)
	}
	defer pc.Destroy()
	report(Progress{Message: "Pushing " + shortDigest(img.ID) + " to " + transportsName(destRef)})
	m, err := copyWithProgress(ctx, pc, destRef, src, &copy.Options{
		SourceCtx: s.sys, DestinationCtx: sys, ForceManifestMIMEType: mime,
		// Signatures made for another location would not verify there.
		RemoveSignatures: true,
	}, report)
	if err != nil {
		host := ""
		if n := destRef.DockerReference(); n != nil {
			host = reference.Domain(n)
		}
		return "", fmt.Errorf("push %s to %s: %w", shortDigest(img.ID), transportsName(destRef), explainRegistryErr(host, err))
	}
	d, err := manifest.Digest(m)
	if err != nil {
		return "", fmt.Errorf("digest of the pushed manifest: %w", err)
	}
	return d.String(), nil
}
