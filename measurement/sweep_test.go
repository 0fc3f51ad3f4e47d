package measurement

import (
	"encoding/json"
	"slices"
	"sort"
	"testing"
)

// TestSNISweepKeys pins the JSON keys of a sweep record's own facts, which
// the reading side switches on (measurement/sweep.go documents each): a
// rename here is a format change (SweepTestVersion).
func TestSNISweepKeys(t *testing.T) {
	t.Parallel()
	yes := true
	m := Measurement{Envelope: Envelope{TestName: SweepTestName}, TestKeys: TestKeys{Domain: "a.example", Verdict: VerdictSNIBlocked,
		SNISweep: &SNISweep{Endpoint: "192.0.2.1:443", EndpointPin: "sha256:x", PinSource: "flag", Hello: "chrome",
			ControlSNI: "example.com", ReasonCode: SweepBlocked,
			Control: &SweepControl{TLSHandshake: &TLSHandshake{}, PinMatch: &yes, OK: true}}}}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		TestKeys struct {
			SNISweep map[string]json.RawMessage `json:"sni_sweep"`
		} `json:"test_keys"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]json.RawMessage) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	want := []string{"control", "control_sni", "endpoint", "endpoint_pin", "hello", "pin_match", "pin_source", "presented_pin", "reason_code"}
	if got := keys(v.TestKeys.SNISweep); !slices.Equal(got, want) {
		t.Errorf("sni_sweep keys %q; want %q", got, want)
	}
	var c map[string]json.RawMessage
	if err := json.Unmarshal(v.TestKeys.SNISweep["control"], &c); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(c), []string{"ok", "pin_match", "presented_pin", "tcp_connect", "tls_handshake"}; !slices.Equal(got, want) {
		t.Errorf("sni_sweep.control keys %q; want %q", got, want)
	}
	// A kzprobe_tls_mitm record has no sni_sweep key at all.
	b, _ = json.Marshal(Measurement{Envelope: Envelope{TestName: TestName}})
	var run map[string]map[string]json.RawMessage
	json.Unmarshal(b, &run)
	if _, ok := run["test_keys"]["sni_sweep"]; ok {
		t.Error("a run record carries sni_sweep")
	}
	if got := SweepVerdicts(); len(got) != 5 || got[0] != "sni_intercepted_isca" || got[4] != "error" {
		t.Errorf("SweepVerdicts() = %q", got)
	}
}
