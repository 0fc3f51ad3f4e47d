package analysis_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"kzprobe/analysis"
	"kzprobe/analysis/analysistest"
	"kzprobe/measurement"
	"kzprobe/probe/chain"
)

// TestAnalysisWithheldCertificates reads back kzprobe records whose
// certificates were withheld (they held the probe's address):
// the leaf, the intermediate or the whole chain, as measurement.Withhold
// leaves them, and in the shape of the first records (no sha1, is_ca or
// signer kept). Each withheld certificate is judged from the facts kept
// of it, never as unparsable: the finding, root, intermediates (serial,
// names, window, signer) and evidence are those of the record with every
// certificate, with and without the roots; where the evidence rests on a
// withheld certificate's signer, it says so (chain.EvidenceRecorded).
func TestAnalysisWithheldCertificates(t *testing.T) {
	t.Parallel()
	p, err := analysistest.NewReportPKI()
	if err != nil {
		t.Fatal(err)
	}
	const domain = "rutracker.org"
	s := analysistest.Sighting{Inter: 2, Time: "2024-03-17 08:00:00", ASN: "AS9198", Domain: domain}
	full, err := p.KzprobeMeasurement(s)
	if err != nil {
		t.Fatal(err)
	}
	der := full.TestKeys.TLSHandshakes[0].PeerCertificates
	if len(der) != 2 {
		t.Fatalf("the fixture's chain has %d certificates; want a leaf and an intermediate", len(der))
	}
	roots := fixtureJudge(t, p)
	tests := []struct {
		name     string
		withhold []int // indexes of the chain withheld
		firstVer bool  // strip what the first records did not keep
		// with the roots: where the evidence comes from; and whether
		// the finding is the full record's (else it is the names' alone,
		// the intermediate named by its SHA-256).
		source string
		same   bool
	}{
		{"leaf", []int{0}, false, "", true},
		{"intermediate", []int{1}, false, chain.EvidenceRecorded, true},
		{"whole chain", []int{0, 1}, false, chain.EvidenceRecorded, true},
		// The first records kept no signer: the names alone lead to the
		// interception PKI.
		{"whole chain, first version", []int{0, 1}, true, "", false},
		{"leaf, first version", []int{0}, true, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := p.KzprobeMeasurement(s)
			if err != nil {
				t.Fatal(err)
			}
			holds := func(b []byte) bool {
				for _, i := range tc.withhold {
					if bytes.Equal(b, der[i]) {
						return true
					}
				}
				return false
			}
			if n := measurement.Withhold(m, holds); n != len(tc.withhold) {
				t.Fatalf("withheld %d certificates; want %d", n, len(tc.withhold))
			}
			if tc.firstVer {
				ws := m.TestKeys.TLSHandshakes[0].WithheldCertificates
				for i := range ws {
					ws[i].SHA1, ws[i].IsCA, ws[i].SignerRootSHA1, ws[i].SignerRootName = "", false, "", ""
				}
			}
			fullRec, rec := readBack(t, full), readBack(t, m)
			if len(rec.TestKeys.TLSHandshakes[0].Withheld) != len(tc.withhold) {
				t.Fatalf("read back %d withheld certificates; want %d", len(rec.TestKeys.TLSHandshakes[0].Withheld), len(tc.withhold))
			}
			for _, withRoots := range []bool{false, true} {
				j := &analysis.Judge{}
				if withRoots {
					j = roots
				}
				want := j.HandshakeFacts(&fullRec.TestKeys.TLSHandshakes[0])
				got := j.HandshakeFacts(&rec.TestKeys.TLSHandshakes[0])
				if got.ParseErrors != 0 || got.Withheld != len(tc.withhold) {
					t.Errorf("roots %v: %d unparsable, %d judged from facts; want 0 and %d", withRoots, got.ParseErrors, got.Withheld, len(tc.withhold))
				}
				if want.Interception == nil || got.Interception == nil {
					t.Fatalf("roots %v: finding %+v; the full record's %+v", withRoots, got.Interception, want.Interception)
				}
				source := ""
				if withRoots {
					source = tc.source
				}
				if got.Interception.EvidenceSource != source {
					t.Errorf("roots %v: evidence source %q; want %q", withRoots, got.Interception.EvidenceSource, source)
				}
				ignore := cmpopts.IgnoreFields(chain.Interception{}, "EvidenceSource")
				ignoreRow := cmpopts.IgnoreFields(chain.Intermediate{}, "Withheld")
				if tc.same {
					if d := cmp.Diff(want.Interception, got.Interception, ignore, ignoreRow); d != "" {
						t.Errorf("roots %v: finding (-every certificate +withheld):\n%s", withRoots, d)
					}
					if d := cmp.Diff(want.Windows, got.Windows); d != "" {
						t.Errorf("roots %v: windows (-every certificate +withheld):\n%s", withRoots, d)
					}
				} else {
					// No SHA-1 and no signer kept: the evidence is the
					// names', and the intermediate's row, named by its
					// SHA-256, has the full record's serial, names,
					// window and no signer.
					in := got.Interception
					if in.Evidence != chain.EvidenceIssuerName || in.RootSHA1 != "" || len(in.Intermediates) != 1 {
						t.Fatalf("roots %v: finding %+v; want the names' evidence and one intermediate", withRoots, in)
					}
					w, g := want.Interception.Intermediates[0], in.Intermediates[0]
					if g.SHA1 != analysis.WithheldSHA256Prefix+w.SHA256 || g.Serial != w.Serial || g.Subject != w.Subject || g.Issuer != w.Issuer ||
						g.NotBefore != w.NotBefore || g.NotAfter != w.NotAfter || g.SignerRootSHA1 != chain.SignerUnknown || !g.Withheld {
						t.Errorf("roots %v: intermediate %+v; want the facts of %+v", withRoots, g, w)
					}
				}
				if tc.same {
					// The tables are the same.
					a, b := analysis.New(analysis.Config{Judge: j}), analysis.New(analysis.Config{Judge: j})
					a.Add(fullRec)
					b.Add(rec)
					ra, rb := a.Result(), b.Result()
					if d := cmp.Diff(ra.Intermediates, rb.Intermediates, cmpopts.IgnoreFields(analysis.IntermediateRow{}, "EvidenceSource")); d != "" {
						t.Errorf("roots %v: intermediates table (-every certificate +withheld):\n%s", withRoots, d)
					}
					if got := rb.Intermediates[0].EvidenceSource; got != source || ra.Intermediates[0].EvidenceSource != "" {
						t.Errorf("roots %v: the intermediate's evidence source %q (%q with every certificate); want %q", withRoots, got, ra.Intermediates[0].EvidenceSource, source)
					}
					// Beside the same chain with every certificate, the
					// evidence is the one checked here.
					b.Add(fullRec)
					if got := b.Result().Intermediates[0].EvidenceSource; got != "" {
						t.Errorf("roots %v: with a chain checked here too, evidence source %q; want none", withRoots, got)
					}
					if d := cmp.Diff(ra.Networks, rb.Networks); d != "" {
						t.Errorf("roots %v: networks table (-every certificate +withheld):\n%s", withRoots, d)
					}
					if ra.Summary.Intercepted != 1 || rb.Summary.Intercepted != 1 {
						t.Errorf("roots %v: intercepted %d and %d; want 1", withRoots, ra.Summary.Intercepted, rb.Summary.Intercepted)
					}
				}
			}
		})
	}
}

// readBack writes m as kzprobe does and reads it with the analysis's
// reader, normalized.
func readBack(t *testing.T, m *measurement.Measurement) *analysis.Record {
	t.Helper()
	var buf bytes.Buffer
	if err := measurement.NewWriter(&buf, -1).Write(m); err != nil {
		t.Fatal(err)
	}
	var recs []*analysis.Record
	rd := &analysis.Reader{}
	if _, err := rd.Read("m.jsonl", &buf, func(r *analysis.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil || len(recs) != 1 {
		t.Fatalf("read %d records: %v", len(recs), err)
	}
	if slices.ContainsFunc(recs[0].TestKeys.TLSHandshakes[0].PeerCertificates, func(c measurement.BinaryData) bool { return c == nil }) !=
		(len(m.TestKeys.TLSHandshakes[0].WithheldCertificates) > 0) {
		t.Fatal("the null entries of peer_certificates did not read back")
	}
	return recs[0]
}
