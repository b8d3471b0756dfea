package session

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/pelagos-containers/pelagos/container"
	"github.com/pelagos-containers/pelagos/images"
	"github.com/pelagos-containers/pelagos/network"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// createContainer validates cfg against the image, makes the writable
// layer and the state directory, and exports the new container. On any
// failure nothing of it remains.
func (m *Manager) createContainer(ctx context.Context, cfg pdbus.ContainerConfig) (c *ctr, err error) {
	if cfg.Image == "" {
		return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "no image given: name one, e.g. `pelagos run IMAGE [COMMAND]`")
	}
	if cfg.Name != "" {
		if err := checkName(cfg.Name); err != nil {
			return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "%v", err)
		}
	}
	if cfg.Hostname != "" {
		if err := checkHostname(cfg.Hostname); err != nil {
			return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "%v", err)
		}
	}
	if cfg.WorkingDir != "" && !filepath.IsAbs(cfg.WorkingDir) {
		return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "working directory %q is not absolute: give a path starting with /", cfg.WorkingDir)
	}
	for _, e := range cfg.Env {
		if k, _, _ := strings.Cut(e, "="); k == "" || strings.ContainsRune(e, 0) {
			return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "invalid environment entry %q: use KEY=VALUE", e)
		}
	}
	sec, customSeccomp, err := decideSecurity(cfg)
	if err != nil {
		return nil, err
	}
	mounts, err := m.buildMounts(cfg)
	if err != nil {
		return nil, err
	}
	popts, err := parseProcessOptions(cfg)
	if err != nil {
		return nil, err
	}
	res, err := parseResources(cfg)
	if err != nil {
		return nil, err
	}
	logDriver, err := parseLogDriver(cfg.LogDriver)
	if err != nil {
		return nil, err
	}
	restart, err := parseRestart(cfg.Restart)
	if err != nil {
		return nil, err
	}
	// The image is read once, after the options that need no image are
	// checked, or here already when -P needs its EXPOSE list.
	var (
		img         images.Image
		icfg        *imgspecv1.Image
		imageHealth *images.Healthcheck
	)
	readImage := func() error {
		if icfg != nil {
			return nil
		}
		img, icfg, imageHealth, err = m.runImage(ctx, cfg.Image)
		return err
	}
	if cfg.PublishAll {
		// -P: every port the image EXPOSEs, each on a free host port.
		if err := readImage(); err != nil {
			return nil, err
		}
		cfg.Publish = append(append([]string(nil), cfg.Publish...), exposedPorts(icfg.Config)...)
	}
	netcfg, err := m.parseNetwork(cfg)
	if err != nil {
		return nil, err
	}
	userLabels, err := parseLabels(cfg.Labels)
	if err != nil {
		return nil, err
	}
	if restart.Name != "no" && cfg.AutoRemove {
		return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "--restart %s and --rm conflict: a removed container cannot be restarted", cfg.Restart)
	}
	if cfg.Cgroups == "disabled" {
		res = container.Resources{} // asked for explicitly: no limits
	} else if err := m.cgroups.check(res); err != nil {
		return nil, err
	}
	if err := readImage(); err != nil {
		return nil, err
	}
	args := commandLine(icfg.Config, cfg)
	if len(args) == 0 {
		return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "no command specified: image %s has no Entrypoint or Cmd; give one after the image name", cfg.Image)
	}
	for _, a := range args {
		if strings.ContainsRune(a, 0) {
			return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "command argument contains a NUL byte")
		}
	}
	workdir := cfg.WorkingDir
	if workdir == "" {
		workdir = icfg.Config.WorkingDir
	}
	if workdir == "" {
		workdir = "/"
	}
	stopSignal := cfg.StopSignal
	if stopSignal == "" {
		stopSignal = icfg.Config.StopSignal
	}
	if stopSignal != "" {
		if _, err := parseSignal(stopSignal); err != nil {
			return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "stop signal %q: %v", stopSignal, err)
		}
	}
	health, err := parseHealth(cfg, imageHealth)
	if err != nil {
		return nil, err
	}
	userSpec := cfg.User
	if userSpec == "" {
		userSpec = icfg.Config.User
	}

	// The name is reserved under the lock, together with the record that
	// holds it, so two concurrent creates cannot both take it.
	m.mu.Lock()
	name := cfg.Name
	if name == "" {
		name = nextDefaultName(func(n string) bool { return m.nameTakenLocked(n) != nil })
	} else if other := m.nameTakenLocked(name); other != nil {
		m.mu.Unlock()
		other.mu.Lock()
		id, state := other.rec.ID, other.rec.State
		other.mu.Unlock()
		return nil, pdbus.Errorf(pdbus.ErrNameInUse, "the container name %q is already in use by %s (%s): remove it with `pelagos rm %s` or choose another name", name, id[:12], state, name)
	}
	// An automatic id range is chosen under the same lock, so that two
	// creates cannot take the same one.
	userns, err := m.parseUserNS(cfg, m.autoRangesLocked)
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	placeholder := &ctr{m: m, rec: record{Name: name, UserNS: userns}}
	reserveID := "reserving-" + name
	m.containers[reserveID] = placeholder
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.containers, reserveID)
		if err == nil {
			m.containers[c.rec.ID] = c
		}
		m.mu.Unlock()
		if err == nil {
			m.emit("ContainerAdded", c.obj.Path, c.rec.ID)
		}
	}()

	if userns.Private() && netcfg.Mode.Kind == network.Container {
		return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "--userns/--uidmap and --network container:%s conflict: a container with a user namespace of its own cannot join another container's network", netcfg.Mode.Target)
	}
	if k := userns.KeepID; k != nil {
		if cfg.User == "" {
			userSpec = fmt.Sprintf("%d:%d", k.UID, k.GID)
		}
	}
	id, err := m.store.CreateLayer(img.ID, userns.UIDMap, userns.GIDMap, cfg.AutoRemove)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(m.paths.Containers(), id)
	cleanup := func() {
		os.RemoveAll(dir)
		m.store.DeleteLayer(id)
	}
	// A -u name the image lacks is refused now, not when it starts. (The
	// image's own USER is left to the start: checking it would mount the
	// root filesystem on every run of such an image.)
	if userns.KeepID == nil && container.NamedUser(cfg.User) {
		if err := m.checkUser(id, cfg.User); err != nil {
			cleanup()
			return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "-u/--user %s: %v: use a name from the image's /etc/passwd, or UID[:GID]", cfg.User, err)
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		cleanup()
		return nil, fmt.Errorf("create container directory: %w", err)
	}
	hostname := cfg.Hostname
	if hostname == "" {
		hostname = name
	}
	c = &ctr{m: m, dir: dir, rec: record{
		ID: id, Name: name, Image: cfg.Image, ImageID: img.ID, Args: args,
		Env: mergeEnv(icfg.Config.Env, cfg.Env), WorkingDir: workdir, User: userSpec,
		Hostname: hostname, AutoRemove: cfg.AutoRemove, CreatedAt: time.Now(),
		State: pdbus.StateCreated, Security: sec, Mounts: mounts, Process: popts, Resources: res, Restart: restart,
		ImageOS: icfg.OS, ImageArch: icfg.Architecture, LogDriver: logDriver,
		Network: netcfg, UserNS: userns, Labels: mergeLabels(icfg.Config.Labels, userLabels), StopSignal: stopSignal, Health: health,
	}}
	if customSeccomp != nil {
		if err := os.WriteFile(filepath.Join(dir, customSeccompFile), customSeccomp, 0o600); err != nil {
			cleanup()
			return nil, fmt.Errorf("save seccomp profile: %w", err)
		}
	}
	if err := c.rec.save(dir); err != nil {
		cleanup()
		return nil, err
	}
	if err := c.export(); err != nil {
		cleanup()
		return nil, err
	}
	return c, nil
}

// runImage finds the image a container is made from and reads what a
// run needs of it: its configuration and HEALTHCHECK.
func (m *Manager) runImage(ctx context.Context, name string) (images.Image, *imgspecv1.Image, *images.Healthcheck, error) {
	img, err := m.store.Resolve(name)
	if err != nil {
		return img, nil, nil, pdbus.Errorf(pdbus.ErrNoSuchImage, "%s: image not known locally: load it with `pelagos load -i ARCHIVE` or `pelagos import ROOTFS.tar NAME`, and see `pelagos images`", name)
	}
	icfg, health, err := m.store.RunConfig(ctx, img.ID)
	return img, icfg, health, err
}

// exposedPorts lists the image's EXPOSE entries as -p specs (CTRPORT/PROTO).
func exposedPorts(cfg imgspecv1.ImageConfig) []string {
	var out []string
	for p := range cfg.ExposedPorts {
		port, proto, _ := strings.Cut(p, "/")
		if proto == "" {
			proto = "tcp"
		}
		out = append(out, port+"/"+proto)
	}
	sort.Strings(out)
	return out
}

// checkUser resolves a user name in the container's root filesystem.
func (m *Manager) checkUser(id, spec string) error {
	rootfs, err := m.store.MountLayer(id)
	if err != nil {
		return err
	}
	defer m.store.UnmountLayer(id)
	return container.CheckUser(rootfs, spec)
}

// commandLine combines the image's Entrypoint and Cmd with the user's, as
// Docker does: a user command replaces Cmd; a user entrypoint replaces the
// Entrypoint and drops the image's Cmd; [""] means no entrypoint.
func commandLine(img imgspecv1.ImageConfig, cfg pdbus.ContainerConfig) []string {
	entry, cmd := img.Entrypoint, img.Cmd
	if cfg.Entrypoint != nil {
		entry, cmd = cfg.Entrypoint, nil
		if len(entry) == 1 && entry[0] == "" {
			entry = nil
		}
	}
	if len(cfg.Command) > 0 {
		cmd = cfg.Command
	}
	return append(append([]string(nil), entry...), cmd...)
}

// mergeEnv overlays user KEY=VALUE entries on the image's, keeping the
// image's order and appending new keys.
func mergeEnv(base, over []string) []string {
	out := append([]string(nil), base...)
	index := map[string]int{}
	for i, e := range out {
		k, _, _ := strings.Cut(e, "=")
		index[k] = i
	}
	for _, e := range over {
		k, _, _ := strings.Cut(e, "=")
		if i, ok := index[k]; ok {
			out[i] = e
		} else {
			index[k] = len(out)
			out = append(out, e)
		}
	}
	return out
}

// removeContainer removes a container's object, files and layer. A
// running container is refused unless force, which kills it first.
func (m *Manager) removeContainer(c *ctr, force bool) error {
	c.mu.Lock()
	if c.removed {
		c.mu.Unlock()
		return nil
	}
	if c.rec.State == pdbus.StateRunning {
		if !force {
			name := c.rec.Name
			c.mu.Unlock()
			return pdbus.Errorf(pdbus.ErrContainerRunning, "container %s is running: stop it first, or remove it with `pelagos rm -f %s`", name, name)
		}
		done := c.done
		c.mu.Unlock()
		if err := c.kill(9); err != nil && pdbus.CodeOf(err) != pdbus.ErrContainerNotRunning {
			return fmt.Errorf("kill %s: %w", c.rec.Name, err)
		}
		if done != nil {
			<-done
		}
		c.mu.Lock()
		if c.removed {
			c.mu.Unlock()
			return nil
		}
	}
	c.removed = true
	id := c.rec.ID
	c.stopNetwork()
	c.mu.Unlock()

	m.mu.Lock()
	delete(m.containers, id)
	m.mu.Unlock()
	m.server.Unexport(pdbus.ContainerPath(id))
	m.emit("ContainerRemoved", pdbus.ContainerPath(id), id)
	var errs []error
	if err := m.store.DeleteLayer(id); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", c.dir, err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove container %s: %v", id, errs)
	}
	return nil
}

// parseLabels reads KEY=VALUE labels (a bare KEY has an empty value).
func parseLabels(in []string) (map[string]string, error) {
	out := map[string]string{}
	for _, l := range in {
		k, v, _ := strings.Cut(l, "=")
		if k == "" || len(k) > 1024 || len(v) > 64<<10 || strings.ContainsAny(k, "\x00\n") || strings.ContainsRune(v, 0) {
			return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "invalid label %q: use KEY=VALUE", truncateLabel(l))
		}
		out[k] = v
	}
	return out, nil
}

func truncateLabel(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// mergeLabels overlays the user's labels on the image's.
func mergeLabels(image, user map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range image {
		out[k] = v
	}
	for k, v := range user {
		out[k] = v
	}
	return out
}
