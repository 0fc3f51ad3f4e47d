package render_test

import (
	"testing"

	"kzprobe/analysis"
	"kzprobe/analysis/render"
	"kzprobe/probe/chain"
)

// TestIntermediatesEvidenceSource: the intermediates table says when an
// intermediate's evidence rests on a signer its record kept of a withheld
// certificate, and prints checked evidence as before.
func TestIntermediatesEvidenceSource(t *testing.T) {
	t.Parallel()
	res := &analysis.Result{Intermediates: []analysis.IntermediateRow{
		{SHA1: "aa", Evidence: chain.EvidenceSignature, EvidenceSource: chain.EvidenceRecorded},
		{SHA1: "bb", Evidence: chain.EvidenceSignature},
	}}
	tb, err := render.AnalysisTable(res, render.TableIntermediates)
	if err != nil {
		t.Fatal(err)
	}
	col := -1
	for i, h := range tb.Header {
		if h == "evidence" {
			col = i
		}
	}
	if col < 0 || len(tb.Rows) != 2 {
		t.Fatalf("header %q, %d rows", tb.Header, len(tb.Rows))
	}
	for i, want := range []string{"signature (recorded_by_probe)", "signature"} {
		if got := tb.Rows[i][col]; got != want {
			t.Errorf("row %d: evidence %q; want %q", i, got, want)
		}
	}
}
