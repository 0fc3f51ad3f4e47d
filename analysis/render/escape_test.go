package render_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"kzprobe/analysis"
	"kzprobe/analysis/render"
)

// hostileName is a network name that would retitle the terminal window,
// clear the screen, open a C1 control sequence and reverse the text after
// it, with a byte that is not UTF-8.
const hostileName = "Net\x1b]0;pwned\x07\x1b[2J\u009b31m\u202eevil\xff"

// hostileMatrix is a comparison whose network name, domain and verdict
// carry hostileName (the header cells of compare come from the network's
// name).
func hostileMatrix(t *testing.T) *analysis.Matrix {
	t.Helper()
	c := analysis.NewComparison(analysis.Config{})
	r := &analysis.Record{
		MeasurementStartTime: "2024-01-02 03:04:05", ProbeASN: "AS0", ProbeNetworkName: hostileName,
		TestName: "kzprobe_tls_mitm", Input: "x.example", Source: "f:1",
	}
	r.TestKeys.Domain = "x.example\x1b[1A"
	r.TestKeys.Verdict = "ok\x1b[31m"
	if err := r.Normalize(); err != nil {
		t.Fatal(err)
	}
	c.Add(r)
	return c.Matrix()
}

// terminalSafe fails on any byte a terminal acts on: C0 controls but
// newline, DEL, C1 controls, bidirectional controls and invalid UTF-8.
func terminalSafe(t *testing.T, what, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("%s is not UTF-8:\n%q", what, out)
	}
	for _, r := range out {
		if r < 0x20 && r != '\n' || r == 0x7f || r >= 0x80 && r <= 0x9f || r == 0x202e {
			t.Errorf("%s holds %U:\n%q", what, r, out)
			return
		}
	}
}

// TestTablesEscapeControlCharacters: every cell and header of the text
// formats (terminal table, Markdown, CSV) of compare and analyze shows a
// control character as its escape (a network name of
// ESC]0;...BEL or ESC[2J reached the terminal raw; compare's headers were
// not cleaned at all).
func TestTablesEscapeControlCharacters(t *testing.T) {
	t.Parallel()
	m := hostileMatrix(t)
	res := &analysis.Result{
		Networks: []analysis.NetworkRow{{ASN: "AS0", Name: hostileName}},
		Warnings: []analysis.Warning{{Source: "file\x1b[2J.jsonl:1", Message: "bad\u009b"}},
	}
	for _, tc := range []struct{ format, name, source string }{
		{render.FormatTable, `Net\x1b]0;pwned\x07\x1b[2J\u009b31m\u202eevil\xff`, `file\x1b[2J.jsonl:1`},
		{render.FormatCSV, `Net\x1b]0;pwned\x07\x1b[2J\u009b31m\u202eevil\xff`, `file\x1b[2J.jsonl:1`},
		// Markdown escapes the backslashes and brackets of the escapes.
		{render.FormatMarkdown, `Net\\x1b\]0;pwned\\x07\\x1b\[2J\\u009b31m\\u202eevil\\xff`, `file\\x1b\[2J.jsonl:1`},
	} {
		format := tc.format
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			if err := render.Compare(&b, m, format); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			terminalSafe(t, "compare", out)
			if !strings.Contains(out, tc.name) {
				t.Errorf("compare does not show the name escaped:\n%s", out)
			}
			b.Reset()
			if err := render.Analysis(&b, res, format, []string{render.TableNetworks, render.TableWarnings}); err != nil {
				t.Fatal(err)
			}
			terminalSafe(t, "analyze", b.String())
			if !strings.Contains(b.String(), tc.source) {
				t.Errorf("analyze does not show the warning's source escaped:\n%s", b.String())
			}
		})
	}
}

// TestPrintable escapes exactly what a terminal acts on.
func TestPrintable(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"AS9198 JSC Kazakhtelecom": "AS9198 JSC Kazakhtelecom",
		"Қазақтелеком, ok":         "Қазақтелеком, ok",
		"a\tb\nc\rd":               "a\tb\nc\rd",
		"\x00\x1b\x7f":             `\x00\x1b\x7f`,
		"\u0085\u009b":             `\u0085\u009b`,
		"\u202e\u2066\u200f":       `\u202e\u2066\u200f`,
		"\xff\xc3":                 `\xff\xc3`,
		`C:\path`:                  `C:\path`,
	} {
		if got := render.Printable(in); got != want {
			t.Errorf("Printable(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestCSVNeutralisesFormulas: a CSV cell a spreadsheet would run as a
// formula is prefixed with a single quote (OWASP CSV injection), in rows
// and in headers; numbers and an empty matrix cell ("-") are left alone.
func TestCSVNeutralisesFormulas(t *testing.T) {
	t.Parallel()
	cells := []string{"=HYPERLINK(\"http://x\")", "+1+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1", "-", "-12.5", "12", "ok", "a=b", ""}
	tab := render.Table{Name: "t", Title: "T", Header: append([]string{"=cmd|' /C calc'!A0"}, cells[1:]...), Rows: [][]string{cells}}
	var b bytes.Buffer
	if err := render.Tables(&b, render.FormatCSV, []render.Table{tab}); err != nil {
		t.Fatal(err)
	}
	want := `'=cmd|' /C calc'!A0,'+1+1,'-1+2,'@SUM(A1),'` + "\t" + `=1,"'` + "\r" + `=1",-,-12.5,12,ok,a=b,` + "\n" +
		`"'=HYPERLINK(""http://x"")",'+1+1,'-1+2,'@SUM(A1),'` + "\t" + `=1,"'` + "\r" + `=1",-,-12.5,12,ok,a=b,` + "\n"
	if got := b.String(); got != want {
		t.Errorf("CSV:\n%q\nwant\n%q", got, want)
	}
	// A network named as a formula, in compare's header.
	c := analysis.NewComparison(analysis.Config{})
	r := &analysis.Record{MeasurementStartTime: "2024-01-02 03:04:05", ProbeNetworkName: "=1+1", TestName: "kzprobe_tls_mitm", Source: "f:1"}
	r.TestKeys.Domain, r.TestKeys.Verdict = "x.example", "ok"
	r.Normalize()
	c.Add(r)
	b.Reset()
	render.Compare(&b, c.Matrix(), render.FormatCSV)
	if !strings.HasPrefix(b.String(), "domain,'=1+1\n") {
		t.Errorf("compare CSV header: %q", b.String())
	}
}

// TestCompareMatrixTooLarge: a matrix of more than MaxMatrixCells
// domain x network pairs is refused as a table (it would print every
// pair: 1.6 billion for 40 000 networks and domains) but not as JSON,
// which lists the cells measured; the report leaves it out with a warning.
func TestCompareMatrixTooLarge(t *testing.T) {
	t.Parallel()
	c := analysis.NewComparison(analysis.Config{})
	for i := range 1001 {
		r := &analysis.Record{MeasurementStartTime: "2024-01-02 03:04:05", ProbeASN: fmt.Sprintf("AS%d", i+1), TestName: "kzprobe_tls_mitm", Source: "f:1"}
		r.TestKeys.Domain, r.TestKeys.Verdict = fmt.Sprintf("d%d.example", i), "ok"
		r.Normalize()
		c.Add(r)
	}
	m := c.Matrix()
	for _, format := range []string{render.FormatTable, render.FormatCSV, render.FormatMarkdown, render.FormatHTML} {
		var b bytes.Buffer
		if err := render.Compare(&b, m, format); err == nil || !strings.Contains(err.Error(), "1001 domains x 1001 networks") || b.Len() > 0 {
			t.Errorf("%s: err %v, %d bytes written; want the matrix refused", format, err, b.Len())
		}
	}
	var b bytes.Buffer
	if err := render.Compare(&b, m, render.FormatJSON); err != nil || !strings.Contains(b.String(), `"d1000.example"`) {
		t.Errorf("json: %v", err)
	}
	b.Reset()
	res := &analysis.Result{}
	if err := render.Report(&b, render.ReportData{Result: res, Matrix: m}); err != nil {
		t.Fatal(err)
	}
	if page := b.String(); strings.Contains(page, "Domains by network") || !strings.Contains(page, "matrix is left out") {
		t.Errorf("the report draws the matrix or does not say why not")
	}
	if len(res.Warnings) != 0 {
		t.Errorf("Report changed its input's warnings: %v", res.Warnings)
	}
}
