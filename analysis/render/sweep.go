package render

import (
	"html/template"
	"slices"
	"strconv"
	"strings"

	"kzprobe/analysis"
)

// The sweep's tables: what `kzprobe sweep` found (analysis.SweepResult),
// printed apart from the report's tables, which count measurements of
// sites.

func isSweepTable(name string) bool { return name == TableSweep || name == TableSweepNetworks }

// sweepNote says what the sweep's names table is, under it.
const sweepNote = "Names whose handshake with the sweep's neutral endpoint was intercepted or blocked by SNI, " +
	"judged by the sweep against a control name; not counted in the tables above. confirmed_by_run: yes when a kzprobe run " +
	"measurement of the name on the same network found it too (mitm_isca or mitm_other for an interception, tls_blocking for a block), " +
	"no when run measured it and did not (run_verdicts says what it saw), \"not run\" when run did not measure it there."

// confirmedText is how ConfirmedByRun prints.
func confirmedText(c string) string {
	if c == analysis.RunNotMeasured {
		return "not run"
	}
	return c
}

func sweepTable(s *analysis.SweepResult) Table {
	t := Table{
		Name:  TableSweep,
		Title: "Names found by SNI sweep",
		Header: []string{"asn", "network", "domain", "verdict", "intercepted", "blocked", "first_seen", "last_seen",
			"intermediates", "confirmed_by_run", "run_verdicts"},
		Note: sweepNote,
	}
	if s == nil {
		return t
	}
	for _, r := range s.Names {
		t.Rows = append(t.Rows, []string{
			r.ASN, r.Network, r.Domain, list(r.Verdicts), strconv.Itoa(r.Intercepted), strconv.Itoa(r.Blocked),
			FormatTime(r.FirstSeen), FormatTime(r.LastSeen), shorts(r.Intermediates), confirmedText(r.ConfirmedByRun), list(r.RunVerdicts),
		})
	}
	return t
}

func sweepNetworksTable(s *analysis.SweepResult) Table {
	t := Table{
		Name:  TableSweepNetworks,
		Title: "Networks swept by SNI",
		Header: []string{"asn", "name", "names_swept", "intercepted", "blocked", "clean", "error", "first", "last",
			"names_found", "confirmed_by_run", "endpoints"},
	}
	if s == nil {
		return t
	}
	for _, n := range s.Networks {
		t.Rows = append(t.Rows, []string{
			n.ASN, n.Name, strconv.Itoa(n.Measurements), strconv.Itoa(n.Intercepted), strconv.Itoa(n.Blocked),
			strconv.Itoa(n.Clean), strconv.Itoa(n.Errors), FormatTime(n.First), FormatTime(n.Last),
			strconv.Itoa(n.Names), strconv.Itoa(n.Confirmed), list(n.Endpoints),
		})
	}
	t.Note = "names_swept counts the sweep's records (one per name tried); names_found the names intercepted or blocked, listed above."
	return t
}

// sweepByName groups the sweep's rows by name: for each name, the networks
// (labelled as the matrix labels them) where it was intercepted, where
// blocked, and where run confirmed, did not confirm, or did not measure it.
type sweepByName struct {
	domain                            string
	intercepted, blocked              []string
	confirmed, notConfirmed, notMeasd []string
}

func groupSweep(s *analysis.SweepResult) []sweepByName {
	var out []sweepByName
	idx := map[string]int{}
	for _, r := range s.Names {
		i, ok := idx[r.Domain]
		if !ok {
			i = len(out)
			idx[r.Domain] = i
			out = append(out, sweepByName{domain: r.Domain})
		}
		g := &out[i]
		label := sweepNetLabel(r.ASN, r.Network)
		if r.Intercepted > 0 {
			g.intercepted = append(g.intercepted, label)
		}
		if r.Blocked > 0 {
			g.blocked = append(g.blocked, label)
		}
		switch r.ConfirmedByRun {
		case analysis.RunConfirmed:
			g.confirmed = append(g.confirmed, label)
		case analysis.RunNotConfirmed:
			g.notConfirmed = append(g.notConfirmed, label)
		default:
			g.notMeasd = append(g.notMeasd, label)
		}
	}
	slices.SortFunc(out, func(x, y sweepByName) int { return strings.Compare(x.domain, y.domain) })
	return out
}

// sweepNetLabel names a network in the grouped view: its ASN, or its
// name when it has no AS number.
func sweepNetLabel(asn, name string) string {
	if asn == analysis.UnlabelledASN && name != "" {
		return name
	}
	return asn
}

// CompareSweepTable is the sweep's names for `kzprobe compare`: one row
// per name, with the networks that intercepted it by SNI, that blocked
// it, and where a run measurement confirmed it or not, so that names
// several networks intercept stand out.
func CompareSweepTable(s *analysis.SweepResult) Table {
	t := Table{
		Name:   TableSweep,
		Title:  "Names found by SNI sweep, by network",
		Header: []string{"domain", "intercepted_by_sni_on", "blocked_by_sni_on", "confirmed_by_run_on", "not_confirmed_on", "not_run_on"},
		Note:   "Networks by AS number (by name without one). confirmed_by_run_on: a kzprobe run measurement on that network found the same; not_confirmed_on: run measured the name there and did not.",
	}
	for _, g := range groupSweep(s) {
		t.Rows = append(t.Rows, []string{g.domain, list(g.intercepted), list(g.blocked), list(g.confirmed), list(g.notConfirmed), list(g.notMeasd)})
	}
	return t
}

// hConfirmed is ConfirmedByRun in a cell: yes plain, no in the warning
// colour, not run grey.
func hConfirmed(c string) template.HTML {
	switch c {
	case analysis.RunConfirmed:
		return "yes"
	case analysis.RunNotConfirmed:
		return `<span class="warn">no</span>`
	}
	return `<span class="nm">not run</span>`
}

// hVerdicts is a list of verdicts as badges.
func hVerdicts(vs []string) template.HTML {
	var b strings.Builder
	for _, v := range vs {
		b.WriteString(`<span class="vb ` + verdictClass(v) + `">` + string(hText(v)) + `</span>`)
	}
	return template.HTML(b.String())
}

func sweepHTML(s *analysis.SweepResult) htmlTable {
	t := htmlTable{
		ID: "sni-sweep", Cards: 1200, Title: "Names found by SNI sweep",
		Intro: "kzprobe sweep: one handshake per name with one neutral endpoint, the SNI the only change. These records are not measurements of the sites and are counted in none of the tables above.",
		Cols: cols("ASN", "network", "domain", "verdicts", "#intercepted", "#blocked", "seen (first – last)|seen", "intermediates",
			"confirmed by run|confirmed", "run verdicts"),
		Empty: "No name was intercepted or blocked by SNI.",
		Note: "Confirmed by run: yes when a kzprobe run measurement of the name on the same network found it too (mitm_isca or mitm_other for an interception, " +
			"tls_blocking for a block), no when run measured it there and did not, not run when it did not measure it there.",
	}
	for _, r := range s.Names {
		t.Rows = append(t.Rows, []template.HTML{
			hText(networkLabel(r.ASN)), hText(r.Network), hText(r.Domain), hVerdicts(r.Verdicts), hNum(r.Intercepted), hNum(r.Blocked),
			hPeriod(r.FirstSeen, r.LastSeen), hHashes(r.Intermediates), hConfirmed(r.ConfirmedByRun), hVerdicts(r.RunVerdicts),
		})
	}
	return t
}

func sweepNetworksHTML(s *analysis.SweepResult) htmlTable {
	t := htmlTable{
		ID: "sweep-networks", Cards: 920, Title: "Networks swept by SNI", Sub: true,
		Cols: cols("ASN", "name", "#names swept", "#intercepted", "#blocked", "#clean", "#error", "swept (first – last)|swept",
			"#names found", "#confirmed by run", "endpoints"),
		Empty: "None.",
	}
	for _, n := range s.Networks {
		t.Rows = append(t.Rows, []template.HTML{
			hText(networkLabel(n.ASN)), hText(n.Name), hNum(n.Measurements), hNum(n.Intercepted), hNum(n.Blocked), hNum(n.Clean), hNum(n.Errors),
			hPeriod(n.First, n.Last), hNum(n.Names), hNum(n.Confirmed), hList(n.Endpoints),
		})
	}
	return t
}

// compareSweepHTML is the grouped view of CompareSweepTable for the
// compare page.
func compareSweepHTML(s *analysis.SweepResult) htmlTable {
	t := htmlTable{
		ID: "sni-sweep", Cards: 920, Title: "Names found by SNI sweep, by network",
		Cols:  cols("=domain", "intercepted by SNI on|intercepted", "blocked by SNI on|blocked", "confirmed by run on|confirmed", "not confirmed on", "not run on"),
		Empty: "No name was intercepted or blocked by SNI.",
		Note:  "kzprobe sweep's findings, not in the matrix above. Confirmed by run: a kzprobe run measurement of the name on that network found the same.",
	}
	for _, g := range groupSweep(s) {
		t.Rows = append(t.Rows, []template.HTML{hText(g.domain), hList(g.intercepted), hList(g.blocked), hList(g.confirmed), hList(g.notConfirmed), hList(g.notMeasd)})
	}
	return t
}

// sweepCSS colours the sweep's verdicts; the page carries it only when it
// shows the sweep, so a report without sweep records is as it was.
const sweepCSS = `.v-sni_intercepted_isca{background:#f8d7d5;font-weight:bold}.v-sni_intercepted_other{background:#fde9c8}.v-sni_blocked{background:#fff3bf}.v-clean{background:#e6f4ea}`
