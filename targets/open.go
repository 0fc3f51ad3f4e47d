package targets

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// StdinName is the path that makes [Open] read standard input. Its targets
// and errors are reported under the name "stdin" ("stdin:3").
const StdinName = "-"

// Open opens a target list. path "-" reads stdin (which Open does not close);
// anything else is a file. The format is a ranked list when the first line
// is "rank,domain" (a Tranco list; see [NewRankedReader]), CSV when the
// name ends in ".csv" (any case) or when the first line is a CSV header
// with a url column (see [NewCSVReader]), and plain text otherwise (see
// [NewTextReader]). Targets
// read from a file have Source "path:line"; from stdin, "stdin:line".
//
// The returned Closer releases the file; call it when done with the Reader.
// A file that is missing, unreadable or a directory gives an error that
// names the path and says what to do.
func Open(path string, stdin io.Reader) (*Reader, io.Closer, error) {
	if path == StdinName {
		if stdin == nil {
			return nil, nil, errors.New("targets: no standard input to read the list from")
		}
		r, err := newReader(stdin, "stdin", false)
		if err != nil {
			return nil, nil, err
		}
		return r, io.NopCloser(stdin), nil
	}
	f, err := os.Open(path)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, nil, fmt.Errorf("targets: target list %s does not exist; check the path, or give - to read the list from stdin: %w", path, err)
		case errors.Is(err, fs.ErrPermission):
			return nil, nil, fmt.Errorf("targets: target list %s is not readable; check its permissions: %w", path, err)
		default:
			return nil, nil, fmt.Errorf("targets: cannot open target list %s: %w", path, err)
		}
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		return nil, nil, fmt.Errorf("targets: target list %s is a directory; give a file with one domain a line, or a CSV file", path)
	}
	r, err := newReader(f, path, strings.EqualFold(filepath.Ext(path), ".csv"))
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return r, f, nil
}

// newReader picks the format of a list: ranked (Tranco-style) when the
// first line is "rank,domain", whatever the name; else CSV when isCSV or
// when the first line is a CSV header with a url column; text otherwise.
func newReader(r io.Reader, name string, isCSV bool) (*Reader, error) {
	br := bufio.NewReaderSize(r, maxLine)
	line, err := peekLine(br)
	if err != nil {
		return nil, fmt.Errorf("targets: reading %s: %w", name, err)
	}
	if isRankedLine(line) {
		return NewRankedReader(br, name), nil
	}
	if !isCSV {
		isCSV = isCSVHeader(line)
	}
	if isCSV {
		return NewCSVReader(br, name)
	}
	return NewTextReader(br, name), nil
}

// peekLine returns the first line of br without consuming it, or as much of
// it as fits in br's buffer. It reads no more than it needs, so that a list
// piped slowly into stdin is not held up until the buffer fills.
func peekLine(br *bufio.Reader) ([]byte, error) {
	for n := 1; ; {
		_, err := br.Peek(n)
		b, _ := br.Peek(br.Buffered())
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return b[:i], nil
		}
		switch {
		case err == nil:
			n = len(b) + 1
		case errors.Is(err, io.EOF), errors.Is(err, bufio.ErrBufferFull):
			return b, nil
		default:
			return nil, err
		}
	}
}

// isCSVHeader reports whether line is a CSV header with at
// least two fields, one of them "url".
func isCSVHeader(line []byte) bool {
	line = bytes.TrimPrefix(line, []byte(utf8BOM))
	if bytes.IndexByte(line, ',') < 0 {
		return false
	}
	cr := csv.NewReader(bytes.NewReader(line))
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	return err == nil && len(header) > 1 && urlColumn(header) >= 0
}
