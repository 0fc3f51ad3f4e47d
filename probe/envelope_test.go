package probe_test

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kzprobe/lab"
	"kzprobe/measurement"
	"kzprobe/probe"
)

// TestNewReportID: a report ID has the shape of those OONI's collectors
// assign (time, test name without underscores, country, AS number,
// collector, random part), with the vantage's ASN and country.
func TestNewReportID(t *testing.T) {
	start := time.Date(2025, 6, 1, 17, 4, 5, 0, time.FixedZone("ALMT", 5*3600))
	for _, tc := range []struct {
		asn, cc string
		want    string // the ID without its random part
	}{
		{"AS9198", "KZ", "20250601T120405Z_kzprobetlsmitm_KZ_9198_n0_"},
		{"AS0", "ZZ", "20250601T120405Z_kzprobetlsmitm_ZZ_0_n0_"},
		{"", "", "20250601T120405Z_kzprobetlsmitm_ZZ_0_n0_"},
		{"not an ASN", "KZ", "20250601T120405Z_kzprobetlsmitm_KZ_0_n0_"},
		{"AS4294967295", "DE", "20250601T120405Z_kzprobetlsmitm_DE_4294967295_n0_"},
	} {
		id := probe.NewReportID(start, tc.asn, tc.cc)
		if !regexp.MustCompile(`^` + regexp.QuoteMeta(tc.want) + `[A-Z2-7]{16}$`).MatchString(id) {
			t.Errorf("NewReportID(%q, %q) = %q; want %s and 16 random letters and digits", tc.asn, tc.cc, id, tc.want)
		}
	}
	if a, b := probe.NewReportID(start, "AS1", "KZ"), probe.NewReportID(start, "AS1", "KZ"); a == b {
		t.Errorf("two report IDs are the same: %s", a)
	}
}

// TestEnvelope measures a lab site with a control resolver and a control
// server and checks the envelope OONI's base data format asks for: the
// data format version, the options the run used, the test helpers it
// asked, the extensions test_keys follow, annotations that are an object,
// and a measurement_uid in OONI's shape.
func TestEnvelope(t *testing.T) {
	t.Parallel()
	l, p := startLab(t, lab.Scenario{Sites: []lab.Site{{Domain: "clean.example", TLS: lab.Pass, Expect: "ok"}}})
	p = withControlServer(t, l, p)
	p.Fingerprints = []string{"chrome", "firefox"}
	p.Envelope.ProbeCC = "KZ"
	m := p.Measure(context.Background(), "clean.example", 0)

	if m.DataFormatVersion != "0.2.0" || m.TestVersion != measurement.TestVersion {
		t.Errorf("data_format_version %q, test_version %q; want 0.2.0 and %s", m.DataFormatVersion, m.TestVersion, measurement.TestVersion)
	}
	wantOptions := []string{
		"targets.port=" + strconv.Itoa(l.Port),
		"tls.fingerprints=chrome,firefox",
		"tls.max_addresses=4",
		"tls.small_hello_retry=true",
		"tls.timeout=2s",
		"run.target_timeout=20s",
		"dns.timeout=2s",
		"dns.retries=1",
	}
	if d := cmp.Diff(wantOptions, m.Options); d != "" {
		t.Errorf("options (-want +got):\n%s", d)
	}
	wantHelpers := map[string]measurement.TestHelper{
		"control_resolver": {Address: l.DoHURL, Type: "doh"},
		"control_server":   {Address: l.ControlServerURL, Type: "https"},
	}
	if d := cmp.Diff(wantHelpers, m.TestHelpers); d != "" {
		t.Errorf("test_helpers (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]int64{"dnst": 0, "tcpconnect": 0, "tlshandshake": 0}, m.Extensions); d != "" {
		t.Errorf("extensions (-want +got):\n%s", d)
	}
	if m.Annotations == nil {
		t.Error("annotations nil: written as null, not an object")
	}
	if !regexp.MustCompile(`^\d{14}\.\d{6}_KZ_kzprobetlsmitm_[0-9a-f]{16}$`).MatchString(m.MeasurementUID) {
		t.Errorf("measurement_uid %q; want OONI's shape, 20060102150405.000000_KZ_kzprobetlsmitm_ and 16 hex digits", m.MeasurementUID)
	}
	for i, h := range m.TestKeys.TLSHandshakes {
		if h.Tags == nil {
			t.Errorf("tls_handshakes[%d].tags is null; want a list", i)
		}
	}

	// Without helpers the list and the map are empty, never null.
	bare := *p
	bare.Control, bare.ControlServer = nil, nil
	m = bare.Measure(context.Background(), "clean.example", 0)
	if m.TestHelpers == nil || len(m.TestHelpers) != 0 {
		t.Errorf("test_helpers without helpers = %#v; want an empty map", m.TestHelpers)
	}
}

// TestRunnerKeepsInputAsGiven: the record's input is the target as it was
// given, a URL with its scheme and path, and the domain and port measured
// are in test_keys; a target given as a bare domain is recorded as the
// engine names it.
func TestRunnerKeepsInputAsGiven(t *testing.T) {
	t.Parallel()
	l, p := startLab(t, lab.Scenario{Sites: []lab.Site{
		{Domain: "news.example", TLS: lab.Pass, Expect: "ok"},
		{Domain: "plain.example", TLS: lab.Pass, Expect: "ok"},
	}})
	var buf safeBuffer
	in := make(chan probe.Input, 2)
	in <- probe.Input{Domain: "news.example", Input: "https://news.example/politics/2024?page=2"}
	in <- probe.Input{Domain: "plain.example"}
	close(in)
	if _, err := (&probe.Runner{Prober: p, Writer: measurement.NewWriter(&buf, -1)}).Run(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	var got []string
	if _, err := measurement.ReadJSONL(&buf, func(m *measurement.Measurement) error {
		got = append(got, m.Input+" "+m.TestKeys.Domain+" "+strconv.Itoa(m.TestKeys.Port))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	port := strconv.Itoa(l.Port)
	want := []string{
		"https://news.example/politics/2024?page=2 news.example " + port,
		"plain.example:" + port + " plain.example " + port,
	}
	if l.Port == 443 {
		want[1] = "plain.example plain.example 443"
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("input, domain, port (-want +got):\n%s", d)
	}
}
