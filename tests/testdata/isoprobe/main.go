// Command isoprobe tries one thing a container may or may not be allowed
// to do and prints the outcome on one line, for the isolation tests:
//
//	isoprobe ids          real and effective uid
//	isoprobe keyctl       create a keyring
//	isoprobe raw          open a raw IP socket
//	isoprobe ptrace PID   attach to a process
//	isoprobe threads N    run N OS threads at once
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"unsafe"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: isoprobe ids|keyctl|raw|ptrace PID|threads N")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "ids":
		fmt.Printf("ruid=%d euid=%d\n", syscall.Getuid(), syscall.Geteuid())
	case "keyctl":
		desc := []byte("pelagos-probe\x00")
		typ := []byte("keyring\x00")
		// add_key("keyring", "pelagos-probe", NULL, 0, KEY_SPEC_PROCESS_KEYRING)
		_, _, errno := syscall.Syscall6(syscall.SYS_ADD_KEY, uintptr(unsafe.Pointer(&typ[0])), uintptr(unsafe.Pointer(&desc[0])), 0, 0, ^uintptr(1), 0)
		report(errno)
	case "raw":
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP)
		if err == nil {
			syscall.Close(fd)
		}
		report(err)
	case "ptrace":
		pid, _ := strconv.Atoi(arg(2))
		runtime.LockOSThread()
		err := syscall.PtraceAttach(pid)
		if err == nil {
			syscall.PtraceDetach(pid)
		}
		report(err)
	case "threads":
		n, _ := strconv.Atoi(arg(2))
		var wg sync.WaitGroup
		tids := make(chan int, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread() // a thread of its own, kept to the end
				tids <- syscall.Gettid()
			}()
		}
		wg.Wait()
		close(tids)
		seen := map[int]bool{}
		for t := range tids {
			seen[t] = true
		}
		fmt.Printf("threads=%d\n", len(seen))
	default:
		fmt.Fprintf(os.Stderr, "unknown probe %q\n", os.Args[1])
		os.Exit(2)
	}
}

func arg(i int) string {
	if len(os.Args) > i {
		return os.Args[i]
	}
	return ""
}

// report prints "allowed" or "refused: ERROR"; an errno of 0 is success.
func report(err error) {
	if errno, ok := err.(syscall.Errno); ok && errno == 0 {
		err = nil
	}
	if err != nil {
		fmt.Printf("refused: %v\n", err)
		return
	}
	fmt.Println("allowed")
}
