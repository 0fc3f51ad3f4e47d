package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"kzprobe/analysis"
	"kzprobe/measurement"
	"kzprobe/probe"
)

// TestProgressLine draws the progress line in each state of a run: the
// total counted before the run (a -d list, a file) with the time left,
// a list still streamed (stdin: "N+", the rate, no time left), the very
// start, and a long run whose list is read.
func TestProgressLine(t *testing.T) {
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		p       progress
		elapsed time.Duration
		want    string
	}{
		{"counted", progress{counted: 10, fed: 9, done: 8}, 4 * time.Second,
			"[8/10] elapsed 0:04, 2.0/s, ETA 0:01 | mitm_isca 8"},
		{"streamed", progress{counted: -1, fed: 10, done: 8}, 4 * time.Second,
			"[8/10+] elapsed 0:04, 2.0/s | mitm_isca 8"},
		{"start", progress{counted: 27}, 300 * time.Millisecond,
			"[0/27] elapsed 0:00 | mitm_isca 8"},
		{"read", progress{counted: -1, fed: 5000, known: true, done: 4000}, time.Hour + 2*time.Minute + 3*time.Second,
			"[4000/5000] elapsed 1:02:03, 1.1/s, ETA 15:31 | mitm_isca 8"},
		{"fast", progress{counted: 20000, done: 12000}, 10 * time.Second,
			"[12000/20000] elapsed 0:10, 1200/s, ETA 0:07 | mitm_isca 8"},
		{"done", progress{counted: 6, fed: 6, known: true, done: 6}, 2 * time.Second,
			"[6/6] elapsed 0:02, 3.0/s | mitm_isca 8"},
	}
	for _, tc := range cases {
		tc.p.start = start
		if got := tc.p.line(start.Add(tc.elapsed), "mitm_isca 8"); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// testConsole is a console drawing its progress on err as on a terminal
// of width columns.
func testConsole(out, err *bytes.Buffer, width int, quiet bool) *console {
	c := &console{
		out: out, err: err, quiet: quiet,
		summary: newSummary(), prog: newProgressState(time.Now()),
		progOn: !quiet, now: time.Now, errWidth: func() int { return width },
		layout: tableLayout{width: width},
		stop:   make(chan struct{}), stopped: make(chan struct{}),
	}
	close(c.stopped)
	return c
}

// TestConsoleProgress: every progress line drawn fits the terminal and
// clears what was after it; a message or a result clears the progress
// line before it is printed; finish leaves no progress line.
func TestConsoleProgress(t *testing.T) {
	var out, errw bytes.Buffer
	c := testConsole(&out, &errw, 40, false)
	c.setCounted(30)
	for i := range 30 {
		m := &measurement.Measurement{Envelope: measurement.Envelope{Input: "site.example"}}
		m.TestKeys.Verdict = verdictOrder[i%len(verdictOrder)]
		m.TestKeys.VerdictReason = strings.Repeat("a long reason ", 10)
		c.addTotal(1)
		c.lastDraw = time.Time{} // draw every time
		c.result(m)
		if i == 10 {
			c.logf("list.txt:%d: not a domain", i)
		}
	}
	c.finish()
	for _, part := range strings.Split(errw.String(), "\r") {
		if !strings.HasPrefix(part, "[") {
			continue
		}
		line, rest, ok := strings.Cut(part, "\033[K")
		if !ok || rest != "" {
			t.Errorf("progress line %q does not end by clearing the rest of the line", part)
		}
		if textWidth(line) >= 40 {
			t.Errorf("progress line of %d columns on a terminal of 40: %q", textWidth(line), line)
		}
	}
	if !strings.Contains(errw.String(), "\r\033[Kkzprobe: list.txt:10: not a domain\n") {
		t.Errorf("the message does not clear the progress line first:\n%q", errw.String())
	}
	if !strings.HasSuffix(errw.String(), "\r\033[K") {
		t.Errorf("finish leaves the progress line:\n%q", errw.String())
	}
	if n := strings.Count(out.String(), "\n"); n != 30 {
		t.Errorf("%d result lines; want 30", n)
	}
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if textWidth(l) >= 40 {
			t.Errorf("result line wider than the terminal: %q", l)
		}
	}
}

// TestConsoleQuietVerbose: -q prints no result line and no progress; -v
// prints each step as the engine tells it, and the result prints no step
// again.
func TestConsoleQuietVerbose(t *testing.T) {
	var out, errw bytes.Buffer
	c := testConsole(&out, &errw, 80, true)
	nx := "dns_nxdomain_error"
	q := measurement.DNSQuery{Engine: "udp", ResolverAddress: "192.0.2.53:53", Hostname: "x.example", QueryType: "A", T0: 0.002}
	c.step(probe.Step{Kind: probe.StepDNS, Target: "x.example", Side: "local", T: 0.002, Query: &q})
	done := q
	done.Failure, done.T = &nx, 0.014
	c.step(probe.Step{Kind: probe.StepDNS, Done: true, Target: "x.example", Side: "local", T: 0.014, Query: &done})
	d := probe.Decision{Code: "down_dns", Verdict: measurement.VerdictDown, Reason: "the name fails from the control resolver too (dns_nxdomain_error)"}
	c.step(probe.Step{Kind: probe.StepVerdict, Done: true, Target: "x.example", T: 0.015, Decision: &d})
	m := &measurement.Measurement{Envelope: measurement.Envelope{Input: "x.example"}}
	m.TestKeys.Verdict, m.TestKeys.VerdictReason = d.Verdict, d.Reason
	m.TestKeys.Queries = []measurement.DNSQuery{done}
	before := errw.Len()
	c.result(m)
	c.finish()
	if out.Len() != 0 {
		t.Errorf("-q printed a result line: %q", out.String())
	}
	want := "kzprobe: debug: x.example: 2 ms: dns local A x.example via 192.0.2.53:53 (udp): started\n" +
		"kzprobe: debug: x.example: 14 ms: dns local A x.example via 192.0.2.53:53 (udp): dns_nxdomain_error in 12 ms\n" +
		"kzprobe: debug: x.example: 15 ms: judgement by rule down_dns: down: the name fails from the control resolver too (dns_nxdomain_error)\n"
	if got := errw.String(); got != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", got, want)
	}
	if errw.Len() != before {
		t.Errorf("the result printed the steps again: %q", errw.String()[before:])
	}
}

// TestReadProgressFitsTerminal: the reading commands' progress line on a
// terminal is never wider than it (a wrapped line left a copy of itself at
// every redraw) and clears the rest of the line after it.
func TestReadProgressFitsTerminal(t *testing.T) {
	var buf bytes.Buffer
	rp := &readProgress{w: &buf, terminal: true, cols: func() int { return 60 }, start: time.Now().Add(-time.Minute)}
	rp.update(analysis.Progress{FilesDone: 2, Files: 5, Bytes: 300 << 20, TotalBytes: 1200 << 20, Records: 1203455, Bad: 12})
	out := buf.String()
	line, rest, ok := strings.Cut(strings.TrimPrefix(out, "\r"), "\033[K")
	if !strings.HasPrefix(out, "\r") || !ok || rest != "" {
		t.Fatalf("progress %q; want \\r, the line, then clear to the end of the line", out)
	}
	if textWidth(line) >= 60 || !strings.HasPrefix(line, "reading 2/5 files: 300.0 MB of 1200.0 MB") {
		t.Errorf("line of %d columns on a terminal of 60: %q", textWidth(line), line)
	}
}
