// Package sysbus gives integration tests what a desktop machine has for
// root networking: a private D-Bus system bus that includes the project's
// bus policy and activates pelagos-privhelper, polkitd deciding on it,
// the project's polkit actions and a test rule. Everything it installs is
// removed by Stop.
package sysbus

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
)

// ActionsFile is where polkitd reads the project's actions.
const ActionsFile = "/usr/share/polkit-1/actions/io.pelagos.privhelper.policy"

// actionsMarker ends a test's copy of the actions file, so that a copy
// left by a killed run is known and replaced, while a copy the machine
// has of its own stays untouched.
const actionsMarker = "<!-- installed by pelagos integration tests; removed when they end -->"

// Lock makes runs on one machine take turns: they share the polkit files
// and the helper's nftables table. It locks the polkit actions directory,
// which exists anyway, so no lock file is left behind.
func Lock() (unlock func(), err error) {
	dir := filepath.Dir(ActionsFile)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// Options say what the bus serves.
type Options struct {
	// Dir is a scratch directory for the socket, configuration and logs.
	Dir string
	// Root is the module root; policy/ is read from there.
	Root string
	// HelperExec is the Exec line of pelagos-privhelper's activation file.
	HelperExec string
	// RulesFile is the polkit rules file to write, Rules its text.
	RulesFile, Rules string
}

// Bus is a running private system bus.
type Bus struct {
	// Addr is its address, for DBUS_SYSTEM_BUS_ADDRESS.
	Addr  string
	procs []*exec.Cmd
	undo  []func()
}

// Start installs the project's polkit actions (unless the machine has its
// own copy) and the rules, and starts the bus and polkitd. On failure it
// has undone what it did.
//
// System-bus activation normally goes through the setuid
// dbus-daemon-launch-helper, which reads only the machine's own bus
// configuration; the private bus leaves <servicehelper> out, so
// dbus-daemon, running as root, starts the helper itself.
func Start(o Options) (b *Bus, err error) {
	b = &Bus{}
	defer func() {
		if err != nil {
			b.Stop()
		}
	}()
	if got, err := os.ReadFile(ActionsFile); os.IsNotExist(err) || bytes.Contains(got, []byte(actionsMarker)) {
		p, err := os.ReadFile(filepath.Join(o.Root, "policy", "io.pelagos.privhelper.policy"))
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(ActionsFile, append(p, actionsMarker+"\n"...), 0o644); err != nil {
			return nil, err
		}
		b.undo = append(b.undo, func() { os.Remove(ActionsFile) })
	}
	os.MkdirAll(filepath.Dir(o.RulesFile), 0o755)
	if err := os.WriteFile(o.RulesFile, []byte(o.Rules), 0o644); err != nil {
		return nil, err
	}
	b.undo = append(b.undo, func() { os.Remove(o.RulesFile) })

	services := filepath.Join(o.Dir, "services")
	if err := os.MkdirAll(services, 0o755); err != nil {
		return nil, err
	}
	// The activation file meson installs, pointing at the test build.
	in, err := os.ReadFile(filepath.Join(o.Root, "policy", "io.pelagos.PrivHelper1.service.in"))
	if err != nil {
		return nil, err
	}
	svc := strings.ReplaceAll(string(in), "@libexecdir@/pelagos-privhelper", o.HelperExec)
	if err := os.WriteFile(filepath.Join(services, "io.pelagos.PrivHelper1.service"), []byte(svc), 0o644); err != nil {
		return nil, err
	}
	sock := filepath.Join(o.Dir, "system_bus_socket")
	b.Addr = "unix:path=" + sock
	conf := fmt.Sprintf(busConf, b.Addr, services, filepath.Join(o.Root, "policy", "io.pelagos.PrivHelper1.conf"))
	confFile := filepath.Join(o.Dir, "system.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if err := b.start(o.Dir, nil, "dbus-daemon", "--config-file="+confFile, "--nofork", "--nopidfile"); err != nil {
		return nil, err
	}
	if !waitFor(5*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }) {
		return nil, fmt.Errorf("the system bus did not come up (see %s)", filepath.Join(o.Dir, "dbus-daemon.log"))
	}
	if err := b.start(o.Dir, []string{"DBUS_SYSTEM_BUS_ADDRESS=" + b.Addr}, "/usr/lib/polkit-1/polkitd", "--no-debug"); err != nil {
		return nil, err
	}
	conn, err := dbus.Connect(b.Addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if !waitFor(10*time.Second, func() bool {
		var has bool
		conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, "org.freedesktop.PolicyKit1").Store(&has)
		return has
	}) {
		return nil, fmt.Errorf("polkitd did not come up (see %s)", filepath.Join(o.Dir, "polkitd.log"))
	}
	return b, nil
}

// start runs a program of the bus, logging to DIR/NAME.log.
func (b *Bus) start(dir string, env []string, name string, args ...string) error {
	log, err := os.Create(filepath.Join(dir, filepath.Base(name)+".log"))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	b.procs = append(b.procs, cmd)
	return nil
}

// Stop ends polkitd and the bus and removes what Start installed.
func (b *Bus) Stop() {
	for i := len(b.procs) - 1; i >= 0; i-- {
		p := b.procs[i]
		p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			p.Process.Kill()
			<-done
		}
	}
	b.procs = nil
	for i := len(b.undo) - 1; i >= 0; i-- {
		b.undo[i]()
	}
	b.undo = nil
}

func waitFor(d time.Duration, ok func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return true
		}
	}
	return ok()
}

// busConf is a system bus configuration in the spirit of the machine's
// /usr/share/dbus-1/system.conf (deny by default, answers allowed), plus
// the polkit and project policies.
const busConf = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>%s</listen>
  <auth>EXTERNAL</auth>
  <servicedir>%s</servicedir>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root">
    <allow own="org.freedesktop.PolicyKit1"/>
  </policy>
  <include ignore_missing="yes">/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf</include>
  <include>%s</include>
</busconfig>
`
