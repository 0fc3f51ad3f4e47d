package render

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"kzprobe/analysis"
	"kzprobe/probe/chain"
)

// Colours of the timeline. Sightings outside the window differ by shape
// too (a diamond, not a dot), for readers who do not see the colours.
const (
	colWindow  = "#4c78a8" // validity window bar
	colInside  = "#1b2a41" // sighting inside the window
	colOutside = "#d62728" // sighting outside the window (warning)
	colGap     = "#f8d7d5" // no intermediate valid
	colGapText = "#a4161a"
	colGrid    = "#e3e3e3"
	colText    = "#222222"
	colMuted   = "#666666"
)

// TimelineOptions sizes the timeline; zero values mean the defaults.
type TimelineOptions struct {
	// Width is the picture's width in pixels; zero means 1200.
	Width int
	// Title is drawn at the top; empty means the default title, which
	// says what was measured and from when to when. The line under it
	// always says what the data is.
	Title string
}

// Timeline layout, in pixels.
const (
	tlLeft      = 250 // row labels
	tlRight     = 30
	tlTop       = 112 // title, subtitle, legend, last measurement, gap numbers
	tlRowHeight = 40
	tlBottom    = 48 // axis labels
	tlMarkGap   = 12 // marks closer than this are drawn as one, with a count
	colLast     = "#555555"
)

// TimelineTitle is the timeline's default title: what, and from when to
// when.
func TimelineTitle(res *analysis.Result) string {
	t := "TLS interception with Kazakhstan's ISCA root"
	if s := res.Summary; !s.First.IsZero() {
		t += ", " + s.First.Format("2006-01-02") + " to " + s.Last.Format("2006-01-02")
	}
	return t
}

// timelineSubtitle says what the data is: how many intermediates, seen in
// how many measurements, on how many networks and domains, from how many
// files.
func timelineSubtitle(res *analysis.Result) string {
	s := res.Summary
	where := plural(s.InterceptedNetworks, "network")
	if s.UnlabelledIntercepted > 0 {
		where += fmt.Sprintf(" (plus %s without one)", plural(s.UnlabelledIntercepted, "measurement"))
	}
	return fmt.Sprintf("%s of the interception PKI in %d of %s, on %s and %s; from %s",
		plural(len(res.Intermediates), "intermediate"), s.Intercepted, plural(s.Measurements, "measurement"),
		where, plural(s.InterceptedDomains, "domain"), plural(s.Files, "file"))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// mark is one mark of a row: the sightings of one or more days close
// enough to be drawn as one.
type mark struct {
	from, to time.Time // the first and last day
	n        int       // sightings
	days     int
}

// marks groups the days with a count (inside or outside the window) into
// marks that neither overlap nor crowd each other's counts: first the days
// closer than tlMarkGap pixels, then any two neighbours whose marks (of
// markRadius plus grow) or count labels would touch, until none do.
func marks(ds []analysis.DayCount, count func(analysis.DayCount) int, x func(time.Time) float64, grow float64) []mark {
	var out []mark
	var startX float64
	for _, d := range ds {
		n := count(d)
		if n == 0 {
			continue
		}
		xx := x(d.Day.Add(12 * time.Hour))
		if len(out) > 0 && xx-startX < tlMarkGap {
			out[len(out)-1] = out[len(out)-1].merge(mark{from: d.Day, to: d.Day, n: n, days: 1})
			continue
		}
		out = append(out, mark{from: d.Day, to: d.Day, n: n, days: 1})
		startX = xx
	}
	for merged := true; merged; {
		merged = false
		for i := 0; i+1 < len(out); i++ {
			a, b := out[i], out[i+1]
			if x(b.center())-x(a.center()) < a.room(b, grow) {
				out[i] = a.merge(b)
				out = slices.Delete(out, i+1, i+2)
				merged = true
			}
		}
	}
	return out
}

// merge is the mark that stands for m and the later mark o.
func (m mark) merge(o mark) mark {
	return mark{from: m.from, to: o.to, n: m.n + o.n, days: m.days + o.days}
}

// room is how far apart, in pixels, the centres of m and the next mark o
// must be for neither their marks nor their counts to touch.
func (m mark) room(o mark, grow float64) float64 {
	return max(markRadius(m.n)+markRadius(o.n)+2*grow+2, (countWidth(m.n)+countWidth(o.n))/2+4)
}

// countWidth is about how wide a mark's count is drawn (10 px bold
// digits), 0 when it has none.
func countWidth(n int) float64 {
	if n < 2 {
		return 0
	}
	return 7 * float64(len(countLabel(n)))
}

// center is the mark's day: halfway between its first and last.
func (m mark) center() time.Time { return m.from.Add(m.to.Sub(m.from)/2 + 12*time.Hour) }

// describe is the mark's tooltip.
func (m mark) describe(where string) string {
	when := m.from.Format("2006-01-02")
	if m.days > 1 {
		when += " – " + m.to.Format("2006-01-02") + fmt.Sprintf(" (%d days)", m.days)
	}
	return fmt.Sprintf("%s: %s %s", when, plural(m.n, "sighting"), where)
}

// countLabel prints a mark's count compactly: 7, 42, 1.2k, 35k.
func countLabel(n int) string {
	switch {
	case n < 1000:
		return fmt.Sprint(n)
	case n < 10000:
		return fmt.Sprintf("%.1fk", float64(n)/1000)
	}
	return fmt.Sprintf("%dk", n/1000)
}

// Timeline writes res as an SVG picture: a title saying what and from when
// to when, and a line saying how much data; one row per intermediate with
// its validity window as a bar and its sightings as marks (a dark dot
// inside the window, a red diamond outside it; the days whose marks or
// counts would overlap drawn as one, with the count of sightings above the
// dot or below the diamond when more than one); the validity gaps shaded across all rows and numbered as in
// the gaps table; a dashed line at the last measurement; and a date axis
// whose first and last labels carry the year. The SVG is self-contained
// (no fonts, images or scripts) and every text is XML-escaped.
func Timeline(w io.Writer, res *analysis.Result, opt TimelineOptions) error {
	width := opt.Width
	if width == 0 {
		width = 1200
	}
	title := opt.Title
	if title == "" {
		title = TimelineTitle(res)
	}
	rows := res.Intermediates
	nrows := max(len(rows), 1)
	height := tlTop + nrows*tlRowHeight + tlBottom + 20*len(res.Gaps) + 10

	// Time range: every window and every sighting, padded by 2%.
	var lo, hi time.Time
	extend := func(t time.Time) {
		if t.IsZero() {
			return
		}
		if lo.IsZero() || t.Before(lo) {
			lo = t
		}
		if t.After(hi) {
			hi = t
		}
	}
	for _, r := range rows {
		extend(r.NotBefore)
		extend(r.NotAfter)
		extend(r.FirstSeen)
		extend(r.LastSeen)
	}
	if len(rows) > 0 {
		extend(res.Summary.Last)
	}
	if lo.IsZero() {
		lo = res.Summary.First
		hi = res.Summary.Last
	}
	if lo.IsZero() {
		lo = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if !hi.After(lo) {
		hi = lo.Add(24 * time.Hour)
	}
	pad := hi.Sub(lo) / 50
	lo, hi = lo.Add(-pad), hi.Add(pad)
	plotW := float64(width - tlLeft - tlRight)
	x := func(t time.Time) float64 {
		return float64(tlLeft) + plotW*float64(t.Sub(lo))/float64(hi.Sub(lo))
	}
	plotTop, plotBottom := float64(tlTop), float64(tlTop+nrows*tlRowHeight)

	s := &svg{}
	s.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12" role="img">`+"\n", width, height, width, height)
	s.printf(`<title>%s</title>`+"\n", esc(title))
	s.printf(`<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	s.printf(`<text class="title" x="%d" y="24" font-size="17" font-weight="bold" fill="%s">%s</text>`+"\n", tlLeft-230, colText, esc(title))
	s.printf(`<text class="subtitle" x="%d" y="44" font-size="12.5" fill="%s">%s</text>`+"\n", tlLeft-230, colMuted, esc(timelineSubtitle(res)))

	// Legend.
	lx, ly := float64(tlLeft-230), 68.0
	s.printf(`<g font-size="12" fill="%s">`+"\n", colText)
	s.printf(`<rect x="%.1f" y="%.1f" width="26" height="10" fill="%s" rx="2"/><text x="%.1f" y="%.1f">validity window</text>`+"\n", lx, ly-9, colWindow, lx+32, ly)
	lx += 150
	s.printf(`<circle cx="%.1f" cy="%.1f" r="4.5" fill="%s"/><text x="%.1f" y="%.1f">sighting inside the window</text>`+"\n", lx+5, ly-4, colInside, lx+16, ly)
	lx += 200
	s.printf(`%s<text x="%.1f" y="%.1f">sighting outside the window (expired or not yet valid)</text>`+"\n", diamond(lx+5, ly-4, 5.5), lx+16, ly)
	lx += 355
	s.printf(`<rect x="%.1f" y="%.1f" width="26" height="12" fill="%s"/><text x="%.1f" y="%.1f">gap: no intermediate valid</text>`+"\n", lx, ly-10, colGap, lx+32, ly)
	lx += 235 // room for the text in a browser's wider sans-serif too
	s.printf(`<text x="%.1f" y="%.1f"><tspan font-weight="bold" font-size="10">12</tspan> sightings on one mark</text>`+"\n", lx, ly)
	s.printf("</g>\n")

	// Gaps, shaded across every row, numbered as in the gaps table.
	for i, g := range res.Gaps {
		x0, x1 := x(g.From), x(g.To)
		s.printf(`<rect class="gap" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x0, plotTop-14, math.Max(x1-x0, 1), plotBottom-plotTop+14, colGap)
		s.printf(`<text x="%.1f" y="%.1f" font-size="11" font-weight="bold" fill="%s" text-anchor="middle">%d</text>`+"\n", (x0+x1)/2, plotTop-3, colGapText, i+1)
	}

	// The last measurement: a dashed line across every row, labelled
	// above the gap numbers.
	if last := res.Summary.Last; len(rows) > 0 && !last.IsZero() {
		lxx := x(last)
		s.printf(`<line class="last" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="4 3"/>`+"\n",
			lxx, plotTop-26, lxx, plotBottom+4, colLast)
		anchor, tx := "end", lxx-4
		if lxx-float64(tlLeft) < 220 {
			anchor, tx = "start", lxx+4
		}
		s.printf(`<text class="last" x="%.1f" y="%.1f" font-size="11" fill="%s" text-anchor="%s">last measurement %s</text>`+"\n",
			tx, plotTop-18, colLast, anchor, esc(last.Format("2006-01-02")))
	}

	// Axis: a line per year, labelled; months between when there is room.
	s.printf(`<g font-size="11" fill="%s">`+"\n", colMuted)
	for _, tk := range ticks(lo, hi, plotW) {
		xx := x(tk.t)
		stroke, sw := colGrid, 1.0
		if tk.major {
			stroke, sw = "#bdbdbd", 1.2
		}
		s.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%.1f"/>`+"\n", xx, plotTop, xx, plotBottom+4, stroke, sw)
		if tk.label != "" {
			weight := "normal"
			if tk.major {
				weight = "bold"
			}
			s.printf(`<text class="tick" x="%.1f" y="%.1f" text-anchor="middle" font-weight="%s">%s</text>`+"\n", xx, plotBottom+18, weight, esc(tk.label))
		}
	}
	s.printf(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`+"\n", tlLeft, plotBottom, width-tlRight, plotBottom, colMuted)
	s.printf("</g>\n")

	if len(rows) == 0 {
		s.printf(`<text x="%d" y="%.1f" fill="%s">No intermediate of the interception PKI was seen.</text>`+"\n", tlLeft, plotTop+24, colMuted)
	}
	for i, r := range rows {
		y := plotTop + float64(i)*tlRowHeight
		mid := y + tlRowHeight/2
		if i%2 == 1 {
			s.printf(`<rect x="0" y="%.1f" width="%d" height="%d" fill="#000000" fill-opacity="0.03"/>`+"\n", y, width, tlRowHeight)
		}
		signer := "signer " + chain.Short(r.SignerRootSHA1)
		if r.SignerRootSHA1 == "unknown" || r.SignerRootSHA1 == "" {
			signer = "signer unknown"
		}
		s.printf(`<g class="row" data-sha1="%s">`+"\n", esc(r.SHA1))
		s.printf(`<text x="%d" y="%.1f" fill="%s"><tspan font-family="monospace" font-size="13">%s</tspan><tspan font-size="10.5" fill="%s"> %s</tspan></text>`+"\n",
			tlLeft-230, mid-3, colText, esc(chain.Short(r.SHA1)+"…"), colMuted, esc(signer))
		s.printf(`<text x="%d" y="%.1f" font-size="10.5" fill="%s">valid %s → %s</text>`+"\n", tlLeft-230, mid+11, colMuted,
			esc(r.NotBefore.Format("2006-01-02")), esc(r.NotAfter.Format("2006-01-02")))
		x0, x1 := x(r.NotBefore), x(r.NotAfter)
		s.printf(`<rect class="window" x="%.1f" y="%.1f" width="%.1f" height="12" rx="2" fill="%s" fill-opacity="0.85"><title>%s</title></rect>`+"\n",
			x0, mid-6, math.Max(x1-x0, 2), colWindow, esc(fmt.Sprintf("%s valid %s – %s", r.SHA1, FormatTime(r.NotBefore), FormatTime(r.NotAfter))))
		// Counts go above the dots and below the diamonds, so the two
		// kinds, which meet at the window's ends, never share a line.
		for _, m := range marks(r.Days, func(d analysis.DayCount) int { return d.Inside }, x, 0) {
			cx, rad := x(m.center()), markRadius(m.n)
			s.printf(`<circle class="sighting" data-n="%d" cx="%.1f" cy="%.1f" r="%.1f" fill="%s" stroke="#ffffff" stroke-width="1"><title>%s</title></circle>`+"\n",
				m.n, cx, mid, rad, colInside, esc(m.describe("inside the window")))
			s.count(m.n, cx, mid-rad-3, colInside)
		}
		for _, m := range marks(r.Days, func(d analysis.DayCount) int { return d.Outside }, x, 1.5) {
			cx, rad := x(m.center()), markRadius(m.n)+1.5
			s.printf(`<g class="outside" data-n="%d">%s<title>%s</title></g>`+"\n", m.n, diamond(cx, mid, rad), esc(m.describe("outside the window")))
			s.count(m.n, cx, mid+rad+9, colOutside)
		}
		s.printf("</g>\n")
	}

	// Gap captions under the axis.
	cy := plotBottom + 40
	for i, g := range res.Gaps {
		to := FormatTime(g.To)
		if g.Open == analysis.OpenAfter {
			to += " (last sighting)"
		}
		from := FormatTime(g.From)
		if g.Open == analysis.OpenBefore {
			from += " (first sighting)"
		}
		s.printf(`<text x="%d" y="%.1f" font-size="11.5" fill="%s"><tspan font-weight="bold" fill="%s">gap %d</tspan> %s → %s, %s days: %d sighting(s) while no intermediate was valid</text>`+"\n",
			tlLeft-230, cy, colText, colGapText, i+1, esc(from), esc(to), days(g.Days), g.Sightings)
		cy += 20
	}
	s.printf("</svg>\n")
	_, err := w.Write(s.Bytes())
	return err
}

func markRadius(n int) float64 { return 4 + math.Min(3, math.Log2(float64(n))) }

// count writes the number of sightings a mark stands for above it, when
// more than one.
func (s *svg) count(n int, cx, baseline float64, fill string) {
	if n < 2 {
		return
	}
	s.printf(`<text class="count" x="%.1f" y="%.1f" font-size="10" font-weight="bold" fill="%s" text-anchor="middle">%s</text>`+"\n",
		cx, baseline, fill, countLabel(n))
}

func diamond(cx, cy, r float64) string {
	return fmt.Sprintf(`<path d="M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ" fill="%s" stroke="#ffffff" stroke-width="1"/>`,
		cx, cy-r, cx+r, cy, cx, cy+r, cx-r, cy, colOutside)
}

type tick struct {
	t     time.Time
	label string
	major bool
}

// ticks returns a line for each year (labelled), and for each quarter or
// month when the plot is wide enough for their labels.
func ticks(lo, hi time.Time, plotW float64) []tick {
	span := hi.Sub(lo).Hours() / 24
	pxPerDay := plotW / span
	step := 0 // months between minor ticks; 0 for none
	switch {
	case pxPerDay*30 >= 40:
		step = 1
	case pxPerDay*91 >= 36:
		step = 3
	case pxPerDay*182 >= 36:
		step = 6
	}
	yearEvery := 1
	for pxPerDay*365*float64(yearEvery) < 40 {
		yearEvery++
	}
	var out []tick
	t := time.Date(lo.Year(), lo.Month(), 1, 0, 0, 0, 0, time.UTC)
	for ; !t.After(hi); t = t.AddDate(0, 1, 0) {
		if t.Before(lo) {
			continue
		}
		if t.Month() == time.January {
			tk := tick{t: t, major: true}
			if t.Year()%yearEvery == 0 {
				tk.label = fmt.Sprint(t.Year())
			}
			out = append(out, tk)
		} else if step > 0 && (int(t.Month())-1)%step == 0 {
			out = append(out, tick{t: t, label: t.Format("Jan")})
		}
	}
	// The first and last month labels carry their year ("Jul 2021"),
	// so both ends of the axis say when they are.
	for _, i := range []int{firstLabelled(out), lastLabelled(out)} {
		if i >= 0 && !out[i].major {
			out[i].label += " " + fmt.Sprint(out[i].t.Year())
		}
	}
	if len(out) == 0 || span < 60 {
		// A short range: label the first day of every month, or weeks.
		out = out[:0]
		for t := time.Date(lo.Year(), lo.Month(), lo.Day(), 0, 0, 0, 0, time.UTC); !t.After(hi); t = t.AddDate(0, 0, 7) {
			if !t.Before(lo) {
				out = append(out, tick{t: t, label: t.Format("2006-01-02"), major: t.Day() <= 7})
			}
		}
	}
	return out
}

func firstLabelled(ts []tick) int {
	return slices.IndexFunc(ts, func(t tick) bool { return t.label != "" })
}

func lastLabelled(ts []tick) int {
	for i := len(ts) - 1; i >= 0; i-- {
		if ts[i].label != "" {
			return i
		}
	}
	return -1
}

// svg accumulates the document.
type svg struct{ bytes.Buffer }

func (s *svg) printf(format string, a ...any) { fmt.Fprintf(&s.Buffer, format, a...) }

// esc escapes s for XML text and attribute values.
func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
