package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"kzprobe/lab"
	"kzprobe/measurement"
	"kzprobe/probe/chain"
)

// sweepArgs are the arguments of a kzprobe sweep against the lab: its
// roots and its /24, quick timeouts, no rate limit, the output in dir.
func sweepArgs(l *lab.Lab, files lab.Files, dir string, extra ...string) []string {
	args := []string{"sweep", "-q", "--no-color",
		"--trust-roots", files.PublicRoot, "--interception-roots", files.ISCARoot,
		"--control-ca", files.PublicRoot,
		"--allow-net", l.Net.String(), "--timeout", "2s", "--rate", "0", "--control-every", "5",
		"-o", filepath.Join(dir, "sweep.jsonl")}
	return append(args, extra...)
}

// readSweep reads the sweep's records by name.
func readSweep(t *testing.T, path string) map[string]*measurement.Measurement {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]*measurement.Measurement{}
	if _, err := measurement.ReadJSONL(f, func(m *measurement.Measurement) error {
		got[m.TestKeys.Domain] = m
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestSweepCommandLab runs the real binary against the lab's neutral
// endpoint, found through the lab's control server: every name of the
// scenario gets the verdict its TLS behaviour says, the found file holds
// the intercepted and blocked ones and reads as a target list, and the
// summary says how to confirm them.
func TestSweepCommandLab(t *testing.T) {
	t.Parallel()
	l, dir, files := startLab(t, lab.Config{})
	want := map[string]string{}
	var names []string
	for _, s := range l.Sites() {
		if v := lab.ExpectedSweepVerdict(s.TLS, false); v != "" {
			want[s.Domain] = v
			names = append(names, "-d", s.Domain)
		}
	}
	found := filepath.Join(dir, "found.txt")
	args := sweepArgs(l, files, dir, append([]string{"--control-server", l.ControlServerURL, "--found", found}, names...)...)
	code, stderr := runBinary(t, args...)
	if code != 0 {
		t.Fatalf("kzprobe sweep exited %d:\n%s", code, stderr)
	}
	t.Logf("kzprobe sweep:\n%s", stderr)
	got := readSweep(t, filepath.Join(dir, "sweep.jsonl"))
	var wantFound []string
	for name, v := range want {
		m := got[name]
		if m == nil {
			t.Errorf("%s: no record", name)
			continue
		}
		if string(m.TestKeys.Verdict) != v {
			t.Errorf("%s: %s (%s); want %s", name, m.TestKeys.Verdict, m.TestKeys.VerdictReason, v)
		}
		if sw := m.TestKeys.SNISweep; sw == nil || sw.PinSource != "control_server" || sw.EndpointPin != l.SNIEndpointPin.String() {
			t.Errorf("%s: sni_sweep %+v; want the lab's pin, from the control server", name, sw)
		}
		if v != lab.SweepVerdictClean {
			wantFound = append(wantFound, name)
		}
	}
	data, err := os.ReadFile(found)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range wantFound {
		if !strings.Contains(string(data), name+"  #") {
			t.Errorf("--found lacks %s:\n%s", name, data)
		}
	}
	if !strings.Contains(stderr, "kzprobe run -i "+found) {
		t.Errorf("stderr does not say how to confirm the findings:\n%s", stderr)
	}
}

// TestSweepCommandEndpointFails: a dead endpoint, one the network resets
// and a wrong pin each end kzprobe sweep with exit code 1, a message
// saying which, and no finding in the output.
func TestSweepCommandEndpointFails(t *testing.T) {
	t.Parallel()
	l, dir, files := startLab(t, lab.Config{})
	wrong := chain.Pin(sha256.Sum256([]byte("another key"))).String()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"dead", []string{"--endpoint", l.SNIDeadAddr.String(), "--endpoint-pin", l.SNIEndpointPin.String()}, "the endpoint is down"},
		{"blocked", []string{"--endpoint", l.SNIBlockedAddr.String(), "--endpoint-pin", l.SNIEndpointPin.String()}, "the endpoint's address is blocked"},
		{"pin mismatch", []string{"--endpoint", l.SNIEndpointAddr.String(), "--endpoint-pin", wrong}, "pin mismatch"},
		{"pin not the control server's", []string{"--control-server", l.ControlServerURL, "--endpoint-pin", wrong}, "not --endpoint-pin"},
		// The guard: the lab's /24 only is allowed.
		{"outside --allow-net", []string{"--endpoint", "127.0.0.1:443", "--endpoint-pin", l.SNIEndpointPin.String()}, "TCP connect blocked_by_allow_net: the probe's own guard"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			args := sweepArgs(l, files, d, append(tc.args, "-d", "rutracker.org", "-d", "corp-proxy.example", "-d", "tls-reset.example", "-d", "clean-1.example")...)
			code, stderr := runBinary(t, args...)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d; want 1 and %q in:\n%s", code, tc.want, stderr)
			}
			for name, m := range readSweepIfAny(t, filepath.Join(d, "sweep.jsonl")) {
				if v := m.TestKeys.Verdict; v != measurement.VerdictError && v != measurement.VerdictClean {
					t.Errorf("%s: %s with a failing endpoint", name, v)
				}
			}
		})
	}
}

// readSweepIfAny is readSweep of a file that may not exist.
func readSweepIfAny(t *testing.T, path string) map[string]*measurement.Measurement {
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	return readSweep(t, path)
}

// TestSweepRecordsFollowOONISpecs runs kzprobe sweep against the lab and
// checks every record against OONI's base format (df-000) and the
// test_keys templates (df-005, df-006), as TestRecordsFollowOONISpecs does
// for kzprobe run: the same envelope, under the test name
// kzprobe_sni_sweep, with a report_id in OONI's shape naming it.
func TestSweepRecordsFollowOONISpecs(t *testing.T) {
	clearEnv(t)
	l, dir, files := startLab(t, lab.Config{})
	out := filepath.Join(dir, "sweep.jsonl")
	args := sweepArgs(l, files, dir, "--cc", "KZ", "--asn", "AS9198", "--endpoint", l.SNIEndpointAddr.String(), "--endpoint-pin", l.SNIEndpointPin.String(),
		"-d", "rutracker.org", "-d", "corp-proxy.example", "-d", "tls-reset.example", "-d", "clean-1.example")
	if code := execute(args); code != exitOK {
		t.Fatalf("kzprobe %s: exit %d", strings.Join(args, " "), code)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d records; want 4", len(lines))
	}
	for n, line := range lines {
		var rec map[string]any
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&rec); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		tk, _ := rec["test_keys"].(map[string]any)
		var errs []string
		checkObject(rec, specBase, "", seen, &errs)
		checkObject(tk, specTestKeys, "test_keys.", seen, &errs)
		for k := range rec {
			if !slices.ContainsFunc(specBase, func(f specField) bool { return f.name == k }) && !slices.Contains(kzprobeBase, k) {
				errs = append(errs, k+": a toplevel key df-000 does not name")
			}
		}
		if id, _ := rec["report_id"].(string); !regexp.MustCompile(`^\d{8}T\d{6}Z_kzprobesnisweep_KZ_9198_n0_[A-Z2-7]{16}$`).MatchString(id) {
			errs = append(errs, fmt.Sprintf("report_id %q; want time_kzprobesnisweep_KZ_9198_n0_random", id))
		}
		if uid, _ := rec["measurement_uid"].(string); !strings.Contains(uid, "_KZ_kzprobesnisweep_") {
			errs = append(errs, fmt.Sprintf("measurement_uid %q; want it to name the test", uid))
		}
		if rec["test_name"] != measurement.SweepTestName || rec["test_version"] != measurement.SweepTestVersion {
			errs = append(errs, fmt.Sprintf("test %v %v; want %s %s", rec["test_name"], rec["test_version"], measurement.SweepTestName, measurement.SweepTestVersion))
		}
		for _, e := range errs {
			t.Errorf("line %d (%v): %s", n+1, tk["domain"], e)
		}
	}
}
