package analysis_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kzprobe/analysis"
	"kzprobe/analysis/analysistest"
)

// sweepRecords reads the report fixture's kzprobe records and the sweep
// fixture, in file order.
func sweepRecords(t *testing.T) ([]*analysis.Record, *analysistest.Fixture, *analysis.Judge) {
	t.Helper()
	fx, judge := reportFixture(t)
	sweepFile, err := analysistest.WriteSweepFixture(t.TempDir(), fx.PKI)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*analysis.Record
	rd := &analysis.Reader{}
	if _, err := rd.ReadPaths([]string{fx.Path(analysistest.FileKzprobe), sweepFile}, func(r *analysis.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return recs, fx, judge
}

func sweepResult(cfg analysis.Config, recs []*analysis.Record) *analysis.SweepResult {
	a := analysis.New(cfg)
	for _, r := range recs {
		a.Add(r)
	}
	return a.Result().Sweep
}

// TestAnalysisSweepNames checks each name the sweep fixture found, per
// network: its verdicts and counts, first and last seen, the
// intermediate judged again, and whether the fixture's run records
// confirm it; and each network swept.
func TestAnalysisSweepNames(t *testing.T) {
	recs, fx, judge := sweepRecords(t)
	s := sweepResult(analysis.Config{Judge: judge}, recs)
	if s == nil {
		t.Fatal("no sweep result")
	}
	inter6 := fx.PKI.Intermediates[6].SHA1()
	at := analysistest.Time
	for _, want := range []analysis.SweepRow{
		{ASN: "AS9198", Domain: "compromat.ru", Verdict: "sni_intercepted_isca", Verdicts: []string{"sni_intercepted_isca"}, Intercepted: 2,
			FirstSeen: at("2024-11-18 10:00:00"), LastSeen: at("2024-11-25 10:00:00"), Intermediates: []string{inter6},
			ConfirmedByRun: analysis.RunConfirmed, RunVerdicts: []string{"mitm_isca"}},
		{ASN: "AS9198", Domain: "www.pinterest.com", Verdict: "sni_intercepted_isca", Verdicts: []string{"sni_intercepted_isca"}, Intercepted: 1,
			FirstSeen: at("2024-11-18 10:00:01"), LastSeen: at("2024-11-18 10:00:01"), Intermediates: []string{inter6},
			ConfirmedByRun: analysis.RunNotConfirmed, RunVerdicts: []string{"ok"}},
		{ASN: "AS9198", Domain: "xakep.ru", Verdict: "sni_blocked", Verdicts: []string{"sni_blocked"}, Blocked: 1,
			FirstSeen: at("2024-11-18 10:00:02"), LastSeen: at("2024-11-18 10:00:02"), Intermediates: []string{},
			ConfirmedByRun: analysis.RunNotMeasured, RunVerdicts: []string{}},
		{ASN: "AS48716", Domain: "rutracker.org", Verdict: "sni_intercepted_isca", Verdicts: []string{"sni_intercepted_isca"}, Intercepted: 1,
			FirstSeen: at("2024-11-20 12:00:00"), LastSeen: at("2024-11-20 12:00:00"), Intermediates: []string{inter6},
			ConfirmedByRun: analysis.RunNotMeasured, RunVerdicts: []string{}},
		{ASN: "AS206026", Domain: "kz.tsargrad.tv", Verdict: "sni_intercepted_other", Verdicts: []string{"sni_intercepted_other"}, Intercepted: 1,
			FirstSeen: at("2024-11-19 08:00:01"), LastSeen: at("2024-11-19 08:00:01"), Intermediates: []string{},
			ConfirmedByRun: analysis.RunNotMeasured, RunVerdicts: []string{}},
		{ASN: "AS206026", Domain: "ukraina.ru", Verdict: "sni_intercepted_isca", Verdicts: []string{"sni_intercepted_isca"}, Intercepted: 1,
			FirstSeen: at("2024-11-19 08:00:00"), LastSeen: at("2024-11-19 08:00:00"), Intermediates: []string{inter6},
			ConfirmedByRun: analysis.RunConfirmed, RunVerdicts: []string{"mitm_isca"}},
	} {
		t.Run(want.ASN+"/"+want.Domain, func(t *testing.T) {
			i := slices.IndexFunc(s.Names, func(r analysis.SweepRow) bool { return r.ASN == want.ASN && r.Domain == want.Domain })
			if i < 0 {
				t.Fatalf("not listed; names %v", s.Names)
			}
			got := s.Names[i]
			want.Network = analysistest.NetworkName(want.ASN)
			got.Source = ""
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("row (-want +got):\n%s", d)
			}
		})
	}
	if len(s.Names) != 6 {
		t.Errorf("%d names; want 6 (a name swept clean or in error is not listed)", len(s.Names))
	}
	var order []string
	for _, r := range s.Names {
		order = append(order, r.ASN+" "+r.Domain)
	}
	if want := []string{"AS9198 compromat.ru", "AS9198 www.pinterest.com", "AS9198 xakep.ru", "AS48716 rutracker.org", "AS206026 kz.tsargrad.tv", "AS206026 ukraina.ru"}; !slices.Equal(order, want) {
		t.Errorf("order %q; want by AS number, then name: %q", order, want)
	}
	for _, want := range []analysis.SweepNetworkRow{
		{ASN: "AS9198", Measurements: 5, Intercepted: 3, Blocked: 1, Clean: 1, Names: 3, Confirmed: 1,
			First: at("2024-11-18 10:00:00"), Last: at("2024-11-25 10:00:00")},
		{ASN: "AS48716", Measurements: 2, Intercepted: 1, Clean: 1, Names: 1,
			First: at("2024-11-20 12:00:00"), Last: at("2024-11-20 12:00:01")},
		{ASN: "AS206026", Measurements: 3, Intercepted: 2, Errors: 1, Names: 2, Confirmed: 1,
			First: at("2024-11-19 08:00:00"), Last: at("2024-11-19 08:00:02")},
	} {
		t.Run("network/"+want.ASN, func(t *testing.T) {
			i := slices.IndexFunc(s.Networks, func(n analysis.SweepNetworkRow) bool { return n.ASN == want.ASN })
			if i < 0 {
				t.Fatalf("not listed; networks %v", s.Networks)
			}
			want.Name, want.Endpoints = analysistest.NetworkName(want.ASN), []string{analysistest.SweepEndpoint}
			if d := cmp.Diff(want, s.Networks[i]); d != "" {
				t.Errorf("network (-want +got):\n%s", d)
			}
		})
	}
	if s.Measurements != 10 || s.Intercepted != 6 || s.Blocked != 1 || s.Clean != 2 || s.Errors != 1 ||
		s.Confirmed != 2 || s.NotConfirmed != 1 || s.NotRun != 3 {
		t.Errorf("counts %d records: %d intercepted, %d blocked, %d clean, %d error; names %d confirmed, %d not, %d not run; want 10: 6, 1, 2, 1; 2, 1, 3",
			s.Measurements, s.Intercepted, s.Blocked, s.Clean, s.Errors, s.Confirmed, s.NotConfirmed, s.NotRun)
	}
}

// TestAnalysisSweepOrderIndependent: the sweep's tables are the same
// whatever the order of the records (a run record after or before the
// sweep's, the latest finding first or last), in analyze and compare.
func TestAnalysisSweepOrderIndependent(t *testing.T) {
	recs, _, judge := sweepRecords(t)
	cfg := analysis.Config{Judge: judge}
	want := sweepResult(cfg, recs)
	rev := slices.Clone(recs)
	slices.Reverse(rev)
	if d := cmp.Diff(want, sweepResult(cfg, rev)); d != "" {
		t.Errorf("reversed input (-in order +reversed):\n%s", d)
	}
	c := analysis.NewComparison(cfg)
	for _, r := range rev {
		c.Add(r)
	}
	if d := cmp.Diff(want, c.Matrix().Sweep); d != "" {
		t.Errorf("compare's sweep (-analyze +compare):\n%s", d)
	}
}

// TestAnalysisSweepTimeWindow: Since and Until apply to the sweep's
// records as to the others.
func TestAnalysisSweepTimeWindow(t *testing.T) {
	recs, _, judge := sweepRecords(t)
	s := sweepResult(analysis.Config{Judge: judge, Since: analysistest.Time("2024-11-20 00:00:00"), Until: analysistest.Time("2024-11-21 00:00:00")}, recs)
	if s == nil || s.Measurements != 2 || len(s.Names) != 1 || s.Names[0].Domain != "rutracker.org" {
		t.Errorf("sweep inside 2024-11-20: %+v; want AS48716's 2 records, rutracker.org found", s)
	}
	if s := sweepResult(analysis.Config{Judge: judge, Since: analysistest.Time("2025-01-01 00:00:00")}, recs); s != nil {
		t.Errorf("no sweep record in the window: %+v; want no sweep result", s)
	}
}

// TestAnalysisSweepConfirmation: which run verdicts confirm which sweep
// findings, on hand-written records.
func TestAnalysisSweepConfirmation(t *testing.T) {
	rec := func(test, asn, domain, verdict string) string {
		return `{"measurement_start_time":"2024-01-01 00:00:00","test_name":"` + test + `","software_name":"kzprobe","probe_asn":"` + asn +
			`","test_keys":{"domain":"` + domain + `","verdict":"` + verdict + `","sni_sweep":{"endpoint":"192.0.2.1:443","reason_code":"x"}}}`
	}
	sweep := func(asn, verdict string) string { return rec("kzprobe_sni_sweep", asn, "a.example", verdict) }
	run := func(asn, verdict string) string { return rec("kzprobe_tls_mitm", asn, "a.example", verdict) }
	for _, tc := range []struct {
		name  string
		lines []string
		want  string // ConfirmedByRun of a.example on AS1, "" when not listed
		runs  []string
	}{
		{"isca by mitm_isca", []string{sweep("AS1", "sni_intercepted_isca"), run("AS1", "mitm_isca")}, analysis.RunConfirmed, []string{"mitm_isca"}},
		{"other by mitm_other", []string{sweep("AS1", "sni_intercepted_other"), run("AS1", "mitm_other")}, analysis.RunConfirmed, []string{"mitm_other"}},
		{"isca by mitm_other", []string{run("AS1", "mitm_other"), sweep("AS1", "sni_intercepted_isca")}, analysis.RunConfirmed, []string{"mitm_other"}},
		{"blocked by tls_blocking", []string{sweep("AS1", "sni_blocked"), run("AS1", "tls_blocking")}, analysis.RunConfirmed, []string{"tls_blocking"}},
		{"blocked, run intercepted", []string{sweep("AS1", "sni_blocked"), run("AS1", "mitm_isca")}, analysis.RunNotConfirmed, []string{"mitm_isca"}},
		{"intercepted, run blocked", []string{sweep("AS1", "sni_intercepted_isca"), run("AS1", "tls_blocking")}, analysis.RunNotConfirmed, []string{"tls_blocking"}},
		{"intercepted, run ok then mitm", []string{run("AS1", "ok"), sweep("AS1", "sni_intercepted_isca"), run("AS1", "mitm_isca")}, analysis.RunConfirmed, []string{"mitm_isca", "ok"}},
		{"run on another network", []string{sweep("AS1", "sni_intercepted_isca"), run("AS2", "mitm_isca")}, analysis.RunNotMeasured, []string{}},
		{"a sweep is not a run", []string{sweep("AS1", "sni_intercepted_isca"), sweep("AS1", "clean")}, analysis.RunNotMeasured, []string{}},
		{"clean only", []string{sweep("AS1", "clean"), run("AS1", "mitm_isca")}, "", nil},
		{"error only", []string{sweep("AS1", "error"), run("AS1", "mitm_isca")}, "", nil},
		{"a verdict outside the vocabulary", []string{sweep("AS1", "mitm_isca")}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := analysis.New(analysis.Config{})
			rd := &analysis.Reader{}
			st, err := rd.Read("hand.jsonl", strings.NewReader(strings.Join(tc.lines, "\n")+"\n"), func(r *analysis.Record) error {
				a.Add(r)
				return nil
			})
			if err != nil || st.Bad > 0 {
				t.Fatalf("read: %v, %d bad", err, st.Bad)
			}
			res := a.Result()
			s := res.Sweep
			i := slices.IndexFunc(s.Names, func(r analysis.SweepRow) bool { return r.ASN == "AS1" && r.Domain == "a.example" })
			switch {
			case tc.want == "" && i >= 0:
				t.Errorf("listed: %+v; want not listed", s.Names[i])
			case tc.want != "" && i < 0:
				t.Errorf("not listed; want confirmed_by_run %q", tc.want)
			case tc.want != "" && (s.Names[i].ConfirmedByRun != tc.want || !slices.Equal(s.Names[i].RunVerdicts, tc.runs)):
				t.Errorf("confirmed_by_run %q, run verdicts %v; want %q, %v", s.Names[i].ConfirmedByRun, s.Names[i].RunVerdicts, tc.want, tc.runs)
			}
			if runs := len(tc.lines) - res.Summary.SweepMeasurements; res.Summary.Measurements != runs {
				t.Errorf("%d measurements, %d sweep records of %d lines; want the sweep's counted apart", res.Summary.Measurements, res.Summary.SweepMeasurements, len(tc.lines))
			}
		})
	}
}

// TestAnalysisSweepJSONOnlyWithSweep: a result without sweep records has
// no sni_sweep key and no sweep_measurements (the JSON of existing inputs
// is as it was); with them, both are there.
func TestAnalysisSweepJSONOnlyWithSweep(t *testing.T) {
	recs, _, judge := sweepRecords(t)
	var runOnly []*analysis.Record
	for _, r := range recs {
		if !r.IsSweep() {
			runOnly = append(runOnly, r)
		}
	}
	for _, tc := range []struct {
		name string
		recs []*analysis.Record
		want bool
	}{{"run only", runOnly, false}, {"run and sweep", recs, true}} {
		t.Run(tc.name, func(t *testing.T) {
			a := analysis.New(analysis.Config{Judge: judge})
			for _, r := range tc.recs {
				a.Add(r)
			}
			b, err := json.Marshal(a.Result())
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.Contains(b, []byte(`"sni_sweep"`)) && bytes.Contains(b, []byte(`"sweep_measurements"`)); got != tc.want {
				t.Errorf("sni_sweep and sweep_measurements in the JSON: %v; want %v", got, tc.want)
			}
		})
	}
}
