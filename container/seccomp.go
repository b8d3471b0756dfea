//go:build !pelagos_monitor

package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// CompileSeccomp compiles an OCI seccomp profile with libseccomp into a
// classic BPF program for this architecture. libseccomp is used because a
// profile needs a return code per rule: clone3 must fail with ENOSYS (so
// glibc falls back to clone) while other calls fail with EPERM. The
// service compiles once and caches; a container's init only loads the
// bytes (loadSeccompBPF), which keeps its start fast.
func CompileSeccomp(p *specs.LinuxSeccomp) ([]byte, error) {
	if p == nil {
		return nil, nil
	}
	def, err := seccompAction(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	filter, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	defer filter.Release()
	if err := buildFilter(filter, p, def); err != nil {
		return nil, err
	}
	mem, err := unix.MemfdCreate("seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	f := os.NewFile(uintptr(mem), "seccomp-bpf")
	defer f.Close()
	if err := filter.ExportBPF(f); err != nil {
		return nil, fmt.Errorf("seccomp: export filter: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

func buildFilter(filter *libseccomp.ScmpFilter, p *specs.LinuxSeccomp, def libseccomp.ScmpAction) error {
	for _, a := range p.Architectures {
		arch, err := libseccomp.GetArchFromString(archName(a))
		if err != nil {
			return fmt.Errorf("seccomp: architecture %s: %w", a, err)
		}
		if err := filter.AddArch(arch); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("seccomp: add architecture %s: %w", a, err)
		}
	}
	for _, rule := range p.Syscalls {
		action, err := seccompAction(rule.Action, rule.ErrnoRet)
		if err != nil {
			return err
		}
		if action == def {
			continue // libseccomp refuses rules equal to the default
		}
		conds, perIndex, err := seccompConditions(rule.Args)
		if err != nil {
			return err
		}
		for _, name := range rule.Names {
			call, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				continue // not a system call of this architecture
			}
			switch {
			case len(conds) == 0:
				err = filter.AddRule(call, action)
			case perIndex:
				// Several conditions on one argument are alternatives:
				// libseccomp wants one rule each.
				for _, c := range conds {
					if err = filter.AddRuleConditional(call, action, []libseccomp.ScmpCondition{c}); err != nil {
						break
					}
				}
			default:
				err = filter.AddRuleConditional(call, action, conds)
			}
			if err != nil {
				return fmt.Errorf("seccomp: rule for %s: %w", name, err)
			}
		}
	}
	return nil
}

func seccompAction(a specs.LinuxSeccompAction, errnoRet *uint) (libseccomp.ScmpAction, error) {
	errno := uint(unix.EPERM)
	if errnoRet != nil {
		errno = *errnoRet
	}
	switch a {
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActErrno:
		return libseccomp.ActErrno.SetReturnCode(int16(errno)), nil
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActTrap:
		return libseccomp.ActTrap, nil
	case specs.ActTrace:
		return libseccomp.ActTrace.SetReturnCode(int16(errno)), nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	}
	return libseccomp.ActInvalid, fmt.Errorf("seccomp: unsupported action %q", a)
}

func seccompConditions(args []specs.LinuxSeccompArg) ([]libseccomp.ScmpCondition, bool, error) {
	var conds []libseccomp.ScmpCondition
	seen := map[uint]bool{}
	repeated := false
	for _, a := range args {
		op, ok := map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
			specs.OpNotEqual: libseccomp.CompareNotEqual, specs.OpLessThan: libseccomp.CompareLess,
			specs.OpLessEqual: libseccomp.CompareLessOrEqual, specs.OpEqualTo: libseccomp.CompareEqual,
			specs.OpGreaterEqual: libseccomp.CompareGreaterEqual, specs.OpGreaterThan: libseccomp.CompareGreater,
			specs.OpMaskedEqual: libseccomp.CompareMaskedEqual,
		}[a.Op]
		if !ok {
			return nil, false, fmt.Errorf("seccomp: unsupported operator %q", a.Op)
		}
		var c libseccomp.ScmpCondition
		var err error
		if a.Op == specs.OpMaskedEqual {
			c, err = libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
		} else {
			c, err = libseccomp.MakeCondition(a.Index, op, a.Value)
		}
		if err != nil {
			return nil, false, fmt.Errorf("seccomp: condition: %w", err)
		}
		repeated = repeated || seen[a.Index]
		seen[a.Index] = true
		conds = append(conds, c)
	}
	return conds, repeated, nil
}

// archName maps SCMP_ARCH_X86_64 to the name libseccomp-golang parses.
func archName(a specs.Arch) string {
	n := strings.ToLower(strings.TrimPrefix(string(a), "SCMP_ARCH_"))
	switch n {
	case "x86_64":
		return "amd64"
	case "aarch64":
		return "arm64"
	}
	return n
}
