package render

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
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
	// Title is drawn at the top; empty means the default title.
	Title string
}

// Timeline layout, in pixels.
const (
	tlLeft      = 250 // row labels
	tlRight     = 30
	tlTop       = 92 // title, legend, gap numbers
	tlRowHeight = 40
	tlBottom    = 48 // axis labels
)

// Timeline writes res as an SVG picture: one row per intermediate with its
// validity window as a bar, each day's sightings as a mark (a dark dot
// inside the window, a red diamond outside it), the validity gaps shaded
// across all rows and numbered as in the gaps table, and a date axis. The
// SVG is self-contained (no fonts, images or scripts) and every text is
// XML-escaped.
func Timeline(w io.Writer, res *analysis.Result, opt TimelineOptions) error {
	width := opt.Width
	if width == 0 {
		width = 1200
	}
	title := opt.Title
	if title == "" {
		title = "Interception intermediates: validity windows and sightings"
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
	s.printf(`<text x="%d" y="24" font-size="17" font-weight="bold" fill="%s">%s</text>`+"\n", tlLeft-230, colText, esc(title))

	// Legend.
	lx, ly := float64(tlLeft-230), 48.0
	s.printf(`<g font-size="12" fill="%s">`+"\n", colText)
	s.printf(`<rect x="%.1f" y="%.1f" width="26" height="10" fill="%s" rx="2"/><text x="%.1f" y="%.1f">validity window</text>`+"\n", lx, ly-9, colWindow, lx+32, ly)
	lx += 150
	s.printf(`<circle cx="%.1f" cy="%.1f" r="4.5" fill="%s"/><text x="%.1f" y="%.1f">sighting inside the window</text>`+"\n", lx+5, ly-4, colInside, lx+16, ly)
	lx += 200
	s.printf(`%s<text x="%.1f" y="%.1f">sighting outside the window (expired or not yet valid)</text>`+"\n", diamond(lx+5, ly-4, 5.5), lx+16, ly)
	lx += 355
	s.printf(`<rect x="%.1f" y="%.1f" width="26" height="12" fill="%s"/><text x="%.1f" y="%.1f">gap: no intermediate valid</text>`+"\n", lx, ly-10, colGap, lx+32, ly)
	s.printf("</g>\n")

	// Gaps, shaded across every row, numbered as in the gaps table.
	for i, g := range res.Gaps {
		x0, x1 := x(g.From), x(g.To)
		s.printf(`<rect class="gap" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x0, plotTop-14, math.Max(x1-x0, 1), plotBottom-plotTop+14, colGap)
		s.printf(`<text x="%.1f" y="%.1f" font-size="11" font-weight="bold" fill="%s" text-anchor="middle">%d</text>`+"\n", (x0+x1)/2, plotTop-3, colGapText, i+1)
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
			s.printf(`<text x="%.1f" y="%.1f" text-anchor="middle" font-weight="%s">%s</text>`+"\n", xx, plotBottom+18, weight, esc(tk.label))
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
		s.printf(`<text x="%d" y="%.1f" font-family="monospace" font-size="13" fill="%s">%s</text>`+"\n", tlLeft-230, mid-3, colText, esc(chain.Short(r.SHA1)+"…"))
		s.printf(`<text x="%d" y="%.1f" font-size="10.5" fill="%s">%s · %s→%s</text>`+"\n", tlLeft-230, mid+11, colMuted,
			esc(signer), esc(r.NotBefore.Format("2006-01-02")), esc(r.NotAfter.Format("01-02")))
		x0, x1 := x(r.NotBefore), x(r.NotAfter)
		s.printf(`<rect class="window" x="%.1f" y="%.1f" width="%.1f" height="12" rx="2" fill="%s" fill-opacity="0.85"><title>%s</title></rect>`+"\n",
			x0, mid-6, math.Max(x1-x0, 2), colWindow, esc(fmt.Sprintf("%s valid %s – %s", r.SHA1, FormatTime(r.NotBefore), FormatTime(r.NotAfter))))
		for _, d := range r.Days {
			cx := x(d.Day.Add(12 * time.Hour))
			if d.Inside > 0 {
				s.printf(`<circle class="sighting" cx="%.1f" cy="%.1f" r="%.1f" fill="%s" stroke="#ffffff" stroke-width="1"><title>%s</title></circle>`+"\n",
					cx, mid, markRadius(d.Inside), colInside, esc(fmt.Sprintf("%s: %d sighting(s) inside the window", d.Day.Format("2006-01-02"), d.Inside)))
			}
			if d.Outside > 0 {
				s.printf(`<g class="outside">%s<title>%s</title></g>`+"\n", diamond(cx, mid, markRadius(d.Outside)+1.5),
					esc(fmt.Sprintf("%s: %d sighting(s) outside the window", d.Day.Format("2006-01-02"), d.Outside)))
			}
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

// svg accumulates the document.
type svg struct{ bytes.Buffer }

func (s *svg) printf(format string, a ...any) { fmt.Fprintf(&s.Buffer, format, a...) }

// esc escapes s for XML text and attribute values.
func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
