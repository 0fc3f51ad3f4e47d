package trace

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"kzprobe/measurement"
	"kzprobe/probe"
)

var update = flag.Bool("update", false, "rewrite the golden record under testdata/")

// TestGoldenRecord guards the kzprobe_trace record's format: the record of
// a trace that met an interceptor at hop 2 (the finding_test fixtures),
// wrapped by Result.Record at a pinned time, as the command writes it,
// indented so that a change reads as a diff of fields. A change to the
// format fails it; bump measurement.TraceTestVersion and rewrite the file
// with `go test ./trace -run TestGoldenRecord -update`.
func TestGoldenRecord(t *testing.T) {
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tk := measurement.TraceTestKeys{
		Domain: "blocked.example.test", Address: "192.0.2.10:443",
		SNI: "blocked.example.test", ControlSNI: "example.com",
		Queries: []measurement.DNSQuery{}, MaxHops: 24, HopTimeout: 2,
		TCPTraceroute: []measurement.TraceProbe{router(1, hopR1), dest(2)},
		UDPTraceroute: path(),
		TargetTrace:   hops(2, measurement.AnswerServer, isca),
		ControlTrace:  hops(2, measurement.AnswerServer, trusted),
	}
	tk.TCPTraceroute[0].ICMP = &measurement.ICMPMessage{Type: 11, Version: 4}
	tk.Finding = Interpret(&tk)
	res := &Result{TestKeys: tk, Start: start, Runtime: 1.25}
	cfg := &Config{}
	rec := res.Record(probe.Envelope{
		ReportID: "20250601T120000Z_kzprobetrace_KZ_64500_n0_AAAAAAAAAAAAAAAA", SoftwareVersion: "0.1.0",
		ProbeASN: "AS64500", ProbeCC: "KZ", ProbeNetworkName: "Example Telecom",
		Annotations: map[string]string{"vantage_method": "configured"}, TestStartTime: start,
	}, "blocked.example.test", Options(cfg), "192.0.2.53")
	rec.MeasurementUID = "20250601120000.000000_KZ_kzprobetrace_0123456789abcdef" // random otherwise
	got, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	file := filepath.Join("testdata", "golden", "trace.json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the record differs from %s (rerun with -update if the change is meant, and bump measurement.TraceTestVersion):\n%s", file, got)
	}
	var back measurement.Trace
	if err := json.Unmarshal(want, &back); err != nil || back.TestName != measurement.TraceTestName || back.TestKeys.Finding.InterferenceHop == nil {
		t.Errorf("the golden record does not read back: %v %+v", err, back.TestKeys.Finding)
	}
}
