package render

import (
	"bytes"
	"html/template"
	"io"
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

// css is inline: the page fetches nothing.
const css = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1280px;padding:0 1rem;color:#222;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.meta{color:#666;font-size:.9rem}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.6rem .9rem;min-width:9rem}
.card b{display:block;font-size:1.4rem}
.card.warn b{color:#a4161a}
table{border-collapse:collapse;font-size:.82rem;margin:.5rem 0;width:100%}
th,td{border:1px solid #ddd;padding:.25rem .4rem;text-align:left;vertical-align:top}
th{background:#f4f4f4;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.mono,code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.78rem;word-break:break-all}
.scroll{overflow-x:auto}
.v-ok{background:#e6f4ea}.v-mitm_isca{background:#f8d7d5;font-weight:bold}.v-mitm_other{background:#fde9c8}
.v-dns_tampering,.v-tls_blocking,.v-tcp_blocking{background:#fff3bf}.v-down,.v-error,.v-none{background:#f1f1f1;color:#777}
.warn{color:#a4161a}
.note{color:#555;font-size:.85rem}
svg{max-width:100%;height:auto}
`

var funcs = template.FuncMap{
	"time":  FormatTime,
	"short": chain.Short,
	"join":  func(ss []string) string { return strings.Join(ss, " ") },
	"shorts": func(ss []string) string {
		return shorts(ss)
	},
	"days": days,
	"cell": func(m *analysis.Matrix, domain, key string) *analysis.Cell { return m.Cell(domain, key) },
	"celltext": func(c *analysis.Cell) string {
		if c == nil {
			return "-"
		}
		return CellText(c)
	},
	"cellclass": func(c *analysis.Cell) string {
		if c == nil {
			return "v-none"
		}
		return "v-" + strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r == '_' {
				return r
			}
			return '_'
		}, c.Verdict)
	},
	"add1": func(i int) int { return i + 1 },
}

const matrixTmpl = `{{define "matrix"}}{{$m := .}}
<div class="scroll"><table class="matrix">
<tr><th>domain</th>{{range .Networks}}<th>{{.Label}}</th>{{end}}</tr>
{{range $d := .Domains}}<tr><td>{{$d}}</td>{{range $m.Networks}}{{$c := cell $m $d .Key}}<td class="{{cellclass $c}}"{{if $c}} title="{{time $c.Time}} · {{$c.Measurements}} measurement(s) · {{$c.Source}}"{{end}}>{{celltext $c}}</td>{{end}}</tr>
{{end}}</table></div>
<p class="note">Latest measurement per cell{{if not .Since.IsZero}} since {{time .Since}}{{end}}{{if not .Until.IsZero}} until {{time .Until}}{{end}}. The short SHA-1 is the intermediate presented; "!" marks a chain a browser would reject even with the mandated root installed.{{if .SkippedNotKzprobe}} {{.SkippedNotKzprobe}} measurement(s) without a kzprobe verdict are not in the matrix.{{end}}</p>
{{end}}`

const reportTmpl = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<style>{{.CSS}}</style>
</head><body>
<h1>{{.Title}}</h1>
<p class="meta">{{if not .Generated.IsZero}}Generated {{time .Generated}} UTC by kzprobe from {{else}}From {{end}}{{len .Result.Files}} file(s){{with .Inputs}}: {{join .}}{{end}}. Measurements from {{time .Result.Summary.First}} to {{time .Result.Summary.Last}}.</p>
{{with .Result.Summary}}
<div class="cards">
<div class="card"><b>{{.Measurements}}</b>measurements</div>
<div class="card{{if .Intercepted}} warn{{end}}"><b>{{.Intercepted}}</b>intercepted (ISCA chain)</div>
<div class="card"><b>{{.Intermediates}}</b>intermediates</div>
<div class="card"><b>{{.InterceptedNetworks}} / {{.Networks}}</b>networks intercepting</div>
<div class="card"><b>{{.InterceptedDomains}} / {{.Domains}}</b>domains intercepted</div>
<div class="card{{if .OutsideWindow}} warn{{end}}"><b>{{.OutsideWindow}}</b>sightings outside the intermediate's validity</div>
<div class="card{{if .GapSightings}} warn{{end}}"><b>{{.GapSightings}}</b>sightings while no intermediate was valid ({{.Gaps}} gaps)</div>
{{if .BadLines}}<div class="card"><b>{{.BadLines}}</b>bad lines skipped</div>{{end}}
</div>
{{end}}
<h2>Timeline</h2>
{{.SVG}}
<h2>Intermediates</h2>
<div class="scroll"><table>
<tr><th>SHA-1</th><th>serial</th><th>not before</th><th>not after</th><th>issuer</th><th>signing root</th><th>first seen</th><th>last seen</th><th>measurements</th><th>sightings</th><th>outside window</th><th>networks</th><th>domains</th></tr>
{{range .Result.Intermediates}}<tr><td class="mono">{{.SHA1}}</td><td class="mono">{{.Serial}}</td><td>{{time .NotBefore}}</td><td>{{time .NotAfter}}</td><td>{{.Issuer}}</td><td class="mono">{{.SignerRootSHA1}}</td><td>{{time .FirstSeen}}</td><td>{{time .LastSeen}}</td><td class="num">{{.Measurements}}</td><td class="num">{{.Sightings}}</td><td class="num{{if .OutsideWindow}} warn{{end}}">{{.OutsideWindow}}</td><td>{{join .Networks}}</td><td>{{join .Domains}}</td></tr>
{{else}}<tr><td colspan="13">No intermediate of the interception PKI was seen.</td></tr>
{{end}}</table></div>
<h2>Validity gaps</h2>
<p class="note">Periods when none of the intermediates seen was valid, computed from their windows, and the sightings inside them: interception that went on with an expired intermediate.</p>
<div class="scroll"><table>
<tr><th>gap</th><th>from</th><th>to</th><th>days</th><th>expired before</th><th>valid after</th><th>sightings</th><th>measurements</th><th>networks</th><th>domains</th><th>intermediates</th></tr>
{{range $i, $g := .Result.Gaps}}<tr><td>{{add1 $i}}</td><td>{{time .From}}{{if eq .Open "before_first_window"}} (first sighting){{end}}</td><td>{{time .To}}{{if eq .Open "after_last_window"}} (last sighting){{end}}</td><td class="num">{{days .Days}}</td><td class="mono">{{shorts .ExpiredBefore}}</td><td class="mono">{{shorts .ValidAfter}}</td><td class="num">{{.Sightings}}</td><td class="num">{{.Measurements}}</td><td>{{join .Networks}}</td><td>{{join .Domains}}</td><td class="mono">{{shorts .Intermediates}}</td></tr>
{{else}}<tr><td colspan="11">No gap.</td></tr>
{{end}}</table></div>
{{if .GapSightings}}<div class="scroll"><table>
<tr><th>gap</th><th>time</th><th>ASN</th><th>network</th><th>domain</th><th>intermediate</th><th>days after expiry</th><th>source</th></tr>
{{range .GapSightings}}<tr><td>{{index . 0}}</td><td>{{index . 1}}</td><td>{{index . 2}}</td><td>{{index . 3}}</td><td>{{index . 4}}</td><td class="mono">{{index . 5}}</td><td class="num">{{index . 6}}</td><td class="mono">{{index . 7}}</td></tr>
{{end}}</table></div>{{end}}
{{if .Matrix}}<h2>Domains by network</h2>{{template "matrix" .Matrix}}{{end}}
<h2>Networks</h2>
<div class="scroll"><table>
<tr><th>ASN</th><th>name</th><th>measurements</th><th>intercepted</th><th>first intercepted</th><th>last intercepted</th><th>intercepted domains</th><th>intermediates</th></tr>
{{range .Result.Networks}}<tr><td>{{.ASN}}</td><td>{{.Name}}</td><td class="num">{{.Measurements}}</td><td class="num">{{.Intercepted}}</td><td>{{time .FirstSeen}}</td><td>{{time .LastSeen}}</td><td>{{join .Domains}}</td><td class="mono">{{shorts .Intermediates}}</td></tr>
{{end}}</table></div>
<h2>Domains</h2>
<div class="scroll"><table>
<tr><th>domain</th><th>measurements</th><th>intercepted</th><th>first intercepted</th><th>last intercepted</th><th>networks intercepting</th><th>intermediates</th></tr>
{{range .Result.Domains}}<tr><td>{{.Domain}}</td><td class="num">{{.Measurements}}</td><td class="num">{{.Intercepted}}</td><td>{{time .FirstSeen}}</td><td>{{time .LastSeen}}</td><td>{{join .Networks}}</td><td class="mono">{{shorts .Intermediates}}</td></tr>
{{end}}</table></div>
<h2>Files</h2>
<div class="scroll"><table>
<tr><th>path</th><th>format</th><th>records</th><th>bad</th><th>truncated</th><th>error</th></tr>
{{range .Result.Files}}<tr><td class="mono">{{.Path}}</td><td>{{.Format}}</td><td class="num">{{.Records}}</td><td class="num">{{.Bad}}</td><td>{{if .Truncated}}yes{{end}}</td><td>{{.Error}}</td></tr>
{{end}}</table></div>
{{if .Result.Warnings}}<h2>Warnings</h2><ul>
{{range .Result.Warnings}}<li><code>{{.Source}}</code>: {{.Message}}</li>
{{end}}</ul>{{if .Result.Summary.WarningsOmitted}}<p class="note">{{.Result.Summary.WarningsOmitted}} more not shown.</p>{{end}}{{end}}
</body></html>
`

const compareTmpl = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>kzprobe compare</title>
<style>{{.CSS}}</style>
</head><body>
<h1>Verdicts by domain and network</h1>
{{template "matrix" .Matrix}}
<h2>Vantage networks</h2>
<table><tr><th>network</th><th>measurements</th><th>first</th><th>last</th></tr>
{{range .Matrix.Networks}}<tr><td>{{.Label}}</td><td class="num">{{.Measurements}}</td><td>{{time .First}}</td><td>{{time .Last}}</td></tr>
{{end}}</table>
{{if .Matrix.Warnings}}<h2>Warnings</h2><ul>{{range .Matrix.Warnings}}<li><code>{{.Source}}</code>: {{.Message}}</li>{{end}}</ul>{{end}}
</body></html>
`

var (
	reportTemplate  = template.Must(template.Must(template.New("report").Funcs(funcs).Parse(matrixTmpl)).Parse(reportTmpl))
	compareTemplate = template.Must(template.Must(template.New("compare").Funcs(funcs).Parse(matrixTmpl)).Parse(compareTmpl))
)

// Report writes the one-page HTML report: summary, timeline (inline SVG),
// the intermediates and gaps tables, the matrix, networks, domains, files
// and warnings. It loads nothing: no script, font, style sheet or image
// comes from elsewhere.
func Report(w io.Writer, d ReportData) error {
	if d.Title == "" {
		d.Title = "TLS interception with Kazakhstan's ISCA root: analysis"
	}
	var svgBuf bytes.Buffer
	if err := Timeline(&svgBuf, d.Result, TimelineOptions{}); err != nil {
		return err
	}
	gs := gapSightingsTable(d.Result)
	return reportTemplate.Execute(w, struct {
		ReportData
		CSS          template.CSS
		SVG          template.HTML
		GapSightings [][]string
	}{d, template.CSS(css), template.HTML(svgBuf.String()), gs.Rows})
}

// ComparePage writes the matrix as a standalone HTML page.
func ComparePage(w io.Writer, m *analysis.Matrix) error {
	return compareTemplate.Execute(w, struct {
		Matrix *analysis.Matrix
		CSS    template.CSS
	}{m, template.CSS(css)})
}
