package dbus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	godbus "github.com/godbus/dbus/v5"
)

// Client is a typed client of the pelagos session API.
type Client struct {
	conn *godbus.Conn
	mgr  godbus.BusObject
}

// ErrNoSessionBus is returned by Connect when no session bus can be
// reached.
var ErrNoSessionBus = errors.New("no D-Bus session bus")

// Connect opens a private connection to the session bus. The service is
// started by D-Bus activation on the first call.
func Connect(ctx context.Context) (*Client, error) {
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		if rt := os.Getenv("XDG_RUNTIME_DIR"); rt == "" || !exists(rt+"/bus") {
			return nil, fmt.Errorf("%w: DBUS_SESSION_BUS_ADDRESS is not set and $XDG_RUNTIME_DIR/bus does not exist; "+
				"log in through a desktop or `systemd --user` session, or start one with `dbus-run-session -- $SHELL`", ErrNoSessionBus)
		}
	}
	conn, err := godbus.SessionBusPrivate(godbus.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoSessionBus, err)
	}
	if err := conn.Auth(nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: authenticate: %v", ErrNoSessionBus, err)
	}
	if err := conn.Hello(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: hello: %v", ErrNoSessionBus, err)
	}
	return NewClient(conn), nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// NewClient wraps an open connection.
func NewClient(conn *godbus.Conn) *Client {
	return &Client{conn: conn, mgr: conn.Object(BusName, ManagerPath)}
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Conn is the underlying connection.
func (c *Client) Conn() *godbus.Conn { return c.conn }

func (c *Client) call(ctx context.Context, obj godbus.BusObject, iface, method string, args []any, out ...any) error {
	call := obj.CallWithContext(ctx, iface+"."+method, 0, args...)
	if call.Err != nil {
		return FromDBus(goneCause(ctx, call.Err))
	}
	if len(out) > 0 {
		if err := call.Store(out...); err != nil {
			return fmt.Errorf("decode reply of %s: %w", method, err)
		}
	}
	return nil
}

func (c *Client) container(path godbus.ObjectPath) godbus.BusObject {
	return c.conn.Object(BusName, path)
}

// CreateContainer creates a container and returns its object path and id.
func (c *Client) CreateContainer(ctx context.Context, cfg ContainerConfig) (godbus.ObjectPath, string, error) {
	var path godbus.ObjectPath
	var id string
	err := c.call(ctx, c.mgr, ManagerInterface, "CreateContainer", []any{cfg.Options()}, &path, &id)
	return path, id, err
}

// GetContainer finds a container by name, id or id prefix.
func (c *Client) GetContainer(ctx context.Context, nameOrID string) (godbus.ObjectPath, error) {
	var path godbus.ObjectPath
	err := c.call(ctx, c.mgr, ManagerInterface, "GetContainer", []any{nameOrID}, &path)
	return path, err
}

// StartWithStdio runs the container on the given files and returns its
// exit code when it exits.
func (c *Client) StartWithStdio(ctx context.Context, path godbus.ObjectPath, stdin, stdout, stderr *os.File) (int32, error) {
	var code int32
	args := []any{
		godbus.UnixFD(stdin.Fd()), godbus.UnixFD(stdout.Fd()), godbus.UnixFD(stderr.Fd()),
		map[string]godbus.Variant{},
	}
	err := c.call(ctx, c.container(path), ContainerIface, "StartWithStdio", args, &code)
	return code, err
}

// StartWithTerminal runs the container on a new pseudo-terminal and
// returns its master; the exit code comes from Wait.
func (c *Client) StartWithTerminal(ctx context.Context, path godbus.ObjectPath, opts TerminalOptions) (*os.File, error) {
	var fd godbus.UnixFD
	if err := c.call(ctx, c.container(path), ContainerIface, "StartWithTerminal", []any{opts.Options()}, &fd); err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "pty-master"), nil
}

// Start runs the container with its output going to its log file.
func (c *Client) Start(ctx context.Context, path godbus.ObjectPath) error {
	return c.call(ctx, c.container(path), ContainerIface, "Start", []any{map[string]godbus.Variant{}})
}

// Wait waits until the container is not running and returns its exit code.
func (c *Client) Wait(ctx context.Context, path godbus.ObjectPath) (int32, error) {
	var code int32
	err := c.call(ctx, c.container(path), ContainerIface, "Wait", nil, &code)
	return code, err
}

// Stop stops the container: SIGTERM, then SIGKILL after timeoutSec.
func (c *Client) Stop(ctx context.Context, path godbus.ObjectPath, timeoutSec uint32) error {
	return c.call(ctx, c.container(path), ContainerIface, "Stop", []any{timeoutSec})
}

// Kill sends a signal to the container.
func (c *Client) Kill(ctx context.Context, path godbus.ObjectPath, signal string) error {
	return c.call(ctx, c.container(path), ContainerIface, "Kill", []any{signal})
}

// ContainerSummary is one row of ListContainers.
type ContainerSummary struct {
	Path     godbus.ObjectPath
	ID       string
	Name     string
	Image    string
	Command  string
	State    string
	Created  int64 // µs since the epoch
	ExitCode int32
	Started  int64  // µs since the epoch, 0 when never started
	Finished int64  // µs since the epoch, 0 when not finished
	Ports    string // published ports, "127.0.0.1:8080->80/tcp, ..."
	Labels   map[string]string
	Health   string // "", starting, healthy, unhealthy
}

// ListContainers lists running containers, or all with all.
func (c *Client) ListContainers(ctx context.Context, all bool) ([]ContainerSummary, error) {
	var rows []ContainerSummary
	err := c.call(ctx, c.mgr, ManagerInterface, "ListContainers", []any{all}, &rows)
	return rows, err
}

// RemoveContainer removes a container, killing it first with force.
func (c *Client) RemoveContainer(ctx context.Context, nameOrID string, force bool) error {
	return c.call(ctx, c.mgr, ManagerInterface, "RemoveContainer", []any{nameOrID, force})
}

// LoadedImage is one image a load brought in.
type LoadedImage struct {
	Path  godbus.ObjectPath
	Names []string
}

// LoadImage loads the images of an open archive file.
func (c *Client) LoadImage(ctx context.Context, archive *os.File) ([]LoadedImage, error) {
	var out []LoadedImage
	err := c.call(ctx, c.mgr, ManagerInterface, "LoadImage", []any{godbus.UnixFD(archive.Fd())}, &out)
	return out, err
}

// ImportImage makes an image from an open rootfs tar.
func (c *Client) ImportImage(ctx context.Context, rootfs *os.File, name string, opts ImportOptions) (godbus.ObjectPath, string, error) {
	var path godbus.ObjectPath
	var id string
	err := c.call(ctx, c.mgr, ManagerInterface, "ImportImage", []any{godbus.UnixFD(rootfs.Fd()), name, opts.Options()}, &path, &id)
	return path, id, err
}

// ImageSummary is one row of ListImages.
type ImageSummary struct {
	Path    godbus.ObjectPath
	ID      string
	Names   []string
	Digest  string
	Created int64 // µs since the epoch
	Size    int64
}

// ListImages lists the stored images.
func (c *Client) ListImages(ctx context.Context) ([]ImageSummary, error) {
	var rows []ImageSummary
	err := c.call(ctx, c.mgr, ManagerInterface, "ListImages", nil, &rows)
	return rows, err
}

// RemoveImage removes an image and returns the ids removed.
func (c *Client) RemoveImage(ctx context.Context, nameOrID string, force bool) ([]string, error) {
	var removed []string
	err := c.call(ctx, c.mgr, ManagerInterface, "RemoveImage", []any{nameOrID, force}, &removed)
	return removed, err
}

// Property reads one property of an object.
func (c *Client) Property(ctx context.Context, path godbus.ObjectPath, iface, name string) (godbus.Variant, error) {
	var v godbus.Variant
	err := c.call(ctx, c.conn.Object(BusName, path), PropertiesIface, "Get", []any{iface, name}, &v)
	return v, err
}

// Properties returns every property of iface on the object at path.
func (c *Client) Properties(ctx context.Context, path godbus.ObjectPath, iface string) (map[string]godbus.Variant, error) {
	var props map[string]godbus.Variant
	err := c.call(ctx, c.conn.Object(BusName, path), PropertiesIface, "GetAll", []any{iface}, &props)
	return props, err
}

// ManagerProperties returns the Manager's properties.
func (c *Client) ManagerProperties(ctx context.Context) (map[string]godbus.Variant, error) {
	return c.Properties(ctx, ManagerPath, ManagerInterface)
}

// IsServiceUnknown reports whether err says the service could not be
// found or activated.
func IsServiceUnknown(err error) bool {
	var de godbus.Error
	if errors.As(err, &de) {
		return strings.HasPrefix(de.Name, "org.freedesktop.DBus.Error.ServiceUnknown") ||
			strings.HasPrefix(de.Name, "org.freedesktop.DBus.Error.Spawn")
	}
	return false
}

// JobProgress is what a pull or push job reports while it runs.
type JobProgress struct {
	Progress              float64
	BytesDone, BytesTotal uint64
	Layer, Message        string
	Layers                []LayerProgress
}

// LayerProgress is the transfer of one blob of a job.
type LayerProgress struct {
	Digest     string
	Done, Size uint64
}

// Pull starts a pull and follows it to its end, calling progress on
// every change. Cancelling ctx cancels the job; Pull then waits for the
// service to confirm (nothing half-pulled remains) and returns the
// Cancelled error. When the service goes away meanwhile, Pull returns at
// once with an error matching ErrServiceGone.
func (c *Client) Pull(ctx context.Context, ref string, opts PullOptions, progress func(JobProgress)) (godbus.ObjectPath, error) {
	return c.followJob(ctx, "PullImage", []any{ref, opts.Options()}, progress)
}

// Push starts a push of a stored image and follows it to its end, as
// Pull does. It returns the image's object.
func (c *Client) Push(ctx context.Context, image, dest string, opts PushOptions, progress func(JobProgress)) (godbus.ObjectPath, error) {
	return c.followJob(ctx, "PushImage", []any{image, dest, opts.Options()}, progress)
}

// Login checks and stores credentials for a registry; it returns where
// they were stored.
func (c *Client) Login(ctx context.Context, registry, user, password string, opts LoginOptions) (string, error) {
	var where string
	err := c.call(ctx, c.mgr, ManagerInterface, "Login", []any{registry, user, password, opts.Options()}, &where)
	return where, err
}

// Logout forgets the credentials of a registry (or all, with opts.All).
func (c *Client) Logout(ctx context.Context, registry string, opts LoginOptions) error {
	return c.call(ctx, c.mgr, ManagerInterface, "Logout", []any{registry, opts.Options()})
}

// SaveImages writes several images as one archive to w.
func (c *Client) SaveImages(ctx context.Context, names []string, w *os.File, format string) error {
	return c.call(ctx, c.mgr, ManagerInterface, "SaveImages", []any{names, godbus.UnixFD(w.Fd()), format})
}

// HistoryEntry is one row of Image.History.
type HistoryEntry struct {
	ID        string
	Created   int64 // microseconds since the epoch, 0 when unknown
	CreatedBy string
	Size      int64
	Comment   string
}

// ImageHistory returns the build steps of an image, newest first.
func (c *Client) ImageHistory(ctx context.Context, path godbus.ObjectPath) ([]HistoryEntry, error) {
	var rows []HistoryEntry
	err := c.call(ctx, c.conn.Object(BusName, path), ImageIface, "History", nil, &rows)
	return rows, err
}

// followJob calls a method that starts a job and follows the job to its
// end, under a watch of the service: a service that goes away cannot
// finish the job, so followJob returns its ErrServiceGone error at once.
func (c *Client) followJob(ctx context.Context, method string, args []any, progress func(JobProgress)) (godbus.ObjectPath, error) {
	finished := []godbus.MatchOption{
		godbus.WithMatchSender(BusName), godbus.WithMatchObjectPath(ManagerPath),
		godbus.WithMatchInterface(ManagerInterface), godbus.WithMatchMember("JobFinished"),
	}
	changed := []godbus.MatchOption{
		godbus.WithMatchSender(BusName), godbus.WithMatchPathNamespace(ManagerPath + "/job"),
		godbus.WithMatchInterface(PropertiesIface), godbus.WithMatchMember("PropertiesChanged"),
	}
	// Subscribe before the call, or a fast job could end unseen.
	for _, m := range [][]godbus.MatchOption{finished, changed} {
		if err := c.conn.AddMatchSignalContext(ctx, m...); err != nil {
			return "", fmt.Errorf("subscribe to job signals: %w", err)
		}
		defer c.conn.RemoveMatchSignal(m...)
	}
	ch := make(chan *godbus.Signal, 64)
	c.conn.Signal(ch)
	defer c.conn.RemoveSignal(ch)

	// The call and the job's Cancel must not be cancelled with ctx (a
	// job that was created needs its Cancel), only by the watch.
	served, stop, err := c.Watch(context.WithoutCancel(ctx))
	if err != nil {
		return "", err
	}
	defer stop()
	var job godbus.ObjectPath
	if err := c.call(served, c.mgr, ManagerInterface, method, args, &job); err != nil {
		return "", err
	}
	var p JobProgress
	cancelled := false
	for {
		select {
		case <-served.Done():
			return "", context.Cause(served)
		case <-ctx.Done():
			if !cancelled {
				cancelled = true
				var leftOnly bool
				err := c.call(served, c.conn.Object(BusName, job), JobIface, "Cancel", nil, &leftOnly)
				if errors.Is(err, ErrServiceGone) {
					return "", err
				}
				if err == nil && leftOnly {
					// The job goes on for others; this caller is done.
					return "", Errorf(ErrCancelled, "cancelled: left the job %s, which goes on for other callers", job)
				}
			}
			ctx = context.Background() // keep waiting for the confirmation
		case sig, ok := <-ch:
			if !ok {
				return "", &ServiceGoneError{Reason: "the connection to the session bus closed", BusClosed: true}
			}
			switch {
			case sig.Name == PropertiesIface+".PropertiesChanged" && sig.Path == job && len(sig.Body) >= 2:
				vals, _ := sig.Body[1].(map[string]godbus.Variant)
				p.update(vals)
				if progress != nil {
					progress(p)
				}
			case sig.Name == ManagerInterface+".JobFinished" && len(sig.Body) == 5 && sig.Body[0] == job:
				result, _ := sig.Body[1].(string)
				image, _ := sig.Body[2].(godbus.ObjectPath)
				errName, _ := sig.Body[3].(string)
				errMsg, _ := sig.Body[4].(string)
				if result == JobDone {
					return image, nil
				}
				return "", FromDBus(godbus.Error{Name: errName, Body: []any{errMsg}})
			}
		}
	}
}

// update applies a job's changed properties.
func (p *JobProgress) update(vals map[string]godbus.Variant) {
	for k, v := range vals {
		switch k {
		case "Progress":
			p.Progress, _ = v.Value().(float64)
		case "BytesDone":
			p.BytesDone, _ = v.Value().(uint64)
		case "BytesTotal":
			p.BytesTotal, _ = v.Value().(uint64)
		case "Layer":
			p.Layer, _ = v.Value().(string)
		case "Layers":
			var rows []LayerProgress
			if err := v.Store(&rows); err == nil {
				p.Layers = rows
			}
		case "Message":
			p.Message, _ = v.Value().(string)
		}
	}
}

// VolumeSummary is one row of ListVolumes.
type VolumeSummary struct {
	Name       string
	Path       string
	Containers []string
}

// CreateVolume creates a named volume and returns its host path.
func (c *Client) CreateVolume(ctx context.Context, name string) (string, error) {
	var p string
	err := c.call(ctx, c.mgr, ManagerInterface, "CreateVolume", []any{name}, &p)
	return p, err
}

// ListVolumes lists the named volumes.
func (c *Client) ListVolumes(ctx context.Context) ([]VolumeSummary, error) {
	var rows []VolumeSummary
	err := c.call(ctx, c.mgr, ManagerInterface, "ListVolumes", nil, &rows)
	return rows, err
}

// RemoveVolume deletes a named volume.
func (c *Client) RemoveVolume(ctx context.Context, name string, force bool) error {
	return c.call(ctx, c.mgr, ManagerInterface, "RemoveVolume", []any{name, force})
}

// ConnectNetwork joins a container to one more bridge network.
func (c *Client) ConnectNetwork(ctx context.Context, path godbus.ObjectPath, network, ip string) error {
	return c.call(ctx, c.container(path), ContainerIface, "ConnectNetwork", []any{network, ip})
}

// DisconnectNetwork takes a container off a bridge network.
func (c *Client) DisconnectNetwork(ctx context.Context, path godbus.ObjectPath, network string) error {
	return c.call(ctx, c.container(path), ContainerIface, "DisconnectNetwork", []any{network})
}

// HostInfo reports what the machine lets containers have.
func (c *Client) HostInfo(ctx context.Context) (map[string]string, error) {
	var info map[string]string
	err := c.call(ctx, c.mgr, ManagerInterface, "HostInfo", nil, &info)
	return info, err
}

// NetworkSummary is one row of ListNetworks.
type NetworkSummary struct {
	Name, Subnet, Gateway, Bridge string
	Internal                      bool
	Containers                    []string
}

// CreateNetwork creates a bridge network of the user's.
func (c *Client) CreateNetwork(ctx context.Context, name string, o NetworkOptions) (godbus.ObjectPath, error) {
	var p godbus.ObjectPath
	err := c.call(ctx, c.mgr, ManagerInterface, "CreateNetwork", []any{name, o.Options()}, &p)
	return p, err
}

// ListNetworks lists the user's bridge networks.
func (c *Client) ListNetworks(ctx context.Context) ([]NetworkSummary, error) {
	var rows []NetworkSummary
	err := c.call(ctx, c.mgr, ManagerInterface, "ListNetworks", nil, &rows)
	return rows, err
}

// RemoveNetwork removes one of the user's networks.
func (c *Client) RemoveNetwork(ctx context.Context, name string, force bool) error {
	return c.call(ctx, c.mgr, ManagerInterface, "RemoveNetwork", []any{name, force})
}

// PruneNetworks removes the networks no container joins.
func (c *Client) PruneNetworks(ctx context.Context) ([]string, error) {
	var removed []string
	err := c.call(ctx, c.mgr, ManagerInterface, "PruneNetworks", nil, &removed)
	return removed, err
}

// ExecWithStdio runs a command in a running container on the given files
// and returns its exit code.
func (c *Client) ExecWithStdio(ctx context.Context, path godbus.ObjectPath, command []string, stdin, stdout, stderr *os.File, opts ExecOptions) (int32, error) {
	var code int32
	args := []any{command, godbus.UnixFD(stdin.Fd()), godbus.UnixFD(stdout.Fd()), godbus.UnixFD(stderr.Fd()), opts.Options()}
	err := c.call(ctx, c.container(path), ContainerIface, "ExecWithStdio", args, &code)
	return code, err
}

// Rename gives a container a new name.
func (c *Client) Rename(ctx context.Context, path godbus.ObjectPath, name string) error {
	return c.call(ctx, c.container(path), ContainerIface, "Rename", []any{name})
}

// TagImage adds a name to an image.
func (c *Client) TagImage(ctx context.Context, path godbus.ObjectPath, name string) (string, error) {
	var stored string
	err := c.call(ctx, c.conn.Object(BusName, path), ImageIface, "Tag", []any{name}, &stored)
	return stored, err
}

// UntagImage removes names from an image (all with none given).
func (c *Client) UntagImage(ctx context.Context, path godbus.ObjectPath, names []string) ([]string, error) {
	var removed []string
	if names == nil {
		names = []string{}
	}
	err := c.call(ctx, c.conn.Object(BusName, path), ImageIface, "Untag", []any{names}, &removed)
	return removed, err
}

// InspectImage returns an image's podman-style JSON.
func (c *Client) InspectImage(ctx context.Context, path godbus.ObjectPath) (string, error) {
	var js string
	err := c.call(ctx, c.conn.Object(BusName, path), ImageIface, "Inspect", nil, &js)
	return js, err
}

// GetImage finds an image by name, id or id prefix.
func (c *Client) GetImage(ctx context.Context, nameOrID string) (godbus.ObjectPath, error) {
	var path godbus.ObjectPath
	err := c.call(ctx, c.mgr, ManagerInterface, "GetImage", []any{nameOrID}, &path)
	return path, err
}

// ExecWithTerminal runs a command in a running container on a new
// terminal; the service sends the master over console (SCM_RIGHTS) and
// the call returns the exit code when the command exits.
func (c *Client) ExecWithTerminal(ctx context.Context, path godbus.ObjectPath, command []string, console *os.File, opts ExecTerminalOptions) (int32, error) {
	var code int32
	args := []any{command, godbus.UnixFD(console.Fd()), opts.Options()}
	err := c.call(ctx, c.container(path), ContainerIface, "ExecWithTerminal", args, &code)
	return code, err
}

// SaveImage writes an image archive to w (a file or pipe).
func (c *Client) SaveImage(ctx context.Context, path godbus.ObjectPath, w *os.File, format string) error {
	return c.call(ctx, c.conn.Object(BusName, path), ImageIface, "Save", []any{godbus.UnixFD(w.Fd()), format})
}

// TopRow is one process of Container.Top.
type TopRow struct {
	User      string
	Pid, PPid int32
	CPU       float64
	Elapsed   uint64
	Time      uint64
	TTY       string
	Command   string
}

// Top lists the processes of a running container.
func (c *Client) Top(ctx context.Context, path godbus.ObjectPath) ([]TopRow, error) {
	var rows []TopRow
	err := c.call(ctx, c.container(path), ContainerIface, "Top", nil, &rows)
	return rows, err
}

// RunHealthcheck runs a container's health check now and returns the
// resulting health.
func (c *Client) RunHealthcheck(ctx context.Context, path godbus.ObjectPath) (string, error) {
	var h string
	err := c.call(ctx, c.container(path), ContainerIface, "RunHealthcheck", nil, &h)
	return h, err
}

// AttachTerminal returns a copy of a running container's terminal master.
func (c *Client) AttachTerminal(ctx context.Context, path godbus.ObjectPath, opts TerminalOptions) (*os.File, error) {
	var fd godbus.UnixFD
	if err := c.call(ctx, c.container(path), ContainerIface, "AttachTerminal", []any{opts.Options()}, &fd); err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "pty-master"), nil
}

// Pause freezes a running container; Unpause (pause false) thaws it.
func (c *Client) Pause(ctx context.Context, path godbus.ObjectPath, pause bool) error {
	method := "Unpause"
	if pause {
		method = "Pause"
	}
	return c.call(ctx, c.container(path), ContainerIface, method, nil)
}

// Size returns the bytes of a container's writable layer and root
// filesystem.
func (c *Client) Size(ctx context.Context, path godbus.ObjectPath) (rw, rootfs int64, err error) {
	err = c.call(ctx, c.container(path), ContainerIface, "Size", nil, &rw, &rootfs)
	return rw, rootfs, err
}
