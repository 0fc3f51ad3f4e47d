package analysis_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"kzprobe/analysis"
	"kzprobe/analysis/analysistest"
)

// TestAnalysisSweepNotCountedAsRun reads the report fixture alone, then
// with a sweep beside it (analysistest.SweepPlan: records on networks and
// names the fixture measured, intercepted with the fixture's own
// intermediate): no table of the report (intermediates, networks,
// domains, gaps, the summary's counts) and no cell of the matrix may
// change, since a sweep's record is not a measurement of a site. Before
// the sweep was read apart, its 10 records counted as 10 more
// measurements (33), 5 more intercepted (27), 2 more domains, 5 more
// sightings in the gaps, and moved the last measurement a week on.
func TestAnalysisSweepNotCountedAsRun(t *testing.T) {
	fx, judge := reportFixture(t)
	sweepFile, err := analysistest.WriteSweepFixture(t.TempDir(), fx.PKI)
	if err != nil {
		t.Fatal(err)
	}
	checkRunTablesUnchanged(t, judge, fx.Dir, []string{sweepFile}, "the sweep", "SweepMeasurements")
}

// checkRunTablesUnchanged reads the run records under base alone, then
// with the files of extra beside them (records of another test: a
// sweep's, a trace's), and fails where a table of the report or the
// matrix differs: what (say "the sweep") names the extra records, and
// counted is the Summary field that counts them.
func checkRunTablesUnchanged(t *testing.T, judge *analysis.Judge, base string, extra []string, what, counted string) {
	t.Helper()
	read := func(paths ...string) (*analysis.Result, *analysis.Matrix) {
		cfg := analysis.Config{Judge: judge, DeriveVerdicts: true}
		a, c := analysis.New(cfg), analysis.NewComparison(cfg)
		if _, err := (&analysis.Reader{}).ReadPaths(paths, func(r *analysis.Record) error {
			a.Add(r)
			c.Add(r)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return a.Result(), c.Matrix()
	}
	only, mo := read(base)
	mixed, mm := read(append([]string{base}, extra...)...)
	for _, tc := range []struct {
		name      string
		only, got any
	}{
		{"intermediates", only.Intermediates, mixed.Intermediates},
		{"networks", only.Networks, mixed.Networks},
		{"domains", only.Domains, mixed.Domains},
		{"gaps", only.Gaps, mixed.Gaps},
		{"summary", only.Summary, mixed.Summary},
		{"matrix cells", mo.Cells, mm.Cells},
		{"matrix networks", mo.Networks, mm.Networks},
		{"matrix domains", mo.Domains, mm.Domains},
		{"matrix skipped", mo.SkippedNotKzprobe, mm.SkippedNotKzprobe},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := cmp.Options{
				cmpopts.IgnoreUnexported(analysis.Cell{}),
				// What reading the other files, and judging their chains
				// (the judge is shared: the second read hits its cache),
				// adds by itself.
				cmpopts.IgnoreFields(analysis.Summary{}, "Files", "ChainsJudged", "CacheHits", counted),
			}
			if d := cmp.Diff(tc.only, tc.got, opts); d != "" {
				t.Errorf("%s changed the %s (-fixture alone +with %s):\n%s", what, tc.name, what, d)
			}
		})
	}
}
