package analysis

import (
	"errors"
	"io"
)

// docReader splits a stream into JSON values (the documents of a JSON
// file, or the elements of a JSON array) with the structural scan of
// scan.go, in a buffer it reuses: a document is a slice of that buffer,
// never a copy, so a document of the bound costs that bound once
// (json.Decoder's buffer doubled it, and its RawMessage copied it again).
type docReader struct {
	r   io.Reader
	max int // bound of one value

	buf  []byte // buf[pos:] is read and not yet consumed
	pos  int
	base int64 // input offset of buf[0]
	eof  bool
	err  error // a read error other than io.EOF
}

// docChunk is the least the buffer grows by, and the size of the first.
const docChunk = 64 << 10

// offset is the input offset of the next unconsumed byte.
func (d *docReader) offset() int64 { return d.base + int64(d.pos) }

// more reads more input into the buffer, first moving what is unconsumed
// to its start, and growing it when full (growTo, up to max and a chunk). It
// returns false when nothing more can be read: the input ended, failed,
// or the buffer holds max bytes and a chunk unconsumed.
func (d *docReader) more() bool {
	if d.eof || d.err != nil {
		return false
	}
	if d.pos > 0 {
		n := copy(d.buf, d.buf[d.pos:])
		d.base += int64(d.pos)
		d.buf, d.pos = d.buf[:n], 0
	}
	if len(d.buf) == cap(d.buf) {
		limit := d.max + docChunk
		if cap(d.buf) >= limit {
			return false
		}
		nb := make([]byte, len(d.buf), growTo(cap(d.buf), len(d.buf)+1, limit))
		copy(nb, d.buf)
		d.buf = nb
	}
	n, err := d.r.Read(d.buf[len(d.buf):cap(d.buf)])
	d.buf = d.buf[:len(d.buf)+n]
	switch {
	case errors.Is(err, io.EOF):
		d.eof = true
	case err != nil:
		d.err = err
	}
	return true
}

// peek skips blank space and returns the next byte; false at the end of
// the input (or on a read error, in d.err).
func (d *docReader) peek() (byte, bool) {
	for {
		for d.pos < len(d.buf) {
			if c := d.buf[d.pos]; !isSpace(c) {
				return c, true
			}
			d.pos++
		}
		if !d.more() {
			return 0, false
		}
	}
}

// errDocOverBound is a whole value longer than the bound, found in the
// buffer and consumed: reading goes on after it.
var errDocOverBound = errors.New("analysis: JSON document over the bound")

// errCut is a value the input ends inside.
var errCut = errors.New("analysis: input ends inside a JSON value")

// value returns the next value, which starts at d.pos (after peek), and
// consumes it. The slice is valid until the next call. Errors: errCut,
// errDocTooLong, errDocOverBound, a read error, or the scan's error for
// invalid JSON.
func (d *docReader) value() ([]byte, error) {
	// The scan runs again only when the unconsumed input has doubled
	// since the last one, so a value costs O(its size) in scans.
	scanned := 0
	for {
		avail := d.buf[d.pos:]
		if len(avail) >= 2*scanned || d.eof || d.err != nil {
			end, err := skipValue(avail, 0)
			// A literal that ends the buffer may go on in the input.
			if err == nil && (end < len(avail) || d.eof || isContainerOrString(avail[0])) {
				d.pos += end
				if end > d.max {
					return nil, errDocOverBound
				}
				return avail[:end], nil
			}
			if err != nil && !errors.Is(err, errEOF) && !errors.Is(err, errUnterminated) {
				return nil, err
			}
			if d.eof {
				return nil, errCut
			}
			if d.err != nil {
				return nil, d.err
			}
			scanned = len(avail)
		}
		if len(avail) > d.max {
			return nil, errDocTooLong
		}
		if !d.more() && !d.eof && d.err == nil {
			return nil, errDocTooLong
		}
	}
}

func isContainerOrString(c byte) bool { return c == '{' || c == '[' || c == '"' }
