package analysis_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"kzprobe/analysis"
)

func kzRecord(domain, asn, name, ts, verdict string) *analysis.Record {
	r := &analysis.Record{
		Input: domain, MeasurementStartTime: ts, ProbeASN: asn, ProbeNetworkName: name,
		TestName: "kzprobe_tls_mitm", Source: asn + ".jsonl:1",
	}
	r.TestKeys.Domain, r.TestKeys.Verdict = domain, verdict
	if err := r.Normalize(); err != nil {
		panic(err)
	}
	return r
}

// TestComparisonLatestPerCell: the latest measurement wins whatever the
// order; --since/--until bound the measurements; OONI records are skipped
// with one warning per file; unknown ASNs fall back to the network name.
func TestComparisonLatestPerCell(t *testing.T) {
	t.Parallel()
	recs := []*analysis.Record{
		kzRecord("a.example", "AS1", "One", "2024-01-03 00:00:00", "mitm_isca"),
		kzRecord("a.example", "AS1", "One renamed", "2024-01-01 00:00:00", "ok"),
		kzRecord("a.example", "AS2", "Two", "2024-01-02 00:00:00", "dns_tampering"),
		kzRecord("b.example", "AS2", "Two", "2024-02-01 00:00:00", "tls_blocking"),
		kzRecord("b.example", "", "Lab net", "2024-01-05 00:00:00", "ok"),
		{MeasurementStartTime: "2024-01-01 00:00:00", TestName: "web_connectivity", Source: "ooni.jsonl:7"},
	}
	recs[5].Normalize()
	run := func(cfg analysis.Config) *analysis.Matrix {
		c := analysis.NewComparison(cfg)
		for _, r := range recs {
			c.Add(r)
		}
		return c.Matrix()
	}
	m := run(analysis.Config{})
	got := map[string]string{}
	for _, c := range m.Cells {
		got[c.Domain+"/"+c.Network] = c.Verdict
	}
	want := map[string]string{"a.example/AS1": "mitm_isca", "a.example/AS2": "dns_tampering", "b.example/AS2": "tls_blocking", "b.example/Lab net": "ok"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cells (-want +got):\n%s", diff)
	}
	if c := m.Cell("a.example", "AS1"); c.Measurements != 2 || !cmp.Equal(c.Verdicts, []string{"mitm_isca", "ok"}) {
		t.Errorf("a.example/AS1: %+v", c)
	}
	var labels []string
	for _, v := range m.Networks {
		labels = append(labels, v.Label())
	}
	if diff := cmp.Diff([]string{"Lab net", "AS1 One", "AS2 Two"}, labels); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	if m.SkippedNotKzprobe != 1 || len(m.Warnings) != 1 || m.Warnings[0].Source != "ooni.jsonl" {
		t.Errorf("skipped %d, warnings %v; want the OONI record skipped with one warning", m.SkippedNotKzprobe, m.Warnings)
	}

	m = run(analysis.Config{Until: at("2024-01-02 12:00:00")})
	if c := m.Cell("a.example", "AS1"); c == nil || c.Verdict != "ok" {
		t.Errorf("until 2024-01-02 12:00: a.example/AS1 = %+v; want ok", c)
	}
	if m.Cell("b.example", "AS2") != nil || m.OutsideTimeWindow != 3 {
		t.Errorf("until: %d outside; want 3 and no b.example/AS2", m.OutsideTimeWindow)
	}

	m = run(analysis.Config{DeriveVerdicts: true})
	if c := m.Cell("", "ooni.jsonl"); c == nil || c.Verdict != analysis.DerivedNoChain {
		t.Errorf("derived: OONI record's cell %+v; want %s in the file's column", c, analysis.DerivedNoChain)
	}
	if m.SkippedNotKzprobe != 0 {
		t.Errorf("derived: %d skipped; want 0", m.SkippedNotKzprobe)
	}
}
