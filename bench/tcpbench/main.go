// Command tcpbench measures TCP throughput for bench/net.sh: a sender that
// writes a given amount of data to an address and a sink that reads it.
//
// Usage:
//
//	tcpbench sink ADDR      accept one connection on ADDR, read it to the
//	                        end, close it, print what arrived
//	tcpbench send ADDR MB   connect to ADDR, write MB MiB, shut the
//	                        sending side down, wait for the peer to
//	                        close, print the rate
//
// Both print one JSON object on stdout:
//
//	{"mode":"send","bytes":1073741824,"seconds":0.52,"mb_per_s":1969.2}
//
// where MB is a MiB (1,048,576 bytes) and seconds run from the connect
// (send) or the accept (sink) to the peer's end of the stream.
//
// The sender's clock stops only when the peer has closed its side, that
// is after the sink has read the whole stream and seen its end: data
// still buffered on the way (in socket buffers, or in pasta or
// slirp4netns in between) is counted as not yet delivered. So the sender
// times any sink that reads to the end of the stream and then closes,
// such as busybox `nc -l` in a container; the sink mode here is for the
// host, where it also checks the byte count.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

// chunk is the size of each write and read.
const chunk = 256 << 10

// mib is the unit of the MB arguments and rates.
const mib = 1 << 20

// result is what both modes print.
type result struct {
	Mode    string  `json:"mode"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	MBPerS  float64 `json:"mb_per_s"`
}

func main() {
	var (
		r   result
		err error
	)
	switch {
	case len(os.Args) == 3 && os.Args[1] == "sink":
		r, err = sink(os.Args[2])
	case len(os.Args) == 4 && os.Args[1] == "send":
		mb, perr := strconv.ParseInt(os.Args[3], 10, 64)
		if perr != nil || mb <= 0 {
			fatal(fmt.Errorf("MB must be a positive whole number, not %q", os.Args[3]))
		}
		r, err = send(os.Args[2], mb*mib)
	default:
		fmt.Fprintln(os.Stderr, "usage: tcpbench sink ADDR | tcpbench send ADDR MB")
		os.Exit(2)
	}
	if err != nil {
		fatal(err)
	}
	if r.Seconds > 0 {
		r.MBPerS = float64(r.Bytes) / mib / r.Seconds
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "tcpbench:", err)
	os.Exit(1)
}

// sink accepts one connection on addr and reads it to the end.
func sink(addr string) (result, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return result{}, err
	}
	defer ln.Close()
	c, err := ln.Accept()
	if err != nil {
		return result{}, err
	}
	defer c.Close()
	start := time.Now()
	n, err := drain(c)
	secs := time.Since(start).Seconds()
	if err != nil {
		return result{}, fmt.Errorf("read after %d bytes: %w", n, err)
	}
	return result{Mode: "sink", Bytes: n, Seconds: secs}, nil
}

// send writes size bytes to addr, shuts its side down and waits until
// the peer closes the connection.
func send(addr string, size int64) (result, error) {
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i * 7) // not all zeros, in case anything compresses
	}
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return result{}, err
	}
	defer c.Close()
	tc := c.(*net.TCPConn)
	var sent int64
	for sent < size {
		b := buf
		if rest := size - sent; rest < int64(len(b)) {
			b = b[:rest]
		}
		n, err := tc.Write(b)
		sent += int64(n)
		if err != nil {
			return result{}, fmt.Errorf("write after %d bytes: %w", sent, err)
		}
	}
	if err := tc.CloseWrite(); err != nil {
		return result{}, fmt.Errorf("shutdown: %w", err)
	}
	// The sink answers nothing; its end of the stream says it has read
	// everything. Anything it does send is drained and ignored.
	if _, err := drain(tc); err != nil {
		return result{}, fmt.Errorf("waiting for the peer to close: %w", err)
	}
	secs := time.Since(start).Seconds()
	return result{Mode: "send", Bytes: sent, Seconds: secs}, nil
}

// drain reads r to its end, chunk by chunk, and returns how many bytes
// it read. (io.Copy to io.Discard would read in 8 KiB pieces.)
func drain(r io.Reader) (int64, error) {
	buf := make([]byte, chunk)
	var n int64
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
