package session

import (
	"context"
	"errors"
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
}

// job is one long operation with a cancel handle.
type job struct {
	path   godbus.ObjectPath
	obj    *pdbus.Object
	cancel context.CancelFunc
}

// jobAPI is the io.pelagos.Pelagos1.Job interface.
type jobAPI struct{ j *job }

// Cancel implements the method of the same name.
func (a *jobAPI) Cancel() *godbus.Error {
	a.j.cancel()
	return nil
}

// startPull creates a pull job and runs it in the background.
func (m *Manager) startPull(ref string, opts pdbus.PullOptions) (godbus.ObjectPath, error) {
	if strings.TrimSpace(ref) == "" {
		return "", pdbus.Errorf(pdbus.ErrInvalidReference, "empty image reference: give NAME[:TAG|@DIGEST]")
	}
	m.jobs.mu.Lock()
	m.jobs.next++
	n := m.jobs.next
	if m.jobs.live == nil {
		m.jobs.live = map[godbus.ObjectPath]*job{}
	}
	m.jobs.mu.Unlock()
	ctx, cancel := context.WithCancel(m.ctx)
	j := &job{path: pdbus.JobPath(n), cancel: cancel}
	props := map[string]*prop.Prop{
		"Type":       constProp("pull"),
		"Reference":  constProp(ref),
		"Progress":   {Value: 0.0, Emit: prop.EmitTrue},
		"BytesDone":  {Value: uint64(0), Emit: prop.EmitTrue},
		"BytesTotal": {Value: uint64(0), Emit: prop.EmitTrue},
		"Layer":      {Value: "", Emit: prop.EmitTrue},
		"Message":    {Value: "", Emit: prop.EmitTrue},
	}
	obj, err := m.server.Export(j.path, pdbus.JobIface, &jobAPI{j}, props)
	if err != nil {
		cancel()
		return "", err
	}
	j.obj = obj
	m.jobs.mu.Lock()
	m.jobs.live[j.path] = j
	m.jobs.mu.Unlock()

	go func() {
		defer cancel()
		report := func(p images.Progress) {
			m.touch()
			if p.BytesTotal > 0 {
				obj.Props.SetMust(pdbus.JobIface, "BytesTotal", p.BytesTotal)
				obj.Props.SetMust(pdbus.JobIface, "BytesDone", p.BytesDone)
				obj.Props.SetMust(pdbus.JobIface, "Progress", float64(p.BytesDone)/float64(p.BytesTotal))
			}
			if p.Layer != "" {
				obj.Props.SetMust(pdbus.JobIface, "Layer", p.Layer)
			}
			if p.Message != "" {
				obj.Props.SetMust(pdbus.JobIface, "Message", p.Message)
			}
		}
		l, err := m.store.Pull(ctx, ref, images.PullOptions{TLSVerify: opts.TLSVerify}, report)
		if serr := m.syncImages(); serr != nil {
			m.log.Warn("refresh image objects", "err", serr)
		}
		result, image, errName, errMsg := pdbus.JobDone, godbus.ObjectPath("/"), "", ""
		switch {
		case err == nil:
			image = pdbus.ImagePath(l.ID)
		case errors.Is(err, context.Canceled):
			result, errName, errMsg = pdbus.JobCancelled, pdbus.ErrCancelled.Name(), "pull of "+ref+" cancelled"
		case errors.Is(err, images.ErrInvalidReference):
			result, errName, errMsg = pdbus.JobFailed, pdbus.ErrInvalidReference.Name(), err.Error()
		default:
			result, errName, errMsg = pdbus.JobFailed, pdbus.ErrPullFailed.Name(), err.Error()
		}
		m.jobs.mu.Lock()
		delete(m.jobs.live, j.path)
		m.jobs.mu.Unlock()
		m.server.Unexport(j.path)
		m.emit("JobFinished", j.path, result, image, errName, errMsg)
		m.log.Info("pull finished", "reference", ref, "result", result, "error", errMsg)
	}()
	return j.path, nil
}

// busyJobs reports whether a job runs (the service must not idle out).
func (m *Manager) busyJobs() bool {
	m.jobs.mu.Lock()
	defer m.jobs.mu.Unlock()
	return len(m.jobs.live) > 0
}
