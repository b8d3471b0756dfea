package container

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// loadSeccompBPF installs a compiled filter on this thread, which then
// executes the command. It needs no_new_privs or CAP_SYS_ADMIN.
func loadSeccompBPF(prog []byte) error {
	if len(prog) == 0 {
		return nil
	}
	if len(prog)%8 != 0 {
		return fmt.Errorf("seccomp: compiled filter has %d bytes, not a multiple of 8", len(prog))
	}
	insns := make([]unix.SockFilter, len(prog)/8)
	for i := range insns {
		b := prog[i*8:]
		insns[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:]),
		}
	}
	fprog := unix.SockFprog{Len: uint16(len(insns)), Filter: &insns[0]}
	const seccompSetModeFilter = 1
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, seccompSetModeFilter, 0, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("seccomp: load filter: %w", errno)
	}
	return nil
}
