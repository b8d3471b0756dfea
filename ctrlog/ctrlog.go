// Package ctrlog writes and reads container logs in the CRI log format
// that Kubernetes and podman's k8s-file driver use: one record per line,
//
//	2026-11-29T04:10:11.123456789Z stdout F hello
//
// a timestamp, the stream, F for a full line or P for part of a long
// one, then the bytes. Records of stdout and stderr interleave in the
// order they were read, so both stay apart and in order in one file.
package ctrlog

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"time"
)

// The streams.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// maxRecord bounds one record's payload; longer lines are split into
// partial records.
const maxRecord = 16 << 10

// Copy reads src until EOF and appends a record per line to dst. Each
// Write holds whole records only (so records of two streams written to
// one O_APPEND file never mix): records already read in one burst go out
// together, and the batch is written before Copy waits for more input,
// so a follower sees every line as soon as it was read. now stamps them.
func Copy(dst io.Writer, src io.Reader, stream string, now func() time.Time) error {
	const maxBatch = 64 << 10
	r := bufio.NewReaderSize(src, maxRecord)
	var batch []byte
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := dst.Write(batch)
		batch = batch[:0]
		return err
	}
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			partial := line[len(line)-1] != '\n'
			batch = now().UTC().AppendFormat(batch, time.RFC3339Nano)
			batch = append(batch, ' ')
			batch = append(batch, stream...)
			if partial {
				batch = append(batch, " P "...)
				batch = append(batch, line...)
				batch = append(batch, '\n')
			} else {
				batch = append(batch, " F "...)
				batch = append(batch, line...)
			}
		}
		// Write before the next read could wait for input: when what is
		// buffered holds no whole line.
		if err != nil || len(batch) >= maxBatch || !lineBuffered(r) {
			if werr := flush(); werr != nil {
				return werr
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
}

// lineBuffered reports whether r holds a whole line already read.
func lineBuffered(r *bufio.Reader) bool {
	b, _ := r.Peek(r.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}

// Record is one parsed log line.
type Record struct {
	Time    time.Time
	Stream  string
	Partial bool
	// Data is the output, with its newline unless Partial.
	Data []byte
}

// Parse reads one line of a log file (without or with its newline). A
// line that is not a record (a log written before this format) comes
// back as stdout output with a zero time and ok false.
func Parse(line []byte) (rec Record, ok bool) {
	raw := Record{Stream: Stdout, Data: line}
	ts, rest, found := bytes.Cut(line, []byte{' '})
	if !found {
		return raw, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return raw, false
	}
	stream, rest, found := bytes.Cut(rest, []byte{' '})
	if !found || (string(stream) != Stdout && string(stream) != Stderr) {
		return raw, false
	}
	tag, data, found := bytes.Cut(rest, []byte{' '})
	if !found || (string(tag) != "F" && string(tag) != "P") {
		return raw, false
	}
	rec = Record{Time: t, Stream: string(stream), Partial: string(tag) == "P", Data: data}
	if rec.Partial {
		rec.Data = bytes.TrimSuffix(data, []byte{'\n'})
	}
	return rec, true
}
