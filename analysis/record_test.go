package analysis_test

import (
	"testing"
	"time"

	"kzprobe/analysis"
)

// TestNormalize covers the measurement time, ASN and domain forms.
// "leap_second" is the crasher FuzzNormalize found
// (testdata/fuzz/FuzzNormalize/b6f0a3efbb3221cf): second 60 was accepted
// and rolled into the next minute.
func TestAnalysisNormalize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ts, asn, input, domain string
		wantTime                     time.Time
		wantASN                      string
		wantErr                      bool
	}{
		{name: "ooni", ts: "2024-03-17 05:28:21", asn: "AS44477", input: "https://xakep.ru/", wantTime: time.Date(2024, 3, 17, 5, 28, 21, 0, time.UTC), wantASN: "AS44477", domain: "xakep.ru"},
		{name: "rfc3339", ts: "2024-03-17T05:28:21+01:00", asn: "44477", input: "http://User@XAKEP.ru:8443/x?y", wantTime: time.Date(2024, 3, 17, 4, 28, 21, 0, time.UTC), wantASN: "AS44477", domain: "xakep.ru"},
		{name: "no_asn_ipv6", ts: "2024-01-01 00:00:00", input: "tlshandshake://[2001:db8::1]:443", wantTime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), wantASN: "AS0", domain: "2001:db8::1"},
		{name: "leap_second", ts: "0000-01-01 00:00:60", wantErr: true},
		{name: "feb_30", ts: "2024-02-30 00:00:00", wantErr: true},
		{name: "garbage", ts: "yesterday", wantErr: true},
		{name: "missing", ts: "", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &analysis.Record{MeasurementStartTime: tc.ts, ProbeASN: tc.asn, Input: tc.input}
			err := r.Normalize()
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v; want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if !r.Time.Equal(tc.wantTime) || r.ProbeASN != tc.wantASN || r.Domain != tc.domain {
				t.Errorf("got %v %s %q; want %v %s %q", r.Time, r.ProbeASN, r.Domain, tc.wantTime, tc.wantASN, tc.domain)
			}
		})
	}
}
