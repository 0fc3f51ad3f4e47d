//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"kzprobe/lab"
	"kzprobe/measurement"
)

// readTraces reads the kzprobe_trace records of a JSONL file.
func readTraces(t *testing.T, path string) []measurement.Trace {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []measurement.Trace
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var rec measurement.Trace
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkInterceptionTrace checks that recs is one trace, of sni at addr,
// whose finding is the interception chain answering at hop 1: on
// loopback the lab's interceptor is the destination itself.
func checkInterceptionTrace(t *testing.T, recs []measurement.Trace, sni, addr string) {
	t.Helper()
	if len(recs) != 1 {
		t.Fatalf("%d trace records; want 1 (the intercepted target only)", len(recs))
	}
	rec := recs[0]
	tk, f := rec.TestKeys, rec.TestKeys.Finding
	if rec.TestName != measurement.TraceTestName || tk.SNI != sni || tk.Address != addr || tk.Failure != nil {
		t.Errorf("test_name %q, sni %q, address %q, failure %v; want %s, %s, %s, none", rec.TestName, tk.SNI, tk.Address, tk.Failure,
			measurement.TraceTestName, sni, addr)
	}
	if f.Interference != measurement.InterferenceChain || f.InterferenceHop == nil || *f.InterferenceHop != 1 {
		t.Errorf("finding %+v; want an interception chain at hop 1", f)
	}
	if h := f.AnsweringHop; h == nil || !h.Destination {
		t.Errorf("answering hop %+v; want the loopback destination", h)
	}
	if !strings.Contains(f.Summary, "interception chain at hop 1") {
		t.Errorf("summary %q does not name the interception at hop 1", f.Summary)
	}
}

// traceScenario is a lab with one intercepted and one clean site.
var traceScenario = lab.Scenario{Name: "trace-found", Sites: []lab.Site{
	{Domain: "isca.example", TLS: lab.InterceptISCA}, {Domain: "clean.example", TLS: lab.Pass}}}

// TestRunTraceFound runs the real binary's kzprobe run --trace over a lab
// with an intercepted and a clean site: exactly one trace record, for the
// intercepted one at the address its verdict was measured on, in
// -o's name with -trace, the summary naming that file, the exit code the
// run's own.
func TestRunTraceFound(t *testing.T) {
	clearEnv(t)
	_, base := startLabRun(t, traceScenario)
	dir := t.TempDir()
	out := filepath.Join(dir, "m.jsonl")
	args := append(slices.Clone(base), "-o", out, "-d", "isca.example", "-d", "clean.example", "--trace", "--trace-control-sni", "clean.example")
	r := runWrapped(t, nil, 90*time.Second, args...)
	if r.code != exitOK {
		t.Fatalf("exit code %d; want 0\n%s", r.code, r.stderr)
	}
	recs := readRecords(t, out)
	m := recs["isca.example"]
	if m == nil || m.TestKeys.Verdict != measurement.VerdictMITMISCA || recs["clean.example"] == nil || recs["clean.example"].TestKeys.Verdict != measurement.VerdictOK {
		t.Fatalf("the run's verdicts are not mitm_isca and ok: %v", recs)
	}
	addr, ok := runTraceTarget(m)
	if !ok {
		t.Fatal("no address for the mitm_isca record")
	}
	tracePath := filepath.Join(dir, "m-trace.jsonl")
	traces := readTraces(t, tracePath)
	checkInterceptionTrace(t, traces, "isca.example", addr.String())
	if got := traces[0].TestKeys.Queries; len(got) == 0 {
		t.Error("the trace record lacks the run's DNS queries")
	}
	if !strings.Contains(r.stderr, "1 trace record of 1 target found intercepted or blocked written to") || !strings.Contains(r.stderr, "m-trace.jsonl") {
		t.Errorf("the summary does not name the trace file:\n%s", r.stderr)
	}
}

// TestSweepTraceFound: the same for kzprobe sweep --trace against the
// lab's endpoint: one trace record, of the intercepted name, to the
// endpoint, in --trace-output.
func TestSweepTraceFound(t *testing.T) {
	clearEnv(t)
	l, dir, files := startLab(t, lab.Config{Scenario: traceScenario})
	traceOut := filepath.Join(dir, "traces.jsonl")
	args := sweepArgs(l, files, dir, "--control-server", l.ControlServerURL, "-d", "isca.example", "-d", "clean.example",
		"--trace", "--trace-output", traceOut)
	r := runWrapped(t, nil, 90*time.Second, args...)
	if r.code != exitOK {
		t.Fatalf("exit code %d; want 0\n%s", r.code, r.stderr)
	}
	got := readSweep(t, filepath.Join(dir, "sweep.jsonl"))
	if got["isca.example"] == nil || got["isca.example"].TestKeys.Verdict != measurement.VerdictSNIInterceptedISCA ||
		got["clean.example"] == nil || got["clean.example"].TestKeys.Verdict != measurement.VerdictClean {
		t.Fatalf("the sweep's verdicts are not sni_intercepted_isca and clean: %v", got)
	}
	checkInterceptionTrace(t, readTraces(t, traceOut), "isca.example", got["isca.example"].TestKeys.SNISweep.Endpoint)
	if !strings.Contains(r.stderr, "traces.jsonl") {
		t.Errorf("the summary does not name the trace file:\n%s", r.stderr)
	}
}

// TestTraceFlagsUsage: --trace-output without --trace and --trace-output
// - are usage errors, before anything is measured.
func TestTraceFlagsUsage(t *testing.T) {
	clearEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "-d", "x.example", "--allow-net", "127.0.0.1/32", "--trace-output", "t.jsonl"}, "--trace-output t.jsonl (run.trace_output) needs --trace"},
		{[]string{"sweep", "-d", "x.example", "--endpoint", "127.0.0.1:1", "--endpoint-pin", "sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "--trace", "--trace-output", "-"}, `flag --trace-output: key "run.trace_output" must be a file, not -`},
	} {
		r := runWrapped(t, nil, 30*time.Second, tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit code %d, stderr %q; want %d and %q", tc.args, r.code, r.stderr, exitUsage, tc.want)
		}
	}
}

// TestRunTraceBlocked: a target the lab resets on its ClientHello is
// tls_blocking, and run --trace traces it to the address of its failed
// handshake: the reset answers at hop 1 where the control SNI got the
// server's chain; the clean site is not traced.
func TestRunTraceBlocked(t *testing.T) {
	clearEnv(t)
	_, base := startLabRun(t, lab.Scenario{Name: "trace-blocked", Sites: []lab.Site{
		{Domain: "reset.example", TLS: lab.Reset}, {Domain: "clean.example", TLS: lab.Pass}}})
	dir := t.TempDir()
	out := filepath.Join(dir, "m.jsonl")
	args := append(slices.Clone(base), "-o", out, "-d", "reset.example", "-d", "clean.example", "--trace", "--trace-control-sni", "clean.example")
	r := runWrapped(t, nil, 90*time.Second, args...)
	if r.code != exitOK {
		t.Fatalf("exit code %d; want 0\n%s", r.code, r.stderr)
	}
	m := readRecords(t, out)["reset.example"]
	if m == nil || m.TestKeys.Verdict != measurement.VerdictTLSBlocking {
		t.Fatalf("reset.example: %v; want tls_blocking", m)
	}
	addr, _ := runTraceTarget(m)
	recs := readTraces(t, filepath.Join(dir, "m-trace.jsonl"))
	if len(recs) != 1 {
		t.Fatalf("%d trace records; want 1 (the blocked target only)", len(recs))
	}
	tk, f := recs[0].TestKeys, recs[0].TestKeys.Finding
	if tk.SNI != "reset.example" || tk.Address != addr.String() {
		t.Errorf("traced %s at %s; want reset.example at %s", tk.SNI, tk.Address, addr)
	}
	if f.Interference != measurement.InterferenceReset || f.InterferenceHop == nil || *f.InterferenceHop != 1 {
		t.Errorf("finding %+v; want a reset at hop 1", f)
	}
}

// TestRunTraceSubmitToCollector: kzprobe run --trace --submit sends the
// traces too, in a report of their own, with the trace file as their
// outbox: the collector's store holds the run's lines and the trace's,
// byte for byte, and the summary says what each sent.
func TestRunTraceSubmitToCollector(t *testing.T) {
	clearEnv(t)
	_, base := startLabRun(t, traceScenario)
	dir := t.TempDir()
	col := startCollectorProc(t, filepath.Join(dir, "store"), freeLoopback(t))
	out := filepath.Join(dir, "m.jsonl")
	args := append(slices.Clone(base), "-o", out, "-d", "isca.example", "-d", "clean.example", "--trace", "--trace-control-sni", "clean.example",
		"--submit", col.url, "--submit-pin", col.pin, "--asn", "AS9198", "--cc", "KZ")
	r := runWrapped(t, nil, 90*time.Second, args...)
	if r.code != exitOK {
		t.Fatalf("exit code %d; want 0\n%s", r.code, r.stderr)
	}
	runLines, traceLines := fileLines(t, out), fileLines(t, filepath.Join(dir, "m-trace.jsonl"))
	if len(runLines) != 2 || len(traceLines) != 1 {
		t.Fatalf("%d run records and %d traces; want 2 and 1\n%s", len(runLines), len(traceLines), r.stderr)
	}
	want := append(slices.Clone(runLines), traceLines...)
	slices.Sort(want)
	if got := storeLines(t, col.store); !slices.Equal(got, want) {
		t.Fatalf("the store holds %d lines; want the run's 2 and the trace's 1, byte for byte\n%s", len(got), r.stderr)
	}
	for _, msg := range []string{"submitted 2 records to https://", "--trace: submitted 1 record to https://"} {
		if !strings.Contains(r.stderr, msg) {
			t.Errorf("stderr does not say %q:\n%s", msg, r.stderr)
		}
	}
	traces := readTraces(t, filepath.Join(dir, "m-trace.jsonl"))
	runs := readRecords(t, out)
	if id := traces[0].ReportID; !strings.Contains(id, "_n1_") || id == runs["isca.example"].ReportID {
		t.Errorf("the trace's report_id %q; want the collector's, not the run's (%q)", id, runs["isca.example"].ReportID)
	}
}
