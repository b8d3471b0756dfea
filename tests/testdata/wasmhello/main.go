// Command wasmhello is a small WASI (wasip1) demo program for pelagos's
// integration tests; build it with GOOS=wasip1 GOARCH=wasm go build.
//
// It prints "hello from wasm", its arguments and $GREETING. When $DATA
// names a directory it lists it and writes out.txt there. It exits with
// the code in $EXIT, if set.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	fmt.Println("hello from wasm")
	fmt.Printf("args: %s\n", strings.Join(os.Args[1:], " "))
	fmt.Printf("GREETING=%s\n", os.Getenv("GREETING"))
	if dir := os.Getenv("DATA"); dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "wasmhello: %v\n", err)
			os.Exit(1)
		}
		for _, e := range entries {
			fmt.Printf("entry: %s\n", e.Name())
		}
		out := filepath.Join(dir, "out.txt")
		if err := os.WriteFile(out, []byte("written by wasm\n"), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "wasmhello: %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("wrote %s\n", out)
	}
	if s := os.Getenv("EXIT"); s != "" {
		code, err := strconv.Atoi(s)
		if err != nil {
			fmt.Fprintf(os.Stderr, "wasmhello: EXIT=%q: %v\n", s, err)
			os.Exit(1)
		}
		os.Exit(code)
	}
}
