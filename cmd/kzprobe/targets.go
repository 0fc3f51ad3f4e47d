package main

import (
	"context"
	"errors"
	"io"
	"sync/atomic"

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
	bad     atomic.Int64
	closers []io.Closer
}

// openTargets checks the target configuration (every file readable)
// before any measurement.
func openTargets(cfg *Config, stdin io.Reader) (*targetSource, error) {
	s := &targetSource{files: cfg.Targets.Files, stdin: stdin}
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
	seen := targets.NewDeduper()
	send := func(t targets.Target) bool {
		if seen.Seen(t) {
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

// skipped counts bad target lines and unreadable files.
func (s *targetSource) skipped() int { return int(s.bad.Load()) }

// Close closes any file still open.
func (s *targetSource) Close() error {
	for _, c := range s.closers {
		c.Close()
	}
	return nil
}
