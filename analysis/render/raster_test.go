package render_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"io"
	"strconv"
	"strings"
	"testing"

	"kzprobe/analysis/render"
)

// near reports whether c is within tol of want on every channel.
func near(c color.Color, want [3]float64, tol float64) bool {
	r, g, b, _ := c.RGBA()
	got := [3]float64{float64(r >> 8), float64(g >> 8), float64(b >> 8)}
	for i := range got {
		if d := got[i] - want[i]; d > tol || d < -tol {
			return false
		}
	}
	return true
}

// over is colour #rrggbb at opacity a over white.
func over(hex string, a float64) [3]float64 {
	n, _ := strconv.ParseUint(strings.TrimPrefix(hex, "#"), 16, 32)
	var out [3]float64
	for i, v := range []uint64{n >> 16 & 255, n >> 8 & 255, n & 255} {
		out[i] = a*float64(v) + (1-a)*255
	}
	return out
}

func num(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return f
}

// TestTimelinePNG rasterizes the report fixture's timeline and checks the
// pixels where the SVG puts its shapes: the picture has the SVG's size, a
// white background, the title in dark ink and the subtitle in grey, every
// validity bar in its blue, every out-of-window mark as a red diamond,
// every in-window mark as a dark dot, every count above its mark in the
// mark's colour, every gap's band in its pink, and the last measurement
// as a dashed grey line.
func TestTimelinePNG(t *testing.T) {
	res, _, _ := reportResult(t)
	var svg, pngData bytes.Buffer
	if err := render.Timeline(&svg, res, render.TimelineOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := render.TimelinePNG(&pngData, res, render.TimelineOptions{}); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&pngData)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	els := parseXML(t, svg.Bytes())
	w, h := int(num(t, els[0].attrs["width"])), int(num(t, els[0].attrs["height"]))
	if b := img.Bounds(); b != image.Rect(0, 0, w, h) {
		t.Fatalf("PNG %v; want the SVG's %dx%d", b, w, h)
	}
	at := func(x, y float64) color.Color { return img.At(int(x), int(y)) }
	white := [3]float64{255, 255, 255}
	if !near(at(float64(w-1), float64(h-1)), white, 0) {
		t.Errorf("corner %v; want white", at(float64(w-1), float64(h-1)))
	}
	dark := 0
	for y := 8; y < 28; y++ {
		for x := 20; x < 500; x++ {
			if near(img.At(x, y), [3]float64{0x22, 0x22, 0x22}, 60) {
				dark++
			}
		}
	}
	if dark < 300 {
		t.Errorf("%d dark pixels where the title is; want the title drawn", dark)
	}

	var diamonds, dots, bars, gaps int
	outsideX := map[int]bool{}
	for i, e := range els {
		if e.name == "path" && i > 0 && els[i-1].attrs["class"] == "outside" {
			// M cx cy-r L cx+r cy L cx cy+r L cx-r cy Z
			f := strings.FieldsFunc(e.attrs["d"], func(r rune) bool { return r == 'M' || r == 'L' || r == 'Z' || r == ' ' })
			cx, cy := num(t, f[0]), (num(t, f[1])+num(t, f[5]))/2
			outsideX[int(cx)] = true
			diamonds++
			if c := at(cx, cy); !near(c, over("#d62728", 1), 40) {
				t.Errorf("diamond at %.1f,%.1f: %v; want red", cx, cy, c)
			}
		}
	}
	for _, e := range els {
		switch e.attrs["class"] {
		case "sighting":
			cx, cy := num(t, e.attrs["cx"]), num(t, e.attrs["cy"])
			if outsideX[int(cx)] {
				continue // a diamond is drawn over the dot that day
			}
			dots++
			if c := at(cx, cy); !near(c, over("#1b2a41", 1), 40) {
				t.Errorf("dot at %.1f,%.1f: %v; want dark blue", cx, cy, c)
			}
		case "window":
			x, y, bw := num(t, e.attrs["x"]), num(t, e.attrs["y"]), num(t, e.attrs["width"])
			// Along the bar's top edge, clear of most marks: most pixels
			// are the bar's blue at 0.85 opacity.
			match, n := 0, 0
			for xx := x + 1; xx < x+bw-1; xx++ {
				n++
				if near(at(xx, y+1.5), over("#4c78a8", 0.85), 14) {
					match++
				}
			}
			bars++
			if n == 0 || match*2 < n {
				t.Errorf("bar at %.1f,%.1f: %d of %d pixels blue", x, y, match, n)
			}
		case "gap":
			x, y, gw := num(t, e.attrs["x"]), num(t, e.attrs["y"]), num(t, e.attrs["width"])
			match := 0
			for xx := x; xx < x+gw; xx++ {
				if near(at(xx, y+1.5), over("#f8d7d5", 1), 8) {
					match++
				}
			}
			gaps++
			if match == 0 {
				t.Errorf("gap at %.1f: no pink pixel in its band", x)
			}
		}
	}
	if diamonds != 8 || bars != 7 || gaps != 5 || dots == 0 {
		t.Errorf("checked %d diamonds, %d dots, %d bars, %d gaps; want 8, some, 7 and 5", diamonds, dots, bars, gaps)
	}

	// The subtitle in grey under the title.
	grey := 0
	for y := 32; y < 47; y++ {
		for x := 20; x < 500; x++ {
			if near(img.At(x, y), [3]float64{0x66, 0x66, 0x66}, 50) {
				grey++
			}
		}
	}
	if grey < 200 {
		t.Errorf("%d grey pixels where the subtitle is; want it drawn", grey)
	}
	var counts, lines int
	for _, e := range els {
		switch {
		case e.attrs["class"] == "count":
			// The count's digits, in the colour of its mark, above it.
			x, y := num(t, e.attrs["x"]), num(t, e.attrs["y"])
			ink := 0
			for yy := y - 8; yy <= y; yy++ {
				for xx := x - 4; xx <= x+4; xx++ {
					if near(at(xx, yy), over(e.attrs["fill"], 1), 60) {
						ink++
					}
				}
			}
			counts++
			if ink < 4 {
				t.Errorf("count %q at %.1f,%.1f: %d pixels of its colour; want the number drawn", e.text, x, y, ink)
			}
		case e.name == "line" && e.attrs["class"] == "last":
			// Dashed: along the line, some pixels are its grey, some not.
			x, y1, y2 := num(t, e.attrs["x1"]), num(t, e.attrs["y1"]), num(t, e.attrs["y2"])
			ink, n := 0, 0
			for y := y1 + 1; y < y2-1; y++ {
				n++
				if near(at(x, y), over("#555555", 1), 40) {
					ink++
				}
			}
			lines++
			if ink*5 < n || ink*5 > n*4 {
				t.Errorf("last-measurement line at x=%.1f: %d of %d pixels grey; want a dashed line (20%% to 80%%)", x, ink, n)
			}
		}
	}
	if counts != 2 || lines != 1 {
		t.Errorf("checked %d counts and %d last-measurement lines; want 2 and 1", counts, lines)
	}
}

// TestTimelinePNGTooLarge: a width that would need more than 64 MB is
// refused with a message, not allocated.
func TestTimelinePNGTooLarge(t *testing.T) {
	res, _, _ := reportResult(t)
	err := render.TimelinePNG(&bytes.Buffer{}, res, render.TimelineOptions{Width: 200000})
	if err == nil || !strings.Contains(err.Error(), "pixels") {
		t.Errorf("err %v; want the picture refused for its size", err)
	}
}

// BenchmarkTimelinePNG: the report fixture's timeline (7 rows, 5 gaps) as
// a 1200-pixel-wide PNG.
func BenchmarkTimelinePNG(b *testing.B) {
	res, _, _ := reportResult(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := render.TimelinePNG(io.Discard, res, render.TimelineOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
