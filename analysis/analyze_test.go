package analysis_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kzprobe/analysis"
	"kzprobe/analysis/analysistest"
	"kzprobe/analysis/render"
	"kzprobe/probe/chain"
)

func at(s string) time.Time { return analysistest.Time(s) }

// wantIntermediate is the expected row of one of the report's
// intermediates, built from analysistest.ReportPlan by hand.
type wantIntermediate struct {
	firstSeen, lastSeen              string
	measurements, sightings, outside int
	networks, domains                []string
}

// TestAnalyzeRebuildsReportTables reads the fixture that mirrors the
// report (every input format, a corrupt line, a cut line) and checks the
// four tables row by row: serials, windows and signing roots as published,
// first and last seen, counts, sightings outside the window, networks and
// domains, and the validity gaps with the sightings inside them.
func TestAnalyzeRebuildsReportTables(t *testing.T) {
	fx, judge := reportFixture(t)
	a := analysis.New(analysis.Config{Judge: judge})
	if err := a.ReadPaths([]string{fx.Dir}); err != nil {
		t.Fatal(err)
	}
	res := a.Result()
	p := fx.PKI

	want := []wantIntermediate{
		{"2021-06-20 08:00:00", "2021-09-10 09:00:00", 4, 4, 1, []string{"AS9198", "AS21299", "AS29355"}, []string{"knews.kg", "regnum.ru", "rutracker.org", "xakep.ru"}},
		{"2021-08-25 12:00:00", "2022-06-01 12:00:00", 5, 6, 3, []string{"AS8200", "AS9198", "AS35104", "AS41798", "AS50482"}, []string{"360tv.ru", "compromat.ru", "cont.ws", "rutracker.org", "ukraina.ru"}},
		{"2023-08-09 06:33:35", "2023-10-28 10:00:00", 3, 3, 1, []string{"AS9123", "AS39824", "AS43370"}, []string{"kz.tsargrad.tv", "stanradar.com", "www.for.kg"}},
		{"2023-11-18 14:01:34", "2024-01-20 07:00:00", 3, 3, 1, []string{"AS15736", "AS29555", "AS48503"}, []string{"astrakhan.sm.news", "sproot.it", "www.pinterest.com"}},
		{"2023-12-05 00:00:00", "2024-03-17 05:28:21", 3, 3, 2, []string{"AS41124", "AS43994", "AS44477"}, []string{"regnum.ru", "rutracker.org", "xakep.ru"}},
		{"2024-04-18 13:38:19", "2024-07-01 12:00:00", 2, 2, 1, []string{"AS48502", "AS48716"}, []string{"360tv.ru", "knews.kg"}},
		{"2024-09-01 15:14:13", "2024-11-20 09:00:00", 2, 2, 1, []string{"AS9198", "AS206026"}, []string{"compromat.ru", "ukraina.ru"}},
	}
	if len(res.Intermediates) != len(want) {
		t.Fatalf("got %d intermediates; want %d", len(res.Intermediates), len(want))
	}
	for i, w := range want {
		fact := analysistest.ReportIntermediates[i]
		signer := chain.SignerUnknown
		evidence := chain.EvidenceIssuerName
		if fact.Signer >= 0 {
			signer = p.Roots[fact.Signer].SHA1()
			evidence = chain.EvidenceSignature
		}
		got := res.Intermediates[i]
		got.Days = nil
		exp := analysis.IntermediateRow{
			SHA1:           p.Intermediates[i].SHA1(),
			SHA256:         got.SHA256,
			Serial:         fact.Serial,
			Subject:        "CN=Information Security Certification Authority,O=ISCA,C=KZ",
			Issuer:         "CN=Information Security Certification Authority,O=ISCA,C=KZ",
			NotBefore:      fact.NotBefore,
			NotAfter:       fact.NotAfter,
			SignerRootSHA1: signer,
			SignerRootName: got.SignerRootName,
			Evidence:       evidence,
			FirstSeen:      at(w.firstSeen),
			LastSeen:       at(w.lastSeen),
			Measurements:   w.measurements,
			Sightings:      w.sightings,
			OutsideWindow:  w.outside,
			Networks:       w.networks,
			Domains:        w.domains,
		}
		if diff := cmp.Diff(exp, got); diff != "" {
			t.Errorf("intermediate %d (report's %s…) (-want +got):\n%s", i, fact.SHA1[:8], diff)
		}
	}

	// Networks: the report's 19, each intercepted; AS9198 also has the
	// clean measurement.
	if len(res.Networks) != len(analysistest.ReportNetworks) {
		t.Errorf("got %d networks; want %d", len(res.Networks), len(analysistest.ReportNetworks))
	}
	for _, n := range res.Networks {
		if name := analysistest.NetworkName(n.ASN); name == "" || name != n.Name {
			t.Errorf("network %s %q; want the report's name %q", n.ASN, n.Name, name)
		}
		wantM, wantI := 1, 1
		if n.ASN == "AS9198" {
			wantM, wantI = 5, 4
		}
		if n.Measurements != wantM || n.Intercepted != wantI {
			t.Errorf("network %s: %d measurements, %d intercepted; want %d, %d", n.ASN, n.Measurements, n.Intercepted, wantM, wantI)
		}
	}
	as9198 := findNetwork(res, "AS9198")
	if diff := cmp.Diff([]string{"compromat.ru", "rutracker.org", "xakep.ru"}, as9198.Domains); diff != "" {
		t.Errorf("AS9198 intercepted domains (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{p.Intermediates[0].SHA1(), p.Intermediates[1].SHA1(), p.Intermediates[6].SHA1()}, as9198.Intermediates); diff != "" {
		t.Errorf("AS9198 intermediates (-want +got):\n%s", diff)
	}

	// Domains: the report's 14.
	var domains []string
	for _, d := range res.Domains {
		domains = append(domains, d.Domain)
	}
	if diff := cmp.Diff(analysistest.ReportDomains, domains); diff != "" {
		t.Errorf("domains (-want +got):\n%s", diff)
	}
	pin := findDomain(res, "www.pinterest.com")
	wantPin := analysis.DomainRow{
		Domain: "www.pinterest.com", Measurements: 2, Intercepted: 1,
		FirstSeen: at("2024-01-20 07:00:00"), LastSeen: at("2024-01-20 07:00:00"),
		Networks: []string{"AS48503"}, Intermediates: []string{p.Intermediates[3].SHA1()},
	}
	if diff := cmp.Diff(wantPin, pin); diff != "" {
		t.Errorf("www.pinterest.com (-want +got):\n%s", diff)
	}

	// Gaps, from the intermediates' windows.
	sha := func(i int) string { return p.Intermediates[i].SHA1() }
	sighting := func(ts, asn, domain string, inter int, days float64, src string) analysis.Sighting {
		return analysis.Sighting{Time: at(ts), ASN: asn, Network: analysistest.NetworkName(asn), Domain: domain, Intermediate: sha(inter), DaysAfterExpiry: days, Source: src}
	}
	wantGaps := []analysis.Gap{
		{From: at("2021-11-02 12:39:14"), To: at("2023-08-09 06:33:35"), ExpiredBefore: []string{sha(1)}, ValidAfter: []string{sha(2)},
			Sightings: 3, Measurements: 2, Networks: []string{"AS9198", "AS35104"}, Domains: []string{"rutracker.org", "ukraina.ru"}, Intermediates: []string{sha(1)},
			Listed: []analysis.Sighting{
				sighting("2021-12-15 06:00:00", "AS9198", "rutracker.org", 1, 0, fx.Path("ooni/2021.jsonl")+":10"),
				sighting("2022-06-01 12:00:00", "AS35104", "ukraina.ru", 1, 0, fx.Path("ooni/2021.jsonl")+":11"),
				sighting("2022-06-01 12:00:00", "AS35104", "ukraina.ru", 1, 0, fx.Path("ooni/2021.jsonl")+":11"),
			}},
		{From: at("2023-10-23 06:33:35"), To: at("2023-11-02 09:03:07"), ExpiredBefore: []string{sha(2)}, ValidAfter: []string{sha(3)},
			Sightings: 1, Measurements: 1, Networks: []string{"AS43370"}, Domains: []string{"www.for.kg"}, Intermediates: []string{sha(2)},
			Listed: []analysis.Sighting{sighting("2023-10-28 10:00:00", "AS43370", "www.for.kg", 2, 0, fx.Path("ooni/2023.jsonl.gz")+":3")}},
		{From: at("2024-02-11 11:24:53"), To: at("2024-03-20 05:50:15"), ExpiredBefore: []string{sha(4)}, ValidAfter: []string{sha(5)},
			Sightings: 2, Measurements: 2, Networks: []string{"AS43994", "AS44477"}, Domains: []string{"rutracker.org", "xakep.ru"}, Intermediates: []string{sha(4)},
			Listed: []analysis.Sighting{
				sighting("2024-03-01 00:00:00", "AS43994", "rutracker.org", 4, 0, fx.Path("ooni/2024.json.gz")+":@3246"),
				sighting("2024-03-17 05:28:21", "AS44477", "xakep.ru", 4, 0, fx.Path("ooni/2024-03-17.json")+":@0"),
			}},
		{From: at("2024-06-03 05:50:15"), To: at("2024-08-23 10:46:59"), ExpiredBefore: []string{sha(5)}, ValidAfter: []string{sha(6)},
			Sightings: 1, Measurements: 1, Networks: []string{"AS48716"}, Domains: []string{"knews.kg"}, Intermediates: []string{sha(5)},
			Listed: []analysis.Sighting{sighting("2024-07-01 12:00:00", "AS48716", "knews.kg", 5, 0, fx.Path("ooni/2024.json.gz")+":@9681")}},
		{From: at("2024-11-06 10:46:59"), To: at("2024-11-20 09:00:00"), Open: analysis.OpenAfter, ExpiredBefore: []string{sha(6)},
			Sightings: 1, Measurements: 1, Networks: []string{"AS9198"}, Domains: []string{"compromat.ru"}, Intermediates: []string{sha(6)},
			Listed: []analysis.Sighting{sighting("2024-11-20 09:00:00", "AS9198", "compromat.ru", 6, 0, fx.Path("kzprobe/2024-09.jsonl")+":2")}},
	}
	for i := range wantGaps {
		g := &wantGaps[i]
		g.Days = g.To.Sub(g.From).Hours() / 24
		for j := range g.Listed {
			s := &g.Listed[j]
			for k, im := range p.Intermediates {
				if im.SHA1() == s.Intermediate {
					s.DaysAfterExpiry = s.Time.Sub(analysistest.ReportIntermediates[k].NotAfter).Hours() / 24
				}
			}
		}
	}
	if diff := cmp.Diff(wantGaps, res.Gaps); diff != "" {
		t.Errorf("gaps (-want +got):\n%s", diff)
	}

	// The bad lines are skipped, counted and named.
	wantWarn := []string{
		fx.Path("kzprobe/2024-09.jsonl") + ":4: last line cut (no newline at the end): invalid JSON at byte 111: unterminated string",
		fx.Path("ooni/2021.jsonl") + ":3: invalid JSON at byte 37: unterminated string",
	}
	var gotWarn []string
	for _, w := range res.Warnings {
		gotWarn = append(gotWarn, w.String())
	}
	if diff := cmp.Diff(wantWarn, gotWarn); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	s := res.Summary
	if s.Files != 5 || s.BadLines != 2 || s.TruncatedFiles != 1 || s.Measurements != 23 || s.Intercepted != 22 || s.Handshakes != 24 ||
		s.Intermediates != 7 || s.InterceptedNetworks != 19 || s.InterceptedDomains != 14 || s.OutsideWindow != 10 || s.Gaps != 5 || s.GapSightings != 8 {
		t.Errorf("summary %+v", s)
	}
	if s.ChainsJudged != 23 || s.CacheHits != 1 {
		t.Errorf("chains judged %d, cache hits %d; want 23 and 1 (one measurement presented its chain twice)", s.ChainsJudged, s.CacheHits)
	}
}

func findNetwork(res *analysis.Result, asn string) analysis.NetworkRow {
	for _, n := range res.Networks {
		if n.ASN == asn {
			return n
		}
	}
	return analysis.NetworkRow{}
}

func findDomain(res *analysis.Result, d string) analysis.DomainRow {
	for _, r := range res.Domains {
		if r.Domain == d {
			return r
		}
	}
	return analysis.DomainRow{}
}

// TestAnalyzeGolden prints the fixture's tables in every format and
// compares them with testdata/report/analyze.*; the fixture's certificates
// are deterministic, so their SHA-1s are stable. Paths are relative to the
// fixture folder, as a user running "kzprobe analyze ." there sees them.
func TestAnalyzeGolden(t *testing.T) {
	fx, judge := reportFixture(t)
	t.Chdir(fx.Dir)
	a := analysis.New(analysis.Config{Judge: judge})
	if err := a.ReadPaths([]string{"."}); err != nil {
		t.Fatal(err)
	}
	res := a.Result()
	for _, tc := range []struct{ format, ext string }{
		{render.FormatTable, "txt"},
		{render.FormatJSON, "json"},
		{render.FormatCSV, "csv"},
		{render.FormatMarkdown, "md"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			var b bytes.Buffer
			if err := render.Analysis(&b, res, tc.format, nil); err != nil {
				t.Fatal(err)
			}
			golden(t, "report/analyze."+tc.ext, b.Bytes())
			if tc.format == render.FormatJSON {
				var back analysis.Result
				if err := json.Unmarshal(b.Bytes(), &back); err != nil {
					t.Fatalf("JSON output does not decode: %v", err)
				}
				back.Intermediates[0].Days = nil
			}
		})
	}
}

// TestAnalyzeSinceUntil keeps only 2023's measurements.
func TestAnalyzeSinceUntil(t *testing.T) {
	fx, judge := reportFixture(t)
	a := analysis.New(analysis.Config{Judge: judge, Since: at("2023-01-01 00:00:00"), Until: at("2024-01-01 00:00:00")})
	if err := a.ReadPaths([]string{fx.Dir}); err != nil {
		t.Fatal(err)
	}
	res := a.Result()
	if res.Summary.Measurements != 5 || res.Summary.OutsideTimeWindow != 18 {
		t.Errorf("%d measurements, %d outside; want 5 and 18", res.Summary.Measurements, res.Summary.OutsideTimeWindow)
	}
	var serials []string
	for _, r := range res.Intermediates {
		serials = append(serials, r.Serial)
	}
	want := []string{analysistest.ReportIntermediates[2].Serial, analysistest.ReportIntermediates[3].Serial, analysistest.ReportIntermediates[4].Serial}
	if diff := cmp.Diff(want, serials); diff != "" {
		t.Errorf("intermediates in 2023 (-want +got):\n%s", diff)
	}
}

// TestAnalyzeOrderIndependent: reading the files in another order gives
// the same tables.
func TestAnalyzeOrderIndependent(t *testing.T) {
	fx, judge := reportFixture(t)
	files, err := analysis.Files([]string{fx.Dir})
	if err != nil {
		t.Fatal(err)
	}
	run := func(paths []string) *analysis.Result {
		a := analysis.New(analysis.Config{Judge: judge})
		if err := a.ReadPaths(paths); err != nil {
			t.Fatal(err)
		}
		r := a.Result()
		r.Files, r.Warnings = nil, nil
		r.Summary.CacheHits, r.Summary.ChainsJudged = 0, 0
		return r
	}
	rev := append([]string(nil), files...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	if diff := cmp.Diff(run(files), run(rev)); diff != "" {
		t.Errorf("result depends on file order (-forward +reverse):\n%s", diff)
	}
}

// TestAnalyzeWithoutTestRoots: with only the embedded knowledge base the
// generated chains are still caught by the ISCA issuer name, and every
// intermediate's signer is unknown (the test roots are not real ones).
func TestAnalyzeWithoutTestRoots(t *testing.T) {
	fx, _ := reportFixture(t)
	a := analysis.New(analysis.Config{})
	if err := a.ReadPaths([]string{fx.Dir}); err != nil {
		t.Fatal(err)
	}
	res := a.Result()
	if len(res.Intermediates) != 7 || res.Summary.Intercepted != 22 {
		t.Fatalf("%d intermediates, %d intercepted; want 7 and 22", len(res.Intermediates), res.Summary.Intercepted)
	}
	for _, r := range res.Intermediates {
		if r.SignerRootSHA1 != chain.SignerUnknown || r.Evidence != chain.EvidenceIssuerName {
			t.Errorf("%s: signer %s evidence %s; want unknown, issuer_name", r.SHA1, r.SignerRootSHA1, r.Evidence)
		}
	}
}

// TestAnalyzeUnlabelledIsNotANetwork: measurements without an AS number
// (AS0 / ZZ and no network name, as a run without a GeoIP database or the
// lab writes them) keep their row in the networks table but are not
// counted as a network: the summary says how many there were instead.
func TestAnalyzeUnlabelledIsNotANetwork(t *testing.T) {
	fx, judge := reportFixture(t)
	var b bytes.Buffer
	for _, s := range []analysistest.Sighting{
		{Inter: 6, Time: "2024-10-01 10:00:00", ASN: "AS0", Domain: "xakep.ru"},
		{Inter: -1, Time: "2024-10-01 10:01:00", ASN: "", Domain: "regnum.ru"},
		{Inter: 6, Time: "2024-10-01 10:02:00", ASN: "AS0", Domain: "cont.ws"},
	} {
		m, err := fx.PKI.KzprobeMeasurement(s)
		if err != nil {
			t.Fatal(err)
		}
		m.ProbeASN, m.ProbeCC, m.ProbeNetworkName = s.ASN, "ZZ", ""
		line, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(append(line, '\n'))
	}
	if err := os.WriteFile(filepath.Join(fx.Dir, "lab.jsonl"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	a := analysis.New(analysis.Config{Judge: judge})
	if err := a.ReadPaths([]string{fx.Dir}); err != nil {
		t.Fatal(err)
	}
	res := a.Result()
	s := res.Summary
	got := [6]int{s.Networks, s.InterceptedNetworks, s.Unlabelled, s.UnlabelledIntercepted, s.Measurements, s.Intercepted}
	if want := [6]int{19, 19, 3, 2, 26, 24}; got != want {
		t.Errorf("networks, intercepted networks, unlabelled, unlabelled intercepted, measurements, intercepted = %v; want %v", got, want)
	}
	if n := findNetwork(res, analysis.UnlabelledASN); n.Measurements != 3 || n.Intercepted != 2 || len(res.Networks) != 20 {
		t.Errorf("unlabelled row %+v among %d rows; want 3 measurements, 2 intercepted, after the 19 networks", n, len(res.Networks))
	}
}
