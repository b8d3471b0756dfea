package session

import (
	"encoding/json"

	godbus "github.com/godbus/dbus/v5"

	"github.com/pelagos-containers/pelagos/images"
)

// imageAPI is the io.pelagos.Pelagos1.Image interface of one image.
type imageAPI struct {
	m  *Manager
	id string
}

// Remove implements the method of the same name.
func (a *imageAPI) Remove(force bool) ([]string, *godbus.Error) {
	defer a.m.track()()
	removed, err := a.m.removeImage(a.id, force)
	return removed, asDBusErr(err)
}

// Tag implements the method of the same name.
func (a *imageAPI) Tag(name string) (string, *godbus.Error) {
	defer a.m.track()()
	stored, err := a.m.store.Tag(a.id, name)
	if serr := a.m.syncImages(); serr != nil {
		a.m.log.Warn("refresh image objects", "err", serr)
	}
	return stored, asDBusErr(err)
}

// Untag implements the method of the same name.
func (a *imageAPI) Untag(names []string) ([]string, *godbus.Error) {
	defer a.m.track()()
	img, err := a.m.store.Resolve(a.id)
	if err != nil {
		return nil, asDBusErr(err)
	}
	removed, err := a.m.store.Untag(img, names)
	if serr := a.m.syncImages(); serr != nil {
		a.m.log.Warn("refresh image objects", "err", serr)
	}
	return nonNil(removed), asDBusErr(err)
}

// Save implements the method of the same name.
func (a *imageAPI) Save(archive godbus.UnixFD, format string) *godbus.Error {
	defer a.m.track()()
	f, err := receivedFile(archive, "archive")
	if err != nil {
		return asDBusErr(err)
	}
	defer f.Close()
	img, err := a.m.store.Resolve(a.id)
	if err != nil {
		return asDBusErr(err)
	}
	return asDBusErr(a.m.store.Save(a.m.ctx, []images.SaveItem{{Image: img}}, format, f))
}

// historyRow is one element of History's answer.
type historyRow struct {
	ID        string
	Created   int64
	CreatedBy string
	Size      int64
	Comment   string
}

// History implements the method of the same name.
func (a *imageAPI) History() ([]historyRow, *godbus.Error) {
	defer a.m.track()()
	img, err := a.m.store.Resolve(a.id)
	if err != nil {
		return nil, asDBusErr(err)
	}
	h, err := a.m.store.History(a.m.ctx, img)
	if err != nil {
		return nil, asDBusErr(err)
	}
	rows := make([]historyRow, 0, len(h))
	for _, e := range h {
		var created int64
		if !e.Created.IsZero() {
			created = e.Created.UnixMicro()
		}
		rows = append(rows, historyRow{ID: e.ID, Created: created, CreatedBy: e.CreatedBy, Size: e.Size, Comment: e.Comment})
	}
	return rows, nil
}

// Inspect implements the method of the same name.
func (a *imageAPI) Inspect() (string, *godbus.Error) {
	defer a.m.track()()
	img, err := a.m.store.Resolve(a.id)
	if err != nil {
		return "", asDBusErr(err)
	}
	v, err := a.m.store.Inspect(a.m.ctx, img)
	if err != nil {
		return "", asDBusErr(err)
	}
	b, err := json.Marshal(v)
	return string(b), asDBusErr(err)
}
