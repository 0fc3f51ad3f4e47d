package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/chain"
)

// summary collects the rows of the terminal table and the verdict counts.
// It keeps at most maxTableRows rows with verdict ok and as many without,
// so that its memory stays flat however many targets a sweep has (every
// record is in the JSONL anyway).
type summary struct {
	total  int
	ok     []summaryRow
	other  []summaryRow
	counts map[measurement.Verdict]int
	// local counts the targets whose verdict is the probe's own failure
	// (probe.Decision.Local), by rule.
	local map[probe.ReasonCode]int
	// failOn are the verdicts of --fail-on; hits counts the targets that
	// got one.
	failOn map[measurement.Verdict]bool
	hits   int
}

// summaryRow is one target's line of the table, as recorded.
type summaryRow struct {
	input   string
	verdict measurement.Verdict
	reason  string
	// rootName, rootSHA1 and evidence are the interception root the chain
	// leads to (empty when none) and how it was recognised.
	rootName, rootSHA1, evidence string
	// intermediates are the SHA-1s of the chain's CA certificates.
	intermediates []string
	// browserError lists why a browser errs even with the root
	// installed (an expired intermediate...); empty when it would not.
	browserError []string
}

// newSummary returns an empty summary that counts the targets whose
// verdict is one of failOn.
func newSummary(failOn ...measurement.Verdict) *summary {
	s := &summary{counts: map[measurement.Verdict]int{}, local: map[probe.ReasonCode]int{}, failOn: map[measurement.Verdict]bool{}}
	for _, v := range failOn {
		s.failOn[v] = true
	}
	return s
}

// add records m and returns the decision of its verdict (which rule, and
// whether it is the probe's own failure); called from one goroutine at a
// time.
func (s *summary) add(m *measurement.Measurement) probe.Decision {
	tk := &m.TestKeys
	s.counts[tk.Verdict]++
	d := decision(m)
	if d.Local {
		s.local[d.Code]++
	}
	if s.failOn[tk.Verdict] {
		s.hits++
	}
	r := summaryRow{input: m.Input, verdict: tk.Verdict, reason: tk.VerdictReason}
	if in := tk.Interception; in != nil {
		r.rootName, r.rootSHA1, r.evidence = in.RootName, in.RootSHA1, in.Evidence
		for _, im := range in.Intermediates {
			r.intermediates = append(r.intermediates, im.SHA1)
		}
		if in.BrowserErrorEvenWithRootInstalled {
			r.browserError = in.BrowserErrorReasons
			if len(r.browserError) == 0 {
				r.browserError = []string{"yes"}
			}
		}
	}
	s.total++
	isOK := tk.Verdict == measurement.VerdictOK || tk.Verdict == measurement.VerdictClean
	switch {
	case isOK && len(s.ok) < maxTableRows:
		s.ok = append(s.ok, r)
	case !isOK && len(s.other) < maxTableRows:
		s.other = append(s.other, r)
	}
	return d
}

// decision is the verdict's decision of m: the verdict rules of kzprobe
// run (probe.Decide), or, for a sweep record, the rule it names
// (test_keys.sni_sweep.reason_code; probe_fault is the probe's own
// failure, the code of run's rule of the same name).
func decision(m *measurement.Measurement) probe.Decision {
	if sw := m.TestKeys.SNISweep; m.TestName == measurement.SweepTestName && sw != nil {
		return probe.Decision{Code: probe.ReasonCode(sw.ReasonCode), Verdict: m.TestKeys.Verdict,
			Reason: m.TestKeys.VerdictReason, Local: sw.ReasonCode == measurement.SweepProbeFault}
	}
	return probe.Decide(m)
}

// localFailures is how many targets ended in the probe's own failure, and
// by which rule ("control_unanswered 14"); 0 and "" when none did.
func (s *summary) localFailures() (int, string) {
	n := 0
	var parts []string
	for _, r := range probe.VerdictRules() {
		if c := s.local[r.Code]; c > 0 {
			n += c
			parts = append(parts, fmt.Sprintf("%s %d", r.Code, c))
		}
	}
	return n, strings.Join(parts, ", ")
}

// failOnHits is how many targets got a verdict of --fail-on, and which
// ("mitm_isca 2"); 0 and "" when none did.
func (s *summary) failOnHits() (int, string) {
	var parts []string
	for _, v := range verdictOrder {
		if s.failOn[v] && s.counts[v] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", v, s.counts[v]))
		}
	}
	return s.hits, strings.Join(parts, ", ")
}

// maxTableRows is the size above which only the rows that are not "ok"
// are printed, at most this many: a sweep of thousands of domains is read
// in the JSONL.
const maxTableRows = 200

// tableLayout is how the verdict table is drawn.
type tableLayout struct {
	// width is the terminal's columns; 0 means no limit (a pipe, a file,
	// --wide): every line whole.
	width int
	// fullHashes shows whole SHA-1s instead of their first 8 digits.
	fullHashes bool
	// color paints the verdicts.
	color bool
	// verdictWidth is the width of the verdict in a result line; 0 means
	// verdictWidth (kzprobe run's widest, dns_tampering).
	verdictWidth int
}

// minReasonWidth is the narrowest REASON column worth a line of its own
// column: below it, each reason goes on the line under its row.
const minReasonWidth = 32

// minDomainWidth is the narrowest DOMAIN column a terminal is cut to.
const minDomainWidth = 16

// browserErrorMark follows an intermediate that a browser rejects even
// with the mandated root installed, as in `kzprobe compare`.
const browserErrorMark = "!"

// reasonLead is where a reason's lines go under their row.
const reasonLead = "    "

// print writes the verdict table, fitted to lay, and the counts.
func (s *summary) print(w io.Writer, skipped int, lay tableLayout) {
	rows := s.other
	if s.total <= maxTableRows {
		rows = append(append([]summaryRow{}, s.ok...), s.other...)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].input < rows[j].input })
	hidden := s.total - len(rows)
	if len(rows) > 0 {
		for _, line := range s.tableLines(rows, lay) {
			fmt.Fprintln(w, line)
		}
	}
	if hidden > 0 {
		fmt.Fprintf(w, "(%s not shown; every record is in the JSONL)\n", plural(hidden, "more target"))
	}
	counts := plural(s.total, "target") + ": " + s.countLine()
	if skipped > 0 {
		counts += fmt.Sprintf("; %s skipped (see the messages above)", plural(skipped, "input line"))
	}
	for _, line := range wrapList(counts, lay.width-1) {
		fmt.Fprintln(w, line)
	}
}

// wrapList breaks a list ("a, b, c") after its commas into lines of at
// most width columns, the later ones indented; a width of zero or less
// leaves it on one line.
func wrapList(s string, width int) []string {
	if width <= 0 || textWidth(s) <= width {
		return []string{s}
	}
	const indent = "  "
	var lines []string
	line := ""
	for _, part := range strings.SplitAfter(s, ", ") {
		if line != "" && line != indent && textWidth(line+strings.TrimRight(part, " ")) > width {
			lines = append(lines, strings.TrimRight(line, " "))
			line = indent
		}
		line += part
	}
	return append(lines, strings.TrimRight(line, " "))
}

// tableLines lays the rows out: DOMAIN, VERDICT, ROOT and INTERMEDIATE
// (when any row has a root) and REASON, then a legend naming the roots.
// On a terminal (lay.width > 0) the table fits the width: REASON is cut
// with an ellipsis, or goes under its row when the columns before it
// leave it too little room, and a long DOMAIN is cut; otherwise every
// line is whole. REASON never repeats ROOT: the root's name is in the
// legend, its hash in ROOT.
func (s *summary) tableLines(rows []summaryRow, lay tableLayout) []string {
	hash := chain.Short
	if lay.fullHashes {
		hash = func(h string) string { return h }
	}
	withRoot := false
	for _, r := range rows {
		withRoot = withRoot || r.rootSHA1 != "" || len(r.intermediates) > 0
	}
	header := []string{"DOMAIN", "VERDICT"}
	if withRoot {
		header = append(header, "ROOT", "INTERMEDIATE")
	}
	cells := make([][]string, len(rows))
	reasons := make([]string, len(rows))
	for i, r := range rows {
		cells[i] = []string{r.input, string(r.verdict)}
		if withRoot {
			var ims []string
			for _, im := range r.intermediates {
				ims = append(ims, hash(im))
			}
			inter := strings.Join(ims, ",")
			if len(r.browserError) > 0 {
				inter += browserErrorMark
			}
			cells[i] = append(cells[i], dash(hash(r.rootSHA1)), dash(inter))
		}
		reasons[i] = r.tableReason(withRoot)
	}
	widths := naturalWidths(header, cells)
	paint := func(i int) []func(string) string {
		return []func(string) string{nil, paintVerdict(rows[i].verdict, lay.color)}
	}

	limit := 0 // columns a line may take; 0: no limit
	if lay.width > 0 {
		// One column spare: a line that fills the last column makes some
		// terminals wrap.
		limit = max(lay.width-1, 1)
	}
	var out []string
	reasonWidth := 0
	below := false // reasons on the line under their row
	if limit > 0 {
		// On one line, a long name gets no more than a third of it.
		one := append([]int{}, widths...)
		one[0] = min(one[0], max(minDomainWidth, limit/3))
		reasonWidth = limit - sumWidths(one) - len(columnGap)
		if natural := naturalWidths([]string{"REASON"}, columnOf(reasons)); reasonWidth >= min(minReasonWidth, natural[0]) {
			widths = one
		} else {
			// The reason under its row: the columns above it keep the
			// whole line.
			below = true
			reasonWidth = max(limit-len(reasonLead), 1)
			if over := sumWidths(widths) - limit; over > 0 {
				widths[0] = max(widths[0]-over, min(widths[0], minDomainWidth))
			}
		}
	}
	if below {
		out = append(out, tableRow(header, widths, nil))
		for i := range rows {
			out = append(out, tableRow(cells[i], widths, paint(i)))
			out = append(out, reasonLead+fitText(reasons[i], reasonWidth))
		}
	} else {
		widths = append(widths, reasonWidth)
		out = append(out, tableRow(append(header, "REASON"), widths, nil))
		for i := range rows {
			out = append(out, tableRow(append(cells[i], reasons[i]), widths, paint(i)))
		}
	}
	return append(out, s.legend(rows, lay)...)
}

// legend names each root of the table and explains the mark of a
// browser error, each on a line fitted to lay.
func (s *summary) legend(rows []summaryRow, lay tableLayout) []string {
	var out []string
	seen := map[string]bool{}
	mark := false
	for _, r := range rows {
		mark = mark || len(r.browserError) > 0
		if r.rootSHA1 == "" || seen[r.rootSHA1] {
			continue
		}
		seen[r.rootSHA1] = true
		h := chain.Short(r.rootSHA1)
		if lay.fullHashes {
			h = r.rootSHA1
		}
		out = append(out, fmt.Sprintf("ROOT %s: %s", h, dash(r.rootName)))
	}
	sort.Strings(out)
	if mark {
		out = append(out, browserErrorMark+" a browser errs even with the mandated root installed")
	}
	if lay.width > 0 {
		for i := range out {
			out[i] = fitText(out[i], lay.width-1)
		}
	}
	return out
}

// tableReason is r's reason for the table: with the ROOT column shown
// (withRoot) the root is named ROOT, the leading "chain leads to ROOT
// (evidence: E)" of an interception becomes "evidence: E", and a browser
// error that the reason does not explain is added.
func (r summaryRow) tableReason(withRoot bool) string {
	reason := r.reason
	if withRoot && r.rootSHA1 != "" {
		label := rootLabel(r.rootName, r.rootSHA1)
		lead := "chain leads to " + label + " (evidence: " + r.evidence + ")"
		if rest, ok := strings.CutPrefix(reason, lead); ok {
			reason = "evidence: " + r.evidence + rest
		}
		reason = strings.ReplaceAll(reason, label, "ROOT")
	}
	const errLead = "error even with the root installed"
	if len(r.browserError) > 0 && !strings.Contains(reason, errLead) {
		reason += "; " + errLead + ": " + strings.Join(r.browserError, ",")
	}
	return reason
}

// rootLabel is how a verdict reason names a root: "NAME [sha1 prefix]"
// (probe's rootLabel, which the reasons are made with).
func rootLabel(name, sha1 string) string {
	switch {
	case name != "" && sha1 != "":
		return fmt.Sprintf("%s [%s]", name, chain.Short(sha1))
	case name != "":
		return name
	case sha1 != "":
		return chain.Short(sha1)
	}
	return "an interception root"
}

// columnOf makes one-cell rows of cells.
func columnOf(cells []string) [][]string {
	out := make([][]string, len(cells))
	for i, c := range cells {
		out[i] = []string{c}
	}
	return out
}

func (s *summary) countLine() string {
	var parts []string
	for _, v := range verdictOrder {
		if n := s.counts[v]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", v, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

var verdictOrder = []measurement.Verdict{
	measurement.VerdictMITMISCA, measurement.VerdictMITMOther, measurement.VerdictDNSTampering,
	measurement.VerdictTLSBlocking, measurement.VerdictTCPBlocking, measurement.VerdictDown,
	measurement.VerdictSNIInterceptedISCA, measurement.VerdictSNIInterceptedOther, measurement.VerdictSNIBlocked,
	measurement.VerdictError, measurement.VerdictOK, measurement.VerdictClean,
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
