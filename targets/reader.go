package targets

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Errors for lines and rows that are not a target at all, reported in a
// [*LineError] like the errors of [Normalize].
var (
	// ErrLineTooLong means a text line longer than 64 KiB; the line is
	// skipped and reading goes on with the next one.
	ErrLineTooLong = errors.New("targets: line too long")
	// ErrBadRow means a CSV row that cannot be parsed (a stray quote) or
	// that has no url field.
	ErrBadRow = errors.New("targets: malformed CSV row")
	// ErrNoURLColumn means a CSV file whose header has no url column.
	ErrNoURLColumn = errors.New(`targets: CSV header has no "url" column`)
	// ErrRecordTooLong means a CSV record longer than 1 MiB, usually an
	// unterminated quote. It ends the list, since the parser cannot find
	// the next record.
	ErrRecordTooLong = errors.New("targets: CSV record longer than 1 MiB (unterminated quote?)")
)

const (
	// maxLine bounds a text line, and so the memory a Reader holds.
	maxLine = 64 << 10
	// maxRecord bounds a CSV record, which may span lines.
	maxRecord = 1 << 20
	// maxShownInput bounds LineError.Input for a line that is too long,
	// and the input that LineError.Error shows.
	maxShownInput = 200
	// maxShownLabel bounds a label quoted in an error.
	maxShownLabel = 70
)

// utf8BOM is stripped from the start of a list: editors on Windows write it.
const utf8BOM = "\ufeff"

// LineError reports one line (or CSV row) that is not a valid target. It is
// not fatal: the caller reports it and keeps calling [Reader.Next].
type LineError struct {
	// File is the list's name as given to the reader ("list.txt",
	// "stdin", "default").
	File string
	// Line is the 1-based line number (for a CSV row, the line of its url
	// field, or of the row's start when that is unknown).
	Line int
	// Input is the offending text (its first 200 bytes and "..." for a
	// line that is too long); empty when the row could not be parsed at
	// all. Error shows at most 200 bytes of it.
	Input string
	// Err is the reason, wrapping one of the package's sentinel errors.
	Err error
}

// Error reads like `list.txt:12: "1.2.3.4": IP literal, not a domain
// (skipped)`: the package prefix of Err is dropped, since the position
// already says where the message comes from.
func (e *LineError) Error() string {
	msg := "invalid target"
	if e.Err != nil {
		msg = strings.TrimPrefix(e.Err.Error(), "targets: ")
	}
	if e.Input == "" {
		return fmt.Sprintf("%s:%d: %s (skipped)", e.File, e.Line, msg)
	}
	return fmt.Sprintf("%s:%d: %q: %s (skipped)", e.File, e.Line, truncate(e.Input, maxShownInput), msg)
}

// Unwrap returns Err, so that errors.Is(err, ErrIPLiteral) works on a
// LineError.
func (e *LineError) Unwrap() error { return e.Err }

// Reader streams targets from a plain text list or a Citizen Lab CSV list,
// one line or record at a time. Targets are not deduplicated; see
// [Deduper] and [ReadAll]. A Reader is not safe for concurrent use.
type Reader struct {
	name string
	err  error // sticky: io.EOF or a fatal error

	// line is the current line of a text list, or the first line of the
	// last CSV record read.
	line int

	// text lists; ranked: a Tranco list, "rank,domain" a line
	br     *bufio.Reader
	ranked bool

	// CSV lists
	cr     *csv.Reader
	urlCol int
	limit  *limitReader
}

// NewTextReader returns a Reader for a plain text list: one domain or URL a
// line (see [Normalize] for the forms), blank lines skipped, '#' starting a
// comment (at the start of a line, or after a space or tab so that URL
// fragments like "http://x.kz/#!/" stay intact), surrounding space trimmed,
// LF or CRLF line endings, an optional UTF-8 byte order mark. name is used
// in Source ("name:line") and in errors.
func NewTextReader(r io.Reader, name string) *Reader {
	return &Reader{name: name, br: bufio.NewReaderSize(r, maxLine)}
}

// ErrNoRank means a line of a Tranco-style list that is not
// "rank,domain".
var ErrNoRank = errors.New(`targets: not a "rank,domain" line of a ranked list`)

// NewRankedReader returns a Reader for a Tranco-style ranked list (Tranco,
// Alexa, Umbrella, Majestic's top lists): one "rank,domain" a line, no
// header, e.g. "1,google.com". The rank is checked (digits) and dropped; the
// domain goes through [Normalize]. Blank lines, comments, line endings and a
// byte order mark are as in [NewTextReader]; a line that is not
// "rank,domain" is a [*LineError] wrapping [ErrNoRank].
func NewRankedReader(r io.Reader, name string) *Reader {
	return &Reader{name: name, br: bufio.NewReaderSize(r, maxLine), ranked: true}
}

// cutRank splits "rank,domain", the rank all digits.
func cutRank(line string) (domain string, ok bool) {
	rank, domain, ok := strings.Cut(line, ",")
	rank = strings.TrimSpace(rank)
	if !ok || rank == "" || len(rank) > 10 || strings.Trim(rank, "0123456789") != "" {
		return "", false
	}
	return strings.TrimSpace(domain), true
}

// isRankedLine reports whether line (a list's first) looks like
// "rank,domain": digits, a comma, then one field.
func isRankedLine(line []byte) bool {
	text := strings.TrimSpace(strings.TrimPrefix(string(line), utf8BOM))
	domain, ok := cutRank(text)
	return ok && domain != "" && !strings.ContainsAny(domain, ", \t\"")
}

// NewCSVReader returns a Reader for a CSV list with a header row, such as
// the Citizen Lab test lists (url,category_code,category_description,
// date_added,source,notes). The url column is found by name (any case);
// other columns are ignored and rows may have any number of fields. It reads
// the header at once and fails, naming the list, when there is no url
// column or no header at all.
func NewCSVReader(r io.Reader, name string) (*Reader, error) {
	lr := &limitReader{r: r, n: maxRecord}
	br := bufio.NewReader(lr)
	switch b, err := br.Peek(len(utf8BOM)); {
	case err == nil && string(b) == utf8BOM:
		br.Discard(len(utf8BOM))
	case err != nil && !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("targets: reading %s: %w", name, err)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	switch {
	case errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%s: %w: the file is empty", name, ErrNoURLColumn)
	case errors.Is(err, errRecordTooLong):
		return nil, fmt.Errorf("%s: %w", name, ErrRecordTooLong)
	case err != nil:
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %w: cannot parse the header: %v", name, ErrNoURLColumn, pe.Err)
		}
		return nil, fmt.Errorf("targets: reading %s: %w", name, err)
	}
	col := urlColumn(header)
	if col < 0 {
		return nil, fmt.Errorf("%s: %w (header is %q); use a CSV file with a url column, or a text file with one domain a line",
			name, ErrNoURLColumn, truncate(strings.Join(header, ","), maxShownInput))
	}
	line, _ := cr.FieldPos(0)
	return &Reader{name: name, cr: cr, urlCol: col, limit: lr, line: line}, nil
}

// urlColumn returns the index of the "url" field of a CSV header, or -1.
func urlColumn(header []string) int {
	for i, h := range header {
		if strings.EqualFold(strings.TrimSpace(h), "url") {
			return i
		}
	}
	return -1
}

// Name returns the list's name as given to the constructor.
func (r *Reader) Name() string { return r.name }

// Next returns the next target. At the end of the list it returns io.EOF.
// For a line that is not a valid target it returns a [*LineError]; the
// caller reports it and calls Next again. Any other error is fatal (an I/O
// error, wrapped with the list's name) and is returned again by later calls.
func (r *Reader) Next() (Target, error) {
	if r.err != nil {
		return Target{}, r.err
	}
	var (
		t   Target
		err error
	)
	if r.cr != nil {
		t, err = r.nextCSV()
	} else {
		t, err = r.nextText()
	}
	if err != nil {
		var le *LineError
		if !errors.As(err, &le) {
			r.err = err
		}
	}
	return t, err
}

func (r *Reader) nextText() (Target, error) {
	for {
		raw, tooLong, err := r.readLine()
		if err == io.EOF {
			return Target{}, io.EOF
		}
		if err != nil {
			return Target{}, fmt.Errorf("targets: reading %s: %w", r.name, err)
		}
		r.line++
		if r.line == 1 {
			raw = bytes.TrimPrefix(raw, []byte(utf8BOM))
		}
		if tooLong {
			if isComment(raw) {
				continue
			}
			return Target{}, &LineError{File: r.name, Line: r.line, Input: string(bytes.TrimSpace(raw)), Err: ErrLineTooLong}
		}
		text := bytes.TrimSpace(stripComment(raw))
		if len(text) == 0 {
			continue
		}
		input := string(text)
		if r.ranked {
			domain, ok := cutRank(input)
			if !ok {
				return Target{}, &LineError{File: r.name, Line: r.line, Input: input, Err: ErrNoRank}
			}
			input = domain
		}
		t, err := Normalize(input)
		if err != nil {
			return Target{}, &LineError{File: r.name, Line: r.line, Input: input, Err: err}
		}
		t.Source = r.source(r.line)
		return t, nil
	}
}

// readLine returns the next line without its line ending, valid until the
// next read. For a line longer than maxLine it returns a copy of its first
// bytes and tooLong, having skipped the rest. It returns io.EOF only when no
// bytes are left.
func (r *Reader) readLine() (line []byte, tooLong bool, err error) {
	line, err = r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		head := []byte(truncate(string(line), maxShownInput))
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = r.br.ReadSlice('\n')
		}
		if err == io.EOF {
			err = nil
		}
		return head, true, err
	}
	if err == io.EOF {
		if len(line) == 0 {
			return nil, false, io.EOF
		}
		err = nil
	}
	if err != nil {
		return nil, false, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, false, nil
}

// isComment reports whether the first non-space byte of line is '#'.
func isComment(line []byte) bool {
	t := bytes.TrimLeft(line, " \t")
	return len(t) > 0 && t[0] == '#'
}

// stripComment removes a comment: the whole line when its first non-space
// byte is '#', else from the first '#' that follows a space or a tab.
func stripComment(line []byte) []byte {
	if isComment(line) {
		return nil
	}
	for i := 1; i < len(line); i++ {
		if line[i] == '#' && (line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}

func (r *Reader) nextCSV() (Target, error) {
	for {
		r.limit.n = maxRecord
		rec, err := r.cr.Read()
		if err == io.EOF {
			return Target{}, io.EOF
		}
		if errors.Is(err, errRecordTooLong) {
			return Target{}, fmt.Errorf("targets: reading %s: after line %d: %w", r.name, r.line, ErrRecordTooLong)
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			// The parser has consumed the bad record and resumes at the
			// next one.
			return Target{}, &LineError{File: r.name, Line: pe.StartLine, Err: fmt.Errorf("%w: %v", ErrBadRow, pe.Err)}
		}
		if err != nil {
			return Target{}, fmt.Errorf("targets: reading %s: %w", r.name, err)
		}
		line, _ := r.cr.FieldPos(0)
		r.line = line
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a line of spaces, like the empty lines csv skips
		}
		if len(rec) <= r.urlCol {
			return Target{}, &LineError{File: r.name, Line: line, Input: truncate(strings.Join(rec, ","), maxShownInput),
				Err: fmt.Errorf("%w: no field %d (url) in a row of %d", ErrBadRow, r.urlCol+1, len(rec))}
		}
		line, _ = r.cr.FieldPos(r.urlCol)
		input := strings.TrimSpace(rec[r.urlCol])
		t, err := Normalize(input)
		if err != nil {
			return Target{}, &LineError{File: r.name, Line: line, Input: input, Err: err}
		}
		t.Source = r.source(line)
		return t, nil
	}
}

func (r *Reader) source(line int) string {
	return r.name + ":" + strconv.Itoa(line)
}

// ReadAll reads a whole list into memory, dropping duplicates (same domain
// and port; the first one is kept, in order) and collecting the line errors.
// It stops at the first fatal error and returns it with what was read. Use
// it for small lists and tests; a caller that may meet a long list streams
// with [Reader.Next] and a [Deduper] instead.
func ReadAll(r *Reader) ([]Target, []*LineError, error) {
	var (
		out  []Target
		bad  []*LineError
		seen = NewDeduper()
	)
	for {
		t, err := r.Next()
		if err == io.EOF {
			return out, bad, nil
		}
		if err != nil {
			var le *LineError
			if errors.As(err, &le) {
				bad = append(bad, le)
				continue
			}
			return out, bad, err
		}
		if !seen.Seen(t) {
			out = append(out, t)
		}
	}
}

// errRecordTooLong is returned by limitReader when its budget is spent.
var errRecordTooLong = errors.New("targets: record budget exceeded")

// limitReader fails once n bytes have been read since n was last set; the
// CSV reader resets n before each record, which bounds the memory that one
// record (a run-away quoted field) can take.
type limitReader struct {
	r io.Reader
	n int
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errRecordTooLong
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= n
	return n, err
}

// truncate returns at most max bytes of s, cut at a rune boundary, with
// "..." appended when something was cut.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
