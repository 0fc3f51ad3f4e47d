package analysis

import (
	"fmt"
	"io"
)

// Progress says how far a Reader has got, for a progress display
// (Reader.Progress).
type Progress struct {
	// File is the file being read.
	File string
	// FilesDone counts the files read to their end; Files is how many
	// ReadPaths has to read (0 for a lone Read).
	FilesDone, Files int
	// Bytes counts the bytes read from the files so far (compressed bytes
	// for gzip); TotalBytes is their sizes together, where known (not for
	// standard input).
	Bytes, TotalBytes int64
	// Records and Bad count the measurements read and the lines (or
	// documents) skipped so far, all files together.
	Records, Bad int
}

// DefaultMaxGzipRatio is Reader.MaxGzipRatio's default. JSONL of
// measurements compresses 5 to 30 times; a file of one short line
// repeated, 1000 times.
const DefaultMaxGzipRatio = 100

// gzipRatioFloor is how much a gzip file must have expanded to before its
// ratio is judged: small files of repeated lines are harmless.
const gzipRatioFloor = 16 << 20

// progressState is what Reader.Progress reports, kept as reading goes.
type progressState struct {
	Progress
	st *FileStats // the file being read, whose counts are not yet in Progress
}

// report calls the Progress hook with the counts so far.
func (rd *Reader) report() {
	if rd.Progress == nil {
		return
	}
	p := rd.prog.Progress
	if st := rd.prog.st; st != nil {
		p.Records += st.Records
		p.Bad += st.Bad
	}
	rd.Progress(p)
}

// startFile and endFile keep the progress counts across files.
func (rd *Reader) startFile(name string, st *FileStats) {
	rd.prog.File, rd.prog.st = name, st
	rd.report()
}

func (rd *Reader) endFile(st FileStats) {
	rd.prog.Records += st.Records
	rd.prog.Bad += st.Bad
	rd.prog.FilesDone++
	rd.prog.st = nil
	rd.report()
}

// countingReader counts the bytes of a file as they are read, and reports
// progress on each read (a few hundred KiB).
type countingReader struct {
	r  io.Reader
	rd *Reader
	n  int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.rd.prog.Bytes += int64(n)
	if n > 0 {
		c.rd.report()
	}
	return n, err
}

// ratioReader reads a gzip stream and warns once when it has expanded more
// than max times the compressed bytes read (in), past gzipRatioFloor: a few
// hundred kilobytes that decode to gigabytes of short lines take minutes of
// CPU, and the user should know why.
type ratioReader struct {
	r      io.Reader
	in     *countingReader
	out    int64
	max    int64
	warned bool
	warn   func()
}

func (z *ratioReader) Read(p []byte) (int, error) {
	n, err := z.r.Read(p)
	z.out += int64(n)
	if !z.warned && z.out > gzipRatioFloor && z.out > z.max*z.in.n {
		z.warned = true
		z.warn()
	}
	return n, err
}

// sizeText prints a byte count for people: "306 KB", "1.2 GB".
func sizeText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
