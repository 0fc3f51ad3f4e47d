package analysis_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kzprobe/analysis"
	"kzprobe/analysis/analysistest"
)

// goldenTrace is trace's own golden record: a real kzprobe_trace record
// of the e2e interception case (hop 2 of 4, a transparent proxy).
var goldenTrace = filepath.Join("..", "trace", "testdata", "golden", "trace.json")

// TestAnalysisTraceNotCountedAsRun reads the report fixture alone, then
// with kzprobe trace's records beside it (its golden record and
// analysistest.TracePlan): no table of the report and no cell of the
// matrix may change. Before, each trace counted as a measurement (of
// networks and domains), and report's matrix gave it a no_chain cell.
func TestAnalysisTraceNotCountedAsRun(t *testing.T) {
	fx, judge := reportFixture(t)
	traceFile, err := analysistest.WriteTraceFixture(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	checkRunTablesUnchanged(t, judge, fx.Dir, []string{traceFile, goldenTrace}, "the traces", "TraceMeasurements")
}

// TestAnalysisWhere checks the where table and the boxes of the trace
// fixture and of trace's golden record: one row per network and target
// (the latest trace), and the answering boxes, shared or not.
func TestAnalysisWhere(t *testing.T) {
	traceFile, err := analysistest.WriteTraceFixture(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := analysis.New(analysis.Config{})
	var recs []*analysis.Record
	if _, err := (&analysis.Reader{}).ReadPaths([]string{traceFile, goldenTrace}, func(r *analysis.Record) error {
		recs = append(recs, r)
		a.Add(r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	res := a.Result()
	w := res.Where
	if w == nil || w.Traces != 7 || res.Summary.TraceMeasurements != 7 || res.Summary.Measurements != 0 {
		t.Fatalf("where %+v, summary %+v; want 7 traces, no measurement", w, res.Summary)
	}
	type row struct {
		ASN, Domain, Interference, Answering, Before string
		Hop, Dest, Traces                            int
		Proxy                                        bool
	}
	var got []row
	for _, r := range w.Rows {
		f := r.Finding
		got = append(got, row{r.ASN, r.Domain, f.Interference, analysis.HopText(f.AnsweringHop), analysis.HopText(f.BeforeHop),
			deref(f.InterferenceHop), deref(f.DestinationHops), r.Traces, f.TransparentProxy != nil && *f.TransparentProxy})
	}
	want := []row{
		{"AS9198", "compromat.ru", "interception", "198.51.100.0/24 AS64501", "private", 3, 7, 2, true}, // the later of two traces
		{"AS9198", "xakep.ru", "reset", "203.0.113.0/24 AS64502", "private", 4, 9, 1, true},
		{"AS48716", "rutracker.org", "interception", "192.0.2.0/24 AS64501", "private", 3, 6, 1, true},
		{"AS48716", "wikipedia.org", "none", "", "", 0, 10, 1, false},
		{"AS64500", "blocked.example.test", "interception", "198.51.100.0/24 AS64501", "private", 2, 4, 1, true}, // the golden record
		{"AS206026", "ukraina.ru", "interception", "198.51.100.0/24 AS64501", "private", 5, 8, 1, true},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("where rows (-want +got):\n%s", d)
	}
	type box struct {
		Prefix, ASN string
		Networks    []string
		Shared      bool
		SameASN     int
		Hops        []int
	}
	var boxes []box
	for _, b := range w.Boxes {
		boxes = append(boxes, box{b.Prefix, b.ASN, b.Networks, b.Shared, b.SameASN, b.Hops})
	}
	wantBoxes := []box{
		{"192.0.2.0/24", "AS64501", []string{"AS48716"}, false, 4, []int{3}},
		{"198.51.100.0/24", "AS64501", []string{"AS9198", "AS64500", "AS206026"}, true, 4, []int{2, 3, 5}},
		{"203.0.113.0/24", "AS64502", []string{"AS9198"}, false, 1, []int{4}},
	}
	if d := cmp.Diff(wantBoxes, boxes); d != "" {
		t.Errorf("boxes (-want +got):\n%s", d)
	}

	// Whatever the order, in analyze and in compare.
	rev := slices.Clone(recs)
	slices.Reverse(rev)
	b, c := analysis.New(analysis.Config{}), analysis.NewComparison(analysis.Config{DeriveVerdicts: true})
	for _, r := range rev {
		b.Add(r)
		c.Add(r)
	}
	if d := cmp.Diff(w, b.Result().Where); d != "" {
		t.Errorf("reversed input (-in order +reversed):\n%s", d)
	}
	m := c.Matrix()
	if d := cmp.Diff(w, m.Where); d != "" || len(m.Cells) != 0 {
		t.Errorf("compare: %d cells, where (-analyze +compare):\n%s", len(m.Cells), d)
	}
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// FuzzTraceFinding feeds test_keys.finding values to the decoder inside a
// trace record: a finding encoding/json reads whole (no list over the
// bound) is read the same, lists are cut to the bound, and the record
// goes through the analysis and the comparison.
func FuzzTraceFinding(f *testing.F) {
	b, err := os.ReadFile(goldenTrace)
	if err != nil {
		f.Fatal(err)
	}
	var doc struct {
		TestKeys struct {
			Finding json.RawMessage `json:"finding"`
		} `json:"test_keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(doc.TestKeys.Finding))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"silent_hops":[1,2,3,4,5],"answering_hop":{"prefix":"x"},"interference_hop":1e3}`))
	f.Add([]byte(`{"destination_hops":"4"}`))
	f.Fuzz(func(t *testing.T, val []byte) {
		line := `{"measurement_start_time":"2024-01-01 00:00:00","test_name":"kzprobe_trace","probe_asn":"AS1","test_keys":{"domain":"a.example","finding":` + string(val) + `}}`
		var rec analysis.Record
		err := analysis.DecodeFast([]byte(line), &rec)
		var ref struct {
			TestKeys struct {
				Finding *struct {
					SilentHops []json.Number `json:"silent_hops"`
				} `json:"finding"`
			} `json:"test_keys"`
		}
		if err == nil && json.Unmarshal([]byte(line), &ref) == nil && ref.TestKeys.Finding != nil && rec.TestKeys.TraceFinding != nil {
			if n, got := len(ref.TestKeys.Finding.SilentHops), len(rec.TestKeys.TraceFinding.SilentHops); got != min(n, analysis.DefaultMaxEntries) {
				t.Errorf("%d silent hops read of %d; want all up to %d", got, n, analysis.DefaultMaxEntries)
			}
		}
		if err != nil && strings.Contains(err.Error(), "panic") {
			t.Fatal(err)
		}
		fuzzRead(t, []byte(line+"\n"), nil)
	})
}
