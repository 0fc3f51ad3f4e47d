//go:build linux

package render_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kzprobe/analysis/render"
)

// TestSweepReportInBrowser renders the report of the report fixture with
// the sweep fixture beside it (two more tables: the names found by SNI
// and the networks swept) in headless Chromium at 1400, 1024 and 390
// pixels, as TestReportInBrowser does: the page never wider than the
// window, no table wider than its box, no date, fingerprint or label
// broken over two lines, every fingerprint's box inside the window; the
// sweep's tables turn into cards where the others do. Then a screenshot
// of the whole page at each width (KZPROBE_SCREENSHOTS=dir keeps them).
func TestSweepReportInBrowser(t *testing.T) {
	sideReportInBrowser(t, false, "report-sweep", []browserCase{
		// TestReportInBrowser's cards, and the sweep's two tables: both
		// tables at 1400, the names table (1200) as cards at 1024, both
		// on a phone.
		{width: 1400, cards: 0},
		{width: 1024, cards: 4},
		{width: 390, cards: 9, timelineScrolls: true},
	})
}

// TestWhereReportInBrowser is TestSweepReportInBrowser with the trace
// fixture too: the where table (1200) as cards at 1024, the boxes (920)
// too on a phone.
func TestWhereReportInBrowser(t *testing.T) {
	sideReportInBrowser(t, true, "report-where", []browserCase{
		{width: 1400, cards: 0},
		{width: 1024, cards: 5},
		{width: 390, cards: 11, timelineScrolls: true},
	})
}

type browserCase struct {
	width, cards    int
	timelineScrolls bool
}

func sideReportInBrowser(t *testing.T, traces bool, name string, cases []browserCase) {
	browser := findBrowser(t)
	res, m, _ := sideReportResult(t, traces)
	dir := t.TempDir()
	page := filepath.Join(dir, name+".html")
	var b bytes.Buffer
	if err := render.Report(&b, render.ReportData{Result: res, Matrix: m, Inputs: []string{"fixture/", "sweep/"}, Generated: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}); err != nil {
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
	for _, tc := range cases {
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
			if got.Boxes < 44 || got.BoxesPast > 0 || got.OpenScrollWidth > got.Viewport {
				t.Errorf("with all %d fingerprint boxes open, %d are hidden or past the window and the page is %d px wide; want every box on the page",
					got.Boxes, got.BoxesPast, got.OpenScrollWidth)
			}
			if len(got.Wrapped) > 0 || got.Checked < 100 {
				t.Errorf("%d dates, fingerprints and labels checked; broken over lines: %q", got.Checked, got.Wrapped)
			}
			screenshot(t, browser, page, tc.width, got.Height, filepath.Join(shots, fmt.Sprintf("%s-%d.png", name, tc.width)))
		})
	}
}
