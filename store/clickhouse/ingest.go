package clickhouse

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"kzprobe/analysis"
)

// IngestOptions tune Ingest. The zero value uses every core.
type IngestOptions struct {
	// Workers is how many pieces of input are read, judged and encoded at
	// once; zero means runtime.GOMAXPROCS(0).
	Workers int
	// ChunkBytes is the size of the pieces a large uncompressed JSONL file
	// is cut into (at line ends) so that one file uses every worker; zero
	// means 32 MiB.
	ChunkBytes int64
	// BatchBytes is how many bytes of rows (JSONEachRow) go into one
	// insert, all workers together; zero means 64 MiB. Each insert writes
	// a part per month it touches, and ClickHouse slows inserts down past
	// a few hundred parts: few large inserts, not many small ones.
	BatchBytes int
	// Warn receives each skipped line ("file:line: why") and unreadable
	// file, as analyze reports them. It may be called from several
	// goroutines, never at once.
	Warn func(analysis.Warning)
	// Progress, when not nil, is called as reading advances (all workers
	// together), never at once.
	Progress func(analysis.Progress)
}

// IngestStats says what Ingest read.
type IngestStats struct {
	Files   []analysis.FileStats
	Records int
	Bad     int
	Bytes   int64
}

// piece is a file, or a byte range of one, with the number of lines
// before it.
type piece struct {
	path      string
	off, size int64 // size < 0: the whole file, as a stream (gzip, JSON)
	lineBase  int
	file      int // index in the stats
}

// Ingest reads every measurement in paths (files and folders, the formats
// analyze reads: analysis.Files and analysis.Reader) into the tables,
// judging each chain, with every core. Ingesting a file again adds
// nothing (rows are deduplicated on the measurement's uid). A bad line is
// skipped and warned; an insert that fails ends the ingest with its error.
func (db *DB) Ingest(ctx context.Context, paths []string, opt IngestOptions) (IngestStats, error) {
	var st IngestStats
	files, err := analysis.Files(paths)
	if err != nil {
		return st, err
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	chunk := opt.ChunkBytes
	if chunk <= 0 {
		chunk = 32 << 20
	}
	batch := opt.BatchBytes
	if batch <= 0 {
		batch = 64 << 20
	}
	var pieces []piece
	var total int64
	st.Files = make([]analysis.FileStats, len(files))
	for i, f := range files {
		st.Files[i].Path = f
		ps, size, err := split(f, i, chunk)
		if err != nil {
			st.Files[i].Error = err.Error()
			if opt.Warn != nil {
				opt.Warn(analysis.Warning{Source: f, Message: err.Error()})
			}
			continue
		}
		total += size
		pieces = append(pieces, ps...)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex // guards st, opt's callbacks and the progress below
	prog := analysis.Progress{Files: len(files), TotalBytes: total}
	piecesLeft := make([]int, len(files))
	for _, p := range pieces {
		piecesLeft[p.file]++
	}
	warn := func(w analysis.Warning) {
		mu.Lock()
		defer mu.Unlock()
		if opt.Warn != nil {
			opt.Warn(w)
		}
	}

	// One inserter sends the batches the workers fill, one insert at a
	// time while the workers go on reading (a batch waits while the
	// previous one is sent).
	ins := &inserter{db: db, max: batch, out: make(chan [2][][]byte, 1)}
	insDone := make(chan error, 1)
	go func() {
		var err error
		for b := range ins.out {
			if err == nil && ctx.Err() == nil {
				if err = db.insertBoth(ctx, b[0], b[1]); err != nil {
					cancel(fmt.Errorf("inserting: %w", err))
				}
			}
		}
		insDone <- err
	}()

	work := make(chan piece)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for p := range work {
				if ctx.Err() != nil {
					continue
				}
				var last analysis.Progress
				fs, err := db.ingestPiece(ctx, p, ins, warn, func(pr analysis.Progress) {
					mu.Lock()
					defer mu.Unlock()
					prog.Bytes += pr.Bytes - last.Bytes
					prog.Records += pr.Records - last.Records
					prog.Bad += pr.Bad - last.Bad
					prog.File = p.path
					last = pr
					if opt.Progress != nil {
						opt.Progress(prog)
					}
				})
				mu.Lock()
				f := &st.Files[p.file]
				f.Records += fs.Records
				f.Bad += fs.Bad
				f.Truncated = f.Truncated || fs.Truncated
				if f.Format == "" || p.off == 0 {
					f.Format = fs.Format
				}
				if f.Error == "" {
					f.Error = fs.Error
				}
				if piecesLeft[p.file]--; piecesLeft[p.file] == 0 {
					prog.FilesDone++
					if opt.Progress != nil {
						opt.Progress(prog)
					}
				}
				mu.Unlock()
				if err != nil {
					cancel(err)
				}
			}
		})
	}
	for _, p := range pieces {
		work <- p
	}
	close(work)
	wg.Wait()
	ins.flush()
	close(ins.out)
	<-insDone
	for _, f := range st.Files {
		st.Records += f.Records
		st.Bad += f.Bad
	}
	st.Bytes = total
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return st, err
	}
	return st, ctx.Err()
}

// split cuts path into pieces: an uncompressed file whose first line is a
// whole JSON object (JSONL) into ranges of about chunk bytes ending at
// line ends, anything else (gzip, a JSON document, standard input) into one
// piece read as a stream.
func split(path string, file int, chunk int64) ([]piece, int64, error) {
	if path == analysis.Stdin {
		return []piece{{path: path, size: -1, file: file}}, 0, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := fi.Size()
	whole := []piece{{path: path, size: -1, file: file}}
	if size <= chunk {
		return whole, size, nil
	}
	br := bufio.NewReaderSize(f, 1<<20)
	first, err := br.ReadSlice('\n')
	if err != nil || len(first) < 2 || first[0] != '{' || !json.Valid(first) {
		return whole, size, nil
	}
	// Cut at the first line end after each multiple of chunk, counting
	// the lines before each cut for the sources ("file:line").
	var pieces []piece
	lines := 0
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, 0, err
	}
	br.Reset(f)
	buf := make([]byte, 1<<20)
	var pos int64
	start, startLines := int64(0), 0
	for {
		n, rerr := br.Read(buf)
		b := buf[:n]
		for len(b) > 0 {
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				pos += int64(len(b))
				break
			}
			lines++
			pos += int64(i + 1)
			b = b[i+1:]
			if pos-start >= chunk {
				pieces = append(pieces, piece{path: path, off: start, size: pos - start, lineBase: startLines, file: file})
				start, startLines = pos, lines
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return nil, 0, rerr
		}
	}
	if pos > start {
		pieces = append(pieces, piece{path: path, off: start, size: pos - start, lineBase: startLines, file: file})
	}
	return pieces, size, nil
}

// inserter gathers the rows of every worker into batches of about max
// bytes and hands each full batch to the insert loop (out). A batch is the
// workers' chunks as they came, sent without copying them together.
type inserter struct {
	db     *DB
	max    int
	mu     sync.Mutex
	mrows  [][]byte
	srows  [][]byte
	nbytes int
	out    chan [2][][]byte
}

// add takes a worker's rows (which it must not reuse); a batch that
// reaches max is sent (waiting while the previous one is inserted:
// back-pressure on the readers).
func (in *inserter) add(mrows, srows []byte) {
	in.mu.Lock()
	if len(mrows) > 0 {
		in.mrows = append(in.mrows, mrows)
	}
	if len(srows) > 0 {
		in.srows = append(in.srows, srows)
	}
	in.nbytes += len(mrows) + len(srows)
	var full [2][][]byte
	send := in.nbytes >= in.max
	if send {
		full = [2][][]byte{in.mrows, in.srows}
		in.mrows, in.srows, in.nbytes = nil, nil, 0
	}
	in.mu.Unlock()
	if send {
		in.out <- full
	}
}

// flush sends what is left.
func (in *inserter) flush() {
	in.mu.Lock()
	full := [2][][]byte{in.mrows, in.srows}
	in.mrows, in.srows, in.nbytes = nil, nil, 0
	in.mu.Unlock()
	if len(full[0]) > 0 || len(full[1]) > 0 {
		in.out <- full
	}
}

// ingestPiece reads one piece with an analysis.Reader, judges and encodes
// each record, and hands the rows to ins a megabyte at a time.
func (db *DB) ingestPiece(ctx context.Context, p piece, ins *inserter, warn func(analysis.Warning), progress func(analysis.Progress)) (analysis.FileStats, error) {
	var mrows, srows []byte
	flush := func() error {
		if len(mrows) > 0 || len(srows) > 0 {
			ins.add(mrows, srows)
			mrows, srows = make([]byte, 0, 1<<20+64<<10), make([]byte, 0, 1<<20+64<<10)
		}
		return ctx.Err()
	}
	// Sources and warnings say the line in the whole file.
	prefix := p.path + ":"
	fix := func(src string) string {
		if p.lineBase == 0 || !strings.HasPrefix(src, prefix) {
			return src
		}
		n, err := strconv.Atoi(src[len(prefix):])
		if err != nil {
			return src
		}
		return prefix + strconv.Itoa(n+p.lineBase)
	}
	rd := &analysis.Reader{
		Warn:     func(w analysis.Warning) { w.Source = fix(w.Source); warn(w) },
		Progress: progress,
	}
	add := func(rec *analysis.Record) error {
		if ctx.Err() != nil {
			return analysis.ErrStop
		}
		rec.Source = fix(rec.Source)
		mrows, srows = rows(rec, db.judge, nil, mrows, srows)
		if len(mrows)+len(srows) >= 1<<20 {
			return flush()
		}
		return nil
	}
	var fs analysis.FileStats
	var err error
	if p.size < 0 {
		fs, err = rd.ReadFile(p.path, add)
	} else {
		var f *os.File
		if f, err = os.Open(p.path); err != nil {
			return analysis.FileStats{Path: p.path, Error: err.Error()}, nil
		}
		fs, err = rd.Read(p.path, io.NewSectionReader(f, p.off, p.size), add)
		f.Close()
	}
	if err != nil && !errors.Is(err, analysis.ErrStop) {
		return fs, err
	}
	if err := flush(); err != nil {
		return fs, err
	}
	return fs, ctx.Err()
}
