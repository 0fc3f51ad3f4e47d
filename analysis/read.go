package analysis

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"kzprobe/measurement"
)

// Input formats, as FileStats.Format reports them. A ".gz" suffix in the
// name is not trusted: the gzip magic number decides, and "+gzip" is
// appended.
const (
	// FormatJSONL is one measurement per line (kzprobe's output, OONI's
	// jsonl and jsonl.gz archives).
	FormatJSONL = "jsonl"
	// FormatJSON is one or more JSON documents, each possibly spread over
	// many lines (OONI's API returns one measurement so), or a JSON array
	// of measurements.
	FormatJSON = "json"
)

// FileStats says what reading one input found.
type FileStats struct {
	// Path is the file as named (or found under a named folder).
	Path string `json:"path"`
	// Format is FormatJSONL or FormatJSON, with "+gzip" when compressed;
	// empty when the file could not be opened.
	Format string `json:"format"`
	// Records counts the measurements read.
	Records int `json:"records"`
	// Bad counts lines (or documents) skipped: not JSON, not a
	// measurement object, no valid measurement time, longer than the line
	// bound, or cut.
	Bad int `json:"bad"`
	// Truncated is true when the input ended inside a record: a write cut
	// by a crash, or a partial download.
	Truncated bool `json:"truncated"`
	// Error is why the file could not be read to its end, empty if it was.
	Error string `json:"error,omitempty"`
}

// Warning is one skipped line or unreadable file.
type Warning struct {
	// Source is "file:line", "file:@offset" or "file".
	Source string `json:"source"`
	// Message says what was wrong.
	Message string `json:"message"`
}

func (w Warning) String() string { return w.Source + ": " + w.Message }

// Reader reads measurements from files, folders and streams. Its zero value
// is ready to use. It holds at most one line (or one JSON document) in
// memory at a time, so it reads any amount of data in bounded memory.
type Reader struct {
	// MaxLineBytes bounds one line or one JSON document; longer ones are
	// skipped and counted as bad. Zero means measurement.MaxLineBytes (64 MiB).
	MaxLineBytes int
	// Warn is called for each skipped line and unreadable file. Nil
	// discards the warnings (FileStats still counts them).
	Warn func(Warning)
	// Stdin is what ReadPaths reads for the path Stdin ("-"). Nil means
	// os.Stdin.
	Stdin io.Reader
	// Limits bounds what one record may decode; the zero value means the
	// defaults.
	Limits Limits
	// MaxGzipRatio is how many times its compressed size a gzip file may
	// expand to before a warning says so (reading goes on). Zero means
	// DefaultMaxGzipRatio.
	MaxGzipRatio int
	// Progress, when not nil, is called as reading advances: at each
	// file's start and end and every few hundred KiB read. It should be
	// cheap: a display throttles itself.
	Progress func(Progress)

	prog progressState
}

func (rd *Reader) maxLine() int {
	if rd.MaxLineBytes > 0 {
		return rd.MaxLineBytes
	}
	return measurement.MaxLineBytes
}

func (rd *Reader) warn(src, format string, a ...any) {
	if rd.Warn != nil {
		rd.Warn(Warning{Source: src, Message: fmt.Sprintf(format, a...)})
	}
}

// ErrStop may be returned by a record callback to end reading early
// without an error.
var ErrStop = errors.New("analysis: stop")

// Stdin is the path that names standard input in ReadPaths and Files.
const Stdin = "-"

// Files expands paths into the files to read: a file is taken as named,
// whatever its extension; a folder is walked, in lexical order, for files
// named *.json, *.jsonl, *.jsonl.gz or *.json.gz (hidden files and folders
// are skipped); Stdin ("-") is kept as it is. Only regular files (or links
// to them) are read: a device, a named pipe, a socket or a link to a folder
// is left out (Reader.ReadPaths names each and says why), since reading
// /dev/zero or a pipe nobody writes to would never end. A path that does
// not exist is an error.
func Files(paths []string) ([]string, error) {
	files, _, err := expand(paths)
	return files, err
}

// expand is Files, also returning what was left out: each path with why.
func expand(paths []string) (files []string, skipped [][2]string, err error) {
	for _, p := range paths {
		if p == Stdin {
			files = append(files, p)
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, nil, err
		}
		if !fi.IsDir() {
			if why := notRegular(fi.Mode()); why != "" {
				skipped = append(skipped, [2]string{p, why})
			} else {
				files = append(files, p)
			}
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if path != p && strings.HasPrefix(name, ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() || !isMeasurementName(name) {
				return nil
			}
			if d.Type().IsRegular() {
				found = append(found, path)
				return nil
			}
			// A link, a device, a pipe or a socket: what it is (a link
			// is followed once, to a file it names).
			fi, err := os.Stat(path)
			switch {
			case err != nil:
				skipped = append(skipped, [2]string{path, fmt.Sprintf("skipped: %v", err)})
			case fi.IsDir():
				skipped = append(skipped, [2]string{path, "skipped: a link to a folder (links inside a folder are not followed into folders)"})
			case notRegular(fi.Mode()) != "":
				skipped = append(skipped, [2]string{path, notRegular(fi.Mode())})
			default:
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	return files, skipped, nil
}

// notRegular says why a file of mode m is not read, "" for a regular file.
func notRegular(m fs.FileMode) string {
	var what string
	switch {
	case m.IsRegular():
		return ""
	case m&fs.ModeNamedPipe != 0:
		return "skipped: a named pipe, not a regular file (to read a stream, pipe it to standard input and name it -)"
	case m&fs.ModeCharDevice != 0:
		what = "a character device"
	case m&fs.ModeDevice != 0:
		what = "a block device"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m.IsDir():
		what = "a folder"
	default:
		what = "not a regular file (" + m.Type().String() + ")"
		return "skipped: " + what
	}
	return "skipped: " + what + ", not a regular file"
}

func isMeasurementName(name string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".gz")
	return strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".jsonl")
}

// ReadPaths reads every file of Files(paths), calling fn for each record in
// order; Stdin ("-") reads Reader.Stdin. A file that cannot be opened or
// read, or is not a regular file, is reported (FileStats.Error and a
// warning) and the others are still read; an error from fn stops
// everything and is returned.
func (rd *Reader) ReadPaths(paths []string, fn func(*Record) error) ([]FileStats, error) {
	files, skipped, err := expand(paths)
	if err != nil {
		return nil, err
	}
	stats := make([]FileStats, 0, len(files)+len(skipped))
	for _, s := range skipped {
		rd.warn(s[0], "%s", s[1])
		stats = append(stats, FileStats{Path: s[0], Error: s[1]})
	}
	rd.prog = progressState{Progress: Progress{Files: len(files)}}
	if rd.Progress != nil {
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil && f != Stdin {
				rd.prog.TotalBytes += fi.Size()
			}
		}
	}
	for _, f := range files {
		var st FileStats
		if f == Stdin {
			st, err = rd.Read(f, rd.stdin(), fn)
		} else {
			st, err = rd.ReadFile(f, fn)
		}
		stats = append(stats, st)
		if err != nil {
			if errors.Is(err, ErrStop) {
				return stats, nil
			}
			return stats, err
		}
	}
	return stats, nil
}

func (rd *Reader) stdin() io.Reader {
	if rd.Stdin != nil {
		return rd.Stdin
	}
	return os.Stdin
}

// ReadFile reads one regular file. Errors opening or reading it, or its
// not being a regular file, are recorded in the returned FileStats (and
// warned), not returned; only fn's errors are.
func (rd *Reader) ReadFile(path string, fn func(*Record) error) (FileStats, error) {
	f, err := os.Open(path)
	if err != nil {
		rd.warn(path, "%v", err)
		rd.prog.FilesDone++
		return FileStats{Path: path, Error: err.Error()}, nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && notRegular(fi.Mode()) != "" {
		why := notRegular(fi.Mode())
		rd.warn(path, "%s", why)
		rd.prog.FilesDone++
		return FileStats{Path: path, Error: why}, nil
	}
	return rd.Read(path, f, fn)
}

// Read reads measurements from r, named name in sources and warnings. The
// format is detected from the content: gzip by its magic number, then a
// JSON array, one JSON object per line, or JSON documents spread over
// lines. An I/O or gzip error ends the input and is recorded in
// FileStats.Error; only fn's errors are returned.
func (rd *Reader) Read(name string, r io.Reader, fn func(*Record) error) (FileStats, error) {
	st := FileStats{Path: name}
	rd.startFile(name, &st)
	defer func() { rd.endFile(st) }()
	cr := &countingReader{r: r, rd: rd}
	br := bufio.NewReaderSize(cr, 256<<10)
	gz := false
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			st.Error = "gzip: " + err.Error()
			rd.warn(name, "%s", st.Error)
			return st, nil
		}
		defer zr.Close()
		max := int64(rd.MaxGzipRatio)
		if max <= 0 {
			max = DefaultMaxGzipRatio
		}
		z := &ratioReader{r: zr, in: cr, max: max}
		z.warn = func() {
			rd.warn(name, "gzip expands more than %d times its size (%s to %s so far), unusual for measurements: a line repeated, or a file made to cost CPU time; reading on",
				max, sizeText(cr.n), sizeText(z.out))
		}
		br = bufio.NewReaderSize(z, 256<<10)
		gz = true
	}
	lr := &lineReader{br: br, max: rd.maxLine()}
	format, array, first, err := sniff(lr)
	firstTooLong := errors.Is(err, errFirstTooLong)
	if firstTooLong {
		err = nil
	}
	if gz {
		st.Format = format + "+gzip"
	} else {
		st.Format = format
	}
	if err != nil && !errors.Is(err, io.EOF) {
		st.Error = err.Error()
		rd.warn(name, "%v", err)
		return st, nil
	}
	if format == FormatJSON {
		err = rd.readDocuments(name, io.MultiReader(bytes.NewReader(first), br), array, &st, fn)
	} else {
		err = rd.readLines(name, lr, first, firstTooLong, &st, fn)
	}
	return st, err
}

// sniff decides between FormatJSONL and FormatJSON. It returns the bytes
// it consumed (the first line, or nothing) for the reader to replay. An
// input that opens a JSON array is JSON (array is then true). One whose
// first non-blank line is a whole JSON value is JSONL. One whose first line
// is a short unfinished object ending where a pretty-printer breaks lines
// ("{", `{"annotations": {`, `"a": 1,`) is JSON documents; any other line
// that does not parse is a corrupt JSONL line, so that a bad first line
// loses only itself. Anything else is read as JSONL, which counts its lines
// as bad.
func sniff(lr *lineReader) (format string, array bool, first []byte, err error) {
	br := lr.br
	// Skip a UTF-8 byte order mark and leading blank space.
	if b, _ := br.Peek(3); bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	for {
		b, err := br.Peek(1)
		if err != nil {
			return FormatJSONL, false, nil, err
		}
		if !isSpace(b[0]) {
			if b[0] == '[' {
				return FormatJSON, true, nil, nil
			}
			if b[0] != '{' {
				return FormatJSONL, false, nil, nil
			}
			break
		}
		br.Discard(1)
	}
	line, tooLong, err := lr.next()
	if tooLong {
		// A first line too long to hold is read (and counted) as JSONL:
		// it is gone from br, so say so, for readLines to count it.
		return FormatJSONL, false, nil, errFirstTooLong
	}
	// Kept in lr's buffer (next's slice may be br's), which readLines
	// does not reuse before it has handled this line.
	lr.buf = append(lr.buf[:0], line...)
	line = lr.buf
	complete := err == nil
	if err != nil && !errors.Is(err, io.EOF) {
		return FormatJSONL, false, line, err
	}
	t := trimSpace(line)
	if json.Valid(t) || !complete || len(t) > shortLine || !bytes.ContainsAny(t[len(t)-1:], "{[,") {
		if complete {
			lr.buf = append(lr.buf, '\n')
			line = lr.buf
		}
		return FormatJSONL, false, line, nil
	}
	return FormatJSON, false, append(append([]byte(nil), line...), '\n'), nil
}

// lineReader reads lines as measurement.ReadLine does, but reads a line
// longer than br's buffer into buf, kept for the next one, which it grows
// by doubling: a file of long lines costs the longest line once, where
// ReadLine allocates each anew (through append's 1.25 growth, which holds
// the old and the new slice at once many times over).
type lineReader struct {
	br  *bufio.Reader
	max int
	buf []byte
}

// next returns the next line without its newline, or tooLong (and no
// bytes) for a line over max; err is io.EOF when the input ended before a
// newline. The slice is valid until the next call.
func (lr *lineReader) next() (line []byte, tooLong bool, err error) {
	line = lr.buf[:0]
	for {
		chunk, e := lr.br.ReadSlice('\n')
		if !tooLong {
			switch {
			case len(line)+len(chunk) > lr.max+1:
				tooLong, line = true, nil
			case len(line) == 0 && e == nil:
				// The common case: the whole line is in br's buffer.
				return chunk[:len(chunk)-1], false, nil
			default:
				if len(line)+len(chunk) > cap(line) {
					grown := make([]byte, len(line), growTo(cap(line), len(line)+len(chunk), lr.max+1))
					copy(grown, line)
					line = grown
				}
				line = append(line, chunk...)
				lr.buf = line[:0]
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

// growTo is the capacity a buffer of capacity c grows to for need bytes,
// at most limit: twice c (64 KiB at least), or limit itself once twice
// that would pass it, so that the last step never copies a buffer nearly
// as large as the limit into one of the limit (both held at once).
func growTo(c, need, limit int) int {
	c = max(2*c, need, 64<<10)
	if 2*c > limit {
		c = limit
	}
	return max(c, need)
}

// errFirstTooLong is sniff's report that the first line was longer than
// the bound, and consumed.
var errFirstTooLong = errors.New("analysis: first line too long")

// shortLine is the longest first line taken for the start of a
// pretty-printed JSON document rather than a corrupt JSONL line.
const shortLine = 256

// readLines reads one record per line. first is a line already consumed
// (with its newline, if it had one); firstTooLong says the first line was
// consumed and was over the bound.
func (rd *Reader) readLines(name string, lr *lineReader, first []byte, firstTooLong bool, st *FileStats, fn func(*Record) error) error {
	lineNo := 0
	maxLine := rd.maxLine()
	handle := func(line []byte, tooLong, complete bool) error {
		lineNo++
		src := fmt.Sprintf("%s:%d", name, lineNo)
		if tooLong {
			st.Bad++
			rd.warn(src, "line longer than %d bytes, skipped", maxLine)
			return nil
		}
		line = trimSpace(line)
		if len(line) == 0 {
			return nil
		}
		rec, skipped, err := decodeRecord(line, rd.Limits)
		if err != nil {
			st.Bad++
			if !complete {
				st.Truncated = true
				rd.warn(src, "last line cut (no newline at the end): %v", err)
			} else {
				rd.warn(src, "%v", err)
			}
			return nil
		}
		if skipped != "" {
			rd.warn(src, "%s", skipped)
		}
		rec.Source = src
		st.Records++
		return fn(rec)
	}
	switch {
	case firstTooLong:
		if err := handle(nil, true, true); err != nil {
			return err
		}
	case first != nil:
		complete := len(first) > 0 && first[len(first)-1] == '\n'
		if err := handle(first, false, complete); err != nil {
			return err
		}
	}
	for {
		line, tooLong, err := lr.next()
		if len(line) > 0 || tooLong {
			if ferr := handle(line, tooLong, err == nil); ferr != nil {
				return ferr
			}
		} else if err == nil {
			lineNo++ // an empty line
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			st.Error = err.Error()
			rd.warn(fmt.Sprintf("%s:%d", name, lineNo+1), "read error: %v", err)
			return nil
		}
	}
}

// decodeRecord decodes one measurement within lim (see decodeFast) and
// normalizes it. skipped says what the bounds left out, "" when nothing.
func decodeRecord(b []byte, lim Limits) (rec *Record, skipped string, err error) {
	if len(b) == 0 || b[0] != '{' {
		return nil, "", errNotObject(b)
	}
	rec = new(Record)
	d := newDecoder(lim)
	if err := d.record(b, rec); err != nil {
		return nil, "", err
	}
	if err := rec.Normalize(); err != nil {
		return nil, "", err
	}
	return rec, d.skipped(), nil
}

func errNotObject(b []byte) error {
	return fmt.Errorf("%w (starts with %q)", ErrNotObj, truncate(string(b), 12))
}

// readDocuments reads a JSON array of measurements, or JSON documents one
// after the other, each possibly over many lines (docReader). Invalid JSON
// ends the input (there is no line to resynchronise on); a document of the
// wrong shape is skipped.
func (rd *Reader) readDocuments(name string, r io.Reader, array bool, st *FileStats, fn func(*Record) error) error {
	d := &docReader{r: r, max: rd.maxLine()}
	inArray := false
	if array {
		if _, ok := d.peek(); ok { // the opening [
			d.pos++
			inArray = true
		}
	}
	for {
		c, ok := d.peek()
		if !ok {
			if d.err != nil {
				return rd.docError(name, d.offset(), st, d.err)
			}
			if inArray {
				st.Truncated = true
				st.Bad++
				rd.warn(name, "input ends inside the JSON array")
			}
			return nil
		}
		if inArray && (c == ']' || c == ',') {
			d.pos++
			inArray = c == ','
			continue
		}
		off := d.offset()
		raw, err := d.value()
		if errors.Is(err, errDocOverBound) {
			st.Bad++
			rd.warn(fmt.Sprintf("%s:@%d", name, off), "JSON document longer than %d bytes, skipped", rd.maxLine())
			continue
		}
		if err != nil {
			return rd.docError(name, off, st, err)
		}
		src := fmt.Sprintf("%s:@%d", name, off)
		rec, skipped, derr := decodeRecord(raw, rd.Limits)
		if derr != nil {
			st.Bad++
			rd.warn(src, "%v", derr)
			continue
		}
		if skipped != "" {
			rd.warn(src, "%s", skipped)
		}
		rec.Source = src
		st.Records++
		if err := fn(rec); err != nil {
			return err
		}
	}
}

// docError reports why reading documents stopped at offset off.
func (rd *Reader) docError(name string, off int64, st *FileStats, err error) error {
	st.Bad++
	src := fmt.Sprintf("%s:@%d", name, off)
	switch {
	case errors.Is(err, errCut):
		st.Truncated = true
		rd.warn(src, "input ends inside a JSON document (cut?)")
	case errors.Is(err, errDocTooLong):
		rd.warn(src, "JSON document longer than %d bytes, rest of the file skipped", rd.maxLine())
	case isScanError(err):
		rd.warn(src, "invalid JSON, rest of the file skipped: %v", err)
	default:
		st.Error = err.Error()
		rd.warn(src, "read error: %v", err)
	}
	return nil
}

var errDocTooLong = errors.New("analysis: JSON document too long")
