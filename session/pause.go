package session

import (
	"fmt"
	"os"
	"path/filepath"

	godbus "github.com/godbus/dbus/v5"

	pdbus "github.com/pelagos-containers/pelagos/dbus"
)

// Pause implements the method of the same name: the cgroup v2 freezer
// stops every process of the container at once.
func (a *containerAPI) Pause() *godbus.Error {
	defer a.c.m.track()()
	return asDBusErr(a.c.setFrozen(true))
}

// Unpause implements the method of the same name.
func (a *containerAPI) Unpause() *godbus.Error {
	defer a.c.m.track()()
	return asDBusErr(a.c.setFrozen(false))
}

// setFrozen freezes or thaws the container's cgroup.
func (c *ctr) setFrozen(frozen bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec.State != pdbus.StateRunning {
		return pdbus.Errorf(pdbus.ErrContainerNotRunning, "container %s is not running", c.rec.Name)
	}
	if c.rec.Paused == frozen {
		if frozen {
			return pdbus.Errorf(pdbus.ErrInvalidArgument, "container %s is already paused", c.rec.Name)
		}
		return pdbus.Errorf(pdbus.ErrInvalidArgument, "container %s is not paused", c.rec.Name)
	}
	if c.rec.CgroupDir == "" {
		why := c.m.cgroups.get().Reason
		if why == "" {
			why = "this container has no cgroup of its own: give it one with a resource limit (e.g. --pids-limit 4096)"
		}
		return pdbus.Errorf(pdbus.ErrFailed, "cannot pause %s: pausing needs the cgroup v2 freezer, and %s", c.rec.Name, why)
	}
	v := "0"
	if frozen {
		v = "1"
	}
	if err := os.WriteFile(filepath.Join(c.rec.CgroupDir, "cgroup.freeze"), []byte(v), 0); err != nil {
		return fmt.Errorf("freeze %s: %w", c.rec.Name, err)
	}
	c.rec.Paused = frozen
	if err := c.rec.save(c.dir); err != nil {
		c.m.log.Error("save container state", "id", c.rec.ID, "err", err)
	}
	if c.obj != nil {
		setProp(c.obj.Props, pdbus.ContainerIface, "Paused", frozen)
		state := "unpause"
		if frozen {
			state = "pause"
		}
		c.m.emit("ContainerStateChanged", c.obj.Path, c.rec.ID, state, int32(c.rec.ExitCode))
	}
	return nil
}

// thawLocked lets a paused container run again before it is signalled
// (a frozen process handles no signal but SIGKILL). Call with c.mu held.
func (c *ctr) thawLocked() {
	if !c.rec.Paused || c.rec.CgroupDir == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(c.rec.CgroupDir, "cgroup.freeze"), []byte("0"), 0); err == nil {
		c.rec.Paused = false
		if c.obj != nil {
			setProp(c.obj.Props, pdbus.ContainerIface, "Paused", false)
		}
	}
}
