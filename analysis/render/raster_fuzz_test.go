package render

import "testing"

// FuzzRasterSVG: whatever the SVG, rasterSVG returns a picture within the
// pixel bound or an error, and never panics.
func FuzzRasterSVG(f *testing.F) {
	for _, seed := range []string{
		`<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" font-size="12"><rect x="0" y="0" width="120" height="40" fill="#ffffff"/><title>t</title>` +
			`<g fill="#222222"><circle cx="10" cy="10" r="4.5" fill="#1b2a41"/><path d="M30 5L35 10L30 15L25 10Z" fill="#d62728"/>` +
			`<line x1="0" y1="30" x2="120" y2="30" stroke="#bdbdbd" stroke-width="1.2"/>` +
			`<text x="60" y="25" text-anchor="middle" font-weight="bold">2024 <tspan fill="#a4161a">gap</tspan></text></g>` +
			`<rect x="5" y="20" width="50" height="12" fill="#4c78a8" fill-opacity="0.85"/></svg>`,
		`<svg width="10" height="10"><text x="1" y="9" font-family="monospace" font-size="200">W</text></svg>`,
		`<svg width="0" height="10"/>`,
		`<svg width="100000" height="100000"/>`,
		`<rect/>`,
		`<svg width="10" height="10"><path d="M1 1L2"/></svg>`,
		`<svg width="10" height="10"><circle r="1e308"/><rect fill="red"/></svg>`,
		`<svg width="40" height="40"><line x1="5" y1="0" x2="5" y2="40" stroke="#555555" stroke-width="1.5" stroke-dasharray="4 3"/>` +
			`<line x1="0" y1="0" x2="999999" y2="0" stroke="#555555" stroke-dasharray="0.5"/><text x="30" y="20" text-anchor="end">x</text></svg>`,
	} {
		f.Add([]byte(seed))
	}
	const maxPixels = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := rasterSVG(data, maxPixels)
		if err != nil {
			return
		}
		if b := img.Bounds(); b.Dx()*b.Dy() > maxPixels || b.Empty() {
			t.Fatalf("picture %v; want 1 to %d pixels", b, maxPixels)
		}
	})
}
