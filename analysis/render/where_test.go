package render_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"

	"kzprobe/analysis/render"
)

// TestWhereFormats prints the where table and the boxes of the trace
// fixture (beside the report's and the sweep's) in every format analyze
// and compare write, against goldens; analyze prints them by default only
// with trace records.
func TestWhereFormats(t *testing.T) {
	res, m, _ := sideReportResult(t, true)
	tables := []string{render.TableWhere, render.TableBoxes}
	for _, tc := range []struct{ format, ext string }{
		{render.FormatTable, "txt"}, {render.FormatJSON, "json"}, {render.FormatCSV, "csv"}, {render.FormatMarkdown, "md"},
	} {
		t.Run("analyze/"+tc.format, func(t *testing.T) {
			var b bytes.Buffer
			if err := render.Analysis(&b, res, tc.format, tables); err != nil {
				t.Fatal(err)
			}
			golden(t, "where/analyze."+tc.ext, b.Bytes())
		})
	}
	for _, tc := range []struct{ format, ext string }{{render.FormatTable, "txt"}, {render.FormatHTML, "html"}} {
		t.Run("compare/"+tc.format, func(t *testing.T) {
			var b bytes.Buffer
			if err := render.Compare(&b, m, tc.format); err != nil {
				t.Fatal(err)
			}
			golden(t, "where/compare."+tc.ext, b.Bytes())
		})
	}
	only, _, _ := sweepReportResult(t)
	for _, tc := range []struct {
		name string
		want bool
	}{{"with traces", true}, {"without", false}} {
		t.Run("default/"+tc.name, func(t *testing.T) {
			var b bytes.Buffer
			r := res
			if !tc.want {
				r = only
			}
			if err := render.Analysis(&b, r, render.FormatTable, nil); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(b.String(), "Where on the path") && strings.Contains(b.String(), "Boxes that answered"); got != tc.want {
				t.Errorf("where tables in the default text: %v; want %v", got, tc.want)
			}
		})
	}
}

// TestWhereReportHTML: the report shows the where table and the boxes
// after the sweep's tables; the shared box is marked.
func TestWhereReportHTML(t *testing.T) {
	res, m, _ := sideReportResult(t, true)
	doc := reportDOM(t, res, m)
	var headings, shared []string
	walk(doc, func(n *html.Node, up []*html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		if n.Data == "h2" || n.Data == "h3" {
			headings = append(headings, textOf(n))
		}
		if n.Data == "td" && attr(n, "data-label") == "shared" {
			shared = append(shared, textOf(n))
		}
	})
	want := []string{"Timeline", "Intermediates", "Validity gaps", "Sightings inside the gaps", "Domains by network", "Networks", "Domains",
		"Names found by SNI sweep", "Networks swept by SNI", "Where on the path", "Boxes that answered in the servers' place", "Files", "Warnings"}
	if d := cmp.Diff(want, headings); d != "" {
		t.Errorf("headings (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"no", "yes", "no"}, shared); d != "" {
		t.Errorf("shared, per box (-want +got):\n%s", d)
	}
}
