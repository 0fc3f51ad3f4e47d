package measurement

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"
)

// Syncer is implemented by outputs that can be flushed to stable storage
// (*os.File).
type Syncer interface {
	Sync() error
}

// Writer writes measurements as JSON lines. Each line is encoded in full
// first and then written with a single Write call under a lock, so lines
// from concurrent workers never interleave and a crash can only cut the last
// line (which readers detect and skip). When the underlying writer is a
// Syncer it is synced at most once per SyncInterval, and on Close.
type Writer struct {
	// Filter, when set before the first Write, rewrites each encoded line
	// before it is written: the privacy scrubber removes the probe's own
	// addresses from every field, failure strings included.
	Filter func(line []byte) []byte
	// Redact, when set before the first Write, is called on each
	// measurement before it is encoded and may change it: the privacy
	// layer withholds raw fields that hold the probe's address
	// ([Withhold]). It is called from concurrent Writes.
	Redact func(m *Measurement)

	mu           sync.Mutex
	w            io.Writer
	syncInterval time.Duration
	lastSync     time.Time
	now          func() time.Time
	n            int
	err          error
}

// NewWriter returns a Writer on w. A zero syncInterval syncs after every
// line; a negative one never syncs except on Close.
func NewWriter(w io.Writer, syncInterval time.Duration) *Writer {
	return &Writer{w: w, syncInterval: syncInterval, now: time.Now}
}

// Write encodes m as one line and writes it. After the first write error
// every later Write returns that error (the run must stop: measurements
// would otherwise be lost silently).
func (w *Writer) Write(m *Measurement) error {
	if w.Redact != nil {
		w.Redact(m)
	}
	buf := lineBuffers.Get().(*bytes.Buffer)
	defer putLineBuffer(buf)
	buf.Reset()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return fmt.Errorf("measurement: encoding measurement of %s: %w", m.Input, err)
	}
	line := buf.Bytes()
	if w.Filter != nil {
		line = w.Filter(line)
	}
	return w.WriteLine(line)
}

// lineBuffers recycles the encoding buffers of Write: a record is about
// 12 KB, and growing a fresh buffer to that size for each one was most of
// Write's allocation (BenchmarkWriterWrite).
var lineBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledLine bounds the buffers kept: an outsized record (a 200
// certificate chain) does not pin its buffer.
const maxPooledLine = 256 << 10

func putLineBuffer(b *bytes.Buffer) {
	if b.Cap() <= maxPooledLine {
		lineBuffers.Put(b)
	}
}

// WriteLine writes one already-encoded line, which must end in '\n'.
func (w *Writer) WriteLine(line []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if _, err := w.w.Write(line); err != nil {
		w.err = fmt.Errorf("measurement: writing measurement: %w", err)
		return w.err
	}
	w.n++
	if s, ok := w.w.(Syncer); ok && w.syncInterval >= 0 {
		if now := w.now(); now.Sub(w.lastSync) >= w.syncInterval {
			w.lastSync = now
			if err := s.Sync(); err != nil && !isUnsyncable(err) {
				w.err = fmt.Errorf("measurement: syncing output: %w", err)
				return w.err
			}
		}
	}
	return nil
}

// Count returns how many lines were written.
func (w *Writer) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Close syncs a Syncer output. It does not close the underlying writer.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := w.w.(Syncer); ok {
		if err := s.Sync(); err != nil && !isUnsyncable(err) && w.err == nil {
			w.err = fmt.Errorf("measurement: syncing output: %w", err)
		}
	}
	return w.err
}

// isUnsyncable reports errors that only say the output cannot be synced
// (a pipe, a terminal): not a failure. Windows says it in its own numbers
// (unsyncable, sync_windows.go).
func isUnsyncable(err error) bool {
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return true
	}
	for _, e := range unsyncable {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
