package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestSubmission: a lab record becomes a submission with the probe's
// report_id and the n-th measurement_uid, every other byte kept; a record
// without a measurement_uid long enough is an error.
func TestSubmission(t *testing.T) {
	const rec = `{"report_id":"r0","measurement_uid":"20261204120000.000000_KZ_kzprobetlsmitm_0123456789abcdef","input":"a.example"}`
	for _, tc := range []struct {
		name, rec, want, err string
		n                    uint64
	}{
		{"first", rec, `{"report_id":"id1","measurement_uid":"20261204120000.000000_KZ_kzprobetlsmitm_0000000000000000","input":"a.example"}`, "", 0},
		{"n", rec, `{"report_id":"id1","measurement_uid":"20261204120000.000000_KZ_kzprobetlsmitm_00000000000004d2","input":"a.example"}`, "", 1234},
		{"no uid", `{"report_id":"r0","input":"a.example"}`, "", "without a measurement_uid", 1},
		{"short uid", `{"report_id":"r0","measurement_uid":"abc"}`, "", "too short", 1},
		{"no report_id", `{"measurement_uid":"20261204120000.000000_KZ_kzprobetlsmitm_0123456789abcdef"}`, "", "report_id", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.rec)
			got, err := submission(in, "id1", tc.n)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v; want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			}
			if !bytes.Equal(in, []byte(tc.rec)) {
				t.Errorf("the template record changed: %s", in)
			}
		})
	}
}

// TestPercentiles: nearest-rank percentiles of 1..100 ms.
func TestPercentiles(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	p50, p90, p99, largest := percentiles(lat)
	if p50 != 50 || p90 != 90 || p99 != 99 || largest != 100 {
		t.Errorf("p50 %v, p90 %v, p99 %v, max %v; want 50, 90, 99, 100", p50, p90, p99, largest)
	}
	if a, b, c, d := percentiles(nil); a != 0 || b != 0 || c != 0 || d != 0 {
		t.Errorf("no latencies: %v %v %v %v; want zeros", a, b, c, d)
	}
}
