package analysis_test

import (
	"fmt"
	"strings"
	"testing"

	"kzprobe/analysis"
)

// distinctRecords are n kzprobe records, each on its own network and
// domain.
func distinctRecords(n int) []*analysis.Record {
	recs := make([]*analysis.Record, n)
	for i := range recs {
		recs[i] = kzRecord(fmt.Sprintf("d%d.example", i), fmt.Sprintf("AS%d", i+1), fmt.Sprintf("Net %d", i), "2024-01-01 00:00:00", "ok")
		recs[i].Source = fmt.Sprintf("f.jsonl:%d", i+1)
	}
	return recs
}

// TestAnalysisTablesBounded: the tables stop growing at MaxTableBytes
// (unbounded, two million distinct networks and domains in an 11 MB gzip
// took 3.9 GB); every measurement is still counted, those that lost a row
// are, and one warning names where the tables filled up. The comparison
// is bounded the same way.
func TestAnalysisTablesBounded(t *testing.T) {
	t.Parallel()
	recs := distinctRecords(1000)
	cfg := analysis.Config{MaxTableBytes: 100 << 10}
	a := analysis.New(cfg)
	c := analysis.NewComparison(cfg)
	for _, r := range recs {
		a.Add(r)
		c.Add(r)
	}
	res := a.Result()
	s := res.Summary
	if s.Measurements != 1000 || len(res.Networks) >= 1000 || len(res.Domains) >= 1000 || len(res.Networks) < 50 {
		t.Errorf("%d measurements, %d networks, %d domains; want 1000 measurements and the tables cut", s.Measurements, len(res.Networks), len(res.Domains))
	}
	if lost := 1000 - min(len(res.Networks), len(res.Domains)); s.NotTabulated != lost {
		t.Errorf("not tabulated %d; want %d", s.NotTabulated, lost)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0].Message, "tables reached their") || !strings.HasPrefix(res.Warnings[0].Source, "f.jsonl:") {
		t.Errorf("warnings %v; want one naming the record where the tables filled", res.Warnings)
	}
	m := c.Matrix()
	if len(m.Cells) >= 1000 || len(m.Cells) < 50 || m.NotTabulated != 1000-len(m.Cells) || len(m.Warnings) != 1 {
		t.Errorf("%d cells, %d not tabulated, warnings %v; want the matrix cut, the rest counted, one warning", len(m.Cells), m.NotTabulated, m.Warnings)
	}

	// The default bound holds the report fixture whole.
	fx, judge := reportFixture(t)
	full := analysis.New(analysis.Config{Judge: judge})
	if err := full.ReadPaths([]string{fx.Dir}); err != nil {
		t.Fatal(err)
	}
	if n := full.Result().Summary.NotTabulated; n != 0 {
		t.Errorf("report fixture: %d measurements not tabulated; want 0", n)
	}
}

// BenchmarkComparisonMatrix builds the matrix of 20 000 networks and as
// many domains, one cell each: walking every domain x network pair (400
// million lookups) took seconds; sorting the cells there are, milliseconds.
func BenchmarkComparisonMatrix(b *testing.B) {
	c := analysis.NewComparison(analysis.Config{MaxTableBytes: 1 << 30})
	for _, r := range distinctRecords(20000) {
		c.Add(r)
	}
	b.ResetTimer()
	for b.Loop() {
		if m := c.Matrix(); len(m.Cells) != 20000 {
			b.Fatalf("%d cells", len(m.Cells))
		}
	}
}
