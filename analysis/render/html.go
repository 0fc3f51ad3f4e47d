package render

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"io"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"kzprobe/analysis"
	"kzprobe/probe/chain"
)

// ReportData is what the HTML report shows.
type ReportData struct {
	// Title heads the page; empty means the default.
	Title string
	// Generated is printed as the report's date; zero omits it.
	Generated time.Time
	// Inputs are the paths read, as given.
	Inputs []string
	Result *analysis.Result
	// Matrix is the domain x network comparison; nil omits it.
	Matrix *analysis.Matrix
}

// css is inline: the page fetches nothing. Each table sits in a size
// container (.tw) and becomes a list of cards, one "label: value" line per
// cell (each cell carries its column's label), when the container is
// narrower than the table needs (its Cards width, one of cardWidths). No
// table is ever wider than the page, on a wide screen or a phone.
// Fingerprints and serials show a short form whose whole value opens,
// selectable in one click, in a box over the table (in the card itself on
// a card); dates and names never wrap inside.
var css = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1280px;padding:0 1rem;color:#222;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}h3{font-size:1rem;margin:1.4rem 0 .3rem}
.meta{color:#666;font-size:.9rem}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.6rem .9rem;min-width:9rem}
.card b{display:block;font-size:1.4rem}
.card.warn b{color:#a4161a}
.card small{display:block;color:#666}
.phone{display:none}
.tw{container-type:inline-size}
table{border-collapse:collapse;font-size:.82rem;margin:.5rem 0;width:100%}
th,td{border:1px solid #ddd;padding:.25rem .4rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.fit,th.fit{width:1%;white-space:nowrap}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.78rem}
time,.nw{white-space:nowrap}
.h{display:inline-block;position:relative;white-space:nowrap;margin-right:.3rem}
.h>summary{cursor:pointer;list-style:none}
.h>summary::-webkit-details-marker{display:none}
.h>summary code{border-bottom:1px dotted #999}
.h>.all{display:block;position:absolute;left:0;top:100%;z-index:3;background:#fff;border:1px solid #999;border-radius:4px;padding:.3rem .5rem;box-shadow:0 2px 8px rgba(0,0,0,.2);width:max-content;max-width:min(34rem,80vw);white-space:normal;overflow-wrap:anywhere}
td:nth-last-child(-n+3) .h>.all{left:auto;right:0}
.h>.all code{user-select:all;-webkit-user-select:all}
.h>.all span{display:block}
.v-ok{background:#e6f4ea}.v-mitm_isca{background:#f8d7d5;font-weight:bold}.v-mitm_other{background:#fde9c8}
.v-dns_tampering,.v-tls_blocking,.v-tcp_blocking{background:#fff3bf}.v-down,.v-error,.v-none{background:#f1f1f1;color:#777}
.vg{margin:.1rem 0}
.sub{display:block;color:#666}
.vb{display:inline-block;border-radius:3px;padding:0 .3rem;margin-right:.3rem;white-space:nowrap}
.net{display:inline-block;max-width:100%;margin-right:.8rem;vertical-align:top}
.nm{color:#666}
.warn{color:#a4161a}
.note{color:#555;font-size:.85rem}
.tl{overflow-x:auto}
svg{max-width:100%;height:auto}
@media (max-width:760px){
body{margin:1rem auto}
.cards{gap:.5rem}.card{flex:1 1 40%;min-width:0;padding:.4rem .6rem;font-size:.85rem}.card b{font-size:1.2rem}
.tl svg{min-width:900px}
.phone{display:block}
}
` + cardRules()

// cardWidths are the container widths, in CSS pixels, below which a table
// turns into cards: a little over what each table needs in Chromium with
// the report fixture's data (intermediates and gaps 1200, networks 1060,
// gap sightings and domains 920, the others 520).
var cardWidths = []int{1200, 1060, 920, 520}

// cardRules turns a table into cards in a container narrower than its
// Cards width, for each of cardWidths.
func cardRules() string {
	var b strings.Builder
	for _, px := range cardWidths {
		p := fmt.Sprintf(".tw.upto-%d ", px)
		fmt.Fprintf(&b, `@container (max-width:%dpx){
%[2]sthead{display:none}
%[2]stable,%[2]stbody,%[2]str,%[2]std{display:block;width:auto}
%[2]str{display:flex;flex-wrap:wrap;gap:.15rem 1.1rem;border:1px solid #ddd;border-radius:6px;margin:.6rem 0;padding:.35rem .6rem}
%[2]std{border:none;padding:0;text-align:left;white-space:normal;max-width:100%%}
%[2]std::before{content:attr(data-label) ":";color:#666;margin-right:.35rem}
%[2]std:empty{display:none}
%[2]std br{display:none}
%[2]s.h[open]{display:block}
%[2]s.h>.all{position:static;box-shadow:none;margin:.2rem 0;width:auto;max-width:none}
}
`, px-1, p)
	}
	return b.String()
}

// col is one column of an HTML table.
type col struct {
	Label string
	// Card is the label on a card, when shorter than Label.
	Card string
	Num  bool // right-aligned, tabular figures
	Fit  bool // as narrow as its content allows, never wrapped
}

// htmlTable is one table of the page, always under its own heading.
type htmlTable struct {
	ID, Title string
	// Cards is the container width (one of cardWidths) below which the
	// table turns into cards; 0 keeps it a table (the matrix's three
	// columns fit a phone).
	Cards int
	Sub   bool // an h3 under the section's h2
	Intro string
	Cols  []col
	Rows  [][]template.HTML
	// Empty is the one row shown when there is none.
	Empty string
	Note  string
}

// cols builds columns from labels: a label starting with "#" is numeric,
// one starting with "=" fits its content; "|" starts a shorter label for
// cards.
func cols(labels ...string) []col {
	out := make([]col, len(labels))
	for i, l := range labels {
		label, card, _ := strings.Cut(l, "|")
		l = label
		switch {
		case strings.HasPrefix(l, "#"):
			out[i] = col{Label: l[1:], Num: true}
		case strings.HasPrefix(l, "="):
			out[i] = col{Label: l[1:], Fit: true}
		default:
			out[i] = col{Label: l}
		}
		out[i].Card = cmp.Or(card, out[i].Label)
	}
	return out
}

// Cell builders. Everything from the data goes through html.EscapeString.

// hText is text from the data, its control and bidi characters shown as
// escapes ([Printable]) as in the other formats.
func hText(s string) template.HTML { return template.HTML(template.HTMLEscapeString(Printable(s))) }

func hNum(n int) template.HTML { return template.HTML(strconv.Itoa(n)) }

// hTime is a date that never wraps, machine-readable in its datetime.
func hTime(t time.Time) template.HTML {
	if t.IsZero() {
		return ""
	}
	return template.HTML(`<time datetime="` + t.UTC().Format(time.RFC3339) + `">` + FormatTime(t) + `</time>`)
}

// hPeriod is two dates, one above the other in a table, one after the
// other on a card, each on one line.
func hPeriod(from, to time.Time) template.HTML {
	return hTime(from) + "&nbsp;– <br>" + hTime(to)
}

// hHash is a fingerprint as its first 8 hex digits and an ellipsis; the
// whole value is the title and, clicked, opens in a box selectable in one
// click. "unknown" and other non-fingerprints print as they are.
func hHash(full string) template.HTML {
	if len(full) <= 8 || full == "unknown" {
		return hText(full)
	}
	e := template.HTMLEscapeString(full)
	return template.HTML(`<details class="h"><summary title="` + e + `"><code>` + template.HTMLEscapeString(full[:8]) +
		`…</code></summary><span class="all"><code>` + e + `</code></span></details>`)
}

// hHashes is a list of fingerprints, each short, wrapping between them.
func hHashes(ss []string) template.HTML {
	var b strings.Builder
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(string(hHash(s)))
	}
	return template.HTML(b.String())
}

// hSerial is a certificate serial: its first 10 digits, and the whole
// number in decimal (as the published report prints it) and in hex (as
// openssl and crt.sh do) in the box.
func hSerial(dec string) template.HTML {
	if len(dec) <= 12 {
		return hText(dec)
	}
	e := template.HTMLEscapeString(dec)
	box := `<span>decimal <code>` + e + `</code></span>`
	if n, ok := new(big.Int).SetString(dec, 10); ok {
		box += `<span>hex <code>` + n.Text(16) + `</code></span>`
	}
	return template.HTML(`<details class="h"><summary title="` + e + `"><code>` + template.HTMLEscapeString(dec[:10]) +
		`…</code></summary><span class="all">` + box + `</span></details>`)
}

// hList is a list of names (ASNs, domains), wrapping between them only.
func hList(ss []string) template.HTML {
	var b strings.Builder
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(`<span class="nw">` + string(hText(s)) + `</span>`)
	}
	return template.HTML(b.String())
}

// networkLabel is an ASN as the tables show it: the unlabelled row says
// what it is.
func networkLabel(asn string) string {
	if asn == analysis.UnlabelledASN {
		return asn + " (unlabelled)"
	}
	return asn
}

func intermediatesHTML(res *analysis.Result) htmlTable {
	t := htmlTable{
		ID: "intermediates", Cards: 1200, Title: "Intermediates",
		Cols: cols("SHA-1", "serial", "valid (not before – not after)|valid", "issuer", "signing root", "seen (first – last)|seen",
			"#measurements", "#sightings", "#outside window", "networks", "domains"),
		Empty: "No intermediate of the interception PKI was seen.",
		Note:  "Click a fingerprint or serial for the whole value. The signing root is the known root whose key verifies the intermediate, or unknown.",
	}
	for _, r := range res.Intermediates {
		outside := hNum(r.OutsideWindow)
		if r.OutsideWindow > 0 {
			outside = `<span class="warn">` + outside + `</span>`
		}
		t.Rows = append(t.Rows, []template.HTML{
			hHash(r.SHA1), hSerial(r.Serial), hPeriod(r.NotBefore, r.NotAfter), hText(r.Issuer), hHash(r.SignerRootSHA1),
			hPeriod(r.FirstSeen, r.LastSeen), hNum(r.Measurements), hNum(r.Sightings), outside,
			hList(r.Networks), hList(r.Domains),
		})
	}
	return t
}

func gapsHTML(res *analysis.Result) htmlTable {
	t := htmlTable{
		ID: "gaps", Cards: 1200, Title: "Validity gaps",
		Intro: "Periods when none of the intermediates seen was valid, computed from their windows, and the sightings inside them: interception that went on with an expired intermediate.",
		Cols:  cols("gap", "from", "to", "#days", "expired before", "valid after", "#sightings", "#measurements", "networks", "domains", "intermediates"),
		Empty: "No gap.",
	}
	for i, g := range res.Gaps {
		from, to := hTime(g.From), hTime(g.To)
		switch g.Open {
		case analysis.OpenBefore:
			from += " (first sighting)"
		case analysis.OpenAfter:
			to += " (last sighting)"
		}
		t.Rows = append(t.Rows, []template.HTML{
			hNum(i + 1), from, to, hText(days(g.Days)), hHashes(g.ExpiredBefore), hHashes(g.ValidAfter),
			hNum(g.Sightings), hNum(g.Measurements), hList(g.Networks), hList(g.Domains), hHashes(g.Intermediates),
		})
	}
	return t
}

func gapSightingsHTML(res *analysis.Result) htmlTable {
	t := htmlTable{
		ID: "gap-sightings", Cards: 920, Title: "Sightings inside the gaps", Sub: true,
		Intro: "Each handshake that presented an intermediate while no intermediate seen was valid, with how long its own had expired.",
		Cols:  cols("gap", "time", "ASN", "network", "domain", "intermediate", "#days after expiry", "source"),
		Empty: "None.",
	}
	omitted := 0
	for i, g := range res.Gaps {
		for _, s := range g.Listed {
			t.Rows = append(t.Rows, []template.HTML{
				hNum(i + 1), hTime(s.Time), hText(networkLabel(s.ASN)), hText(s.Network), hText(s.Domain), hHash(s.Intermediate),
				hText(days(s.DaysAfterExpiry)), `<code>` + hText(s.Source) + `</code>`,
			})
		}
		omitted += g.Sightings - len(g.Listed)
	}
	if omitted > 0 {
		t.Note = fmt.Sprintf("%d more sightings in the gaps are counted, not listed.", omitted)
	}
	return t
}

func networksHTML(res *analysis.Result) htmlTable {
	t := htmlTable{
		ID: "networks", Cards: 1060, Title: "Networks",
		Cols:  cols("ASN", "name", "#measurements", "#intercepted", "first intercepted", "last intercepted", "intercepted domains", "intermediates"),
		Empty: "No measurement.",
	}
	for _, n := range res.Networks {
		name := hText(n.Name)
		if n.ASN == analysis.UnlabelledASN {
			name = "measurements without an AS number, not counted as a network"
			if n.Name != "" {
				name += " (named " + hText(strconv.Quote(n.Name)) + ")"
			}
		}
		t.Rows = append(t.Rows, []template.HTML{
			hText(networkLabel(n.ASN)), name, hNum(n.Measurements), hNum(n.Intercepted), hTime(n.FirstSeen), hTime(n.LastSeen),
			hList(n.Domains), hHashes(n.Intermediates),
		})
	}
	return t
}

func domainsHTML(res *analysis.Result) htmlTable {
	t := htmlTable{
		ID: "domains", Cards: 920, Title: "Domains",
		Cols:  cols("domain", "#measurements", "#intercepted", "first intercepted", "last intercepted", "networks intercepting", "intermediates"),
		Empty: "No measurement.",
	}
	for _, d := range res.Domains {
		t.Rows = append(t.Rows, []template.HTML{
			hText(d.Domain), hNum(d.Measurements), hNum(d.Intercepted), hTime(d.FirstSeen), hTime(d.LastSeen),
			hList(d.Networks), hHashes(d.Intermediates),
		})
	}
	return t
}

func filesHTML(files []analysis.FileStats) htmlTable {
	t := htmlTable{ID: "files", Cards: 520, Title: "Files", Cols: cols("path", "format", "#records", "#bad", "truncated", "error"), Empty: "No file."}
	for _, f := range files {
		tr := template.HTML("")
		if f.Truncated {
			tr = "yes"
		}
		t.Rows = append(t.Rows, []template.HTML{`<code>` + hText(f.Path) + `</code>`, hText(f.Format), hNum(f.Records), hNum(f.Bad), tr, hText(f.Error)})
	}
	return t
}

// verdictOrder ranks verdicts in a matrix row: interception first, then
// the other findings, then clean and failed measurements.
var verdictOrder = []string{"mitm_isca", "mitm_other", "dns_tampering", "tls_blocking", "tcp_blocking", "no_isca_chain", "ok", "no_chain", "down", "error"}

func verdictRank(v string) int {
	if i := slices.Index(verdictOrder, v); i >= 0 {
		return i
	}
	return len(verdictOrder)
}

// verdictClass is the CSS class of a verdict: v- and its letters.
func verdictClass(v string) string {
	return "v-" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r == '_' {
			return r
		}
		return '_'
	}, v)
}

// matrixHTML is the domain x network matrix grouped by domain: one row per
// domain, with on how many networks it was measured, and the networks (AS
// number and name) by their latest verdict, each with the short SHA-1 of the intermediate
// presented. A matrix of 19 networks that is mostly "no measurement" fits
// the page, and a phone, in two columns.
func matrixHTML(m *analysis.Matrix) htmlTable {
	t := htmlTable{
		ID: "matrix", Cards: 0, Title: "Domains by network",
		Cols:  cols("=domain", "latest verdict on each network|verdicts"),
		Empty: "No kzprobe verdict to compare.",
	}
	note := "Latest measurement per domain and network"
	if !m.Since.IsZero() {
		note += " since " + FormatTime(m.Since)
	}
	if !m.Until.IsZero() {
		note += " until " + FormatTime(m.Until)
	}
	note += `; each network by its AS number and name (hover for the time and the count), with the short SHA-1 of the intermediate presented. "!" marks a chain a browser would reject even with the mandated root installed.`
	if m.SkippedNotKzprobe > 0 {
		note += fmt.Sprintf(" %d measurement(s) without a kzprobe verdict are not in the matrix.", m.SkippedNotKzprobe)
	}
	t.Note = note
	for _, d := range m.Domains {
		byVerdict := map[string][]string{}
		measured := 0
		for _, v := range m.Networks {
			c := m.Cell(d, v.Key)
			if c == nil {
				continue
			}
			measured++
			label := v.Key
			if v.ASN == analysis.UnlabelledASN && v.Name != "" {
				label = v.Name
			}
			item := `<span class="net" title="` + string(hText(fmt.Sprintf("%s · %s · %d measurement(s) · %s", v.Label(), FormatTime(c.Time), c.Measurements, c.Source))) +
				`"><span class="nw">` + string(hText(label)) + `</span>`
			if v.Name != "" && label != v.Name {
				item += ` <span class="nm">` + string(hText(v.Name)) + `</span>`
			}
			if c.Intermediate != "" {
				item += ` <code>` + template.HTMLEscapeString(chain.Short(c.Intermediate)) + `</code>`
			}
			if c.BrowserError {
				item += `<b class="warn">!</b>`
			}
			byVerdict[c.Verdict] = append(byVerdict[c.Verdict], item+`</span>`)
		}
		verdicts := make([]string, 0, len(byVerdict))
		for v := range byVerdict {
			verdicts = append(verdicts, v)
		}
		slices.SortFunc(verdicts, func(x, y string) int {
			if rx, ry := verdictRank(x), verdictRank(y); rx != ry {
				return rx - ry
			}
			return strings.Compare(x, y)
		})
		var b strings.Builder
		for _, v := range verdicts {
			fmt.Fprintf(&b, `<div class="vg"><span class="vb %s">%s</span>%s</div>`, verdictClass(v), hText(v), strings.Join(byVerdict[v], " "))
		}
		t.Rows = append(t.Rows, []template.HTML{
			hText(d) + template.HTML(fmt.Sprintf(`<small class="sub">%d of %d networks</small>`, measured, len(m.Networks))), template.HTML(b.String()),
		})
	}
	return t
}

func vantagesHTML(m *analysis.Matrix) htmlTable {
	t := htmlTable{ID: "vantages", Cards: 520, Title: "Vantage networks", Cols: cols("network", "ASN", "name", "#measurements", "first", "last"), Empty: "None."}
	for _, v := range m.Networks {
		t.Rows = append(t.Rows, []template.HTML{hText(v.Key), hText(v.ASN), hText(v.Name), hNum(v.Measurements), hTime(v.First), hTime(v.Last)})
	}
	return t
}

func warningsHTML(ws []analysis.Warning, omitted int) htmlTable {
	t := htmlTable{ID: "warnings", Cards: 520, Title: "Warnings", Cols: cols("source", "message")}
	for _, w := range ws {
		t.Rows = append(t.Rows, []template.HTML{`<code>` + hText(w.Source) + `</code>`, hText(w.Message)})
	}
	if omitted > 0 {
		t.Note = fmt.Sprintf("%d more not shown.", omitted)
	}
	return t
}

const tableTmpl = `{{define "class"}}{{if .Num}} class="num"{{else if .Fit}} class="fit"{{end}}{{end}}{{define "table"}}{{if .Sub}}<h3 id="{{.ID}}">{{.Title}}</h3>{{else}}<h2 id="{{.ID}}">{{.Title}}</h2>{{end}}
{{with .Intro}}<p class="note">{{.}}</p>
{{end}}<div class="tw upto-{{.Cards}}"><table>
<thead><tr>{{range .Cols}}<th{{template "class" .}}>{{.Label}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}<tr>{{range $i, $c := .}}{{with index $.Cols $i}}<td data-label="{{.Card}}"{{template "class" .}}>{{$c}}</td>{{end}}{{end}}</tr>
{{else}}<tr><td colspan="{{len .Cols}}">{{.Empty}}</td></tr>
{{end}}</tbody></table></div>
{{with .Note}}<p class="note">{{.}}</p>
{{end}}{{end}}`

const reportTmpl = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<style>{{.CSS}}</style>{{with .SweepCSS}}<style>{{.}}</style>{{end}}
</head><body>
<h1>{{.Title}}</h1>
<p class="meta">{{if not .Generated.IsZero}}Generated {{time .Generated}} UTC by kzprobe from {{else}}From {{end}}{{len .Result.Files}} file(s){{with .Inputs}}: {{join .}}{{end}}. Measurements from {{time .Result.Summary.First}} to {{time .Result.Summary.Last}}.</p>
{{with .Result.Summary}}
<div class="cards">
<div class="card"><b>{{.Measurements}}</b>measurements</div>
<div class="card{{if .Intercepted}} warn{{end}}"><b>{{.Intercepted}}</b>intercepted (ISCA chain)</div>
<div class="card"><b>{{.Intermediates}}</b>intermediates</div>
<div class="card"><b>{{.InterceptedNetworks}} / {{.Networks}}</b>networks intercepting{{if .Unlabelled}}<small>not counting {{.Unlabelled}} unlabelled measurement(s)</small>{{end}}</div>
<div class="card"><b>{{.InterceptedDomains}} / {{.Domains}}</b>domains intercepted</div>
<div class="card{{if .OutsideWindow}} warn{{end}}"><b>{{.OutsideWindow}}</b>sightings outside the intermediate's validity</div>
<div class="card{{if .GapSightings}} warn{{end}}"><b>{{.GapSightings}}</b>sightings while no intermediate was valid ({{.Gaps}} gaps)</div>
{{if .BadLines}}<div class="card"><b>{{.BadLines}}</b>bad lines skipped</div>{{end}}
</div>
{{if .Unlabelled}}<p class="note">{{.Unlabelled}} measurement(s) ({{.UnlabelledIntercepted}} intercepted) name no network (AS0: no GeoIP database, or the lab): they are in the tables as "AS0 (unlabelled)" and not counted as a network. Label a run with kzprobe run's --asn-db or --asn.</p>{{end}}
{{end}}
<h2 id="timeline">Timeline</h2>
<div class="tl">{{.SVG}}</div>
<p class="note phone">Scroll the timeline sideways to see all of it.</p>
{{template "table" .Intermediates}}
{{template "table" .Gaps}}
{{if .GapSightings.Rows}}{{template "table" .GapSightings}}{{end}}
{{with .Matrix}}{{template "table" .}}{{end}}
{{template "table" .Networks}}
{{template "table" .Domains}}
{{with .Sweep}}{{template "table" .}}{{end}}{{with .SweepNetworks}}{{template "table" .}}{{end}}{{if .Sweep}}
{{end}}{{with .Where}}{{template "table" .}}{{end}}{{with .Boxes}}{{template "table" .}}
{{end}}{{template "table" .Files}}
{{with .Warnings}}{{template "table" .}}{{end}}
</body></html>
`

const compareTmpl = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>kzprobe compare</title>
<style>{{.CSS}}</style>{{with .SweepCSS}}<style>{{.}}</style>{{end}}
</head><body>
<h1>Verdicts by domain and network</h1>
{{template "table" .Matrix}}
{{template "table" .Vantages}}{{with .Sweep}}
{{template "table" .}}{{end}}{{with .SweepNetworks}}{{template "table" .}}{{end}}{{with .Boxes}}
{{template "table" .}}{{end}}{{with .Where}}{{template "table" .}}{{end}}
{{with .Warnings}}{{template "table" .}}{{end}}
</body></html>
`

var funcs = template.FuncMap{
	"time": hTime,
	"join": func(ss []string) string { return strings.Join(ss, " ") },
}

var (
	reportTemplate  = template.Must(template.Must(template.New("report").Funcs(funcs).Parse(tableTmpl)).Parse(reportTmpl))
	compareTemplate = template.Must(template.Must(template.New("compare").Funcs(funcs).Parse(tableTmpl)).Parse(compareTmpl))
)

// Report writes the one-page HTML report: summary, timeline (inline SVG),
// the intermediates and gaps tables, the matrix, networks, domains, files
// and warnings, each table under its heading. It loads nothing: no script,
// font, style sheet or image comes from elsewhere.
func Report(w io.Writer, d ReportData) error {
	if d.Title == "" {
		d.Title = "TLS interception with Kazakhstan's ISCA root: analysis"
	}
	if d.Matrix != nil {
		if err := matrixTooLarge(d.Matrix); err != nil {
			// The page without the matrix, and a warning saying why.
			res := *d.Result
			res.Warnings = append([]analysis.Warning{{Source: "report", Message: "the domain x network matrix is left out: " + err.Error()}}, res.Warnings...)
			d.Result, d.Matrix = &res, nil
		}
	}
	var svgBuf bytes.Buffer
	if err := Timeline(&svgBuf, d.Result, TimelineOptions{}); err != nil {
		return err
	}
	res := d.Result
	page := struct {
		ReportData
		CSS                                                  template.CSS
		SVG                                                  template.HTML
		Intermediates, Gaps, GapSightings, Networks, Domains htmlTable
		Files                                                htmlTable
		Matrix, Warnings                                     *htmlTable
		Sweep, SweepNetworks, Where, Boxes                   *htmlTable
		SweepCSS                                             template.CSS
	}{
		ReportData: d, CSS: template.CSS(css), SVG: template.HTML(svgBuf.String()),
		Intermediates: intermediatesHTML(res), Gaps: gapsHTML(res), GapSightings: gapSightingsHTML(res),
		Networks: networksHTML(res), Domains: domainsHTML(res), Files: filesHTML(res.Files),
	}
	if d.Matrix != nil {
		m := matrixHTML(d.Matrix)
		page.Matrix = &m
	}
	if res.Sweep != nil {
		sw, sn := sweepHTML(res.Sweep), sweepNetworksHTML(res.Sweep)
		page.Sweep, page.SweepNetworks, page.SweepCSS = &sw, &sn, sweepCSS
	}
	if res.Where != nil {
		wh, bx := whereHTML(res.Where), boxesHTML(res.Where)
		page.Where, page.Boxes = &wh, &bx
	}
	if len(res.Warnings) > 0 {
		ws := warningsHTML(res.Warnings, res.Summary.WarningsOmitted)
		page.Warnings = &ws
	}
	return reportTemplate.Execute(w, page)
}

// ComparePage writes the matrix as a standalone HTML page.
func ComparePage(w io.Writer, m *analysis.Matrix) error {
	page := struct {
		CSS, SweepCSS        template.CSS
		Matrix, Vantages     htmlTable
		Warnings             *htmlTable
		Sweep, SweepNetworks *htmlTable
		Where, Boxes         *htmlTable
	}{CSS: template.CSS(css), Matrix: matrixHTML(m), Vantages: vantagesHTML(m)}
	if m.Where != nil {
		wh, bx := whereHTML(m.Where), boxesHTML(m.Where)
		bx.Sub = false
		page.Where, page.Boxes = &wh, &bx
	}
	if m.Sweep != nil {
		sw, sn := compareSweepHTML(m.Sweep), sweepNetworksHTML(m.Sweep)
		page.Sweep, page.SweepNetworks, page.SweepCSS = &sw, &sn, sweepCSS
	}
	if len(m.Warnings) > 0 {
		ws := warningsHTML(m.Warnings, m.WarningsOmitted)
		page.Warnings = &ws
	}
	return compareTemplate.Execute(w, page)
}
