package render_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
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

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// reportResult analyses the report fixture, with paths relative to it.
func reportResult(t testing.TB) (*analysis.Result, *analysis.Matrix, *analysistest.Fixture) {
	t.Helper()
	fx, err := analysistest.WriteReportFixture(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	kb, err := chain.Default()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kb.AddRootsPEM(fx.PKI.RootsPEM(), "analysistest"); err != nil {
		t.Fatal(err)
	}
	cfg := analysis.Config{Judge: &analysis.Judge{Analyzer: chain.NewAnalyzer(nil, kb)}, DeriveVerdicts: true}
	a := analysis.New(cfg)
	c := analysis.NewComparison(cfg)
	rd := &analysis.Reader{Warn: a.Warn}
	stats, err := rd.ReadPaths([]string{fx.Dir}, func(r *analysis.Record) error {
		r.Source = strings.TrimPrefix(r.Source, fx.Dir+string(filepath.Separator))
		a.Add(r)
		c.Add(r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range stats {
		stats[i].Path = strings.TrimPrefix(stats[i].Path, fx.Dir+string(filepath.Separator))
	}
	a.AddFileStats(stats...)
	res := a.Result()
	for i := range res.Warnings {
		res.Warnings[i].Source = strings.TrimPrefix(res.Warnings[i].Source, fx.Dir+string(filepath.Separator))
	}
	return res, c.Matrix(), fx
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

// svgElement is what the test reads back from the SVG.
type svgElement struct {
	name  string
	attrs map[string]string
}

// parseXML decodes the whole document with encoding/xml (strict) and
// returns its elements.
func parseXML(t *testing.T, doc []byte) []svgElement {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var out []svgElement
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			depth++
			m := map[string]string{}
			for _, a := range e.Attr {
				m[a.Name.Local] = a.Value
			}
			out = append(out, svgElement{e.Name.Local, m})
		case xml.EndElement:
			depth--
		}
	}
	if depth != 0 {
		t.Fatalf("unbalanced elements: depth %d at the end", depth)
	}
	return out
}

// TestTimelineSVG draws the report fixture's timeline: it must be valid
// XML with one row per intermediate, a window bar each, a mark per day seen
// (the out-of-window days as warning diamonds) and one shaded band per gap.
func TestTimelineSVG(t *testing.T) {
	res, _, _ := reportResult(t)
	var b bytes.Buffer
	if err := render.Timeline(&b, res, render.TimelineOptions{}); err != nil {
		t.Fatal(err)
	}
	els := parseXML(t, b.Bytes())
	if els[0].name != "svg" || els[0].attrs["width"] != "1200" {
		t.Errorf("root %s %v; want <svg width=1200>", els[0].name, els[0].attrs)
	}
	count := map[string]int{}
	var rows []string
	for _, e := range els {
		if c := e.attrs["class"]; c != "" {
			count[c]++
		}
		if e.attrs["class"] == "row" {
			rows = append(rows, e.attrs["data-sha1"])
		}
		if e.name == "image" || e.name == "script" || e.name == "use" || e.attrs["href"] != "" {
			t.Errorf("external or active content: <%s %v>", e.name, e.attrs)
		}
	}
	var wantRows []string
	inside, outside := 0, 0
	for _, r := range res.Intermediates {
		wantRows = append(wantRows, r.SHA1)
		for _, d := range r.Days {
			if d.Inside > 0 {
				inside++
			}
			if d.Outside > 0 {
				outside++
			}
		}
	}
	if diff := cmp.Diff(wantRows, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	want := map[string]int{"row": 7, "window": 7, "gap": 5, "sighting": inside, "outside": outside}
	if outside != 9 || inside != 13 {
		t.Errorf("fixture: %d days with sightings inside, %d outside; want 13 and 9", inside, outside)
	}
	if diff := cmp.Diff(want, count); diff != "" {
		t.Errorf("elements by class (-want +got):\n%s", diff)
	}
	golden(t, "timeline.svg", b.Bytes())
}

// TestTimelineEscapesText: names from the data cannot break the XML.
func TestTimelineEscapesText(t *testing.T) {
	res := &analysis.Result{Intermediates: []analysis.IntermediateRow{{
		SHA1: `"><script>alert(1)</script>&`, SignerRootSHA1: "<&>",
		NotBefore: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC),
		Days: []analysis.DayCount{{Day: time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), Inside: 3}},
	}}}
	var b bytes.Buffer
	if err := render.Timeline(&b, res, render.TimelineOptions{Title: "a < b & c"}); err != nil {
		t.Fatal(err)
	}
	for _, e := range parseXML(t, b.Bytes()) {
		if e.name == "script" {
			t.Fatal("a <script> element got through")
		}
	}
}

// TestTimelineEmpty: no intermediate still draws a valid picture.
func TestTimelineEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := render.Timeline(&b, &analysis.Result{}, render.TimelineOptions{}); err != nil {
		t.Fatal(err)
	}
	parseXML(t, b.Bytes())
	if !bytes.Contains(b.Bytes(), []byte("No intermediate")) {
		t.Error("empty timeline does not say so")
	}
}

// TestReportHTMLSelfContained writes the report page and checks that it
// parses, holds the summary, the SVG, every table, and loads nothing: no
// script, no link, no src, no url() or @import.
func TestReportHTMLSelfContained(t *testing.T) {
	res, m, _ := reportResult(t)
	var b bytes.Buffer
	err := render.Report(&b, render.ReportData{Result: res, Matrix: m, Inputs: []string{"fixture/"}, Generated: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	doc := b.String()
	z := html.NewTokenizer(strings.NewReader(doc))
	tags := map[string]int{}
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			if !errors.Is(z.Err(), io.EOF) {
				t.Fatalf("HTML does not tokenize: %v", z.Err())
			}
			break
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		name, hasAttr := z.TagName()
		tags[string(name)]++
		for hasAttr {
			var k, v []byte
			k, v, hasAttr = z.TagAttr()
			switch string(k) {
			case "src", "href", "srcset", "action", "formaction", "poster", "data":
				t.Errorf("<%s %s=%q>: the page must load nothing", name, k, v)
			}
		}
	}
	for _, bad := range []string{"script", "link", "img", "iframe", "object", "embed"} {
		if tags[bad] > 0 {
			t.Errorf("%d <%s> elements; want none", tags[bad], bad)
		}
	}
	for _, bad := range []string{"url(", "@import"} {
		if strings.Contains(doc, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	if tags["svg"] != 1 || tags["table"] < 6 {
		t.Errorf("tags %v; want one inline svg and the tables", tags)
	}
	for _, want := range []string{"Timeline", "Intermediates", "Validity gaps", "Domains by network", "Networks", "Domains",
		res.Intermediates[0].SHA1, "542829070264121061358597976201233251364726286334", "STARK INDUSTRIES SOLUTIONS LTD", "xakep.ru",
		"mitm_isca " + chain.Short(res.Intermediates[6].SHA1)} {
		if !strings.Contains(doc, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	golden(t, "report.html", b.Bytes())
}

// TestCompareFormats prints the fixture's matrix (OONI records with
// derived verdicts, kzprobe's with their own) in every format.
func TestCompareFormats(t *testing.T) {
	_, m, _ := reportResult(t)
	for _, tc := range []struct{ format, ext string }{
		{render.FormatTable, "txt"}, {render.FormatJSON, "json"}, {render.FormatCSV, "csv"}, {render.FormatMarkdown, "md"}, {render.FormatHTML, "html"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			var b bytes.Buffer
			if err := render.Compare(&b, m, tc.format); err != nil {
				t.Fatal(err)
			}
			golden(t, "compare."+tc.ext, b.Bytes())
		})
	}
}
