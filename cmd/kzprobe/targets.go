package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/targets"
)

// targetSource streams the configured targets: -d names, then each -i
// file, or the embedded default list when neither is given. Bad lines are
// reported on stderr with file:line and skipped; the rest still runs.
type targetSource struct {
	names   []targets.Target
	files   []string
	stdin   io.Reader
	port    int // the run's default port, so "x.kz" and "x.kz:443" are one target
	bad     atomic.Int64
	resumed int
	seen    *targets.Deduper
	inFile  *targets.Deduper // the targets a resumed file holds, until resume compares the list
	diff    *listDiff        // set when feed compares the list with a resumed file
	closers []io.Closer
}

// openTargets checks the target configuration (every file readable)
// before any measurement.
func openTargets(cfg *Config, stdin io.Reader) (*targetSource, error) {
	s := &targetSource{files: cfg.Targets.Files, stdin: stdin, port: cfg.Targets.Port, seen: targets.NewDeduper()}
	if s.port == 0 {
		s.port = 443
	}
	names, errs := targets.FromNames(cfg.Targets.Domains)
	if len(errs) > 0 {
		return nil, usageError("-d/--domain: %v", errors.Join(errs...))
	}
	s.names = names
	if len(s.names) == 0 && len(s.files) == 0 {
		s.names = targets.Default()
	}
	for _, f := range s.files {
		if f == "-" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return nil, pathError("target list", f, err, true)
		}
		_, c, err := targets.Open(f, nil)
		if err != nil {
			return nil, usageError("%v", err)
		}
		c.Close()
	}
	return s, nil
}

// feed sends every target to out, deduplicated in first-seen order, and
// closes out. It stops early when ctx is cancelled.
func (s *targetSource) feed(ctx context.Context, out chan<- probe.Input, stderr io.Writer, prog *console) {
	defer close(out)
	send := func(t targets.Target) bool {
		t = s.withPort(t)
		if s.diff != nil {
			s.diff.add(t)
		}
		if s.seen.Seen(t) {
			return true
		}
		prog.addTotal(1)
		select {
		case out <- probe.Input{Domain: t.Domain, Port: t.Port, Input: t.Input}:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for _, t := range s.names {
		if !send(t) {
			return
		}
	}
	for _, f := range s.files {
		r, c, err := targets.Open(f, s.stdin)
		if err != nil {
			prog.logf("%v", err)
			s.bad.Add(1)
			continue
		}
		s.closers = append(s.closers, c)
		for {
			t, err := r.Next()
			if err == io.EOF {
				break
			}
			var le *targets.LineError
			if errors.As(err, &le) {
				s.bad.Add(1)
				prog.logf("%v", le)
				continue
			}
			if err != nil {
				s.bad.Add(1)
				prog.logf("%v (rest of %s not read)", err, f)
				break
			}
			if !send(t) {
				return
			}
		}
		c.Close()
	}
	if s.diff != nil {
		if msg := s.diff.message(); msg != "" {
			prog.logf("%s", msg)
		}
	}
	prog.totalKnown()
}

// resume marks every target the output already holds as done (kzprobe
// run --resume), continues its report, and says on stderr how many targets
// are done and how the target list differs from the file's: before
// measuring when every list can be read twice, else once the list has been
// read.
func (s *targetSource) resume(out *runOutput, p *probe.Prober, stderr io.Writer) error {
	id, st, err := s.skipAlreadyMeasured(out.existing(), out.Path)
	if err != nil {
		return err
	}
	if id != "" {
		p.Envelope.ReportID = id
	}
	fmt.Fprintf(stderr, "resuming %s: %s already measured\n", out.Path, plural(s.resumed, "target"))
	if msg := resumeReadWarning(out.Path, st); msg != "" {
		fmt.Fprintln(stderr, "kzprobe: warning:", msg)
	}
	s.diff = &listDiff{file: out.Path, inFile: s.inFile, fileN: s.resumed, list: targets.NewDeduper()}
	s.inFile = nil
	if !s.rereadable() {
		return nil // counted as feed reads the list
	}
	s.each(func(t targets.Target) { s.diff.add(t) })
	if msg := s.diff.message(); msg != "" {
		fmt.Fprintln(stderr, "kzprobe:", msg)
	}
	s.diff = nil
	return nil
}

// skipAlreadyMeasured marks every target with a complete record in r (the
// output file, named name) as done. It returns the report ID of the
// records, so that the resumed run continues the same report, and how many
// lines were unreadable (a last line cut by a crash among them) or read in
// part (st).
func (s *targetSource) skipAlreadyMeasured(r io.Reader, name string) (reportID string, st measurement.ReadStats, err error) {
	s.inFile = targets.NewDeduper()
	st, err = measurement.ReadJSONL(r, func(m *measurement.Measurement) error {
		if m.TestKeys.Domain == "" || m.TestKeys.Verdict == "" {
			return nil // not a complete kzprobe record: measure again
		}
		if sw := m.TestKeys.SNISweep; sw != nil && sw.ReasonCode == measurement.SweepControlFailed {
			return nil // a sweep's name the endpoint's failure left undecided: sweep again
		}
		if reportID == "" {
			reportID = m.ReportID
		}
		t := targets.Target{Domain: m.TestKeys.Domain, Port: m.TestKeys.Port}
		if !s.seen.Seen(t) {
			s.resumed++
			s.inFile.Seen(t)
		}
		return nil
	})
	if err != nil {
		return "", st, fmt.Errorf("--resume: reading %s: %w", name, err)
	}
	return reportID, st, nil
}

// resumeReadWarning says what reading the file of --resume (path) met
// besides whole records, "" when nothing: its unreadable lines (ignored:
// a record cut by the interruption, whose target is measured again) and
// its lines read in part (over measurement.MaxLineElements array
// elements: their targets count as measured), each named by line number,
// as the reading commands name theirs.
func resumeReadWarning(path string, st measurement.ReadStats) string {
	var parts []string
	if st.Bad > 0 {
		parts = append(parts, fmt.Sprintf("%s unreadable, ignored (a record cut by the interruption is measured again)",
			lineNumbers(st.BadLines, st.Bad)))
	}
	if st.Partial > 0 {
		parts = append(parts, fmt.Sprintf("%s read in part, over %d array elements a line (the rest of the arrays left out; the target counts as measured)",
			lineNumbers(st.PartialLines, st.Partial), measurement.MaxLineElements))
	}
	if len(parts) == 0 {
		return ""
	}
	return displayPath(path) + ": " + strings.Join(parts, "; ")
}

// lineNumbers names n lines by the first of their numbers, named: "line
// 3", "lines 3, 6", "lines 1, 2, 3 and 12 more".
func lineNumbers(named []int, n int) string {
	nums := make([]string, len(named))
	for i, l := range named {
		nums[i] = strconv.Itoa(l)
	}
	s := "line "
	if n > 1 {
		s = "lines "
	}
	s += strings.Join(nums, ", ")
	if more := n - len(named); more > 0 {
		if len(named) == 0 {
			return plural(n, "line")
		}
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

// rereadable reports whether every target list can be read a second time:
// no stdin, no pipe.
func (s *targetSource) rereadable() bool {
	for _, f := range s.files {
		if f == targets.StdinName {
			return false
		}
		if st, err := os.Stat(f); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// each calls fn for every target of the lists, in order, with the run's
// port, duplicates included. Bad lines and unreadable files are passed
// over: feed reports them when it reads the lists.
func (s *targetSource) each(fn func(targets.Target)) {
	for _, t := range s.names {
		fn(s.withPort(t))
	}
	for _, f := range s.files {
		r, c, err := targets.Open(f, s.stdin)
		if err != nil {
			continue
		}
		for {
			t, err := r.Next()
			if err == io.EOF {
				break
			}
			var le *targets.LineError
			if errors.As(err, &le) {
				continue
			}
			if err != nil {
				break
			}
			fn(s.withPort(t))
		}
		c.Close()
	}
}

// withPort gives t the run's default port when it names none.
func (s *targetSource) withPort(t targets.Target) targets.Target {
	if t.Port == 0 {
		t.Port = s.port
	}
	return t
}

// listDiff compares the target list of a resumed run with the targets its
// file holds.
type listDiff struct {
	file    string
	inFile  *targets.Deduper // the targets the file holds
	fileN   int              // how many
	list    *targets.Deduper // the list's targets counted so far
	matched int              // the list's targets the file holds
	fresh   int              // the list's targets the file does not hold
}

// add counts one target of the list.
func (d *listDiff) add(t targets.Target) {
	if d.list.Seen(t) {
		return
	}
	if d.inFile.Has(t) {
		d.matched++
	} else {
		d.fresh++
	}
}

// message names the difference, or is empty when the list is the file's.
func (d *listDiff) message() string {
	gone := d.fileN - d.matched
	if d.fresh == 0 && gone == 0 {
		return ""
	}
	return fmt.Sprintf("warning: --resume %s with a different target list: %d of the list's targets are new to the file (measured now, in the same report); "+
		"%d of the file's targets are not in the list (kept as they are)", d.file, d.fresh, gone)
}

// skipped counts bad target lines and unreadable files.
func (s *targetSource) skipped() int { return int(s.bad.Load()) }

// Close closes any file still open.
func (s *targetSource) Close() error {
	for _, c := range s.closers {
		c.Close()
	}
	return nil
}
