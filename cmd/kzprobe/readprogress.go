package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/term"

	"kzprobe/analysis"
)

// readProgress shows how far a reading command has got on long reads: on
// a terminal, one line redrawn in place once the read has taken a second;
// with --progress elsewhere (a log), a line every few seconds and one at
// the end.
type readProgress struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool          // redraw one line in place
	cols     func() int    // the terminal's width now
	delay    time.Duration // before the first line
	every    time.Duration // between lines
	start    time.Time
	last     time.Time
	line     string
	p        analysis.Progress
}

// newReadProgress returns the display for the --progress flag: explicit
// (set), or, when not given, on exactly when w is a terminal. Nil means
// no display.
func newReadProgress(w io.Writer, flag, set bool) *readProgress {
	terminal := false
	if f, ok := terminalFile(w); ok {
		terminal = term.IsTerminal(int(f.Fd()))
	}
	if set && !flag || !set && !terminal {
		return nil
	}
	rp := &readProgress{w: w, terminal: terminal, start: time.Now(), delay: time.Second, every: 250 * time.Millisecond,
		cols: func() int { return terminalWidth(w) }}
	if !terminal {
		rp.delay, rp.every = 5*time.Second, 5*time.Second
	}
	return rp
}

// update records p and redraws the line when it is time.
func (rp *readProgress) update(p analysis.Progress) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.p = p
	now := time.Now()
	if now.Sub(rp.start) < rp.delay || now.Sub(rp.last) < rp.every {
		return
	}
	rp.last = now
	rp.line = progressText(p, now.Sub(rp.start), false)
	if rp.terminal {
		// Never wider than the terminal: a line that wraps leaves a copy
		// of itself at each redraw.
		fmt.Fprintf(rp.w, "\r%s\033[K", fitText(rp.line, rp.cols()-1))
	} else {
		fmt.Fprintf(rp.w, "kzprobe: %s\n", rp.line)
	}
}

// finish clears the line on a terminal, or prints the last one elsewhere.
func (rp *readProgress) finish() {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.terminal {
		if rp.line != "" {
			fmt.Fprint(rp.w, "\r\033[K")
		}
		return
	}
	fmt.Fprintf(rp.w, "kzprobe: %s\n", progressText(rp.p, time.Since(rp.start), true))
}

// progressText is one progress line: "reading 3/12 files: 412.0 MB of
// 1228.8 MB (34%), 1203455 measurements, 12 bad, 250312/s". The bytes
// are the files' (compressed for gzip), the rate is measurements'.
func progressText(p analysis.Progress, elapsed time.Duration, done bool) string {
	verb := "reading"
	if done {
		verb = "read"
	}
	files := "files"
	if p.Files == 1 {
		files = "file"
	}
	s := fmt.Sprintf("%s %d/%d %s: %s", verb, p.FilesDone, p.Files, files, mb(p.Bytes))
	if p.TotalBytes > 0 && !done {
		s += fmt.Sprintf(" of %s (%d%%)", mb(p.TotalBytes), p.Bytes*100/p.TotalBytes)
	}
	s += fmt.Sprintf(", %s, %d bad", plural(int(p.Records), "measurement"), p.Bad)
	if secs := elapsed.Seconds(); secs > 0 {
		s += fmt.Sprintf(", %.0f/s", float64(p.Records)/secs)
	}
	if done {
		s += fmt.Sprintf(" in %s", elapsed.Round(time.Millisecond))
	}
	return s
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }
