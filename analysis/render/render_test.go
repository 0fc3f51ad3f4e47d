package render_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
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
	// text is the element's text, its descendants' included.
	text string
}

// parseXML decodes the whole document with encoding/xml (strict) and
// returns its elements.
func parseXML(t *testing.T, doc []byte) []svgElement {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var out []svgElement
	var open []int // indices in out of the elements not yet closed
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
			open = append(open, len(out))
			out = append(out, svgElement{name: e.Name.Local, attrs: m})
		case xml.EndElement:
			depth--
			open = open[:len(open)-1]
		case xml.CharData:
			for _, i := range open {
				out[i].text += string(e)
			}
		}
	}
	if depth != 0 {
		t.Fatalf("unbalanced elements: depth %d at the end", depth)
	}
	return out
}

// TestTimelineSVG draws the report fixture's timeline: it must be valid
// XML with a title saying what and when, a line saying how much data, one
// row per intermediate with both ends of its window dated in full, a
// window bar each, marks that add up to every sighting (the out-of-window
// ones as warning diamonds), a count on every mark that stands for more
// than one, one shaded band per gap, a dashed line at the last
// measurement, and an axis whose ends carry their year.
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
	var rows, rowText []string
	marked := map[string]int{} // sightings the marks stand for, by class
	counted, wantCounted := 0, 0
	var axis []string
	var lastX float64
	for i, e := range els {
		c := e.attrs["class"]
		if c != "" {
			count[c]++
		}
		switch c {
		case "row":
			rows = append(rows, e.attrs["data-sha1"])
			rowText = append(rowText, e.text)
		case "sighting", "outside":
			n := int(num(t, e.attrs["data-n"]))
			marked[c] += n
			if n > 1 {
				wantCounted++
			}
		case "count":
			counted++
			// A count follows its mark and prints its number.
			j := i - 1
			for j > 0 && els[j].attrs["data-n"] == "" {
				j--
			}
			if e.text != els[j].attrs["data-n"] {
				t.Errorf("count %q after a mark of %s sightings", e.text, els[j].attrs["data-n"])
			}
		case "last":
			if e.name == "line" {
				lastX = num(t, e.attrs["x1"])
				if e.attrs["stroke-dasharray"] == "" {
					t.Error("the last-measurement line is not dashed")
				}
			}
		}
		if c == "tick" {
			axis = append(axis, e.text)
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
			inside += d.Inside
			outside += d.Outside
		}
	}
	if diff := cmp.Diff(wantRows, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if len(rowText) > 0 && !strings.Contains(rowText[0], "valid 2021-06-18 → 2021-09-01") {
		t.Errorf("first row's label %q; want both ends of the window with their year", rowText[0])
	}
	if inside != 13 || outside != 10 {
		t.Errorf("fixture: %d sightings inside, %d outside; want 13 and 10", inside, outside)
	}
	if marked["sighting"] != inside || marked["outside"] != outside {
		t.Errorf("marks stand for %d sightings inside, %d outside; want %d and %d", marked["sighting"], marked["outside"], inside, outside)
	}
	if counted != wantCounted || counted < 2 {
		t.Errorf("%d counts drawn; want one per mark of several sightings (%d), at least the fixture's 2", counted, wantCounted)
	}
	want := map[string]int{"title": 1, "subtitle": 1, "row": 7, "window": 7, "gap": 5, "last": 2,
		"sighting": count["sighting"], "outside": 8, "count": counted, "tick": len(axis)}
	if diff := cmp.Diff(want, count); diff != "" {
		t.Errorf("elements by class (-want +got):\n%s", diff)
	}
	var title, subtitle string
	for _, e := range els {
		switch e.attrs["class"] {
		case "title":
			title = e.text
		case "subtitle":
			subtitle = e.text
		}
	}
	if !strings.Contains(title, "ISCA") || !strings.Contains(title, "2021-06-20 to 2024-11-20") {
		t.Errorf("title %q; want what and from when to when", title)
	}
	if !strings.Contains(subtitle, "7 intermediates") || !strings.Contains(subtitle, "22 of 23 measurements") || !strings.Contains(subtitle, "19 networks") {
		t.Errorf("subtitle %q; want how many intermediates, measurements and networks", subtitle)
	}
	for _, w := range []struct {
		i    int
		want string
	}{{0, "Jul 2021"}, {len(axis) - 1, "Oct 2024"}} {
		if len(axis) == 0 || axis[w.i] != w.want {
			t.Errorf("axis labels %q; want %q at the end", axis, w.want)
		}
	}
	for _, e := range els {
		if e.attrs["class"] == "window" && num(t, e.attrs["x"]) >= lastX {
			t.Errorf("a window starts at %s, right of the last measurement's line at %.1f", e.attrs["x"], lastX)
		}
	}
	golden(t, "timeline.svg", b.Bytes())
}

// TestTimelineDenseMarks: a year of daily sightings on three
// intermediates, each seen ten days before its window and a month after
// it, draws marks that add up to every sighting, none overlapping its
// neighbour and no two counts on one line touching (counts above the dots,
// below the diamonds), and counts in thousands as "1.2k".
func TestTimelineDenseMarks(t *testing.T) {
	res := &analysis.Result{Summary: analysis.Summary{Measurements: 90000, Intercepted: 80000, Networks: 60, InterceptedNetworks: 41, InterceptedDomains: 900, Files: 365,
		First: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Last: time.Date(2024, 12, 31, 23, 0, 0, 0, time.UTC)}}
	total := 0
	for i := range 3 {
		nb := time.Date(2024, time.Month(1+4*i), 1, 0, 0, 0, 0, time.UTC)
		r := analysis.IntermediateRow{SHA1: fmt.Sprintf("%040x", i+1), SignerRootSHA1: "unknown", NotBefore: nb, NotAfter: nb.AddDate(0, 3, 15)}
		for day := nb.AddDate(0, 0, -10); day.Before(r.NotAfter.AddDate(0, 1, 0)); day = day.AddDate(0, 0, 1) {
			dc := analysis.DayCount{Day: day}
			if day.Before(r.NotAfter) && !day.Before(nb) {
				dc.Inside = 80 + day.Day()*3
			} else {
				dc.Outside = 5
			}
			total += dc.Inside + dc.Outside
			r.Days = append(r.Days, dc)
		}
		res.Intermediates = append(res.Intermediates, r)
	}
	var b bytes.Buffer
	if err := render.Timeline(&b, res, render.TimelineOptions{}); err != nil {
		t.Fatal(err)
	}
	type drawn struct{ x, r, labelW float64 }
	rows := map[string]map[string][]drawn{} // row y, kind
	sum, thousands := 0, 0
	els := parseXML(t, b.Bytes())
	for i, e := range els {
		kind := e.attrs["class"]
		if kind != "sighting" && kind != "outside" {
			continue
		}
		n := int(num(t, e.attrs["data-n"]))
		sum += n
		var d drawn
		var y string
		if kind == "sighting" {
			d.x, d.r, y = num(t, e.attrs["cx"]), num(t, e.attrs["r"]), e.attrs["cy"]
		} else {
			f := strings.FieldsFunc(els[i+1].attrs["d"], func(r rune) bool { return r == 'M' || r == 'L' || r == 'Z' || r == ' ' })
			d.x, d.r, y = num(t, f[0]), num(t, f[3])-num(t, f[1]), f[3]
		}
		for _, c := range els[i+1:] {
			if c.attrs["class"] == "count" {
				d.labelW = 7 * float64(len(c.text))
				if strings.HasSuffix(c.text, "k") {
					thousands++
				}
				break
			}
			if c.attrs["data-n"] != "" {
				break
			}
		}
		if rows[y] == nil {
			rows[y] = map[string][]drawn{}
		}
		rows[y][kind] = append(rows[y][kind], d)
	}
	if sum != total {
		t.Errorf("marks stand for %d sightings; want %d", sum, total)
	}
	if thousands == 0 {
		t.Error("no count in thousands; want \"1.2k\" style counts on the merged dots")
	}
	for y, kinds := range rows {
		for kind, ds := range kinds {
			for i := 1; i < len(ds); i++ {
				a, c := ds[i-1], ds[i]
				if gap := c.x - a.x; gap < a.r+c.r || gap < (a.labelW+c.labelW)/2 {
					t.Errorf("row at y=%s, %s marks at %.1f and %.1f overlap or crowd their counts (%.1f px apart)", y, kind, a.x, c.x, gap)
				}
			}
		}
	}
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
		`AS9198</span> <span class="nm">JSC Kazakhtelecom</span> <code>` + chain.Short(res.Intermediates[6].SHA1) + "</code>"} {
		if !strings.Contains(doc, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	golden(t, "report.html", b.Bytes())
}

// reportDOM writes the report of res and m and parses it.
func reportDOM(t *testing.T, res *analysis.Result, m *analysis.Matrix) *html.Node {
	t.Helper()
	var b bytes.Buffer
	if err := render.Report(&b, render.ReportData{Result: res, Matrix: m}); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	return slices.Contains(strings.Fields(attr(n, "class")), class)
}

// walk calls f on every node under n with its ancestors, nearest last.
func walk(n *html.Node, f func(n *html.Node, up []*html.Node)) {
	var rec func(n *html.Node, up []*html.Node)
	rec = func(n *html.Node, up []*html.Node) {
		f(n, up)
		up = append(up, n)
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			rec(c, up)
		}
	}
	rec(n, nil)
}

func textOf(n *html.Node) string {
	var b strings.Builder
	walk(n, func(n *html.Node, _ []*html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
	})
	return b.String()
}

var (
	fullHash = regexp.MustCompile(`[0-9a-f]{40}`)
	longNum  = regexp.MustCompile(`[0-9]{20,}`)
	dateTime = regexp.MustCompile(`\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}`)
)

// TestReportHTMLCells: in the report's tables a fingerprint or serial
// shows as a short form whose whole value is in its title and in the box
// that opens on a click (never as a long run of characters the browser
// breaks anywhere), every date is a <time> (which the style keeps on one
// line), and every table has its heading, the sightings in the gaps
// included.
func TestReportHTMLCells(t *testing.T) {
	res, m, _ := reportResult(t)
	doc := reportDOM(t, res, m)
	inAll := func(up []*html.Node) bool {
		return slices.ContainsFunc(up, func(a *html.Node) bool { return hasClass(a, "all") })
	}
	inTime := func(up []*html.Node) bool {
		return slices.ContainsFunc(up, func(a *html.Node) bool { return a.Data == "time" })
	}
	inCell := func(up []*html.Node) bool {
		return slices.ContainsFunc(up, func(a *html.Node) bool { return a.Data == "td" })
	}
	var shorts, boxes, times, tables int
	var headings []string
	lastHeading := ""
	walk(doc, func(n *html.Node, up []*html.Node) {
		switch {
		case n.Type == html.TextNode && inCell(up):
			if inAll(up) {
				return
			}
			if h := fullHash.FindString(n.Data); h != "" {
				t.Errorf("a whole fingerprint %s shown in a cell", h)
			}
			if l := longNum.FindString(n.Data); l != "" {
				t.Errorf("a whole serial %s shown in a cell", l)
			}
			if d := dateTime.FindString(n.Data); d != "" && !inTime(up) {
				t.Errorf("date %s in a cell outside <time>", d)
			}
		case n.Type == html.ElementNode && n.Data == "details" && hasClass(n, "h"):
			shorts++
			sum := n.FirstChild
			short := strings.TrimSuffix(textOf(sum), "…")
			full := attr(sum, "title")
			if sum.Data != "summary" || !strings.HasPrefix(full, short) || len(short) >= len(full) || !strings.HasSuffix(textOf(sum), "…") {
				t.Errorf("short form %q of %q; want a prefix with an ellipsis and the whole value as the title", textOf(sum), full)
			}
			if box := sum.NextSibling; box != nil && hasClass(box, "all") && strings.Contains(textOf(box), full) {
				boxes++
			}
		case n.Type == html.ElementNode && n.Data == "time":
			times++
		case n.Type == html.ElementNode && (n.Data == "h2" || n.Data == "h3"):
			lastHeading = textOf(n)
		case n.Type == html.ElementNode && n.Data == "table":
			tables++
			headings = append(headings, lastHeading)
			lastHeading = ""
		}
	})
	if shorts < 40 || boxes != shorts || times < 60 {
		t.Errorf("%d short forms (%d with their box), %d <time>; want every fingerprint and serial short, each with its box, and the dates", shorts, boxes, times)
	}
	want := []string{"Intermediates", "Validity gaps", "Sightings inside the gaps", "Domains by network", "Networks", "Domains", "Files", "Warnings"}
	if diff := cmp.Diff(want, headings); diff != "" {
		t.Errorf("the heading of each table (-want +got):\n%s", diff)
	}
	css := textOf(doc)
	for _, rule := range []string{"time,.nw{white-space:nowrap}", ".h{display:inline-block;position:relative;white-space:nowrap", "user-select:all"} {
		if !strings.Contains(css, rule) {
			t.Errorf("the style lacks %q", rule)
		}
	}
}

// TestReportUnlabelled: measurements without an AS number show as
// "AS0 (unlabelled)" and are not counted as a network: the card counts
// the labelled networks and says how many measurements were left out. A
// network name's bidi override is shown escaped, as in the text formats.
func TestReportUnlabelled(t *testing.T) {
	res := &analysis.Result{
		Summary: analysis.Summary{Measurements: 7, Intercepted: 5, Networks: 2, InterceptedNetworks: 2, Unlabelled: 3, UnlabelledIntercepted: 1},
		Networks: []analysis.NetworkRow{
			{ASN: "AS0", Measurements: 3, Intercepted: 1},
			{ASN: "AS9198", Name: "JSC Kazakhtelecom", Measurements: 2, Intercepted: 2},
			{ASN: "AS21299", Name: "Kar-Tel\u202eCLL", Measurements: 2, Intercepted: 2},
		},
	}
	doc := reportDOM(t, res, nil)
	var card, rows []string
	walk(doc, func(n *html.Node, up []*html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		if hasClass(n, "card") && strings.Contains(textOf(n), "networks") {
			var words []string // each block's text: the number, the label, the note
			walk(n, func(n *html.Node, _ []*html.Node) {
				if n.Type == html.TextNode {
					words = append(words, strings.Fields(n.Data)...)
				}
			})
			card = append(card, strings.Join(words, " "))
		}
		if n.Data == "td" && attr(n, "data-label") == "ASN" {
			rows = append(rows, textOf(n))
		}
	})
	if want := []string{"2 / 2 networks intercepting not counting 3 unlabelled measurement(s)"}; !slices.Equal(card, want) {
		t.Errorf("network card %q; want %q", card, want)
	}
	if want := []string{"AS0 (unlabelled)", "AS9198", "AS21299"}; !slices.Equal(rows, want) {
		t.Errorf("networks table %q; want %q", rows, want)
	}
	// A name that would reorder the text around it shows its escape.
	if page := textOf(doc); strings.Contains(page, "\u202e") || !strings.Contains(page, `Kar-Tel\u202eCLL`) {
		t.Error("the bidi override in a network name reached the page raw")
	}
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
