package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
func (s *targetSource) feed(ctx context.Context, out chan<- probe.Input, stderr io.Writer, prog *progress) {
	defer close(out)
	send := func(t targets.Target) bool {
		if t.Port == 0 {
			t.Port = s.port
		}
		if s.seen.Seen(t) {
			return true
		}
		prog.addTotal(1)
		select {
		case out <- probe.Input{Domain: t.Domain, Port: t.Port}:
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
				prog.logf("skipped %v", le)
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
	prog.totalKnown()
}

// skipAlreadyMeasured marks every target with a complete record in the
// JSONL file path as done (kzprobe run --resume). It returns the report ID
// of the records, so that the resumed run continues the same report, and
// how many lines were unreadable (a last line cut by a crash among them).
func (s *targetSource) skipAlreadyMeasured(path string) (reportID string, bad int, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", 0, nil // nothing measured yet: a fresh run into that file
	}
	if err != nil {
		return "", 0, fmt.Errorf("--resume: %w", err)
	}
	defer f.Close()
	st, err := measurement.ReadJSONL(f, func(m *measurement.Measurement) error {
		if m.TestKeys.Domain == "" || m.TestKeys.Verdict == "" {
			return nil // not a complete kzprobe record: measure again
		}
		if reportID == "" {
			reportID = m.ReportID
		}
		if !s.seen.Seen(targets.Target{Domain: m.TestKeys.Domain, Port: m.TestKeys.Port}) {
			s.resumed++
		}
		return nil
	})
	if err != nil {
		return "", 0, fmt.Errorf("--resume: reading %s: %w", path, err)
	}
	return reportID, st.Bad, nil
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
