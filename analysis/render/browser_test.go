//go:build linux

package render_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"kzprobe/analysis/render"
)

// The browser tests render the report in headless Chromium, Debian's
// chromium-headless-shell or chromium (scripts/e2e.sh --install-only
// installs it). They skip when neither is installed, unless
// KZPROBE_E2E_REQUIRE is set (as CI sets it): then a missing browser fails.
// KZPROBE_SCREENSHOTS=dir keeps the screenshots there.

// findBrowser returns the headless Chromium to use.
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium-headless-shell", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no headless Chromium: apt-get install -y chromium-headless-shell (scripts/e2e.sh --install-only does)"
	if os.Getenv("KZPROBE_E2E_REQUIRE") != "" {
		t.Fatal(msg + "; KZPROBE_E2E_REQUIRE is set, so this fails")
	}
	t.Skip(msg)
	return ""
}

// chromium runs the browser on one file:// page with a new empty profile
// and everything that could reach the network off: no background
// networking, component updates, sync or QUIC, and every host name
// resolving to nothing. The whole process group is killed on timeout.
func chromium(t *testing.T, browser string, width, height int, args ...string) []byte {
	t.Helper()
	profile := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--disable-extensions", "--disable-breakpad", "--no-proxy-server",
		"--host-resolver-rules=MAP * ~NOTFOUND",
		"--user-data-dir=" + profile, "--hide-scrollbars",
		fmt.Sprintf("--window-size=%d,%d", width, height),
	}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+profile, "XDG_CONFIG_HOME="+profile, "XDG_CACHE_HOME="+profile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(browser), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// measureScript measures, once the page is laid out, what a reader would
// notice, and writes it into the page as JSON in <pre id=measure>: the
// viewport's width and the page's (wider means sideways scrolling); each
// table wider than the box it sits in (which would scroll, or spill), and
// the timeline if wider than its box; each date, fingerprint, serial or
// name in a table cell that the browser broke over more than one line
// (found in the text itself, whatever the markup); and, with every
// fingerprint's box open, whether any box reaches past the window.
const measureScript = `<script>
(function(){
  var de = document.documentElement;
  var out = {viewport: de.clientWidth, scrollWidth: de.scrollWidth, height: de.scrollHeight, overflowing: [], wrapped: [], checked: 0, cards: 0};
  var heading = function(e){
    for (; e && e !== document.body; e = e.parentElement) {
      for (var p = e.previousElementSibling; p; p = p.previousElementSibling) { if (/^H[23]$/.test(p.tagName)) return p.textContent; }
    }
    return '?';
  };
  document.querySelectorAll('table').forEach(function(t){
    var box = t.parentElement;
    if (t.offsetWidth > box.clientWidth + 1) out.overflowing.push(heading(t) + ': ' + t.offsetWidth + ' > ' + box.clientWidth);
    var th = t.querySelector('thead');
    if (th && getComputedStyle(th).display === 'none') out.cards++;
  });
  document.querySelectorAll('.tl').forEach(function(e){
    if (e.scrollWidth > e.clientWidth + 1) out.overflowing.push('Timeline: ' + e.scrollWidth + ' > ' + e.clientWidth);
  });
  var lines = function(r){
    var tops = {}, n = 0;
    Array.prototype.forEach.call(r.getClientRects(), function(c){ var k = Math.round(c.top); if (c.width > 0 && !tops[k]) { tops[k] = 1; n++; } });
    return n;
  };
  var re = /\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}|[0-9a-f]{8,}\u2026?|\d{10,}\u2026?/g;
  document.querySelectorAll('td').forEach(function(td){
    var w = document.createTreeWalker(td, NodeFilter.SHOW_TEXT), node, m;
    while ((node = w.nextNode())) {
      if (node.parentElement.closest('details:not([open]) > :not(summary)')) continue; // a closed box
      re.lastIndex = 0;
      while ((m = re.exec(node.data))) {
        var r = document.createRange(); r.setStart(node, m.index); r.setEnd(node, m.index + m[0].length);
        var n = lines(r);
        if (n === 0) continue; // not drawn
        out.checked++;
        if (n > 1) out.wrapped.push(m[0]);
      }
    }
  });
  document.querySelectorAll('.nw, .vb').forEach(function(e){
    var r = document.createRange(); r.selectNodeContents(e);
    out.checked++;
    if (lines(r) > 1) out.wrapped.push(e.textContent);
  });
  // Every fingerprint's box open at once: none may reach past the window.
  var boxes = document.querySelectorAll('details.h');
  boxes.forEach(function(d){ d.open = true; });
  out.boxes = boxes.length; out.openScrollWidth = de.scrollWidth;
  var past = 0;
  document.querySelectorAll('details.h > .all').forEach(function(b){ var r = b.getBoundingClientRect(); if (r.width === 0 || r.right > de.clientWidth || r.left < 0) past++; });
  out.boxesPast = past;
  boxes.forEach(function(d){ d.open = false; });
  var pre = document.createElement('pre'); pre.id = 'measure'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>`

// measurement is what measureScript reports.
type measurement struct {
	Viewport    int      `json:"viewport"`
	ScrollWidth int      `json:"scrollWidth"`
	Height      int      `json:"height"`
	Overflowing []string `json:"overflowing"`
	Wrapped     []string `json:"wrapped"`
	Checked     int      `json:"checked"`
	Cards       int      `json:"cards"`
	// Boxes counts the fingerprints' boxes; with all of them open the
	// page is OpenScrollWidth wide and BoxesPast of them are not drawn
	// or reach past the window.
	Boxes           int `json:"boxes"`
	OpenScrollWidth int `json:"openScrollWidth"`
	BoxesPast       int `json:"boxesPast"`
}

var measureRE = regexp.MustCompile(`(?s)<pre id="measure">(.*?)</pre>`)

// measure loads page (with measureScript added) at width and returns
// what the browser measured.
func measure(t *testing.T, browser, page string, width int) measurement {
	t.Helper()
	doc, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(t.TempDir(), "measure.html")
	doc = bytes.Replace(doc, []byte("</body>"), []byte(measureScript+"</body>"), 1)
	if err := os.WriteFile(probe, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	dom := chromium(t, browser, width, 900, "--dump-dom", "file://"+probe)
	m := measureRE.FindSubmatch(dom)
	if m == nil {
		t.Fatalf("at %d px the page holds no measurement; the browser printed %d bytes", width, len(dom))
	}
	var got measurement
	if err := json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &got); err != nil {
		t.Fatalf("measurement %q: %v", m[1], err)
	}
	return got
}

// screenshot takes a picture of the whole page at width and checks it is
// the page: that size, white around, the title's ink in the top left.
func screenshot(t *testing.T, browser, page string, width, height int, out string) {
	t.Helper()
	height = min(height, 16000)
	chromium(t, browser, width, height, "--screenshot="+out, "file://"+page)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if b := img.Bounds(); b != image.Rect(0, 0, width, height) {
		t.Errorf("%s: %v; want %dx%d", out, b, width, height)
	}
	ink := 0
	for y := 10; y < 80; y++ {
		for x := 0; x < min(width, 600); x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if r>>8 < 90 && g>>8 < 90 && b>>8 < 90 {
				ink++
			}
		}
	}
	if ink < 300 {
		t.Errorf("%s: %d dark pixels where the title is; want the page drawn", out, ink)
	}
}

// TestReportInBrowser renders report.html of the report fixture (19
// networks, 14 domains, 7 intermediates, 5 gaps) in headless Chromium at
// 1400 pixels, a laptop's 1024 and a phone's 390, and checks what a reader
// would see: the page is never wider than the window (no sideways
// scrolling), no table is wider than its box (the wide tables turn into
// cards on the phone, and stay tables at 1400), only the timeline
// scrolls sideways on a phone, no date, short fingerprint or network
// label is broken over two lines, and the box with a fingerprint's whole
// value, opened, stays inside the window. Then it takes a screenshot of the
// whole page at each width.
func TestReportInBrowser(t *testing.T) {
	browser := findBrowser(t)
	res, m, _ := reportResult(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := render.Report(&b, render.ReportData{Result: res, Matrix: m, Inputs: []string{"fixture/"}, Generated: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	shots := os.Getenv("KZPROBE_SCREENSHOTS")
	if shots == "" {
		shots = dir
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		width int
		// cards is how many tables are shown as cards; timelineScrolls
		// whether the timeline is wider than the window.
		cards           int
		timelineScrolls bool
	}{
		{width: 1400, cards: 0},
		{width: 1024, cards: 3},
		{width: 390, cards: 7, timelineScrolls: true},
	} {
		t.Run(fmt.Sprint(tc.width), func(t *testing.T) {
			got := measure(t, browser, page, tc.width)
			t.Logf("%d px: page %d px wide, %d px high; %d tables as cards; %d labels checked", tc.width, got.ScrollWidth, got.Height, got.Cards, got.Checked)
			if got.Viewport != tc.width || got.ScrollWidth > got.Viewport {
				t.Errorf("page %d px wide in a %d px window (want %d): the reader scrolls sideways", got.ScrollWidth, got.Viewport, tc.width)
			}
			var overflowing []string
			timeline := false
			for _, o := range got.Overflowing {
				if strings.HasPrefix(o, "Timeline") {
					timeline = true
					continue
				}
				overflowing = append(overflowing, o)
			}
			if len(overflowing) > 0 {
				t.Errorf("tables wider than their box: %q", overflowing)
			}
			if timeline != tc.timelineScrolls {
				t.Errorf("timeline scrolls sideways: %v; want %v", timeline, tc.timelineScrolls)
			}
			if got.Cards != tc.cards {
				t.Errorf("%d tables shown as cards; want %d", got.Cards, tc.cards)
			}
			if got.Boxes < 40 || got.BoxesPast > 0 || got.OpenScrollWidth > got.Viewport {
				t.Errorf("with all %d fingerprint boxes open, %d are hidden or past the window and the page is %d px wide; want every box on the page",
					got.Boxes, got.BoxesPast, got.OpenScrollWidth)
			}
			if len(got.Wrapped) > 0 || got.Checked < 100 {
				t.Errorf("%d dates, fingerprints and labels checked; broken over lines: %q", got.Checked, got.Wrapped)
			}
			screenshot(t, browser, page, tc.width, got.Height, filepath.Join(shots, fmt.Sprintf("report-%d.png", tc.width)))
		})
	}
}

// TestBrowserMissingFailsWhenRequired: with KZPROBE_E2E_REQUIRE set and no
// browser on PATH, the browser tests fail rather than skip.
func TestBrowserMissingFailsWhenRequired(t *testing.T) {
	if os.Getenv("KZPROBE_BROWSER_CHILD") == "1" {
		findBrowser(t)
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		require string
		want    string
	}{{"1", "--- FAIL"}, {"", "--- SKIP"}} {
		cmd := exec.Command(exe, "-test.run=^TestBrowserMissingFailsWhenRequired$", "-test.v")
		cmd.Env = append(os.Environ(), "KZPROBE_BROWSER_CHILD=1", "PATH="+t.TempDir(), "KZPROBE_E2E_REQUIRE="+tc.require)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if failed := errors.As(err, &exit); failed != (tc.want == "--- FAIL") || !bytes.Contains(out, []byte(tc.want)) || !bytes.Contains(out, []byte("chromium-headless-shell")) {
			t.Errorf("KZPROBE_E2E_REQUIRE=%q without a browser: err %v, output:\n%s\nwant %s naming the package", tc.require, err, out, tc.want)
		}
	}
}
