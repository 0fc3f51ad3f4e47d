package collector

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// report is one report the collector opened.
type report struct {
	ID       string    `json:"id"`
	TestName string    `json:"test_name"`
	ProbeCC  string    `json:"probe_cc"`
	ProbeASN string    `json:"probe_asn"`
	Opened   time.Time `json:"opened"`
	// Closed is set on a close line of the journal.
	Closed bool `json:"closed,omitempty"`

	// active is the last open or update, on the monotonic clock; a
	// report inactive for StaleAfter is closed.
	active time.Time
}

// reports is the set of reports, kept in a journal so that a collector
// restarted (or killed) keeps accepting the reports it opened: a probe
// resending after a crash finds its report open. Each open and close is
// one JSON line, synced before the answer.
type reports struct {
	path       string
	staleAfter time.Duration
	max        int

	mu      sync.Mutex
	f       *os.File
	open    map[string]*report
	nextGC  time.Time
	journal int // lines in the journal since it was compacted
}

// openReports reads the journal at path (creating it), keeping the
// reports still open, and rewrites it with only those. An empty path
// keeps reports in memory only.
func openReports(path string, staleAfter time.Duration, max int, now time.Time) (*reports, error) {
	rs := &reports{path: path, staleAfter: staleAfter, max: max, open: map[string]*report{}}
	if path == "" {
		return rs, nil
	}
	if data, err := os.ReadFile(path); err == nil {
		for line := range bytes.SplitSeq(data, []byte("\n")) {
			var r report
			if json.Unmarshal(line, &r) != nil || r.ID == "" {
				continue // a line cut by a crash
			}
			if r.Closed {
				delete(rs.open, r.ID)
				continue
			}
			r.active = now // inactivity counts from the restart
			rs.open[r.ID] = &r
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("collector: reading the reports journal: %w", err)
	}
	if err := rs.compact(); err != nil {
		return nil, err
	}
	return rs, nil
}

// compact rewrites the journal with the open reports only (through a
// temporary file renamed over it) and reopens it for appending.
func (rs *reports) compact() error {
	if rs.f != nil {
		rs.f.Close()
		rs.f = nil
	}
	tmp := rs.path + ".tmp"
	var buf bytes.Buffer
	for _, r := range rs.open {
		b, _ := json.Marshal(r)
		buf.Write(append(b, '\n'))
	}
	if err := writeSynced(tmp, buf.Bytes()); err != nil {
		return fmt.Errorf("collector: writing the reports journal: %w", err)
	}
	if err := os.Rename(tmp, rs.path); err != nil {
		return fmt.Errorf("collector: writing the reports journal: %w", err)
	}
	f, err := os.OpenFile(rs.path, os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("collector: opening the reports journal: %w", err)
	}
	rs.f = f
	rs.journal = len(rs.open)
	return syncDir(filepath.Dir(rs.path))
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil // Windows cannot open a folder; NTFS journals it
	}
	defer d.Close()
	_ = d.Sync()
	return nil
}

// errTooManyReports is returned by add when max reports are open.
var errTooManyReports = errors.New("collector: too many open reports")

// add opens a report for q, journals it and returns it.
func (rs *reports) add(q *OpenRequest, now time.Time) (*report, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.gc(now)
	if len(rs.open) >= rs.max {
		return nil, errTooManyReports
	}
	r := &report{
		ID:       newReportID(now, q),
		TestName: q.TestName,
		ProbeCC:  q.ProbeCC,
		ProbeASN: q.ProbeASN,
		Opened:   now.UTC().Truncate(time.Second),
		active:   now,
	}
	if err := rs.append(r); err != nil {
		return nil, err
	}
	rs.open[r.ID] = r
	return r, nil
}

// append journals r and syncs the journal.
func (rs *reports) append(r *report) error {
	if rs.f == nil {
		return nil
	}
	b, _ := json.Marshal(r)
	if _, err := rs.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("collector: journaling report: %w", err)
	}
	if err := rs.f.Sync(); err != nil {
		return fmt.Errorf("collector: journaling report: %w", err)
	}
	rs.journal++
	return nil
}

// get returns the open report id, touching its timer; nil with gone true
// when it was closed or went stale, nil with gone false when unknown.
func (rs *reports) get(id string, now time.Time) (r *report, gone bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r = rs.open[id]
	if r == nil {
		return nil, false
	}
	if now.Sub(r.active) > rs.staleAfter {
		rs.closeLocked(r)
		return nil, true
	}
	r.active = now
	return r, false
}

// close closes the open report id; false when it is not open.
func (rs *reports) close(id string) (bool, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.open[id]
	if r == nil {
		return false, nil
	}
	return true, rs.closeLocked(r)
}

func (rs *reports) closeLocked(r *report) error {
	delete(rs.open, r.ID)
	c := *r
	c.Closed = true
	return rs.append(&c)
}

// gc closes stale reports, at most once a minute, and compacts a journal
// grown to four times the open reports.
func (rs *reports) gc(now time.Time) {
	if now.Before(rs.nextGC) {
		return
	}
	rs.nextGC = now.Add(time.Minute)
	for _, r := range rs.open {
		if now.Sub(r.active) > rs.staleAfter {
			rs.closeLocked(r)
		}
	}
	if rs.f != nil && rs.journal > 4*len(rs.open)+1024 {
		_ = rs.compact()
	}
}

// Close closes the journal.
func (rs *reports) Close() error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.f == nil {
		return nil
	}
	err := rs.f.Close()
	rs.f = nil
	return err
}

// newReportID is a report ID in the shape of OONI's collectors' (the
// time, the test name without underscores, the country, the AS number)
// with 260 random bits, as the spec asks (at least 256, from a CSPRNG),
// e.g. 20261204T163000Z_kzprobetlsmitm_KZ_9198_n1_<52 base32 letters>.
func newReportID(now time.Time, q *OpenRequest) string {
	name := strings.NewReplacer("_", "", " ", "", "-", "").Replace(q.TestName)
	return fmt.Sprintf("%s_%s_%s_%s_n1_%s%s", now.UTC().Format("20060102T150405Z"), name, q.ProbeCC,
		strings.TrimPrefix(q.ProbeASN, "AS"), rand.Text(), rand.Text())
}
