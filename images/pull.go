package images

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"
)

// ErrInvalidReference is returned for a reference that cannot be parsed.
var ErrInvalidReference = errors.New("invalid image reference")

// PullOptions tune a pull.
type PullOptions struct {
	// TLSVerify false allows plain HTTP and unverified certificates for
	// every registry of this pull; registries.conf can set it per
	// registry with insecure = true.
	TLSVerify bool
}

// Progress is a snapshot of a pull's transfer.
type Progress struct {
	BytesDone, BytesTotal uint64
	Layer                 string // digest of the blob being transferred
	Message               string // "Trying to pull …", "Copying blob …"
}

// transports a reference may name explicitly.
var explicitTransports = []string{"docker://", "oci:", "oci-archive:", "docker-archive:", "dir:"}

// Pull brings an image into the store. ref is a name resolved through
// registries.conf (short names, aliases, unqualified-search registries)
// or an explicit transport reference (docker://, oci:, oci-archive:,
// docker-archive:, dir:). report receives progress; it must not block.
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions, report func(Progress)) (Loaded, error) {
	sys := *s.sys
	if !opts.TLSVerify {
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
		sys.OCIInsecureSkipTLSVerify = true
	}
	// A service has no terminal to ask on: never prompt for a short name.
	permissive := types.ShortNameModePermissive
	sys.ShortNameMode = &permissive
	// The library caches registries.conf for the life of the process; a
	// long-lived service must see the user's edits at the next pull.
	sysregistriesv2.InvalidateCache()

	for _, t := range explicitTransports {
		if strings.HasPrefix(ref, t) {
			src, err := alltransports.ParseImageName(ref)
			if err != nil {
				return Loaded{}, fmt.Errorf("%w: %s: %v", ErrInvalidReference, ref, err)
			}
			report(Progress{Message: "Trying to pull " + ref + "..."})
			return s.pullFrom(ctx, &sys, src, src.DockerReference(), report)
		}
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return Loaded{}, fmt.Errorf("%w: %q: %v (use NAME[:TAG|@DIGEST], e.g. registry.example.org/team/app:1.0)", ErrInvalidReference, ref, err)
	}
	resolved, err := shortnames.Resolve(&sys, ref)
	if err != nil {
		return Loaded{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	if d := resolved.Description(); d != "" {
		report(Progress{Message: d})
	}
	var pullErrs []error
	for _, cand := range resolved.PullCandidates {
		report(Progress{Message: "Trying to pull " + cand.Value.String() + "..."})
		src, err := docker.NewReference(cand.Value)
		if err != nil {
			pullErrs = append(pullErrs, err)
			continue
		}
		l, err := s.pullFrom(ctx, &sys, src, cand.Value, report)
		if err == nil {
			if err := cand.Record(); err != nil {
				report(Progress{Message: "could not record the short-name alias: " + err.Error()})
			}
			return l, nil
		}
		if ctx.Err() != nil {
			return Loaded{}, ctx.Err()
		}
		pullErrs = append(pullErrs, err)
	}
	if len(pullErrs) == 1 {
		return Loaded{}, pullErrs[0]
	}
	return Loaded{}, resolved.FormatPullErrors(pullErrs)
}

// pullFrom copies one source into the store, reporting progress. A
// failed or cancelled copy leaves no image behind: containers/storage
// commits the image only after every layer arrived.
func (s *Store) pullFrom(ctx context.Context, sys *types.SystemContext, src types.ImageReference, name reference.Named, report func(Progress)) (Loaded, error) {
	if name != nil {
		name = reference.TagNameOnly(name)
	}
	dest, err := s.newStoreRef(name)
	if err != nil {
		return Loaded{}, err
	}
	pc, err := pullPolicy(sys)
	if err != nil {
		return Loaded{}, err
	}
	defer pc.Destroy()

	progress := make(chan types.ProgressProperties, 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sizes := map[string]uint64{}
		done := map[string]uint64{}
		for p := range progress {
			d := p.Artifact.Digest.String()
			if p.Artifact.Size > 0 {
				sizes[d] = uint64(p.Artifact.Size)
			}
			switch p.Event {
			case types.ProgressEventRead:
				done[d] = p.Offset
			case types.ProgressEventDone, types.ProgressEventSkipped:
				done[d] = sizes[d]
			}
			var total, sum uint64
			for k, v := range sizes {
				total += v
				sum += min(done[k], v)
			}
			msg := ""
			if p.Event == types.ProgressEventNewArtifact {
				msg = "Copying blob " + shortDigest(d)
			}
			report(Progress{BytesDone: sum, BytesTotal: total, Layer: d, Message: msg})
		}
	}()
	m, err := copy.Image(ctx, pc, dest, src, &copy.Options{
		SourceCtx: sys, DestinationCtx: sys,
		Progress: progress, ProgressInterval: 200 * time.Millisecond,
	})
	close(progress)
	wg.Wait()
	if err != nil {
		return Loaded{}, fmt.Errorf("pull %s: %w", transportsName(src), err)
	}
	return loadedFrom(m, name)
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

func transportsName(r types.ImageReference) string {
	return r.Transport().Name() + ":" + r.StringWithinTransport()
}

// pullPolicy reads the user's or the system's policy.json, as podman
// does. Where neither exists (no containers-common installed) it accepts
// any image, which is what that package's default policy says too.
func pullPolicy(sys *types.SystemContext) (*signature.PolicyContext, error) {
	policy, err := signature.DefaultPolicy(sys)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read signature policy: %w", err)
		}
		policy = &signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}}
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		return nil, fmt.Errorf("signature policy: %w", err)
	}
	return pc, nil
}
