package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kzprobe/measurement"
	"kzprobe/probe/chain"
)

func TestFitText(t *testing.T) {
	cases := []struct {
		in    string
		width int
		want  string
	}{
		{"regnum.ru", 0, "regnum.ru"},
		{"regnum.ru", 9, "regnum.ru"},
		{"regnum.ru", 8, "regnum.…"},
		{"regnum.ru", 1, "…"},
		{"✓ ok", 3, "✓ …"},
		{"", 5, ""},
	}
	for _, tc := range cases {
		if got := fitText(tc.in, tc.width); got != tc.want {
			t.Errorf("fitText(%q, %d) = %q; want %q", tc.in, tc.width, got, tc.want)
		}
		if tc.width > 0 && textWidth(fitText(tc.in, tc.width)) > tc.width {
			t.Errorf("fitText(%q, %d) is wider than %d", tc.in, tc.width, tc.width)
		}
	}
}

func TestWrap(t *testing.T) {
	list := "27 targets: mitm_isca 15, mitm_other 1, dns_tampering 3, tls_blocking 3, tcp_blocking 1, down 1, error 1, ok 2"
	got := wrapList(list, 79)
	want := []string{"27 targets: mitm_isca 15, mitm_other 1, dns_tampering 3, tls_blocking 3,", "  tcp_blocking 1, down 1, error 1, ok 2"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("wrapList = %q; want %q", got, want)
	}
	if got := wrapList(list, 0); len(got) != 1 || got[0] != list {
		t.Errorf("wrapList with no width = %q", got)
	}
	words := wrapWords("6 measurements written to /a/rather/long/path/that/does/not/fit.jsonl", 30)
	if len(words) != 2 || words[1] != "  /a/rather/long/path/that/does/not/fit.jsonl" {
		t.Errorf("wrapWords = %q; want the path on a line of its own", words)
	}
}

// goldenSummary is a summary of the probe's golden records (one for
// each verdict), plus an intercepted target with a long name whose
// browser errs even with the root installed.
func goldenSummary(t *testing.T) (*summary, []*measurement.Measurement) {
	t.Helper()
	paths, err := filepath.Glob("../../probe/testdata/golden/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("golden records: %v", err)
	}
	s := newSummary()
	var ms []*measurement.Measurement
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m := new(measurement.Measurement)
		if err := json.Unmarshal(data, m); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		ms = append(ms, m)
		if m.TestKeys.Verdict == measurement.VerdictMITMISCA {
			long := *m
			long.Input = "a-rather-long-subdomain-for-the-domain-column.example.test"
			in := *m.TestKeys.Interception
			in.BrowserErrorEvenWithRootInstalled = true
			in.BrowserErrorReasons = []string{"intermediate_expired"}
			long.TestKeys.Interception = &in
			ms = append(ms, &long)
		}
	}
	for _, m := range ms {
		s.add(m)
	}
	return s, ms
}

// TestVerdictTableFits lays the table out for terminals of several
// widths, a pipe and --wide: no line is wider than the terminal, REASON
// never repeats the root's name or hash, the legend names the root, and
// on a pipe nothing is cut.
func TestVerdictTableFits(t *testing.T) {
	s, ms := goldenSummary(t)
	var isca *measurement.Measurement
	for _, m := range ms {
		if m.TestKeys.Verdict == measurement.VerdictMITMISCA {
			isca = m
			break
		}
	}
	rootName, rootSHA1 := isca.TestKeys.Interception.RootName, isca.TestKeys.Interception.RootSHA1
	cases := []struct {
		name  string
		lay   tableLayout
		below bool // reasons under their rows
	}{
		{"terminal 60", tableLayout{width: 60}, true},
		{"terminal 80", tableLayout{width: 80}, true},
		{"terminal 120", tableLayout{width: 120}, false},
		{"terminal 200", tableLayout{width: 200}, false},
		{"pipe", tableLayout{}, false},
		{"wide", tableLayout{fullHashes: true}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			s.print(&b, 0, tc.lay)
			out := b.String()
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			for _, l := range lines {
				if tc.lay.width > 0 && textWidth(l) >= tc.lay.width {
					t.Errorf("line of %d columns on a terminal of %d: %q", textWidth(l), tc.lay.width, l)
				}
			}
			if n := strings.Count(out, rootName); n != 1 {
				t.Errorf("root name written %d times; want once (the legend):\n%s", n, out)
			}
			if !strings.Contains(out, "ROOT "+chain.Short(rootSHA1)) {
				t.Errorf("no legend for the root:\n%s", out)
			}
			if got := strings.HasPrefix(lines[2], reasonLead); got != tc.below {
				t.Errorf("reason under its row: %v; want %v:\n%s", got, tc.below, out)
			}
			if tc.lay.width == 0 && strings.Contains(out, ellipsis) {
				t.Errorf("a line is cut on a pipe:\n%s", out)
			}
			if tc.lay.fullHashes != strings.Contains(out, rootSHA1) {
				t.Errorf("full hash %s shown: %v; want %v:\n%s", rootSHA1, !tc.lay.fullHashes, tc.lay.fullHashes, out)
			}
			for _, want := range []string{"evidence: signature; control saw", "!", "9 targets: mitm_isca 2"} {
				if tc.lay.width == 0 && !strings.Contains(out, want) {
					t.Errorf("no %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestTableReason(t *testing.T) {
	r := summaryRow{
		rootName: "Information Security Certification Authority", rootSHA1: "c3c84dc9aaaabbbbccccddddeeeeffff00001111", evidence: "signature",
		reason: "chain leads to Information Security Certification Authority [c3c84dc9] (evidence: signature); control saw a trusted chain at the same address",
	}
	cases := []struct {
		name     string
		row      summaryRow
		withRoot bool
		want     string
	}{
		{"interception", r, true, "evidence: signature; control saw a trusted chain at the same address"},
		{"no ROOT column", r, false, r.reason},
		{"tls_blocking with a chain", summaryRow{
			rootName: r.rootName, rootSHA1: r.rootSHA1, evidence: "signature",
			reason: "TCP connected but every TLS handshake failed (eof_error); the chain presented before the failure leads to Information Security Certification Authority [c3c84dc9] (evidence: signature)",
		}, true, "TCP connected but every TLS handshake failed (eof_error); the chain presented before the failure leads to ROOT (evidence: signature)"},
		{"browser error not in the reason", summaryRow{
			reason: "local answers inconsistent with the control (bogon)", browserError: []string{"leaf_expired"},
		}, true, "local answers inconsistent with the control (bogon); error even with the root installed: leaf_expired"},
	}
	for _, tc := range cases {
		if got := tc.row.tableReason(tc.withRoot); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}
