package session

import (
	"encoding/json"

	"fmt"
	"github.com/pelagos-containers/pelagos/container"
	"os"
	"path/filepath"
	"time"
)

// record is what the service knows about one container; it is saved as
// container.json in the container's directory after every change, so a
// restarted service finds every container as it was.
type record struct {
	ID         string              `json:"id"`
	Name       string              `json:"name"`
	Image      string              `json:"image"`
	ImageID    string              `json:"imageId"`
	Args       []string            `json:"args"`
	Env        []string            `json:"env"`
	WorkingDir string              `json:"workingDir"`
	User       string              `json:"user"`
	Hostname   string              `json:"hostname"`
	AutoRemove bool                `json:"autoRemove"`
	CreatedAt  time.Time           `json:"createdAt"`
	Security   security            `json:"security"`
	Mounts     []container.Mount   `json:"mounts,omitempty"`
	Process    processOptions      `json:"process"`
	Resources  container.Resources `json:"resources"`
	CgroupDir  string              `json:"cgroupDir,omitempty"`
	Restart    restartPolicy       `json:"restart"`
	// RestartCount counts the policy's restarts; StoppedByUser keeps a
	// container the user stopped from being restarted by its policy.
	RestartCount  int               `json:"restartCount"`
	StoppedByUser bool              `json:"stoppedByUser"`
	Labels        map[string]string `json:"labels,omitempty"`
	StopSignal    string            `json:"stopSignal,omitempty"`
	Health        healthConfig      `json:"health"`
	// HealthRun is what the checks of the current run found.
	HealthRun *savedHealth `json:"healthRun,omitempty"`
	Paused    bool         `json:"paused,omitempty"`
	Network   netConfig    `json:"network"`
	Pasta     pastaState   `json:"pasta"`
	Bridge    bridgeState  `json:"bridge"`
	// LogDriver is "" (k8s-file), "passthrough" or "none".
	LogDriver string       `json:"logDriver,omitempty"`
	UserNS    usernsConfig `json:"userns"`
	// ImageOS and ImageArch are the image's platform: a WASI one (os
	// wasip1, architecture wasm) makes the command a Wasm module run
	// in-process.
	ImageOS   string `json:"imageOs,omitempty"`
	ImageArch string `json:"imageArch,omitempty"`

	State    string `json:"state"`
	ExitCode int    `json:"exitCode"`
	Pid      int    `json:"pid"`
	PidStart uint64 `json:"pidStart"` // start time of Pid, to notice pid reuse
	// Monitor is the current run's pelagos-monitor.
	Monitor    monitorState `json:"monitor,omitempty"`
	StartedAt  time.Time    `json:"startedAt"`
	FinishedAt time.Time    `json:"finishedAt"`
	Error      string       `json:"error"`
}

const recordFile = "container.json"

// save writes the record atomically: a crash of the service leaves the
// old or the new file, never half of one. It does not fsync: the state
// changes several times per container run and a power loss may lose the
// latest change, while ext4 and xfs order the data before the rename.
func (r *record) save(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state of %s: %w", r.ID, err)
	}
	tmp, err := os.CreateTemp(dir, ".container.json-")
	if err != nil {
		return fmt.Errorf("save state of %s: %w", r.ID, err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := firstErr(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save state of %s: %w", r.ID, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, recordFile)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save state of %s: %w", r.ID, err)
	}
	return nil
}

func loadRecord(dir string) (*record, error) {
	b, err := os.ReadFile(filepath.Join(dir, recordFile))
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode %s: %w", filepath.Join(dir, recordFile), err)
	}
	return &r, nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func usec(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixMicro())
}

// restartPolicy is --restart.
type restartPolicy struct {
	Name       string `json:"name"`
	MaxRetries int    `json:"maxRetries,omitempty"`
}
