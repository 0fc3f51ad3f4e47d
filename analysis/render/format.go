package render

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

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
// all of AnalysisTables); JSON then holds only those keys of the result.
// Empty tables are printed with their header and "(none)" in text and
// Markdown, so a reader sees that nothing was found.
func Analysis(w io.Writer, res *analysis.Result, format string, tables []string) error {
	if len(tables) == 0 {
		tables = AnalysisTables
	}
	if format == FormatJSON {
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
	if len(tables) == len(AnalysisTables) {
		return writeJSON(w, res)
	}
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

// Compare writes the matrix in format.
func Compare(w io.Writer, m *analysis.Matrix, format string) error {
	switch format {
	case FormatJSON:
		return writeJSON(w, m)
	case FormatHTML:
		return ComparePage(w, m)
	case FormatCSV:
		return Tables(w, format, []Table{MatrixTable(m)})
	}
	ts := []Table{MatrixTable(m), VantageTable(m)}
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
		fmt.Fprintf(ew, "%s\n%s\n", t.Title, strings.Repeat("=", len([]rune(t.Title))))
		if len(t.Rows) == 0 {
			fmt.Fprintln(ew, "(none)")
		} else {
			tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
			hdr := make([]string, len(t.Header))
			for j, h := range t.Header {
				hdr[j] = headerCell(h)
			}
			fmt.Fprintln(tw, strings.Join(hdr, "\t"))
			for _, r := range t.Rows {
				cells := make([]string, len(r))
				for j, c := range r {
					cells[j] = dashIfEmpty(oneLine(c))
				}
				fmt.Fprintln(tw, strings.Join(cells, "\t"))
			}
			tw.Flush()
		}
		if t.Note != "" {
			fmt.Fprintln(ew, t.Note)
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
			cw.Write([]string{t.Name})
		}
		cw.Write(t.Header)
		for _, r := range t.Rows {
			cw.Write(r)
		}
	}
	cw.Flush()
	return cw.Error()
}

// markdownTables writes GitHub-flavoured Markdown tables under "##"
// headings.
func markdownTables(w io.Writer, ts []Table) error {
	ew := &errWriter{w: w}
	for i, t := range ts {
		if i > 0 {
			fmt.Fprintln(ew)
		}
		fmt.Fprintf(ew, "## %s\n\n", mdEscape(t.Title))
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
			fmt.Fprintf(ew, "\n%s\n", mdEscape(t.Note))
		}
	}
	return ew.err
}

func mdRow(r []string) []string {
	out := make([]string, len(r))
	for i, c := range r {
		out[i] = mdEscape(oneLine(c))
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
