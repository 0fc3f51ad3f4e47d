package render_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"

	"kzprobe/analysis"
	"kzprobe/analysis/analysistest"
	"kzprobe/analysis/render"
	"kzprobe/probe/chain"
)

// sweepReportResult analyses the report fixture with the sweep fixture
// (analysistest.SweepPlan) beside it, paths relative to their folders.
func sweepReportResult(t testing.TB) (*analysis.Result, *analysis.Matrix, *analysistest.Fixture) {
	return sideReportResult(t, false)
}

// sideReportResult is sweepReportResult, with the trace fixture
// (analysistest.TracePlan) read too when traces is true.
func sideReportResult(t testing.TB, traces bool) (*analysis.Result, *analysis.Matrix, *analysistest.Fixture) {
	t.Helper()
	fx, err := analysistest.WriteReportFixture(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sweepDir := t.TempDir()
	sweepFile, err := analysistest.WriteSweepFixture(sweepDir, fx.PKI)
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{fx.Dir, sweepFile}
	if traces {
		traceFile, err := analysistest.WriteTraceFixture(sweepDir)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, traceFile)
	}
	kb, err := chain.Default()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kb.AddRootsPEM(fx.PKI.RootsPEM(), "analysistest"); err != nil {
		t.Fatal(err)
	}
	trim := func(s string) string {
		s = strings.TrimPrefix(s, fx.Dir+string(filepath.Separator))
		return strings.TrimPrefix(s, sweepDir+string(filepath.Separator))
	}
	cfg := analysis.Config{Judge: &analysis.Judge{Analyzer: chain.NewAnalyzer(nil, kb)}, DeriveVerdicts: true}
	a, c := analysis.New(cfg), analysis.NewComparison(cfg)
	rd := &analysis.Reader{Warn: a.Warn}
	stats, err := rd.ReadPaths(paths, func(r *analysis.Record) error {
		r.Source = trim(r.Source)
		a.Add(r)
		c.Add(r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range stats {
		stats[i].Path = trim(stats[i].Path)
	}
	a.AddFileStats(stats...)
	c.AddFileStats(stats...)
	res := a.Result()
	for i := range res.Warnings {
		res.Warnings[i].Source = trim(res.Warnings[i].Source)
	}
	return res, c.Matrix(), fx
}

// TestSweepFormats prints the sweep's tables, beside the report fixture,
// in every format analyze and compare write, against goldens; and checks
// that analyze prints them by default only when sweep records were read.
func TestSweepFormats(t *testing.T) {
	res, m, _ := sweepReportResult(t)
	tables := []string{render.TableSummary, render.TableSweep, render.TableSweepNetworks}
	for _, tc := range []struct{ format, ext string }{
		{render.FormatTable, "txt"}, {render.FormatJSON, "json"}, {render.FormatCSV, "csv"}, {render.FormatMarkdown, "md"},
	} {
		t.Run("analyze/"+tc.format, func(t *testing.T) {
			var b bytes.Buffer
			if err := render.Analysis(&b, res, tc.format, tables); err != nil {
				t.Fatal(err)
			}
			golden(t, "sweep/analyze."+tc.ext, b.Bytes())
		})
	}
	for _, tc := range []struct{ format, ext string }{
		{render.FormatTable, "txt"}, {render.FormatJSON, "json"}, {render.FormatCSV, "csv"}, {render.FormatMarkdown, "md"}, {render.FormatHTML, "html"},
	} {
		t.Run("compare/"+tc.format, func(t *testing.T) {
			var b bytes.Buffer
			if err := render.Compare(&b, m, tc.format); err != nil {
				t.Fatal(err)
			}
			golden(t, "sweep/compare."+tc.ext, b.Bytes())
		})
	}

	// By default: the sweep's tables with sweep records, not without.
	only, _, _ := reportResult(t)
	for _, tc := range []struct {
		name string
		res  *analysis.Result
		want bool
	}{{"with sweep records", res, true}, {"without", only, false}} {
		t.Run("default/"+tc.name, func(t *testing.T) {
			var txt, js bytes.Buffer
			if err := render.Analysis(&txt, tc.res, render.FormatTable, nil); err != nil {
				t.Fatal(err)
			}
			if err := render.Analysis(&js, tc.res, render.FormatJSON, nil); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(txt.String(), "Names found by SNI sweep") && strings.Contains(txt.String(), "Networks swept by SNI"); got != tc.want {
				t.Errorf("sweep tables in the default text: %v; want %v", got, tc.want)
			}
			if got := strings.Contains(js.String(), `"sni_sweep"`); got != tc.want {
				t.Errorf("sni_sweep in the default JSON: %v; want %v", got, tc.want)
			}
		})
	}

	// --table sni_sweep --format csv is a plain CSV file: the header, one
	// row a name, each with its confirmation.
	var b bytes.Buffer
	if err := render.Analysis(&b, res, render.FormatCSV, []string{render.TableSweep}); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var confirmed []string
	for _, r := range rows[1:] {
		confirmed = append(confirmed, r[2]+"="+r[9])
	}
	if want := []string{"compromat.ru=yes", "www.pinterest.com=no", "xakep.ru=not run", "rutracker.org=not run", "kz.tsargrad.tv=not run", "ukraina.ru=yes"}; rows[0][9] != "confirmed_by_run" || !slices.Equal(confirmed, want) {
		t.Errorf("CSV header %q, confirmed %q; want %q", rows[0], confirmed, want)
	}
}

// TestSweepReportHTML: the report shows the sweep's two tables after the
// report's own, each cell labelled; with no sweep record it shows
// neither (TestReportHTMLSelfContained's golden).
func TestSweepReportHTML(t *testing.T) {
	res, m, _ := sweepReportResult(t)
	doc := reportDOM(t, res, m)
	var headings []string
	confirmed := map[string]string{}
	var domain string
	walk(doc, func(n *html.Node, up []*html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		if n.Data == "h2" || n.Data == "h3" {
			headings = append(headings, textOf(n))
		}
		if n.Data == "td" && slices.ContainsFunc(up, func(a *html.Node) bool { return a.Data == "table" }) {
			switch attr(n, "data-label") {
			case "domain":
				domain = textOf(n)
			case "confirmed":
				confirmed[domain] += textOf(n)
			}
		}
	})
	want := []string{"Timeline", "Intermediates", "Validity gaps", "Sightings inside the gaps", "Domains by network", "Networks", "Domains",
		"Names found by SNI sweep", "Networks swept by SNI", "Files", "Warnings"}
	if d := cmp.Diff(want, headings); d != "" {
		t.Errorf("headings (-want +got):\n%s", d)
	}
	wantConfirmed := map[string]string{"compromat.ru": "yes", "www.pinterest.com": "no", "xakep.ru": "not run", "rutracker.org": "not run", "kz.tsargrad.tv": "not run", "ukraina.ru": "yes"}
	if d := cmp.Diff(wantConfirmed, confirmed); d != "" {
		t.Errorf("confirmed by run, per name (-want +got):\n%s", d)
	}
	var page bytes.Buffer
	if err := render.Report(&page, render.ReportData{Result: res, Matrix: m}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), ".v-sni_blocked{") {
		t.Error("the page lacks the sweep verdicts' colours")
	}
}

// TestSweepJSONRoundTrip: the sweep result in analyze's JSON reads back
// as written.
func TestSweepJSONRoundTrip(t *testing.T) {
	res, _, _ := sweepReportResult(t)
	var b bytes.Buffer
	if err := render.Analysis(&b, res, render.FormatJSON, nil); err != nil {
		t.Fatal(err)
	}
	var back analysis.Result
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(res.Sweep, back.Sweep, cmp.Comparer(func(x, y time.Time) bool { return x.Equal(y) })); d != "" {
		t.Errorf("sweep after a JSON round trip (-before +after):\n%s", d)
	}
}
