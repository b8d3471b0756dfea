// Command prog is built with GOOS=wasip1 GOARCH=wasm by the wasm
// package's tests. Its first argument picks what it does; failures it
// is asked to provoke are reported on stdout and exit code 3.
package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: prog echo|files|exit|open|write|stdin|clock|loop ...")
		os.Exit(2)
	}
	arg := func(i int) string {
		if i+2 < len(os.Args) {
			return os.Args[i+2]
		}
		return ""
	}
	switch os.Args[1] {
	case "echo": // echo VAR: prints argv and $VAR
		fmt.Printf("args=%q\n", os.Args)
		fmt.Printf("%s=%s\n", arg(0), os.Getenv(arg(0)))
	case "files": // files DIR: reads DIR/in.txt, writes it upper-cased to DIR/out.txt
		in, err := os.ReadFile(arg(0) + "/in.txt")
		if err != nil {
			fail(err)
		}
		if err := os.WriteFile(arg(0)+"/out.txt", []byte(strings.ToUpper(string(in))), 0o644); err != nil {
			fail(err)
		}
		fmt.Printf("read %q\n", in)
	case "exit": // exit N
		n, err := strconv.Atoi(arg(0))
		if err != nil {
			fail(err)
		}
		os.Exit(n)
	case "open": // open PATH: reads PATH
		b, err := os.ReadFile(arg(0))
		if err != nil {
			fail(err)
		}
		fmt.Printf("opened %q\n", b)
	case "write": // write PATH
		if err := os.WriteFile(arg(0), []byte("x"), 0o644); err != nil {
			fail(err)
		}
		fmt.Println("written")
	case "stdin": // copies stdin to stdout
		if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
			fail(err)
		}
	case "clock": // prints the year, the sleep time measured, random bytes
		start := time.Now()
		time.Sleep(50 * time.Millisecond)
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			fail(err)
		}
		fmt.Printf("year=%d slept=%d rand=%x\n", start.Year(), time.Since(start).Milliseconds(), b)
	case "loop": // never returns
		fmt.Println("looping")
		for {
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}

func fail(err error) {
	fmt.Printf("error: %v\n", err)
	os.Exit(3)
}
