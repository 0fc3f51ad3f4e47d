package render

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"kzprobe/analysis"
	"kzprobe/measurement"
	"kzprobe/probe/chain"
)

// Table is one table of the output.
type Table struct {
	// Name is the table's identifier ("intermediates", ...), as --table
	// takes it and as CSV sections are headed.
	Name string
	// Title is the human heading.
	Title  string
	Header []string
	Rows   [][]string
	// Note is printed under the table in text and Markdown, if any.
	Note string
}

// Table names.
const (
	TableSummary       = "summary"
	TableIntermediates = "intermediates"
	TableNetworks      = "networks"
	TableDomains       = "domains"
	TableGaps          = "gaps"
	TableGapSightings  = "gap_sightings"
	TableFiles         = "files"
	TableWarnings      = "warnings"
	TableMatrix        = "matrix"
	// TableSweep is the names found by `kzprobe sweep`, per network;
	// TableSweepNetworks the networks swept from.
	TableSweep         = "sni_sweep"
	TableSweepNetworks = "sweep_networks"
	// TableWhere is where each target was answered, per network, from
	// `kzprobe trace`; TableBoxes the answering boxes and the networks
	// each answers.
	TableWhere = "where"
	TableBoxes = "boxes"
)

// AnalysisTables are the table names of `kzprobe analyze`, in print order.
// The sweep's tables are printed by default only when sweep records were
// read, the trace's only when trace records were.
var AnalysisTables = []string{TableSummary, TableIntermediates, TableNetworks, TableDomains, TableGaps, TableGapSightings, TableSweep, TableSweepNetworks, TableWhere, TableBoxes, TableFiles, TableWarnings}

// FormatTime prints t as the records write times (measurement.TimeLayout,
// UTC, e.g. "2021-06-18 12:54:34"), "" for the zero time.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return measurement.FormatTime(t)
}

func shorts(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = chain.Short(s)
	}
	return strings.Join(out, " ")
}

func list(ss []string) string { return strings.Join(ss, " ") }

func days(d float64) string { return strconv.FormatFloat(d, 'f', 1, 64) }

// AnalysisTable builds one named table of res.
func AnalysisTable(res *analysis.Result, name string) (Table, error) {
	switch name {
	case TableSummary:
		return summaryTable(res), nil
	case TableIntermediates:
		return intermediatesTable(res), nil
	case TableNetworks:
		return networksTable(res), nil
	case TableDomains:
		return domainsTable(res), nil
	case TableGaps:
		return gapsTable(res), nil
	case TableGapSightings:
		return gapSightingsTable(res), nil
	case TableSweep:
		return sweepTable(res.Sweep), nil
	case TableSweepNetworks:
		return sweepNetworksTable(res.Sweep), nil
	case TableWhere:
		return whereTable(res.Where), nil
	case TableBoxes:
		return boxesTable(res.Where), nil
	case TableFiles:
		return filesTable(res.Files), nil
	case TableWarnings:
		return warningsTable(res.Warnings, res.Summary.WarningsOmitted), nil
	}
	return Table{}, fmt.Errorf("render: no table %q (one of %s)", name, strings.Join(AnalysisTables, ", "))
}

func summaryTable(res *analysis.Result) Table {
	s := res.Summary
	t := Table{Name: TableSummary, Title: "Summary", Header: []string{"what", "value"}}
	add := func(k string, v any) { t.Rows = append(t.Rows, []string{k, fmt.Sprint(v)}) }
	add("files", s.Files)
	add("measurements", s.Measurements)
	add("bad lines skipped", s.BadLines)
	if s.TruncatedFiles > 0 {
		add("files cut short", s.TruncatedFiles)
	}
	if s.UnreadableFiles > 0 {
		add("unreadable files", s.UnreadableFiles)
	}
	if s.OutsideTimeWindow > 0 {
		add("outside --since/--until", s.OutsideTimeWindow)
	}
	if s.NotTabulated > 0 {
		add("not all in the tables (tables full, see the warnings)", s.NotTabulated)
	}
	if s.SweepMeasurements > 0 {
		add("sweep records (kzprobe sweep: in the sweep's tables only)", s.SweepMeasurements)
	}
	if s.TraceMeasurements > 0 {
		add("trace records (kzprobe trace: in the where table only)", s.TraceMeasurements)
	}
	add("first measurement", FormatTime(s.First))
	add("last measurement", FormatTime(s.Last))
	add("handshakes with a chain", s.Handshakes)
	add("chains judged", fmt.Sprintf("%d (%d handshake(s) served from the cache)", s.ChainsJudged, s.CacheHits))
	add("intercepted measurements", s.Intercepted)
	add("intermediates", s.Intermediates)
	add("networks (intercepted)", fmt.Sprintf("%d (%d)", s.Networks, s.InterceptedNetworks))
	if s.Unlabelled > 0 {
		add("measurements without a network (AS0), not counted above", fmt.Sprintf("%d (%d intercepted)", s.Unlabelled, s.UnlabelledIntercepted))
	}
	add("domains (intercepted)", fmt.Sprintf("%d (%d)", s.Domains, s.InterceptedDomains))
	add("sightings outside their intermediate's window", s.OutsideWindow)
	add("validity gaps (sightings in them)", fmt.Sprintf("%d (%d)", s.Gaps, s.GapSightings))
	return t
}

func intermediatesTable(res *analysis.Result) Table {
	t := Table{
		Name:  TableIntermediates,
		Title: "Intermediates",
		Header: []string{"sha1", "serial", "not_before", "not_after", "issuer", "signing_root",
			"evidence", "first_seen", "last_seen", "measurements", "sightings", "outside_window", "networks", "domains"},
		Note: "signing_root is the SHA-1 of the known root whose key verifies the intermediate, or \"unknown\". " +
			"outside_window counts sightings (handshakes) outside [not_before, not_after].",
	}
	for _, r := range res.Intermediates {
		evidence := r.Evidence
		if r.EvidenceSource != "" {
			evidence += " (" + r.EvidenceSource + ")"
		}
		t.Rows = append(t.Rows, []string{
			r.SHA1, r.Serial, FormatTime(r.NotBefore), FormatTime(r.NotAfter), r.Issuer, r.SignerRootSHA1,
			evidence, FormatTime(r.FirstSeen), FormatTime(r.LastSeen),
			strconv.Itoa(r.Measurements), strconv.Itoa(r.Sightings), strconv.Itoa(r.OutsideWindow),
			list(r.Networks), list(r.Domains),
		})
	}
	return t
}

func networksTable(res *analysis.Result) Table {
	t := Table{
		Name:   TableNetworks,
		Title:  "Networks",
		Header: []string{"asn", "name", "measurements", "intercepted", "first_intercepted", "last_intercepted", "intercepted_domains", "intermediates"},
	}
	for _, n := range res.Networks {
		t.Rows = append(t.Rows, []string{
			n.ASN, n.Name, strconv.Itoa(n.Measurements), strconv.Itoa(n.Intercepted),
			FormatTime(n.FirstSeen), FormatTime(n.LastSeen), list(n.Domains), shorts(n.Intermediates),
		})
	}
	return t
}

func domainsTable(res *analysis.Result) Table {
	t := Table{
		Name:   TableDomains,
		Title:  "Domains",
		Header: []string{"domain", "measurements", "intercepted", "first_intercepted", "last_intercepted", "networks_intercepting", "intermediates"},
	}
	for _, d := range res.Domains {
		t.Rows = append(t.Rows, []string{
			d.Domain, strconv.Itoa(d.Measurements), strconv.Itoa(d.Intercepted),
			FormatTime(d.FirstSeen), FormatTime(d.LastSeen), list(d.Networks), shorts(d.Intermediates),
		})
	}
	return t
}

func gapsTable(res *analysis.Result) Table {
	t := Table{
		Name:  TableGaps,
		Title: "Validity gaps: no intermediate seen was valid",
		Header: []string{"gap", "from", "to", "days", "expired_before", "valid_after",
			"sightings", "measurements", "networks", "domains", "intermediates"},
		Note: "Computed from the windows of the intermediates in the data. A gap marked \"… (open)\" " +
			"runs from the last window's end to the last sighting (or from the first sighting).",
	}
	for i, g := range res.Gaps {
		from, to := FormatTime(g.From), FormatTime(g.To)
		switch g.Open {
		case analysis.OpenBefore:
			from += " (open)"
		case analysis.OpenAfter:
			to += " (open)"
		}
		t.Rows = append(t.Rows, []string{
			strconv.Itoa(i + 1), from, to, days(g.Days), shorts(g.ExpiredBefore), shorts(g.ValidAfter),
			strconv.Itoa(g.Sightings), strconv.Itoa(g.Measurements), list(g.Networks), list(g.Domains), shorts(g.Intermediates),
		})
	}
	return t
}

func gapSightingsTable(res *analysis.Result) Table {
	t := Table{
		Name:   TableGapSightings,
		Title:  "Sightings inside the gaps",
		Header: []string{"gap", "time", "asn", "network", "domain", "intermediate", "days_after_expiry", "source"},
	}
	omitted := 0
	for i, g := range res.Gaps {
		for _, s := range g.Listed {
			t.Rows = append(t.Rows, []string{
				strconv.Itoa(i + 1), FormatTime(s.Time), s.ASN, s.Network, s.Domain, chain.Short(s.Intermediate), days(s.DaysAfterExpiry), s.Source,
			})
		}
		omitted += g.Sightings - len(g.Listed)
	}
	if omitted > 0 {
		t.Note = fmt.Sprintf("%d more sightings in the gaps are counted, not listed.", omitted)
	}
	return t
}

func filesTable(files []analysis.FileStats) Table {
	t := Table{Name: TableFiles, Title: "Files", Header: []string{"path", "format", "records", "bad", "truncated", "error"}}
	for _, f := range files {
		tr := ""
		if f.Truncated {
			tr = "yes"
		}
		t.Rows = append(t.Rows, []string{f.Path, f.Format, strconv.Itoa(f.Records), strconv.Itoa(f.Bad), tr, f.Error})
	}
	return t
}

func warningsTable(ws []analysis.Warning, omitted int) Table {
	t := Table{Name: TableWarnings, Title: "Warnings", Header: []string{"source", "message"}}
	for _, w := range ws {
		t.Rows = append(t.Rows, []string{w.Source, w.Message})
	}
	if omitted > 0 {
		t.Note = fmt.Sprintf("%d more warnings not shown.", omitted)
	}
	return t
}

// MatrixTable is the compare matrix: one row per domain, one column per
// network, each cell the latest verdict and, when intercepted, the short
// SHA-1 of the intermediate ("mitm_isca 8dd313d4"); "-" where the network
// has no measurement of the domain.
func MatrixTable(m *analysis.Matrix) Table {
	t := Table{Name: TableMatrix, Title: "Verdicts by domain and network", Header: []string{"domain"}}
	for _, v := range m.Networks {
		t.Header = append(t.Header, v.Label())
	}
	for _, d := range m.Domains {
		row := []string{d}
		for _, v := range m.Networks {
			row = append(row, CellText(m.Cell(d, v.Key)))
		}
		t.Rows = append(t.Rows, row)
	}
	t.Note = "Latest measurement per cell"
	if !m.Since.IsZero() || !m.Until.IsZero() {
		t.Note += fmt.Sprintf(" between %s and %s", orOpen(m.Since), orOpen(m.Until))
	}
	t.Note += "; \"!\" marks an intercepted chain a browser would reject even with the mandated root installed (expired intermediate)."
	return t
}

func orOpen(t time.Time) string {
	if t.IsZero() {
		return "…"
	}
	return FormatTime(t)
}

// CellText is how a matrix cell prints.
func CellText(c *analysis.Cell) string {
	if c == nil {
		return "-"
	}
	s := c.Verdict
	if c.Intermediate != "" {
		s += " " + chain.Short(c.Intermediate)
	}
	if c.BrowserError {
		s += "!"
	}
	return s
}

// VantageTable lists the matrix's columns.
func VantageTable(m *analysis.Matrix) Table {
	t := Table{Name: "vantages", Title: "Vantage networks", Header: []string{"network", "asn", "name", "measurements", "first", "last"}}
	for _, v := range m.Networks {
		t.Rows = append(t.Rows, []string{v.Key, v.ASN, v.Name, strconv.Itoa(v.Measurements), FormatTime(v.First), FormatTime(v.Last)})
	}
	return t
}
