package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"kzprobe/measurement"
	"kzprobe/probe/chain"
)

// summary collects the rows of the terminal table and the verdict counts.
// It keeps at most maxTableRows rows with verdict ok and as many without,
// so that its memory stays flat however many targets a sweep has (every
// record is in the JSONL anyway).
type summary struct {
	total  int
	ok     []summaryRow
	other  []summaryRow
	counts map[measurement.Verdict]int
}

type summaryRow struct {
	input, verdict, root, intermediate, expired, reason string
}

func newSummary() *summary { return &summary{counts: map[measurement.Verdict]int{}} }

// add records m; called from one goroutine at a time.
func (s *summary) add(m *measurement.Measurement) {
	tk := &m.TestKeys
	s.counts[tk.Verdict]++
	r := summaryRow{input: m.Input, verdict: string(tk.Verdict), reason: tk.VerdictReason}
	if in := tk.Interception; in != nil {
		r.root = in.RootName
		if in.RootSHA1 != "" {
			r.root += " " + chain.Short(in.RootSHA1)
		}
		var ims []string
		for _, im := range in.Intermediates {
			ims = append(ims, chain.Short(im.SHA1))
		}
		r.intermediate = strings.Join(ims, ",")
		if in.BrowserErrorEvenWithRootInstalled {
			r.expired = strings.Join(in.BrowserErrorReasons, ",")
		}
	}
	s.total++
	switch {
	case tk.Verdict == measurement.VerdictOK && len(s.ok) < maxTableRows:
		s.ok = append(s.ok, r)
	case tk.Verdict != measurement.VerdictOK && len(s.other) < maxTableRows:
		s.other = append(s.other, r)
	}
}

// maxTableRows is the size above which only the rows that are not "ok"
// are printed, at most this many: a sweep of thousands of domains is read
// in the JSONL.
const maxTableRows = 200

// print writes the verdict table and the counts.
func (s *summary) print(w io.Writer, skipped int) {
	rows := s.other
	if s.total <= maxTableRows {
		rows = append(append([]summaryRow{}, s.ok...), s.other...)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].input < rows[j].input })
	hidden := s.total - len(rows)
	if len(rows) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "DOMAIN\tVERDICT\tROOT\tINTERMEDIATE\tBROWSER ERROR WITH ROOT\tREASON")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.input, r.verdict, dash(r.root), dash(r.intermediate), dash(r.expired), r.reason)
		}
		tw.Flush()
	}
	if hidden > 0 {
		fmt.Fprintf(w, "(%d more targets not shown; every record is in the JSONL)\n", hidden)
	}
	fmt.Fprintf(w, "%d targets: %s", s.total, s.countLine())
	if skipped > 0 {
		fmt.Fprintf(w, "; %d input lines skipped (see messages above)", skipped)
	}
	fmt.Fprintln(w)
}

func (s *summary) countLine() string {
	var parts []string
	for _, v := range verdictOrder {
		if n := s.counts[v]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", v, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

var verdictOrder = []measurement.Verdict{
	measurement.VerdictMITMISCA, measurement.VerdictMITMOther, measurement.VerdictDNSTampering,
	measurement.VerdictTLSBlocking, measurement.VerdictTCPBlocking, measurement.VerdictDown,
	measurement.VerdictError, measurement.VerdictOK,
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// progress is a one-line display on a terminal: targets done / total,
// verdict counts, targets per second and an estimate of the time left. It is off when stderr
// is not a terminal or with --quiet; messages (logf) always go through.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	on      bool
	start   time.Time
	total   int
	known   bool
	done    int
	line    string
	lastOut time.Time
}

func newProgress(w io.Writer, quiet bool) *progress {
	on := false
	if f, ok := terminalFile(w); ok && !quiet {
		on = term.IsTerminal(int(f.Fd()))
	}
	return &progress{w: w, on: on, start: time.Now()}
}

func (p *progress) addTotal(n int) {
	p.mu.Lock()
	p.total += n
	p.mu.Unlock()
}

func (p *progress) totalKnown() {
	p.mu.Lock()
	p.known = true
	p.mu.Unlock()
}

// update redraws the line (at most ten times a second).
func (p *progress) update(s *summary) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = s.total
	if !p.on || time.Since(p.lastOut) < 100*time.Millisecond {
		return
	}
	p.lastOut = time.Now()
	total := fmt.Sprint(p.total)
	elapsed := time.Since(p.start)
	// The rate, so that a long list still being read (its total not yet
	// known) shows how fast it goes; the time left once it is known.
	pace := ""
	if secs := elapsed.Seconds(); secs >= 1 && p.done > 0 {
		pace = fmt.Sprintf(", %.0f/s", float64(p.done)/secs)
	}
	if !p.known {
		total += "+"
	} else if p.done > 0 && p.total > p.done {
		left := time.Duration(float64(elapsed) / float64(p.done) * float64(p.total-p.done))
		pace += ", ETA " + left.Round(time.Second).String()
	}
	p.line = fmt.Sprintf("[%d/%s] %s%s", p.done, total, s.countLine(), pace)
	fmt.Fprintf(p.w, "\r\033[K%s", p.line)
}

// logf prints a message on its own line, above the progress line.
func (p *progress) logf(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.on && p.line != "" {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, "kzprobe: "+format+"\n", a...)
	if p.on && p.line != "" {
		fmt.Fprint(p.w, p.line)
	}
}

// finish clears the progress line.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.on && p.line != "" {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
