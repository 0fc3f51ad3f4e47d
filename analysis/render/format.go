package render

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"kzprobe/analysis"
)

// Output formats.
const (
	FormatTable    = "table"
	FormatJSON     = "json"
	FormatCSV      = "csv"
	FormatMarkdown = "markdown"
	FormatHTML     = "html"
)

// AnalysisFormats and CompareFormats are the formats each command takes.
var (
	AnalysisFormats = []string{FormatTable, FormatJSON, FormatCSV, FormatMarkdown}
	CompareFormats  = []string{FormatTable, FormatJSON, FormatCSV, FormatMarkdown, FormatHTML}
)

// Analysis writes res in format. tables selects tables by name (nil means
// all of AnalysisTables, the sweep's only when res has sweep records); JSON
// then holds only those keys of the result.
// Empty tables are printed with their header and "(none)" in text and
// Markdown, so a reader sees that nothing was found.
func Analysis(w io.Writer, res *analysis.Result, format string, tables []string) error {
	all := len(tables) == 0 || len(tables) == len(AnalysisTables)
	if len(tables) == 0 {
		tables = AnalysisTables
		tables = slices.DeleteFunc(slices.Clone(tables), func(name string) bool {
			return isSweepTable(name) && res.Sweep == nil || isTraceTable(name) && res.Where == nil
		})
	}
	if format == FormatJSON {
		if all {
			return writeJSON(w, res)
		}
		return analysisJSON(w, res, tables)
	}
	var ts []Table
	for _, name := range tables {
		t, err := AnalysisTable(res, name)
		if err != nil {
			return err
		}
		if name == TableWarnings && len(t.Rows) == 0 && len(tables) > 1 {
			continue // no news is good news
		}
		ts = append(ts, t)
	}
	return Tables(w, format, ts)
}

func analysisJSON(w io.Writer, res *analysis.Result, tables []string) error {
	out := map[string]any{}
	for _, name := range tables {
		switch name {
		case TableSummary:
			out[name] = res.Summary
		case TableIntermediates:
			out[name] = res.Intermediates
		case TableNetworks:
			out[name] = res.Networks
		case TableDomains:
			out[name] = res.Domains
		case TableGaps, TableGapSightings:
			out[TableGaps] = res.Gaps
		case TableSweep, TableSweepNetworks:
			out[TableSweep] = res.Sweep
		case TableWhere, TableBoxes:
			out[TableWhere] = res.Where
		case TableFiles:
			out[name] = res.Files
		case TableWarnings:
			out[name] = res.Warnings
		default:
			return fmt.Errorf("render: no table %q (one of %s)", name, strings.Join(AnalysisTables, ", "))
		}
	}
	return writeJSON(w, out)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// MaxMatrixCells bounds the domain x network cells of a matrix printed as
// a table (text, CSV, Markdown, HTML), which has one for every pair,
// measured or not: 40 000 networks and as many domains would be 1.6
// billion. JSON lists only the cells measured.
const MaxMatrixCells = 1_000_000

// matrixTooLarge says why m cannot be printed as a table, nil when it can.
func matrixTooLarge(m *analysis.Matrix) error {
	if n := len(m.Domains) * len(m.Networks); n > MaxMatrixCells {
		return fmt.Errorf("render: the matrix has %d domains x %d networks, %d cells, too many to print as a table (at most %d); --format json lists only the cells measured, or narrow the input (--since, --until, fewer files)",
			len(m.Domains), len(m.Networks), n, MaxMatrixCells)
	}
	return nil
}

// Compare writes the matrix in format. A matrix of more than
// MaxMatrixCells is refused in every format but JSON.
func Compare(w io.Writer, m *analysis.Matrix, format string) error {
	if format != FormatJSON {
		if err := matrixTooLarge(m); err != nil {
			return err
		}
	}
	switch format {
	case FormatJSON:
		return writeJSON(w, m)
	case FormatHTML:
		return ComparePage(w, m)
	case FormatCSV:
		ts := []Table{MatrixTable(m)}
		if m.Sweep != nil {
			// Sections, as analyze writes them: only with sweep records,
			// so that a matrix alone stays a plain CSV file.
			ts = append(ts, CompareSweepTable(m.Sweep), sweepNetworksTable(m.Sweep))
		}
		if m.Where != nil {
			ts = append(ts, boxesTable(m.Where), whereTable(m.Where))
		}
		return Tables(w, format, ts)
	}
	ts := []Table{MatrixTable(m), VantageTable(m)}
	if m.Sweep != nil {
		ts = append(ts, CompareSweepTable(m.Sweep), sweepNetworksTable(m.Sweep))
	}
	if m.Where != nil {
		ts = append(ts, boxesTable(m.Where), whereTable(m.Where))
	}
	if len(m.Warnings) > 0 {
		ts = append(ts, warningsTable(m.Warnings, m.WarningsOmitted))
	}
	return Tables(w, format, ts)
}

// Tables writes ts in a textual format: table, csv or markdown.
func Tables(w io.Writer, format string, ts []Table) error {
	switch format {
	case FormatTable, "":
		return textTables(w, ts)
	case FormatCSV:
		return csvTables(w, ts)
	case FormatMarkdown:
		return markdownTables(w, ts)
	}
	return fmt.Errorf("render: unknown format %q", format)
}

// textTables aligns columns with tabwriter, one table after another.
func textTables(w io.Writer, ts []Table) error {
	ew := &errWriter{w: w}
	for i, t := range ts {
		if i > 0 {
			fmt.Fprintln(ew)
		}
		title := oneLine(Printable(t.Title))
		fmt.Fprintf(ew, "%s\n%s\n", title, strings.Repeat("=", len([]rune(title))))
		if len(t.Rows) == 0 {
			fmt.Fprintln(ew, "(none)")
		} else {
			tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
			hdr := make([]string, len(t.Header))
			for j, h := range t.Header {
				hdr[j] = dashIfEmpty(oneLine(headerCell(Printable(h))))
			}
			fmt.Fprintln(tw, strings.Join(hdr, "\t"))
			for _, r := range t.Rows {
				cells := make([]string, len(r))
				for j, c := range r {
					cells[j] = dashIfEmpty(oneLine(Printable(c)))
				}
				fmt.Fprintln(tw, strings.Join(cells, "\t"))
			}
			tw.Flush()
		}
		if t.Note != "" {
			fmt.Fprintln(ew, Printable(t.Note))
		}
	}
	return ew.err
}

// headerCell upper-cases identifier headers ("not_before") as terminal
// tables do, and leaves labels (a network's name) as they are.
func headerCell(h string) string {
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return h
		}
	}
	return strings.ToUpper(h)
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Printable escapes what a terminal would act on rather than print, so
// that data read from measurements (a network name holding "\x1b]0;...\a"
// or "\x1b[2J") reaches the screen as text: C0 controls but
// tab, newline and carriage return (which the formats handle: oneLine
// makes them spaces, CSV quotes them), DEL, C1 controls, bytes that are
// not UTF-8, and the bidirectional formatting characters that reorder
// what is shown (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C).
// Each becomes its Go escape: \x1b, \u009b, \xff, \u202e.
func Printable(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r <= 0x9f, isBidiControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func isBidiControl(r rune) bool {
	return r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x200e || r == 0x200f || r == 0x061c
}

// csvCell makes s safe for a spreadsheet (OWASP, "CSV Injection"): what
// Printable escapes, then a cell that a spreadsheet would take for a
// formula, one starting with =, +, -, @, a tab or a carriage return, is
// prefixed with a single quote. Plain numbers ("-12.5") and a lone "-"
// (an empty matrix cell) are not formulas and stay as they are.
func csvCell(s string) string {
	s = Printable(s)
	if s == "" || s == "-" || isPlainNumber(s) {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// isPlainNumber reports whether s is digits, with a leading minus and a
// decimal part allowed.
func isPlainNumber(s string) bool {
	s = strings.TrimPrefix(s, "-")
	whole, frac, hasFrac := strings.Cut(s, ".")
	digits := func(d string) bool {
		if d == "" {
			return false
		}
		for i := 0; i < len(d); i++ {
			if d[i] < '0' || d[i] > '9' {
				return false
			}
		}
		return true
	}
	return digits(whole) && (!hasFrac || digits(frac))
}

// oneLine keeps a cell on one line (and tabwriter's columns intact).
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// csvTables writes each table as a CSV section: a row with the table's
// name alone, the header row, the rows, and a blank line between tables.
// With one table (--table), only its header and rows are written, a plain
// CSV file.
func csvTables(w io.Writer, ts []Table) error {
	cw := csv.NewWriter(w)
	for i, t := range ts {
		if len(ts) > 1 {
			if i > 0 {
				cw.Flush()
				if _, err := io.WriteString(w, "\n"); err != nil {
					return err
				}
			}
			cw.Write([]string{csvCell(t.Name)})
		}
		cw.Write(csvRow(t.Header))
		for _, r := range t.Rows {
			cw.Write(csvRow(r))
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvRow(r []string) []string {
	out := make([]string, len(r))
	for i, c := range r {
		out[i] = csvCell(c)
	}
	return out
}

// markdownTables writes GitHub-flavoured Markdown tables under "##"
// headings.
func markdownTables(w io.Writer, ts []Table) error {
	ew := &errWriter{w: w}
	for i, t := range ts {
		if i > 0 {
			fmt.Fprintln(ew)
		}
		fmt.Fprintf(ew, "## %s\n\n", mdEscape(oneLine(Printable(t.Title))))
		if len(t.Rows) == 0 {
			fmt.Fprintln(ew, "(none)")
		} else {
			fmt.Fprintf(ew, "| %s |\n", strings.Join(mdRow(t.Header), " | "))
			seps := make([]string, len(t.Header))
			for j := range seps {
				seps[j] = "---"
			}
			fmt.Fprintf(ew, "| %s |\n", strings.Join(seps, " | "))
			for _, r := range t.Rows {
				fmt.Fprintf(ew, "| %s |\n", strings.Join(mdRow(r), " | "))
			}
		}
		if t.Note != "" {
			fmt.Fprintf(ew, "\n%s\n", mdEscape(Printable(t.Note)))
		}
	}
	return ew.err
}

func mdRow(r []string) []string {
	out := make([]string, len(r))
	for i, c := range r {
		out[i] = mdEscape(oneLine(Printable(c)))
	}
	return out
}

// mdEscape escapes what would break a table cell or start markup. Intraword
// underscores (not_before) are left alone: GFM does not read them as emphasis.
var mdReplacer = strings.NewReplacer(`\`, `\\`, `|`, `\|`, `*`, `\*`, "`", "\\`", `<`, `&lt;`, `>`, `&gt;`, `[`, `\[`, `]`, `\]`)

func mdEscape(s string) string { return mdReplacer.Replace(s) }

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
