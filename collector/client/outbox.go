package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"kzprobe/collector"
	"kzprobe/measurement"
)

// CursorSuffix names an outbox's cursor: FILE + CursorSuffix.
const CursorSuffix = ".submit"

// Backoff bounds, and the spec's hour (bk-003 3.2).
const (
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
	// ReopenAfter is the age past which a report refused with a 4xx is
	// replaced by a new one.
	ReopenAfter = time.Hour
	// cursorSyncInterval bounds how often the cursor is fsynced; in
	// between it is renamed into place but may be older after a power
	// loss, which only resends (deduplicated) records.
	cursorSyncInterval = 5 * time.Second
)

// Cursor is an outbox's state, kept in FILE.submit as JSON.
type Cursor struct {
	// Collector is the URL the offset counts for; another collector
	// starts from the file's beginning.
	Collector string `json:"collector"`
	// Offset is the byte offset of the first record not yet answered.
	Offset int64 `json:"offset"`
	// Reports maps a record's report_id to the collector's report its
	// records go to.
	Reports map[string]Report `json:"reports"`
}

// Report is one report the collector opened for the outbox.
type Report struct {
	ID     string    `json:"id"`
	Opened time.Time `json:"opened"`
}

// Stats count what an outbox did.
type Stats struct {
	// Sent counts records the collector accepted (a duplicate too).
	Sent int
	// Rejected counts records refused for good (4xx): they stay in the
	// file, past the cursor.
	Rejected int
	// Rewritten counts records sent with their report_id replaced.
	Rewritten int
	// Retries counts sends repeated after a failure.
	Retries int
}

// Outbox sends the records of one JSONL file (see the package doc).
type Outbox struct {
	// Warn receives one line per rejected record and per failure that
	// starts a retry. Nil discards.
	Warn func(msg string)
	// MinBackoff and MaxBackoff bound the waits between retries. Zero
	// means the defaults.
	MinBackoff, MaxBackoff time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time

	path   string
	c      *Client
	notify chan struct{}

	mu       sync.Mutex
	cur      Cursor
	stats    Stats
	lastSync time.Time
}

// OpenOutbox returns the outbox of path for c, reading its cursor
// (path + CursorSuffix) if there is one for c's URL.
func OpenOutbox(path string, c *Client) (*Outbox, error) {
	o := &Outbox{path: path, c: c, notify: make(chan struct{}, 1)}
	o.cur = Cursor{Collector: c.URL(), Reports: map[string]Report{}}
	data, err := os.ReadFile(path + CursorSuffix)
	switch {
	case err == nil:
		var cur Cursor
		if json.Unmarshal(data, &cur) == nil && cur.Collector == c.URL() && cur.Offset >= 0 {
			if cur.Reports == nil {
				cur.Reports = map[string]Report{}
			}
			o.cur = cur
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("client: reading the outbox cursor: %w", err)
	}
	return o, nil
}

// Path returns the outbox's JSONL file.
func (o *Outbox) Path() string { return o.path }

// Adopt records that the collector opened report id for the file's
// records with report_id id (kzprobe run --submit opens its report before
// measuring, so its records carry the collector's ID).
func (o *Outbox) Adopt(id string, opened time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cur.Reports[id] = Report{ID: id, Opened: opened}
	return o.saveLocked(true)
}

// Notify says that a record was appended to the file.
func (o *Outbox) Notify() {
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

// Stats returns the counts so far.
func (o *Outbox) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stats
}

// Pending returns the bytes of the file past the cursor: what is not yet
// submitted.
func (o *Outbox) Pending() (int64, error) {
	st, err := os.Stat(o.path)
	if err != nil {
		return 0, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return st.Size() - o.cur.Offset, nil
}

func (o *Outbox) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Outbox) warn(format string, a ...any) {
	if o.Warn != nil {
		o.Warn(fmt.Sprintf(format, a...))
	}
}

// ErrUnauthorized is returned by Run when the collector refuses the token:
// no record can be sent until the configuration changes.
var ErrUnauthorized = errors.New("client: the collector refused the token (401 or 403)")

// Run sends the file's records from the cursor on, each as soon as it is
// complete in the file (ended by a newline), retrying failures with
// backoff, until done is closed and every complete record is answered, or
// ctx ends (its error is returned; what is unsent stays in the file).
// A nil done sends what is in the file and returns.
func (o *Outbox) Run(ctx context.Context, done <-chan struct{}) error {
	defer func() {
		o.mu.Lock()
		o.saveLocked(true)
		o.mu.Unlock()
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		n, err := o.sendAvailable(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		if done == nil {
			return nil
		}
		select {
		case <-done:
			// One last pass for what was written before done.
			done = nil
		case <-o.notify:
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sendAvailable sends every complete record past the cursor; n counts
// those answered.
func (o *Outbox) sendAvailable(ctx context.Context) (n int, err error) {
	f, err := os.Open(o.path)
	if err != nil {
		return 0, fmt.Errorf("client: opening the outbox: %w", err)
	}
	defer f.Close()
	o.mu.Lock()
	off := o.cur.Offset
	o.mu.Unlock()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0, fmt.Errorf("client: reading the outbox: %w", err)
	}
	br := bufio.NewReaderSize(f, 256<<10)
	for {
		line, size, err := readLine(br)
		if errors.Is(err, io.EOF) {
			return n, nil // no complete record further (a cut one waits)
		}
		if err != nil {
			return n, fmt.Errorf("client: reading the outbox: %w", err)
		}
		if len(line) == 0 {
			o.reject("a line longer than %d bytes: skipped", measurement.MaxLineBytes)
		} else if err := o.send(ctx, bytes.TrimRight(line, "\r\n")); err != nil {
			return n, err
		}
		n++
		o.mu.Lock()
		o.cur.Offset += size
		o.saveLocked(false)
		o.mu.Unlock()
	}
}

// readLine returns the next line with its newline and its length in the
// file; io.EOF when there is no complete line left (a cut one waits for
// its end). A line longer than measurement.MaxLineBytes is returned empty
// (the collector would refuse it; the cursor passes it).
func readLine(br *bufio.Reader) (line []byte, n int64, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		n += int64(len(chunk))
		if n <= int64(measurement.MaxLineBytes) {
			line = append(line, chunk...)
		} else {
			line = line[:0]
		}
		switch {
		case err == nil:
			return line, n, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		}
		return nil, n, err
	}
}

// envelope is what the outbox reads of a record.
type envelope struct {
	DataFormatVersion string `json:"data_format_version"`
	ReportID          string `json:"report_id"`
	UID               string `json:"measurement_uid"`
	TestName          string `json:"test_name"`
	TestVersion       string `json:"test_version"`
	TestStartTime     string `json:"test_start_time"`
	SoftwareName      string `json:"software_name"`
	SoftwareVersion   string `json:"software_version"`
	ProbeASN          string `json:"probe_asn"`
	ProbeCC           string `json:"probe_cc"`
}

// send submits one record until the collector answers it: accepted,
// refused for good (counted and warned, nil returned), or ctx ends.
func (o *Outbox) send(ctx context.Context, line []byte) error {
	if len(bytes.TrimSpace(line)) == 0 {
		return nil
	}
	var env envelope
	if err := json.Unmarshal(line, &env); err != nil || env.ReportID == "" {
		o.reject("a line that is not a record with a report_id: skipped")
		return nil
	}
	reopened := false
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			o.count(func(s *Stats) { s.Retries++ })
		}
		rep, err := o.report(ctx, &env)
		if err != nil {
			var se *StatusError
			if errors.As(err, &se) && se.Permanent() {
				if se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden {
					return ErrUnauthorized
				}
				o.reject("record %s: %v", env.UID, err)
				return nil
			}
			if err := o.wait(ctx, attempt, err); err != nil {
				return err
			}
			continue
		}
		content := line
		if rep.ID != env.ReportID {
			if content, err = ReplaceReportID(line, rep.ID); err != nil {
				o.reject("record %s: %v", env.UID, err)
				return nil
			}
		}
		_, err = o.c.Update(ctx, rep.ID, content)
		if err == nil {
			o.count(func(s *Stats) {
				s.Sent++
				if rep.ID != env.ReportID {
					s.Rewritten++
				}
			})
			return nil
		}
		var se *StatusError
		if errors.As(err, &se) && se.Permanent() {
			switch {
			case se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden:
				return ErrUnauthorized
			case !reopened && (se.Status == http.StatusNotFound || se.Status == http.StatusGone ||
				o.now().Sub(rep.Opened) > ReopenAfter):
				// The report is gone, or the spec's hour has passed: a
				// new report, and the record sent in it.
				reopened = true
				o.forget(env.ReportID)
				continue
			}
			o.reject("record %s refused: %v", env.UID, err)
			return nil
		}
		if err := o.wait(ctx, attempt, err); err != nil {
			return err
		}
	}
}

// report returns the collector's report for env's report_id, opening one
// if there is none.
func (o *Outbox) report(ctx context.Context, env *envelope) (Report, error) {
	o.mu.Lock()
	rep, ok := o.cur.Reports[env.ReportID]
	o.mu.Unlock()
	if ok {
		return rep, nil
	}
	opened := o.now()
	id, err := o.c.Open(ctx, OpenRequestOf(env.DataFormatVersion, env.ProbeASN, env.ProbeCC, env.SoftwareName, env.SoftwareVersion, env.TestName, env.TestVersion, env.TestStartTime))
	if err != nil {
		return Report{}, err
	}
	rep = Report{ID: id, Opened: opened.UTC()}
	o.mu.Lock()
	o.cur.Reports[env.ReportID] = rep
	o.saveLocked(true)
	o.mu.Unlock()
	return rep, nil
}

// OpenRequestOf is the open request for records with these envelope
// fields.
func OpenRequestOf(dataFormatVersion, asn, cc, softwareName, softwareVersion, testName, testVersion, testStartTime string) collector.OpenRequest {
	return collector.OpenRequest{
		DataFormatVersion: dataFormatVersion,
		Format:            collector.FormatJSON,
		ProbeASN:          asn,
		ProbeCC:           cc,
		SoftwareName:      softwareName,
		SoftwareVersion:   softwareVersion,
		TestName:          testName,
		TestVersion:       testVersion,
		TestStartTime:     testStartTime,
	}
}

func (o *Outbox) forget(reportID string) {
	o.mu.Lock()
	delete(o.cur.Reports, reportID)
	o.mu.Unlock()
}

func (o *Outbox) reject(format string, a ...any) {
	o.count(func(s *Stats) { s.Rejected++ })
	o.warn(format, a...)
}

func (o *Outbox) count(f func(*Stats)) {
	o.mu.Lock()
	f(&o.stats)
	o.mu.Unlock()
}

// wait sleeps before retry attempt+1: exponential backoff with jitter
// from MinBackoff to MaxBackoff, or the collector's Retry-After.
func (o *Outbox) wait(ctx context.Context, attempt int, cause error) error {
	lo, hi := o.MinBackoff, o.MaxBackoff
	if lo <= 0 {
		lo = DefaultMinBackoff
	}
	if hi <= 0 {
		hi = DefaultMaxBackoff
	}
	d := lo << min(attempt, 16)
	if d > hi || d <= 0 {
		d = hi
	}
	d = d/2 + rand.N(d/2+1)
	var se *StatusError
	if errors.As(cause, &se) && se.RetryAfter > 0 {
		d = min(se.RetryAfter, hi)
	}
	if attempt == 0 || attempt%10 == 9 {
		o.warn("collector: %v; retrying in %s (the records are kept)", cause, d.Round(time.Millisecond))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// saveLocked writes the cursor through a temporary file renamed over
// it; it is fsynced when sync is set or cursorSyncInterval has passed.
func (o *Outbox) saveLocked(sync bool) error {
	data, _ := json.Marshal(o.cur)
	tmp := o.path + CursorSuffix + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(append(data, '\n'))
	if now := o.now(); sync || now.Sub(o.lastSync) > cursorSyncInterval {
		o.lastSync = now
		if werr == nil {
			werr = f.Sync()
		}
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(tmp)
		return werr
	}
	if err := os.Rename(tmp, o.path+CursorSuffix); err != nil {
		return err
	}
	if sync {
		if d, err := os.Open(filepath.Dir(o.path)); err == nil {
			_ = d.Sync()
			d.Close()
		}
	}
	return nil
}

// ReplaceReportID returns line, a JSON object, with the value of its
// top-level report_id replaced by id; every other byte is unchanged. A
// line with no report_id, or with two, is an error.
func ReplaceReportID(line []byte, id string) ([]byte, error) {
	out, replaced, err := collector.SetReportID(line, id)
	if err == nil && !replaced {
		return nil, errors.New("client: the record has no report_id")
	}
	return out, err
}
