package session

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	godbus "github.com/godbus/dbus/v5"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/pelagos-containers/pelagos/container"
	pdbus "github.com/pelagos-containers/pelagos/dbus"
	"github.com/pelagos-containers/pelagos/images"
)

// managerAPI is the io.pelagos.Pelagos1.Manager interface. Its methods
// are called by godbus, one goroutine per call; each validates its
// arguments and maps failures to named errors.
type managerAPI struct{ m *Manager }

// CreateContainer implements the method of the same name.
func (a *managerAPI) CreateContainer(config map[string]godbus.Variant) (godbus.ObjectPath, string, *godbus.Error) {
	defer a.m.track()()
	cfg, err := pdbus.ParseContainerConfig(config)
	if err != nil {
		return "", "", asDBusErr(err)
	}
	t0 := time.Now()
	c, err := a.m.createContainer(a.m.ctx, cfg)
	if err != nil {
		return "", "", asDBusErr(err)
	}
	a.m.log.Debug("created container", "id", c.rec.ID, "name", c.rec.Name, "took", time.Since(t0))
	return c.obj.Path, c.rec.ID, nil
}

// GetContainer implements the method of the same name.
func (a *managerAPI) GetContainer(nameOrID string) (godbus.ObjectPath, *godbus.Error) {
	defer a.m.track()()
	c, err := a.m.lookup(nameOrID)
	if err != nil {
		return "", asDBusErr(err)
	}
	return pdbus.ContainerPath(c.rec.ID), nil
}

type containerRow struct {
	Path     godbus.ObjectPath
	ID       string
	Name     string
	Image    string
	Command  string
	State    string
	Created  int64
	ExitCode int32
	Started  int64
	Finished int64
	Ports    string
	Labels   map[string]string
	Health   string
}

// ListContainers implements the method of the same name.
func (a *managerAPI) ListContainers(all bool) ([]containerRow, *godbus.Error) {
	defer a.m.track()()
	a.m.mu.Lock()
	cs := make([]*ctr, 0, len(a.m.containers))
	for _, c := range a.m.containers {
		cs = append(cs, c)
	}
	a.m.mu.Unlock()
	rows := []containerRow{}
	for _, c := range cs {
		c.mu.Lock()
		r := c.rec
		health := c.healthStatusLocked()
		c.mu.Unlock()
		if r.ID == "" || (!all && r.State != pdbus.StateRunning) {
			continue
		}
		rows = append(rows, containerRow{
			Path: pdbus.ContainerPath(r.ID), ID: r.ID, Name: r.Name, Image: r.Image,
			Command: shellJoin(r.Args), State: r.State, Created: r.CreatedAt.UnixMicro(), ExitCode: int32(r.ExitCode),
			Started: int64(usec(r.StartedAt)), Finished: int64(usec(r.FinishedAt)),
			Ports: portsText(r.Network.Ports), Labels: nonNilMap(r.Labels), Health: health,
		})
	}
	return rows, nil
}

// RemoveContainer implements the method of the same name.
func (a *managerAPI) RemoveContainer(nameOrID string, force bool) *godbus.Error {
	defer a.m.track()()
	c, err := a.m.lookup(nameOrID)
	if err != nil {
		return asDBusErr(err)
	}
	// A user's rm returns with the container's ports free.
	defer c.waitNetworkReleased()
	return asDBusErr(a.m.removeContainer(c, force))
}

type loadedRow struct {
	Path  godbus.ObjectPath
	Names []string
}

// LoadImage implements the method of the same name.
func (a *managerAPI) LoadImage(archive godbus.UnixFD) ([]loadedRow, *godbus.Error) {
	defer a.m.track()()
	f, err := receivedFile(archive, "archive")
	if err != nil {
		return nil, asDBusErr(err)
	}
	defer f.Close()
	path, cleanup, err := a.m.pathOf(f)
	if err != nil {
		return nil, asDBusErr(err)
	}
	defer cleanup()
	return a.load(path)
}

// LoadImageFromFile implements the method of the same name.
func (a *managerAPI) LoadImageFromFile(path string) ([]loadedRow, *godbus.Error) {
	defer a.m.track()()
	if err := checkClientPath(path); err != nil {
		return nil, asDBusErr(err)
	}
	return a.load(path)
}

func (a *managerAPI) load(path string) ([]loadedRow, *godbus.Error) {
	loaded, err := a.m.store.Load(a.m.ctx, path)
	if serr := a.m.syncImages(); serr != nil {
		a.m.log.Warn("refresh image objects", "err", serr)
	}
	if err != nil {
		return nil, asDBusErr(err)
	}
	rows := make([]loadedRow, 0, len(loaded))
	for _, l := range loaded {
		rows = append(rows, loadedRow{Path: pdbus.ImagePath(l.ID), Names: append([]string{}, l.Names...)})
	}
	return rows, nil
}

// ImportImage implements the method of the same name.
func (a *managerAPI) ImportImage(rootfs godbus.UnixFD, name string, options map[string]godbus.Variant) (godbus.ObjectPath, string, *godbus.Error) {
	defer a.m.track()()
	f, err := receivedFile(rootfs, "rootfs")
	if err != nil {
		return "", "", asDBusErr(err)
	}
	defer f.Close()
	path, cleanup, err := a.m.pathOf(f)
	if err != nil {
		return "", "", asDBusErr(err)
	}
	defer cleanup()
	return a.importImage(path, name, options)
}

// ImportImageFromFile implements the method of the same name.
func (a *managerAPI) ImportImageFromFile(path, name string, options map[string]godbus.Variant) (godbus.ObjectPath, string, *godbus.Error) {
	defer a.m.track()()
	if err := checkClientPath(path); err != nil {
		return "", "", asDBusErr(err)
	}
	return a.importImage(path, name, options)
}

func (a *managerAPI) importImage(path, name string, options map[string]godbus.Variant) (godbus.ObjectPath, string, *godbus.Error) {
	o, err := pdbus.ParseImportOptions(options)
	if err != nil {
		return "", "", asDBusErr(err)
	}
	var exposed map[string]struct{}
	for _, p := range o.ExposedPorts {
		port, proto, _ := strings.Cut(p, "/")
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 || (proto != "tcp" && proto != "udp") {
			return "", "", asDBusErr(pdbus.Errorf(pdbus.ErrInvalidArgument, "ExposedPorts %q: use PORT/tcp or PORT/udp", p))
		}
		if exposed == nil {
			exposed = map[string]struct{}{}
		}
		exposed[p] = struct{}{}
	}
	l, err := a.m.store.Import(a.m.ctx, path, name, images.ImportOptions{
		Config: imgspecv1.ImageConfig{
			Cmd: o.Cmd, Entrypoint: o.Entrypoint, Env: o.Env, WorkingDir: o.WorkingDir, User: o.User,
			ExposedPorts: exposed,
		},
		Message: o.Message,
	})
	if serr := a.m.syncImages(); serr != nil {
		a.m.log.Warn("refresh image objects", "err", serr)
	}
	if err != nil {
		return "", "", asDBusErr(err)
	}
	return pdbus.ImagePath(l.ID), l.ID, nil
}

// PullImage implements the method of the same name.
func (a *managerAPI) PullImage(sender godbus.Sender, reference string, options map[string]godbus.Variant) (godbus.ObjectPath, *godbus.Error) {
	defer a.m.track()()
	o, err := pdbus.ParsePullOptions(options)
	if err != nil {
		return "", asDBusErr(err)
	}
	path, err := a.m.startPull(sender, reference, o)
	return path, asDBusErr(err)
}

// PushImage implements the method of the same name.
func (a *managerAPI) PushImage(sender godbus.Sender, image, destination string, options map[string]godbus.Variant) (godbus.ObjectPath, *godbus.Error) {
	defer a.m.track()()
	o, err := pdbus.ParsePushOptions(options)
	if err != nil {
		return "", asDBusErr(err)
	}
	path, err := a.m.startPush(sender, image, destination, o)
	return path, asDBusErr(err)
}

// Login implements the method of the same name.
func (a *managerAPI) Login(registry, username, password string, options map[string]godbus.Variant) (string, *godbus.Error) {
	defer a.m.track()()
	o, err := pdbus.ParseLoginOptions(options)
	if err != nil {
		return "", asDBusErr(err)
	}
	if o.All {
		return "", asDBusErr(pdbus.Errorf(pdbus.ErrInvalidArgument, "option All is for Logout"))
	}
	where, err := a.m.store.Login(a.m.ctx, registry, username, password, images.RegistryOptions{TLSVerify: o.TLSVerify, AuthFile: o.AuthFile})
	if err == nil {
		a.m.log.Info("logged in", "registry", registry, "user", username)
	}
	return where, asDBusErr(err)
}

// Logout implements the method of the same name.
func (a *managerAPI) Logout(registry string, options map[string]godbus.Variant) *godbus.Error {
	defer a.m.track()()
	o, err := pdbus.ParseLoginOptions(options)
	if err != nil {
		return asDBusErr(err)
	}
	if o.All == (registry != "") {
		return asDBusErr(pdbus.Errorf(pdbus.ErrInvalidArgument, "give either a registry or the option All, not both or neither"))
	}
	return asDBusErr(a.m.store.Logout(registry, o.All, images.RegistryOptions{TLSVerify: o.TLSVerify, AuthFile: o.AuthFile}))
}

// SaveImages implements the method of the same name.
func (a *managerAPI) SaveImages(names []string, archive godbus.UnixFD, format string) *godbus.Error {
	defer a.m.track()()
	f, err := receivedFile(archive, "archive")
	if err != nil {
		return asDBusErr(err)
	}
	defer f.Close()
	if len(names) == 0 {
		return asDBusErr(pdbus.Errorf(pdbus.ErrInvalidArgument, "no image to save: name at least one"))
	}
	items := make([]images.SaveItem, 0, len(names))
	for _, n := range names {
		img, matched, err := a.m.store.ResolveName(n)
		if err != nil {
			return asDBusErr(err)
		}
		items = append(items, images.SaveItem{Image: img, Name: matched})
	}
	return asDBusErr(a.m.store.Save(a.m.ctx, items, format, f))
}

// GetImage implements the method of the same name.
func (a *managerAPI) GetImage(nameOrID string) (godbus.ObjectPath, *godbus.Error) {
	defer a.m.track()()
	img, err := a.m.store.Resolve(nameOrID)
	if err != nil {
		return "", asDBusErr(err)
	}
	return pdbus.ImagePath(img.ID), nil
}

type imageRow struct {
	Path    godbus.ObjectPath
	ID      string
	Names   []string
	Digest  string
	Created int64
	Size    int64
}

// ListImages implements the method of the same name.
func (a *managerAPI) ListImages() ([]imageRow, *godbus.Error) {
	defer a.m.track()()
	imgs, err := a.m.store.List()
	if err != nil {
		return nil, asDBusErr(err)
	}
	rows := make([]imageRow, 0, len(imgs))
	for _, img := range imgs {
		rows = append(rows, imageRow{
			Path: pdbus.ImagePath(img.ID), ID: img.ID, Names: append([]string{}, img.Names...),
			Digest: img.Digest, Created: img.Created.UnixMicro(), Size: img.Size,
		})
	}
	return rows, nil
}

// RemoveImage implements the method of the same name.
func (a *managerAPI) RemoveImage(nameOrID string, force bool) ([]string, *godbus.Error) {
	defer a.m.track()()
	removed, err := a.m.removeImage(nameOrID, force)
	return removed, asDBusErr(err)
}

// removeImage removes an image; with force, the containers using it go
// first.
func (m *Manager) removeImage(nameOrID string, force bool) ([]string, error) {
	img, matched, err := m.store.ResolveName(nameOrID)
	if err != nil {
		return nil, err
	}
	// One name of several goes alone, as in Docker and podman: the image
	// stays for its other names.
	if matched != "" && len(img.Names) > 1 {
		_, err := m.store.Untag(img, []string{matched})
		if serr := m.syncImages(); serr != nil {
			m.log.Warn("refresh image objects", "err", serr)
		}
		return []string{}, err
	}
	var users []*ctr
	m.mu.Lock()
	for _, c := range m.containers {
		if c.rec.ImageID == img.ID {
			users = append(users, c)
		}
	}
	m.mu.Unlock()
	var removed []string
	if len(users) > 0 && !force {
		var names []string
		for _, c := range users {
			names = append(names, c.name())
		}
		return nil, pdbus.Errorf(pdbus.ErrImageInUse, "image %s is in use by container(s) %v: remove them first, or use `pelagos rmi -f`", nameOrID, names)
	}
	for _, c := range users {
		id := c.rec.ID
		if err := m.removeContainer(c, true); err != nil {
			return removed, err
		}
		removed = append(removed, id)
	}
	err = m.store.Remove(img.ID, force)
	if serr := m.syncImages(); serr != nil {
		m.log.Warn("refresh image objects", "err", serr)
	}
	if err != nil {
		return removed, err
	}
	return append(removed, img.ID), nil
}

// containerAPI is the io.pelagos.Pelagos1.Container interface of one
// container.
type containerAPI struct{ c *ctr }

// Start implements the method of the same name.
func (a *containerAPI) Start(options map[string]godbus.Variant) *godbus.Error {
	defer a.c.m.track()()
	if err := pdbus.ParseNoOptions(options, "start"); err != nil {
		return asDBusErr(err)
	}
	stdio, release, err := a.c.logStdio()
	if err != nil {
		return asDBusErr(fmt.Errorf("set up the log: %w", err))
	}
	defer release()
	a.c.setStoppedByUser(false)
	_, derr := a.c.m.startOrCleanup(a.c, stdio, nil)
	return derr
}

// StartWithTerminal implements the method of the same name.
func (a *containerAPI) StartWithTerminal(options map[string]godbus.Variant) (godbus.UnixFD, *godbus.Error) {
	defer a.c.m.track()()
	o, err := pdbus.ParseTerminalOptions(options)
	if err != nil {
		return -1, asDBusErr(err)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return -1, asDBusErr(err)
	}
	defer devnull.Close()
	master, derr := a.c.m.startOrCleanup(a.c, container.Stdio{Stdin: devnull}, &terminalSize{Rows: o.Rows, Cols: o.Columns})
	if derr != nil {
		return -1, derr
	}
	// master is a copy made for this reply: godbus sends it after we
	// return, and the container closes it once Wait was called (reap).
	return godbus.UnixFD(master), nil
}

// AttachTerminal implements the method of the same name.
func (a *containerAPI) AttachTerminal(options map[string]godbus.Variant) (godbus.UnixFD, *godbus.Error) {
	defer a.c.m.track()()
	o, err := pdbus.ParseTerminalOptions(options)
	if err != nil {
		return -1, asDBusErr(err)
	}
	c := a.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec.State != pdbus.StateRunning {
		return -1, asDBusErr(pdbus.Errorf(pdbus.ErrContainerNotRunning, "container %s is not running", c.rec.Name))
	}
	fd, err := c.terminalCopyLocked()
	if err != nil {
		return -1, asDBusErr(pdbus.Errorf(pdbus.ErrInvalidArgument, "container %s has no terminal to attach to (it was started without -t): %v", c.rec.Name, err))
	}
	if o.Rows > 0 && o.Columns > 0 {
		unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: o.Rows, Col: o.Columns})
	}
	// godbus sends the descriptor after we return: it is closed when the
	// run ends (reap).
	c.attachFDs = append(c.attachFDs, fd)
	return godbus.UnixFD(fd), nil
}

// StartWithStdio implements the method of the same name.
func (a *containerAPI) StartWithStdio(stdin, stdout, stderr godbus.UnixFD, options map[string]godbus.Variant) (int32, *godbus.Error) {
	defer a.c.m.track()()
	files, err := receiveStdio(stdin, stdout, stderr)
	if err != nil {
		return 0, asDBusErr(err)
	}
	defer closeAll(files)
	if err := pdbus.ParseNoOptions(options, "start"); err != nil {
		return 0, asDBusErr(err)
	}
	// The monitor gets the client's files: it tees the output to them
	// and the log, and exits (ending the wait) once all of it is copied.
	_, derr := a.c.m.startOrCleanup(a.c, container.Stdio{Stdin: files[0], Stdout: files[1], Stderr: files[2]}, nil)
	closeAll(files) // the monitor has its own copies now (a second Close is harmless)
	if derr != nil {
		return 0, derr
	}
	code, err := a.c.wait(context.Background())
	return int32(code), asDBusErr(err)
}

// startOrCleanup starts c; an auto-remove container that cannot start is
// removed at once, since nothing will ever run it.
func (m *Manager) startOrCleanup(c *ctr, stdio container.Stdio, tty *terminalSize) (int, *godbus.Error) {
	master, err := c.start(m.ctx, stdio, tty)
	if err != nil && c.rec.AutoRemove {
		if rerr := m.removeContainer(c, false); rerr != nil {
			m.log.Warn("remove container that failed to start", "id", c.rec.ID, "err", rerr)
		}
	}
	return master, asDBusErr(err)
}

// ExecWithStdio implements the method of the same name.
func (a *containerAPI) ExecWithStdio(command []string, stdin, stdout, stderr godbus.UnixFD, options map[string]godbus.Variant) (int32, *godbus.Error) {
	defer a.c.m.track()()
	files, err := receiveStdio(stdin, stdout, stderr)
	if err != nil {
		return 0, asDBusErr(err)
	}
	defer closeAll(files)
	o, err := pdbus.ParseExecOptions(options)
	if err != nil {
		return 0, asDBusErr(err)
	}
	if err := checkCommand(command); err != nil {
		return 0, asDBusErr(err)
	}
	if o.WorkingDir != "" && !filepath.IsAbs(o.WorkingDir) {
		return 0, asDBusErr(pdbus.Errorf(pdbus.ErrInvalidArgument, "working directory %q is not absolute", o.WorkingDir))
	}
	code, err := a.c.exec(a.c.m.ctx, command, execOptions{Env: o.Env, WorkingDir: o.WorkingDir, User: o.User, Detach: o.Detach},
		container.Stdio{Stdin: files[0], Stdout: files[1], Stderr: files[2]}, nil, nil)
	return int32(code), asDBusErr(err)
}

// ExecWithTerminal implements the method of the same name.
func (a *containerAPI) ExecWithTerminal(command []string, console godbus.UnixFD, options map[string]godbus.Variant) (int32, *godbus.Error) {
	defer a.c.m.track()()
	f, err := receivedFile(console, "console")
	if err != nil {
		return 0, asDBusErr(err)
	}
	defer f.Close()
	if fi, _ := f.Stat(); fi == nil || fi.Mode()&os.ModeSocket == 0 {
		return 0, asDBusErr(pdbus.Errorf(pdbus.ErrInvalidArgument, "console: not a unix socket"))
	}
	o, err := pdbus.ParseExecTerminalOptions(options)
	if err != nil {
		return 0, asDBusErr(err)
	}
	if err := checkCommand(command); err != nil {
		return 0, asDBusErr(err)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, asDBusErr(err)
	}
	defer devnull.Close()
	code, err := a.c.exec(a.c.m.ctx, command, execOptions{Env: o.Env, WorkingDir: o.WorkingDir, User: o.User},
		container.Stdio{Stdin: devnull, Stdout: devnull, Stderr: devnull}, f, &terminalSize{Rows: o.Rows, Cols: o.Columns})
	return int32(code), asDBusErr(err)
}

// checkCommand validates an exec command line.
func checkCommand(command []string) error {
	if len(command) == 0 {
		return pdbus.Errorf(pdbus.ErrInvalidArgument, "no command given: pelagos exec CONTAINER COMMAND [ARG...]")
	}
	for _, arg := range command {
		if strings.ContainsRune(arg, 0) {
			return pdbus.Errorf(pdbus.ErrInvalidArgument, "command argument contains a NUL byte")
		}
	}
	return nil
}

// Wait implements the method of the same name.
func (a *containerAPI) Wait() (int32, *godbus.Error) {
	defer a.c.m.track()()
	code, err := a.c.wait(context.Background())
	return int32(code), asDBusErr(err)
}

// Stop implements the method of the same name.
func (a *containerAPI) Stop(timeout uint32) *godbus.Error {
	defer a.c.m.track()()
	if timeout > 24*3600 {
		return asDBusErr(pdbus.Errorf(pdbus.ErrInvalidArgument, "stop timeout %d s is over a day", timeout))
	}
	a.c.setStoppedByUser(true)
	return asDBusErr(a.c.stop(a.c.m.ctx, time.Duration(timeout)*time.Second))
}

// Kill implements the method of the same name.
func (a *containerAPI) Kill(signal string) *godbus.Error {
	defer a.c.m.track()()
	sig, err := parseSignal(signal)
	if err != nil {
		return asDBusErr(pdbus.Errorf(pdbus.ErrInvalidArgument, "%v", err))
	}
	a.c.setStoppedByUser(true)
	return asDBusErr(a.c.kill(sig))
}

// Rename implements the method of the same name.
func (a *containerAPI) Rename(name string) *godbus.Error {
	defer a.c.m.track()()
	if err := checkName(name); err != nil {
		return asDBusErr(pdbus.Errorf(pdbus.ErrInvalidArgument, "%v", err))
	}
	m := a.c.m
	m.mu.Lock()
	if other := m.nameTakenLocked(name); other != nil && other != a.c {
		m.mu.Unlock()
		return asDBusErr(pdbus.Errorf(pdbus.ErrNameInUse, "the container name %q is already in use", name))
	}
	a.c.mu.Lock()
	a.c.rec.Name = name
	a.c.rec.save(a.c.dir)
	a.c.mu.Unlock()
	m.mu.Unlock()
	setProp(a.c.obj.Props, pdbus.ContainerIface, "Name", name)
	return nil
}

// Remove implements the method of the same name.
func (a *containerAPI) Remove(force bool) *godbus.Error {
	defer a.c.m.track()()
	// A user's rm returns with the container's ports free.
	defer a.c.waitNetworkReleased()
	return asDBusErr(a.c.m.removeContainer(a.c, force))
}

// receiveStdio wraps the three descriptors of a call that passes stdio.
func receiveStdio(fds ...godbus.UnixFD) ([]*os.File, error) {
	names := []string{"stdin", "stdout", "stderr"}
	files := make([]*os.File, 0, len(fds))
	for i, fd := range fds {
		f, err := receivedFile(fd, names[i])
		if err != nil {
			closeAll(files)
			for _, rest := range fds[i+1:] {
				unix.Close(int(rest)) // the caller's copies must not leak
			}
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// receivedFile wraps an fd that arrived with a call. It must be an open
// regular file, pipe, socket or terminal — never a directory, which would
// let a path-based API be bypassed.
func receivedFile(fd godbus.UnixFD, what string) (*os.File, error) {
	if fd < 0 {
		return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "%s: not a file descriptor", what)
	}
	unix.CloseOnExec(int(fd))
	f := os.NewFile(uintptr(fd), what)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "%s: %v", what, err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, pdbus.Errorf(pdbus.ErrInvalidArgument, "%s: is a directory", what)
	}
	return f, nil
}

// checkClientPath accepts only absolute paths from callers: the service's
// working directory means nothing to them.
func checkClientPath(p string) error {
	if p == "" || !filepath.IsAbs(p) {
		return pdbus.Errorf(pdbus.ErrInvalidArgument, "path %q is not absolute: pass the full path of the file", p)
	}
	return nil
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
