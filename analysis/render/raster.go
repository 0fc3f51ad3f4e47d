package render

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"

	"kzprobe/analysis"
)

// TimelinePNG writes the picture [Timeline] draws as a PNG, rasterized in
// Go (no browser, no cgo) with the Go fonts. It draws what the SVG says,
// from the SVG itself, so the two cannot disagree.
func TimelinePNG(w io.Writer, res *analysis.Result, opt TimelineOptions) error {
	var svg bytes.Buffer
	if err := Timeline(&svg, res, opt); err != nil {
		return err
	}
	img, err := rasterSVG(svg.Bytes(), maxRasterPixels)
	if err != nil {
		return fmt.Errorf("timeline: rasterizing the SVG: %w", err)
	}
	return png.Encode(w, img)
}

// maxDashes bounds the dashes of one line drawn one by one.
const maxDashes = 1 << 14

// maxRasterPixels bounds the picture TimelinePNG draws: 64 MB of RGBA.
const maxRasterPixels = 16 << 20

// rasterSVG draws the subset of SVG that Timeline writes: svg (width and
// height), g (inherited fill, font-size, font-weight), rect, circle, line,
// path (M, L and Z, absolute), text and tspan (font-size, font-weight,
// font-family monospace, text-anchor middle or end, fill, fill-opacity),
// a line's stroke-dasharray; title
// is skipped. Colours are #rrggbb; rx and strokes other than a line's are
// left out. Anything else is ignored, and a picture over maxPixels, a
// number that does not parse or XML that does not are errors.
func rasterSVG(data []byte, maxPixels int) (*image.RGBA, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var (
		img    *image.RGBA
		stack  = []style{{fill: color.RGBA{A: 255}, size: 12, opacity: 1}}
		fonts  = faceCache{}
		text   *textBox // the text element being read, if any
		inSkip int      // depth inside title (or anything ignored whole)
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			st, err := stack[len(stack)-1].with(t.Attr)
			if err != nil {
				return nil, fmt.Errorf("<%s>: %w", t.Name.Local, err)
			}
			stack = append(stack, st)
			if inSkip > 0 || t.Name.Local == "title" {
				inSkip++
				continue
			}
			if img == nil {
				if t.Name.Local != "svg" {
					return nil, fmt.Errorf("<%s> before <svg>", t.Name.Local)
				}
				a := attrs(t.Attr)
				w, errW := a.int("width")
				h, errH := a.int("height")
				if err := errors.Join(errW, errH); err != nil {
					return nil, fmt.Errorf("<svg>: %w", err)
				}
				if w <= 0 || h <= 0 || w > maxPixels/h {
					return nil, fmt.Errorf("<svg>: %d x %d pixels; want at most %d in all", w, h, maxPixels)
				}
				img = image.NewRGBA(image.Rect(0, 0, w, h))
				continue
			}
			if err := drawElement(img, t, st, &text); err != nil {
				return nil, fmt.Errorf("<%s>: %w", t.Name.Local, err)
			}
		case xml.EndElement:
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			switch {
			case inSkip > 0:
				inSkip--
			case t.Name.Local == "text" && text != nil:
				text.draw(img, fonts)
				text = nil
			}
		case xml.CharData:
			if text != nil && inSkip == 0 {
				text.runs = append(text.runs, textRun{s: string(t), st: stack[len(stack)-1]})
			}
		}
	}
	if img == nil {
		return nil, errors.New("no <svg> element")
	}
	return img, nil
}

// style is what an element inherits and sets.
type style struct {
	fill    color.RGBA // opacity is applied by paint
	noFill  bool
	size    float64
	bold    bool
	mono    bool
	anchor  string // text-anchor: "start" (""), "middle" or "end"
	opacity float64
}

// with returns s updated by an element's attributes.
func (s style) with(as []xml.Attr) (style, error) {
	for _, a := range as {
		switch a.Name.Local {
		case "fill":
			if a.Value == "none" {
				s.noFill = true
				continue
			}
			c, err := parseColour(a.Value)
			if err != nil {
				return s, err
			}
			s.fill, s.noFill = c, false
		case "fill-opacity":
			v, err := strconv.ParseFloat(a.Value, 64)
			if err != nil || !(v >= 0 && v <= 1) {
				return s, fmt.Errorf("fill-opacity %q: want a number from 0 to 1", a.Value)
			}
			s.opacity = v
		case "font-size":
			v, err := strconv.ParseFloat(a.Value, 64)
			if err != nil || !(v > 0 && v <= 200) {
				return s, fmt.Errorf("font-size %q: want a number from 0 to 200", a.Value)
			}
			s.size = v
		case "font-weight":
			s.bold = a.Value == "bold"
		case "font-family":
			s.mono = a.Value == "monospace"
		case "text-anchor":
			s.anchor = a.Value
		}
	}
	return s, nil
}

// paint is the fill with its opacity.
func (s style) paint() color.RGBA {
	c, a := s.fill, s.opacity
	return color.RGBA{uint8(float64(c.R) * a), uint8(float64(c.G) * a), uint8(float64(c.B) * a), uint8(float64(c.A) * a)}
}

func parseColour(v string) (color.RGBA, error) {
	if len(v) != 7 || v[0] != '#' {
		return color.RGBA{}, fmt.Errorf("colour %q: want #rrggbb", v)
	}
	n, err := strconv.ParseUint(v[1:], 16, 32)
	if err != nil {
		return color.RGBA{}, fmt.Errorf("colour %q: want #rrggbb", v)
	}
	return color.RGBA{uint8(n >> 16), uint8(n >> 8), uint8(n), 255}, nil
}

// attrs reads an element's attributes.
type attrs []xml.Attr

func (as attrs) get(name string) (string, bool) {
	for _, a := range as {
		if a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// num is the attribute as a finite number; a missing one is 0.
func (as attrs) num(name string) (float64, error) {
	v, ok := as.get(name)
	if !ok {
		return 0, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) > 1e6 {
		return 0, fmt.Errorf("%s %q: want a number", name, v)
	}
	return f, nil
}

func (as attrs) int(name string) (int, error) {
	v, _ := as.get(name)
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a whole number of pixels", name, v)
	}
	return n, nil
}

// drawElement draws one shape, or starts a text box (drawn at its end).
func drawElement(img *image.RGBA, t xml.StartElement, st style, text **textBox) error {
	a := attrs(t.Attr)
	nums := func(names ...string) ([]float64, error) {
		out := make([]float64, len(names))
		var errs []error
		for i, n := range names {
			var err error
			out[i], err = a.num(n)
			errs = append(errs, err)
		}
		return out, errors.Join(errs...)
	}
	switch t.Name.Local {
	case "rect":
		v, err := nums("x", "y", "width", "height")
		if err != nil || st.noFill {
			return err
		}
		x, y, w, h := v[0], v[1], v[2], v[3]
		fillPath(img, st.paint(), [][2]float64{{x, y}, {x + w, y}, {x + w, y + h}, {x, y + h}})
	case "circle":
		v, err := nums("cx", "cy", "r")
		if err != nil || st.noFill {
			return err
		}
		fillCircle(img, st.paint(), v[0], v[1], v[2])
	case "line":
		v, err := nums("x1", "y1", "x2", "y2", "stroke-width")
		if err != nil {
			return err
		}
		stroke, ok := a.get("stroke")
		if !ok {
			return nil
		}
		c, err := parseColour(stroke)
		if err != nil {
			return err
		}
		sw := v[4]
		if sw == 0 {
			sw = 1
		}
		dx, dy := v[2]-v[0], v[3]-v[1]
		l := math.Hypot(dx, dy)
		if l == 0 {
			return nil
		}
		dash, err := parseDashes(a)
		if err != nil {
			return err
		}
		if len(dash) > 0 && dashCount(l, dash) > maxDashes {
			dash = nil // finer than any picture shows: drawn solid
		}
		nx, ny := -dy/l*sw/2, dx/l*sw/2
		ux, uy := dx/l, dy/l
		// Each dash is a segment [from, to] along the line; no dashes is
		// one segment, the whole line.
		for pos, i := 0.0, 0; pos < l; i++ {
			seg := l
			if len(dash) > 0 {
				seg = dash[i%len(dash)]
			}
			if i%2 == 0 || len(dash) == 0 {
				end := math.Min(pos+seg, l)
				ax, ay, bx, by := v[0]+ux*pos, v[1]+uy*pos, v[0]+ux*end, v[1]+uy*end
				fillPath(img, c, [][2]float64{{ax + nx, ay + ny}, {bx + nx, by + ny}, {bx - nx, by - ny}, {ax - nx, ay - ny}})
			}
			pos += seg
		}
	case "path":
		d, _ := a.get("d")
		pts, err := parsePath(d)
		if err != nil || st.noFill {
			return err
		}
		fillPath(img, st.paint(), pts)
	case "text":
		v, err := nums("x", "y")
		if err != nil {
			return err
		}
		*text = &textBox{x: v[0], y: v[1], st: st}
	}
	return nil
}

// parseDashes reads a line's stroke-dasharray: lengths of dash and gap,
// alternating, each at least 0.5 pixel (an odd list repeats, as in SVG);
// none or "none" is a solid line.
func parseDashes(a attrs) ([]float64, error) {
	v, ok := a.get("stroke-dasharray")
	if !ok || v == "none" {
		return nil, nil
	}
	var out []float64
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' }) {
		n, err := strconv.ParseFloat(f, 64)
		if err != nil || !(n >= 0.5 && n <= 1e4) {
			return nil, fmt.Errorf("stroke-dasharray %q: want lengths from 0.5 to 10000", v)
		}
		out = append(out, n)
	}
	if len(out)%2 == 1 {
		out = append(out, out...)
	}
	return out, nil
}

// dashCount is how many dashes and gaps a line of length l has.
func dashCount(l float64, dash []float64) float64 {
	period := 0.0
	for _, d := range dash {
		period += d
	}
	return l / period * float64(len(dash))
}

// parsePath reads the absolute M, L and Z commands of one closed shape.
func parsePath(d string) ([][2]float64, error) {
	var pts [][2]float64
	f := strings.FieldsFunc(d, func(r rune) bool { return r == ' ' || r == ',' })
	var toks []string
	for _, s := range f {
		// "M10" "L20": split a command letter from its first number.
		for len(s) > 0 && strings.ContainsRune("MLZ", rune(s[0])) {
			toks = append(toks, s[:1])
			s = s[1:]
		}
		if s != "" {
			// "1.0L2.0" inside a field: split at letters.
			for s != "" {
				i := strings.IndexAny(s, "MLZ")
				if i < 0 {
					toks = append(toks, s)
					break
				}
				if i > 0 {
					toks = append(toks, s[:i])
				}
				toks = append(toks, s[i:i+1])
				s = s[i+1:]
			}
		}
	}
	for i := 0; i < len(toks); i++ {
		switch toks[i] {
		case "M", "L":
			if i+2 >= len(toks) {
				return nil, fmt.Errorf("path %q: %s without two numbers", d, toks[i])
			}
			x, errX := strconv.ParseFloat(toks[i+1], 64)
			y, errY := strconv.ParseFloat(toks[i+2], 64)
			if errX != nil || errY != nil || math.Abs(x) > 1e6 || math.Abs(y) > 1e6 {
				return nil, fmt.Errorf("path %q: bad point %s %s", d, toks[i+1], toks[i+2])
			}
			pts = append(pts, [2]float64{x, y})
			i += 2
		case "Z":
		default:
			return nil, fmt.Errorf("path %q: %q is not M, L or Z", d, toks[i])
		}
	}
	return pts, nil
}

// fillPath fills the polygon pts with c, blended over img.
func fillPath(img *image.RGBA, c color.RGBA, pts [][2]float64) {
	if len(pts) < 3 || c.A == 0 {
		return
	}
	fillShape(img, c, pts, func(z *vector.Rasterizer, dx, dy float64) {
		z.MoveTo(float32(pts[0][0]-dx), float32(pts[0][1]-dy))
		for _, p := range pts[1:] {
			z.LineTo(float32(p[0]-dx), float32(p[1]-dy))
		}
	})
}

// fillCircle fills a circle, as four cubic Béziers.
func fillCircle(img *image.RGBA, c color.RGBA, cx, cy, r float64) {
	if r <= 0 || c.A == 0 {
		return
	}
	const k = 0.5522847498
	box := [][2]float64{{cx - r, cy - r}, {cx + r, cy + r}}
	fillShape(img, c, box, func(z *vector.Rasterizer, dx, dy float64) {
		f := func(v, d float64) float32 { return float32(v - d) }
		x, y := func(v float64) float32 { return f(v, dx) }, func(v float64) float32 { return f(v, dy) }
		z.MoveTo(x(cx+r), y(cy))
		z.CubeTo(x(cx+r), y(cy+k*r), x(cx+k*r), y(cy+r), x(cx), y(cy+r))
		z.CubeTo(x(cx-k*r), y(cy+r), x(cx-r), y(cy+k*r), x(cx-r), y(cy))
		z.CubeTo(x(cx-r), y(cy-k*r), x(cx-k*r), y(cy-r), x(cx), y(cy-r))
		z.CubeTo(x(cx+k*r), y(cy-r), x(cx+r), y(cy-k*r), x(cx+r), y(cy))
	})
}

// fillShape rasterizes a shape within the bounding box of pts (clipped
// to img): path draws it, offset by (dx, dy), the box's corner. A shape
// costs its box's area, not the picture's.
func fillShape(img *image.RGBA, c color.RGBA, pts [][2]float64, path func(z *vector.Rasterizer, dx, dy float64)) {
	x0, y0, x1, y1 := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range pts {
		x0, y0 = math.Min(x0, p[0]), math.Min(y0, p[1])
		x1, y1 = math.Max(x1, p[0]), math.Max(y1, p[1])
	}
	box := image.Rect(int(math.Floor(x0)), int(math.Floor(y0)), int(math.Ceil(x1)), int(math.Ceil(y1))).Intersect(img.Bounds())
	if box.Empty() {
		return
	}
	z := vector.NewRasterizer(box.Dx(), box.Dy())
	path(z, float64(box.Min.X), float64(box.Min.Y))
	z.ClosePath()
	z.Draw(img, box, image.NewUniform(c), image.Point{})
}

// textBox is a text element: its runs (the text's own characters and its
// tspans') are drawn one after the other from (x, y), the baseline.
type textBox struct {
	x, y float64
	st   style
	runs []textRun
}

type textRun struct {
	s  string
	st style
}

func (t *textBox) draw(img *image.RGBA, fonts faceCache) {
	width := fixed.Int26_6(0)
	for _, r := range t.runs {
		width += font.MeasureString(fonts.face(r.st), r.s)
	}
	x := fixed.Int26_6(t.x * 64)
	switch t.st.anchor {
	case "middle":
		x -= width / 2
	case "end":
		x -= width
	}
	for _, r := range t.runs {
		d := font.Drawer{Dst: img, Src: image.NewUniform(r.st.paint()), Face: fonts.face(r.st), Dot: fixed.Point26_6{X: x, Y: fixed.Int26_6(t.y * 64)}}
		d.DrawString(r.s)
		x = d.Dot.X
	}
}

// goFonts are the parsed Go fonts, safe for concurrent use.
var goFonts = sync.OnceValue(func() map[string]*opentype.Font {
	out := map[string]*opentype.Font{}
	for name, ttf := range map[string][]byte{"regular": goregular.TTF, "bold": gobold.TTF, "mono": gomono.TTF} {
		f, err := opentype.Parse(ttf)
		if err != nil {
			panic("render: the embedded Go font does not parse: " + err.Error())
		}
		out[name] = f
	}
	return out
})

// faceCache holds one face per (font, size) for one picture: a face is
// not safe for concurrent use, so pictures do not share them.
type faceCache map[faceKey]font.Face

type faceKey struct {
	name string
	size float64
}

// face returns the Go font for a style: Go Mono, Go Bold or Go Regular.
func (fc faceCache) face(st style) font.Face {
	name := "regular"
	switch {
	case st.mono:
		name = "mono"
	case st.bold:
		name = "bold"
	}
	k := faceKey{name, st.size}
	if f, ok := fc[k]; ok {
		return f
	}
	f, err := opentype.NewFace(goFonts()[name], &opentype.FaceOptions{Size: st.size, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		panic("render: " + err.Error())
	}
	fc[k] = f
	return f
}
