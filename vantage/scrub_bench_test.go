package vantage

import (
	"bytes"
	"net/netip"
	"os"
	"testing"
)

// BenchmarkScrubRecord scrubs one typical output line (a 12 KB lab record
// with its certificates and raw DNS answers in base64) that holds none of
// the hidden addresses, which is what nearly every line of a run is.
func BenchmarkScrubRecord(b *testing.B) {
	line, err := os.ReadFile("../measurement/testdata/measurement-mitm-isca.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	line = bytes.TrimSpace(line)
	s := NewScrubber(netip.MustParseAddr("203.0.113.77"), netip.MustParseAddr("2001:db8:77::1"),
		netip.MustParseAddr("192.168.1.23"))
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if out := s.ScrubBytes(line); len(out) != len(line) {
			b.Fatal("scrubbed a clean line")
		}
	}
}
