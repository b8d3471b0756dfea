package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	godbus "github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
	"github.com/pelagos-containers/pelagos/images"
)

// jobs numbers and tracks the long operations under way.
type jobs struct {
	mu   sync.Mutex
	next uint64
	live map[godbus.ObjectPath]*job
	// byKey finds a running job that a new, identical request can join:
	// two pulls of one image make one download.
	byKey map[string]*job
}

// job is one long operation with a cancel handle.
type job struct {
	path   godbus.ObjectPath
	key    string
	obj    *pdbus.Object
	cancel context.CancelFunc
	// callers are the bus names that started or joined the job, with
	// how many times; the job is cancelled when the last one cancels.
	callers map[string]int
}

// layerRow is one element of the Job's Layers property.
type layerRow struct {
	Digest string
	Done   uint64
	Size   uint64
}

// jobAPI is the io.pelagos.Pelagos1.Job interface.
type jobAPI struct {
	m *Manager
	j *job
}

// Cancel implements the method of the same name. A caller that joined a
// shared job only leaves it; the work stops when nobody else waits for
// it, or at once when the canceller never asked for the job.
func (a *jobAPI) Cancel(sender godbus.Sender) (bool, *godbus.Error) {
	a.m.jobs.mu.Lock()
	n, joined := a.j.callers[string(sender)]
	switch {
	case joined && n > 1:
		a.j.callers[string(sender)] = n - 1
	case joined:
		delete(a.j.callers, string(sender))
	}
	stop := !joined || len(a.j.callers) == 0
	a.m.jobs.mu.Unlock()
	if stop {
		a.j.cancel()
	}
	return !stop, nil
}

// jobRun is a job's work: it reports progress and returns the id of the
// image it produced or worked on.
type jobRun func(ctx context.Context, report func(images.Progress)) (imageID string, err error)

// startJob runs work as a job object of the given type, or joins the
// running job with the same key (when key is not "").
func (m *Manager) startJob(sender godbus.Sender, kind, ref, key string, failed pdbus.ErrorCode, work jobRun) (godbus.ObjectPath, error) {
	m.jobs.mu.Lock()
	if j := m.jobs.byKey[key]; key != "" && j != nil {
		j.callers[string(sender)]++
		m.jobs.mu.Unlock()
		m.log.Info("joined a running job", "job", j.path, "type", kind, "reference", ref)
		return j.path, nil
	}
	m.jobs.next++
	n := m.jobs.next
	if m.jobs.live == nil {
		m.jobs.live = map[godbus.ObjectPath]*job{}
		m.jobs.byKey = map[string]*job{}
	}
	ctx, cancel := context.WithCancel(m.ctx)
	j := &job{path: pdbus.JobPath(n), key: key, cancel: cancel, callers: map[string]int{string(sender): 1}}
	props := map[string]*prop.Prop{
		"Type":       constProp(kind),
		"Reference":  constProp(ref),
		"Progress":   {Value: 0.0, Emit: prop.EmitTrue},
		"BytesDone":  {Value: uint64(0), Emit: prop.EmitTrue},
		"BytesTotal": {Value: uint64(0), Emit: prop.EmitTrue},
		"Layer":      {Value: "", Emit: prop.EmitTrue},
		"Layers":     {Value: []layerRow{}, Emit: prop.EmitTrue},
		"Message":    {Value: "", Emit: prop.EmitTrue},
	}
	obj, err := m.server.Export(j.path, pdbus.JobIface, &jobAPI{m, j}, props)
	if err != nil {
		m.jobs.mu.Unlock()
		cancel()
		return "", err
	}
	j.obj = obj
	m.jobs.live[j.path] = j
	if key != "" {
		m.jobs.byKey[key] = j
	}
	m.jobs.mu.Unlock()

	go func() {
		defer cancel()
		report := func(p images.Progress) {
			m.touch()
			if p.BytesTotal > 0 {
				setProp(obj.Props, pdbus.JobIface, "BytesTotal", p.BytesTotal)
				setProp(obj.Props, pdbus.JobIface, "BytesDone", p.BytesDone)
				setProp(obj.Props, pdbus.JobIface, "Progress", float64(p.BytesDone)/float64(p.BytesTotal))
			}
			if p.Layers != nil {
				rows := make([]layerRow, len(p.Layers))
				for i, l := range p.Layers {
					rows[i] = layerRow{Digest: l.Digest, Done: l.Done, Size: l.Size}
				}
				setProp(obj.Props, pdbus.JobIface, "Layers", rows)
			}
			if p.Layer != "" {
				setProp(obj.Props, pdbus.JobIface, "Layer", p.Layer)
			}
			if p.Message != "" {
				setProp(obj.Props, pdbus.JobIface, "Message", p.Message)
			}
		}
		id, err := work(ctx, report)
		if serr := m.syncImages(); serr != nil {
			m.log.Warn("refresh image objects", "err", serr)
		}
		result, image, errName, errMsg := pdbus.JobDone, godbus.ObjectPath("/"), "", ""
		switch {
		case err == nil:
			if id != "" {
				image = pdbus.ImagePath(id)
			}
		case errors.Is(err, context.Canceled):
			result, errName, errMsg = pdbus.JobCancelled, pdbus.ErrCancelled.Name(), kind+" of "+ref+" cancelled"
		case errors.Is(err, images.ErrInvalidReference):
			result, errName, errMsg = pdbus.JobFailed, pdbus.ErrInvalidReference.Name(), err.Error()
		case errors.Is(err, images.ErrInvalidArgument):
			result, errName, errMsg = pdbus.JobFailed, pdbus.ErrInvalidArgument.Name(), err.Error()
		case errors.Is(err, images.ErrAuth):
			result, errName, errMsg = pdbus.JobFailed, pdbus.ErrAuthFailed.Name(), err.Error()
		default:
			result, errName, errMsg = pdbus.JobFailed, failed.Name(), err.Error()
		}
		m.jobs.mu.Lock()
		delete(m.jobs.live, j.path)
		if m.jobs.byKey[key] == j {
			delete(m.jobs.byKey, key)
		}
		m.jobs.mu.Unlock()
		m.server.Unexport(j.path)
		m.emit("JobFinished", j.path, result, image, errName, errMsg)
		m.log.Info(kind+" finished", "reference", ref, "result", result, "error", errMsg)
	}()
	return j.path, nil
}

// startPull creates a pull job, or joins an identical one under way.
func (m *Manager) startPull(sender godbus.Sender, ref string, opts pdbus.PullOptions) (godbus.ObjectPath, error) {
	if strings.TrimSpace(ref) == "" {
		return "", pdbus.Errorf(pdbus.ErrInvalidReference, "empty image reference: give NAME[:TAG|@DIGEST]")
	}
	key := fmt.Sprintf("pull\x00%s\x00%+v", ref, opts)
	return m.startJob(sender, "pull", ref, key, pdbus.ErrPullFailed, func(ctx context.Context, report func(images.Progress)) (string, error) {
		l, err := m.store.Pull(ctx, ref, images.PullOptions{RegistryOptions: registryOptions(opts.RegistryOptions), Platform: opts.Platform}, report)
		return l.ID, err
	})
}

// startPush creates a push job of a stored image to dest.
func (m *Manager) startPush(sender godbus.Sender, image, dest string, opts pdbus.PushOptions) (godbus.ObjectPath, error) {
	img, matched, err := m.store.ResolveName(image)
	if err != nil {
		return "", err
	}
	if dest == "" {
		switch {
		case matched != "":
			dest = matched
		case len(img.Names) > 0:
			dest = img.Names[0]
		default:
			return "", pdbus.Errorf(pdbus.ErrInvalidReference, "image %s has no name to push to: give a destination, e.g. registry.example.org/team/app:1.0", image)
		}
	}
	if _, err := images.ParseDestination(dest); err != nil {
		return "", err
	}
	return m.startJob(sender, "push", dest, "", pdbus.ErrPushFailed, func(ctx context.Context, report func(images.Progress)) (string, error) {
		_, err := m.store.Push(ctx, img, dest, images.PushOptions{RegistryOptions: registryOptions(opts.RegistryOptions), Format: opts.Format}, report)
		return img.ID, err
	})
}

func registryOptions(o pdbus.RegistryOptions) images.RegistryOptions {
	return images.RegistryOptions{TLSVerify: o.TLSVerify, AuthFile: o.AuthFile, Creds: o.Creds}
}

// busyJobs reports whether a job runs (the service must not idle out).
func (m *Manager) busyJobs() bool {
	m.jobs.mu.Lock()
	defer m.jobs.mu.Unlock()
	return len(m.jobs.live) > 0
}
