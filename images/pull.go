package images

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/signature"
	is "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"
)

// ErrInvalidReference is returned for a reference that cannot be parsed.
var ErrInvalidReference = errors.New("invalid image reference")

// PullOptions tune a pull.
type PullOptions struct {
	RegistryOptions
	// Platform, OS/ARCH[/VARIANT], picks an image from a multi-platform
	// index instead of the host's platform.
	Platform string
}

// platformPart is one word of OS/ARCH/VARIANT.
var platformPart = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)

// applyPlatform sets the platform choice of sys from OS/ARCH[/VARIANT].
func applyPlatform(sys *types.SystemContext, platform string) error {
	if platform == "" {
		return nil
	}
	parts := strings.Split(platform, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return fmt.Errorf("%w: --platform %q: use OS/ARCH[/VARIANT], e.g. linux/arm64 or linux/arm/v7", ErrInvalidArgument, platform)
	}
	for _, p := range parts {
		if !platformPart.MatchString(p) {
			return fmt.Errorf("%w: --platform %q: use OS/ARCH[/VARIANT], e.g. linux/arm64 or linux/arm/v7", ErrInvalidArgument, platform)
		}
	}
	sys.OSChoice, sys.ArchitectureChoice = parts[0], parts[1]
	if len(parts) == 3 {
		sys.VariantChoice = parts[2]
	}
	return nil
}

// Progress is a snapshot of a pull's or push's transfer.
type Progress struct {
	BytesDone, BytesTotal uint64
	Layer                 string // digest of the blob being transferred
	Message               string // "Trying to pull …", "Copying blob …"
	// Layers is every blob seen so far, in the order they started.
	Layers []LayerProgress
}

// LayerProgress is the transfer of one blob.
type LayerProgress struct {
	Digest     string
	Done, Size uint64
}

// copyWithProgress runs copy.Image, turning the library's per-blob
// events into Progress snapshots for report.
func copyWithProgress(ctx context.Context, pc *signature.PolicyContext, dest, src types.ImageReference, opts *copy.Options, report func(Progress)) ([]byte, error) {
	progress := make(chan types.ProgressProperties, 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var order []string
		sizes := map[string]uint64{}
		done := map[string]uint64{}
		for p := range progress {
			d := p.Artifact.Digest.String()
			if _, ok := sizes[d]; !ok {
				order = append(order, d)
			}
			if p.Artifact.Size > 0 {
				sizes[d] = uint64(p.Artifact.Size)
			} else if _, ok := sizes[d]; !ok {
				sizes[d] = 0
			}
			switch p.Event {
			case types.ProgressEventRead:
				done[d] = p.Offset
			case types.ProgressEventDone, types.ProgressEventSkipped:
				done[d] = max(sizes[d], done[d])
			}
			var total, sum uint64
			layers := make([]LayerProgress, 0, len(order))
			for _, k := range order {
				total += sizes[k]
				sum += min(done[k], sizes[k])
				layers = append(layers, LayerProgress{Digest: k, Done: done[k], Size: sizes[k]})
			}
			msg := ""
			switch p.Event {
			case types.ProgressEventNewArtifact:
				msg = "Copying blob " + shortDigest(d)
			case types.ProgressEventSkipped:
				msg = "Copying blob " + shortDigest(d) + " skipped: already exists"
			}
			report(Progress{BytesDone: sum, BytesTotal: total, Layer: d, Message: msg, Layers: layers})
		}
	}()
	opts.Progress, opts.ProgressInterval = progress, 200*time.Millisecond
	m, err := copy.Image(ctx, pc, dest, src, opts)
	close(progress)
	wg.Wait()
	return m, err
}

// transports a reference may name explicitly.
var explicitTransports = []string{"docker://", "oci:", "oci-archive:", "docker-archive:", "dir:"}

// Pull brings an image into the store. ref is a name resolved through
// registries.conf (short names, aliases, unqualified-search registries)
// or an explicit transport reference (docker://, oci:, oci-archive:,
// docker-archive:, dir:). report receives progress; it must not block.
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions, report func(Progress)) (Loaded, error) {
	sysp, err := s.systemContext(opts.RegistryOptions)
	if err != nil {
		return Loaded{}, err
	}
	sys := *sysp
	if err := applyPlatform(&sys, opts.Platform); err != nil {
		return Loaded{}, err
	}
	for _, t := range explicitTransports {
		if strings.HasPrefix(ref, t) {
			src, err := alltransports.ParseImageName(ref)
			if err != nil {
				return Loaded{}, fmt.Errorf("%w: %s: %v", ErrInvalidReference, ref, err)
			}
			report(Progress{Message: "Trying to pull " + ref + "..."})
			return s.pullFrom(ctx, &sys, src, sourceName(src), report)
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
	var dest types.ImageReference
	var err error
	if name != nil {
		name = reference.TagNameOnly(name)
		dest, err = s.newStoreRef(name)
	} else {
		// An unnamed image is stored under its id, which is known only
		// from the source's config.
		dest, err = s.unnamedStoreRef(ctx, sys, src)
	}
	if err != nil {
		return Loaded{}, err
	}
	pc, err := pullPolicy(sys)
	if err != nil {
		return Loaded{}, err
	}
	defer pc.Destroy()

	done := s.beginCopy()
	m, err := copyWithProgress(ctx, pc, dest, src, &copy.Options{SourceCtx: sys, DestinationCtx: sys}, report)
	done(err != nil)
	if err != nil {
		host := ""
		if name != nil {
			host = reference.Domain(name)
		}
		return Loaded{}, fmt.Errorf("pull %s: %w", transportsName(src), s.explainDiskFull(explainRegistryErr(host, err)))
	}
	return loadedFrom(m, name)
}

// sourceName is the name an image pulled from an explicit transport
// gets: the docker reference it carries, or for an OCI layout or
// archive the full name in its reference part (oci:/dir:example.org/a:1).
func sourceName(src types.ImageReference) reference.Named {
	if n := src.DockerReference(); n != nil {
		return n
	}
	switch src.Transport().Name() {
	case "oci", "oci-archive":
		if _, image, ok := strings.Cut(src.StringWithinTransport(), ":"); ok {
			return ociName(image)
		}
	}
	return nil
}

// unnamedStoreRef is a store reference for the image src holds, by id.
func (s *Store) unnamedStoreRef(ctx context.Context, sys *types.SystemContext, src types.ImageReference) (types.ImageReference, error) {
	img, err := src.NewImage(ctx, sys)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", transportsName(src), err)
	}
	defer img.Close()
	id := img.ConfigInfo().Digest.Encoded()
	ref, err := is.Transport.NewStoreReference(s.store, nil, id)
	if err != nil {
		return nil, fmt.Errorf("reference image %s: %w", id, err)
	}
	return ref, nil
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
