// Package files is the embedded store of the collector: append-only
// JSONL.gz files partitioned by day, country and network, like OONI's
// archive, under one folder.
//
// # Layout
//
// A record lands in
//
//	DIR/YYYYMMDD/CC/ASN/TEST_NAME.jsonl.gz
//
// where the day is the record's measurement_start_time (UTC), CC its
// probe_cc and ASN its probe_asn ("AS9198"). Each line is the record
// exactly as the probe submitted it (store.Record.Raw), so
// `kzprobe analyze DIR` reads the store as it reads any folder of files.
//
// # Durability
//
// Put returns nil only once the record's bytes are written and the file
// fsynced (and, for a new file, its folders). Writes are grouped: one
// goroutine takes every Put waiting, writes one gzip member per file for
// all of them and syncs each file once, so 100 concurrent submitters pay
// for one fsync per file per group, not one each; the files of a group
// are compressed, written and synced in parallel.
//
// # Crash safety
//
// A file is a sequence of whole gzip members, each ending with its CRC:
// a crash (kill -9, power loss) can leave at most a cut last member, which
// every gzip reader (analyze included) reads up to, losing nothing written
// before it. A write that fails (a full disk) is cut off again at once, so
// the file stays a sequence of whole members. Open checks the last members
// of every file: a cut tail is moved aside, next to the file, into
// FILE.torn-OFFSET (kept, never deleted), and the file truncated to its
// last whole member.
//
// # One writer
//
// Open locks the folder (LockName, see LockDir) before it reads or repairs
// anything, and the Store holds the lock until Close: a second store on
// the folder, in this process or another (a second collector), fails at
// Open instead of interleaving its writes and its deduplication with the
// first's, and instead of taking the first's write in progress for a cut
// tail to repair.
//
// # Deduplication
//
// Open reads every file once and remembers the measurement_uid of each
// record; a Put of a known UID returns nil and writes nothing. The index
// costs about 100 bytes a record in memory.
package files

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"kzprobe/filelock"
	"kzprobe/store"
)

// Defaults.
const (
	// DefaultMaxBatch bounds the records written in one group.
	DefaultMaxBatch = 1024
	// DefaultMaxOpenFiles bounds the partition files kept open between
	// groups; past it every open file is closed.
	DefaultMaxOpenFiles = 256
	// Suffix is the name ending of the store's files.
	Suffix = ".jsonl.gz"
	// LockName is the file in the store's folder whose lock the open
	// store holds (empty; never deleted).
	LockName = "store.lock"
)

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// MaxBatch is the most records one group writes. Zero means
	// DefaultMaxBatch.
	MaxBatch int
	// MaxOpenFiles is how many partition files stay open. Zero means
	// DefaultMaxOpenFiles.
	MaxOpenFiles int
	// Now is the clock used for records without a start time. Nil means
	// time.Now.
	Now func() time.Time
}

// Store is the file store. It is safe for concurrent use.
type Store struct {
	dir  string
	opts Options

	mu     sync.RWMutex // guards closed against Put's send on reqs
	closed bool
	reqs   chan *putReq
	done   chan struct{}

	// uids and files belong to the writer goroutine after Open.
	uidMu sync.Mutex
	uids  map[string]struct{}
	files map[string]*os.File

	lock *DirLock

	// Repaired lists what Open moved aside, for the caller to log.
	Repaired []Repair
	// Unlocked is why the folder is not locked (a file system that has no
	// locks), nil when it is, for the caller to warn.
	Unlocked error
}

// DirLock is the held lock of a store's folder.
type DirLock struct {
	f *os.File
	// Unlocked is why the lock was not taken (a file system that has no
	// locks: some network and FUSE ones), nil when it is held.
	Unlocked error
}

// LockDir creates dir if needed and locks its LockName file, without
// waiting, until Close. When another process (or another Store of this
// one) holds it, the error names the folder and wraps filelock.ErrLocked.
// A file system that refuses locks is no error: the DirLock says so in
// Unlocked.
//
// Open takes it; a collector that keeps its measurements elsewhere takes
// it too, for the other files it keeps in the folder.
func LockDir(dir string) (*DirLock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("files: creating %s: %w", dir, err)
	}
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	err = filelock.Lock(f)
	switch {
	case errors.Is(err, filelock.ErrLocked):
		f.Close()
		abs, _ := filepath.Abs(dir)
		return nil, fmt.Errorf("%s: another kzprobe collector is using this store folder (it holds the lock on %s); stop it, or give this one another folder: %w",
			abs, LockName, err)
	case err != nil:
		return &DirLock{f: f, Unlocked: fmt.Errorf("cannot lock %s: %w", path, err)}, nil
	}
	return &DirLock{f: f}, nil
}

// Close releases the lock.
func (l *DirLock) Close() error { return l.f.Close() }

var _ store.Store = (*Store)(nil)

// Repair is one cut tail Open moved aside.
type Repair struct {
	// File is the partition file, Offset where its whole members end,
	// Moved the file that now holds the cut bytes.
	File   string
	Offset int64
	Moved  string
}

type putReq struct {
	r    store.Record
	done chan error
}

// Open opens (creating it if needed) the store in dir: it checks every
// file, moves any cut tail aside and reads every measurement_uid.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.MaxOpenFiles <= 0 {
		opts.MaxOpenFiles = DefaultMaxOpenFiles
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	lock, err := LockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{
		lock:     lock,
		Unlocked: lock.Unlocked,
		dir:      dir,
		opts:     opts,
		reqs:     make(chan *putReq, opts.MaxBatch),
		done:     make(chan struct{}),
		uids:     map[string]struct{}{},
		files:    map[string]*os.File{},
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), Suffix) {
			return nil
		}
		return s.load(path)
	})
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("files: opening %s: %w", dir, err)
	}
	go s.loop()
	return s, nil
}

// Dir returns the store's folder.
func (s *Store) Dir() string { return s.dir }

// Len returns how many distinct records the store holds.
func (s *Store) Len() int {
	s.uidMu.Lock()
	defer s.uidMu.Unlock()
	return len(s.uids)
}

// load indexes the UIDs of path and moves a cut tail aside.
func (s *Store) load(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	good, size, err := scanMembers(f, func(line []byte) {
		if uid := uidOf(line); uid != "" {
			s.uids[uid] = struct{}{}
		}
	})
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if good == size {
		return nil
	}
	return s.moveTail(path, good)
}

// moveTail copies path's bytes from off to its end into
// path.torn-OFF, syncs it, and truncates path to off.
func (s *Store) moveTail(path string, off int64) error {
	src, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer src.Close()
	moved := fmt.Sprintf("%s.torn-%d", path, off)
	dst, err := os.OpenFile(moved, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, io.NewSectionReader(src, off, 1<<62)); err != nil {
		dst.Close()
		return fmt.Errorf("moving the cut tail of %s aside: %w", path, err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	if err := src.Truncate(off); err != nil {
		return fmt.Errorf("truncating %s to its whole members: %w", path, err)
	}
	if err := src.Sync(); err != nil {
		return err
	}
	s.Repaired = append(s.Repaired, Repair{File: path, Offset: off, Moved: moved})
	return nil
}

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// scanMembers reads r as a sequence of gzip members, calling fn for each
// line of each whole member. good is the offset where the last whole
// member ends; size is r's length. A cut or corrupt member ends the scan
// (good < size); only an I/O error of r is returned.
func scanMembers(r io.Reader, fn func(line []byte)) (good, size int64, err error) {
	cr := &countingReader{r: r}
	br := bufio.NewReaderSize(cr, 64<<10)
	zr := new(gzip.Reader)
	var member bytes.Buffer
	for {
		if _, err := br.Peek(1); err != nil {
			if errors.Is(err, io.EOF) {
				return good, cr.n, nil
			}
			return good, cr.n, err
		}
		if err := zr.Reset(br); err != nil {
			return good, drain(cr, br), nil
		}
		zr.Multistream(false)
		member.Reset()
		if _, err := io.Copy(&member, zr); err != nil {
			return good, drain(cr, br), nil
		}
		good = cr.n - int64(br.Buffered())
		for _, line := range bytes.SplitAfter(member.Bytes(), []byte("\n")) {
			if len(line) > 0 {
				fn(bytes.TrimSuffix(line, []byte("\n")))
			}
		}
	}
}

// drain reads the rest of cr and returns its whole length.
func drain(cr *countingReader, br *bufio.Reader) int64 {
	_, _ = io.Copy(io.Discard, br)
	return cr.n
}

// uidOf reads the measurement_uid of one line, "" if none.
func uidOf(line []byte) string {
	var v struct {
		UID string `json:"measurement_uid"`
	}
	if json.Unmarshal(line, &v) != nil {
		return ""
	}
	return v.UID
}

// Put stores r durably (see the package doc). A record whose UID is
// already stored returns nil at once.
func (s *Store) Put(ctx context.Context, r store.Record) error {
	if r.UID == "" {
		return errors.New("files: a record needs a measurement_uid")
	}
	if len(r.Raw) == 0 || bytes.IndexByte(r.Raw, '\n') >= 0 {
		return errors.New("files: a record is one non-empty line")
	}
	s.uidMu.Lock()
	_, dup := s.uids[r.UID]
	s.uidMu.Unlock()
	if dup {
		return nil
	}
	req := &putReq{r: r, done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	s.mu.RUnlock()
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close lets the records already handed to the store be written, then
// closes its files. Put after Close returns store.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.reqs)
	s.mu.Unlock()
	<-s.done
	var errs []error
	for p, f := range s.files {
		errs = append(errs, f.Close())
		delete(s.files, p)
	}
	// The lock goes last, once every write is done.
	errs = append(errs, s.lock.Close())
	return errors.Join(errs...)
}

// loop is the writer goroutine: it takes every waiting Put and writes them
// as one group.
func (s *Store) loop() {
	defer close(s.done)
	batch := make([]*putReq, 0, s.opts.MaxBatch)
	for req := range s.reqs {
		batch = append(batch[:0], req)
	more:
		for len(batch) < s.opts.MaxBatch {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		s.commit(batch)
	}
}

// pending is one partition's part of a group.
type pending struct {
	path  string
	lines [][]byte
	reqs  []*putReq
}

// commit writes one group: per partition file one gzip member, then one
// fsync per file; then answers every request.
func (s *Store) commit(batch []*putReq) {
	parts := map[string]*pending{}
	var order []*pending
	// Within a group a UID may come twice (a resend racing the first
	// send): the second waits on the first's outcome.
	followers := map[string][]*putReq{}
	leader := map[string]bool{}
	s.uidMu.Lock()
	for _, req := range batch {
		uid := req.r.UID
		if _, ok := s.uids[uid]; ok {
			req.done <- nil
			continue
		}
		if leader[uid] {
			followers[uid] = append(followers[uid], req)
			continue
		}
		leader[uid] = true
		path := s.partition(req.r)
		p := parts[path]
		if p == nil {
			p = &pending{path: path}
			parts[path] = p
			order = append(order, p)
		}
		p.lines = append(p.lines, req.r.Raw)
		p.reqs = append(p.reqs, req)
	}
	s.uidMu.Unlock()

	// Open each file here (the map of open files is this goroutine's),
	// then compress, write and sync the files in parallel: a group that
	// spans many networks waits for the slowest fsync, not for their sum.
	type job struct {
		p    *pending
		f    *os.File
		size int64
		err  error
	}
	var jobs []*job
	for _, p := range order {
		f, err := s.open(p.path)
		if err == nil {
			var st os.FileInfo
			if st, err = f.Stat(); err == nil {
				jobs = append(jobs, &job{p: p, f: f, size: st.Size()})
				continue
			}
			err = s.fail(p.path, f, -1, fmt.Errorf("files: %w", err))
		}
		s.answer(p, err, followers)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallelWrites)
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			j.err = writeMember(j.f, j.p)
		}()
	}
	wg.Wait()
	for _, j := range jobs {
		if j.err != nil {
			j.err = s.fail(j.p.path, j.f, j.size, j.err)
		}
		s.answer(j.p, j.err, followers)
	}
	if len(s.files) > s.opts.MaxOpenFiles {
		for path, f := range s.files {
			f.Close()
			delete(s.files, path)
		}
	}
}

func (s *Store) answer(p *pending, err error, followers map[string][]*putReq) {
	if err == nil {
		s.uidMu.Lock()
		for _, req := range p.reqs {
			s.uids[req.r.UID] = struct{}{}
		}
		s.uidMu.Unlock()
	}
	for _, req := range p.reqs {
		req.done <- err
		for _, f := range followers[req.r.UID] {
			f.done <- err
		}
	}
}

// maxParallelWrites bounds the files one group writes and syncs at once.
const maxParallelWrites = 16

// writeMember appends p's lines to f as one gzip member and syncs f. On
// failure the caller cuts the file back (fail).
func writeMember(f *os.File, p *pending) error {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	for _, line := range p.lines {
		zw.Write(line)
		zw.Write([]byte{'\n'})
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("files: compressing: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("files: writing %s: %w", p.path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("files: syncing %s: %w", p.path, err)
	}
	return nil
}

// fail cuts path back to size (when known) and forgets its handle, so the
// next group starts from a file of whole members.
func (s *Store) fail(path string, f *os.File, size int64, err error) error {
	if size >= 0 {
		if terr := f.Truncate(size); terr == nil {
			_ = f.Sync()
		}
	}
	f.Close()
	delete(s.files, path)
	return err
}

// open returns the open file of path, creating it and its folders (synced)
// if needed.
func (s *Store) open(path string) (*os.File, error) {
	if f := s.files[path]; f != nil {
		return f, nil
	}
	dir := filepath.Dir(path)
	created, err := mkdirAll(dir)
	if err != nil {
		return nil, fmt.Errorf("files: creating %s: %w", dir, err)
	}
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		created = append(created, dir)
	}
	// A new file or folder is durable once its parent folder is synced.
	for _, d := range created {
		if err := syncDir(filepath.Dir(d)); err != nil {
			f.Close()
			return nil, fmt.Errorf("files: syncing %s: %w", d, err)
		}
		if err := syncDir(d); err != nil {
			f.Close()
			return nil, fmt.Errorf("files: syncing %s: %w", d, err)
		}
	}
	s.files[path] = f
	return f, nil
}

// mkdirAll creates dir and its missing parents, returning those it made.
func mkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	return missing, nil
}

// syncDir syncs a folder's entries. Windows cannot open a folder for
// that; NTFS journals its metadata.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return err
	}
	return nil
}

var (
	ccRE   = regexp.MustCompile(`^[A-Z]{2}$`)
	asnRE  = regexp.MustCompile(`^AS[0-9]{1,10}$`)
	nameRE = regexp.MustCompile(`[^A-Za-z0-9_-]`)
)

// partition is the file of r: DIR/YYYYMMDD/CC/ASN/TEST.jsonl.gz. Values
// that are not a country, an AS number or a test name become ZZ, AS0 and
// "unknown", so that no record names a path outside the store.
func (s *Store) partition(r store.Record) string {
	day := r.Start
	if day.IsZero() {
		day = s.opts.Now()
	}
	cc := r.ProbeCC
	if !ccRE.MatchString(cc) {
		cc = "ZZ"
	}
	asn := r.ProbeASN
	if !asnRE.MatchString(asn) {
		asn = "AS0"
	}
	test := nameRE.ReplaceAllString(r.TestName, "_")
	if test == "" || len(test) > 64 {
		test = "unknown"
	}
	return filepath.Join(s.dir, day.UTC().Format("20060102"), cc, asn, test+Suffix)
}
