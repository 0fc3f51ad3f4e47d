package measurement

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxLineBytes bounds one JSONL line on read; longer lines are skipped and
// counted as bad (a hostile or corrupt file cannot exhaust memory).
const MaxLineBytes = 64 << 20

// ReadStats counts what ReadJSONL saw.
type ReadStats struct {
	// Lines counts non-empty lines.
	Lines int
	// Bad counts lines that were not a measurement (corrupt, cut, too
	// long). BadLines names the first few (MaxNamedLines), by number from 1.
	Bad      int
	BadLines []int
	// Truncated is true when the last line had no newline and did not
	// parse: a write cut by a crash.
	Truncated bool
	// Partial counts lines read in part: past MaxLineElements array
	// elements, the rest of their arrays was left out. PartialLines names
	// the first few (MaxNamedLines).
	Partial      int
	PartialLines []int
}

// MaxNamedLines bounds the line numbers ReadStats names in BadLines and
// PartialLines.
const MaxNamedLines = 10

// ReadJSONL calls fn for each measurement in r, one JSON object a line.
// Lines that do not parse are counted and skipped, so a file cut by a crash
// (its last line incomplete) or a corrupt line loses only that line. What
// one line decodes is bounded (MaxLineElements); a line past the bound is
// read in part and counted in Partial. An error from fn stops the read and
// is returned.
func ReadJSONL(r io.Reader, fn func(*Measurement) error) (ReadStats, error) {
	var st ReadStats
	br := bufio.NewReaderSize(r, 64<<10)
	lineNo := 0
	for {
		line, tooLong, err := ReadLine(br, MaxLineBytes)
		if err == nil || len(line) > 0 || tooLong {
			lineNo++ // the file's line number: empty lines count
		}
		if len(line) > 0 || tooLong {
			st.Lines++
			complete := err == nil
			if tooLong {
				st.bad(lineNo)
			} else if bl := bytes.TrimSpace(line); len(bl) > 0 {
				var m Measurement
				cut, uerr := unmarshalBounded(bl, &m)
				if uerr == nil && cut > 0 {
					st.Partial++
					if len(st.PartialLines) < MaxNamedLines {
						st.PartialLines = append(st.PartialLines, lineNo)
					}
				}
				if uerr != nil {
					st.bad(lineNo)
					if !complete {
						st.Truncated = true
					}
				} else if ferr := fn(&m); ferr != nil {
					return st, fmt.Errorf("line %d: %w", lineNo, ferr)
				}
			} else {
				st.Lines--
			}
		}
		if errors.Is(err, io.EOF) {
			return st, nil
		}
		if err != nil {
			return st, err
		}
	}
}

// bad counts line n as bad.
func (st *ReadStats) bad(n int) {
	st.Bad++
	if len(st.BadLines) < MaxNamedLines {
		st.BadLines = append(st.BadLines, n)
	}
}

// ReadLine returns the next line of br without its newline, for readers of
// line-oriented measurement files (ReadJSONL here, and analysis). A line
// longer than max bytes is consumed and reported with tooLong (its bytes are
// not kept). err is io.EOF when the input ended before a newline. The
// returned slice may be br's buffer: it is valid until the next read.
func ReadLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, e := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > max+1 {
				tooLong, line = true, nil
			} else if line == nil && e == nil {
				// The common case: the whole line is in the buffer.
				return chunk[:len(chunk)-1], false, nil
			} else {
				line = append(line, chunk...)
			}
		}
		switch {
		case e == nil:
			return bytes.TrimSuffix(line, []byte("\n")), tooLong, nil
		case errors.Is(e, bufio.ErrBufferFull):
			continue
		default:
			return line, tooLong, e
		}
	}
}
