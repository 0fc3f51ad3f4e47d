package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"kzprobe/measurement"
)

// TestProgressLine draws the progress line of a run 4 s old that has
// measured 8 targets: the rate while the list is still being read, and
// the time left once its length is known.
func TestProgressLine(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: &buf, on: true, start: time.Now().Add(-4 * time.Second)}
	p.addTotal(10)
	s := newSummary()
	for range 8 {
		m := &measurement.Measurement{Input: "x.kz"}
		m.TestKeys.Verdict = measurement.VerdictMITMISCA
		s.add(m)
	}
	p.update(s)
	if line := buf.String(); !strings.Contains(line, "[8/10+] mitm_isca 8, 2/s") || strings.Contains(line, "ETA") {
		t.Errorf("list being read: %q", line)
	}
	buf.Reset()
	p.totalKnown()
	p.lastOut = time.Time{}
	p.update(s)
	if line := buf.String(); !strings.Contains(line, "[8/10] mitm_isca 8, 2/s, ETA 1s") {
		t.Errorf("list read: %q", line)
	}
}
