package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"kzprobe/lab"
	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/failure"
)

// binRun is one run of the real binary.
type binRun struct {
	code           int
	stdout, stderr string
}

// runWrapped runs the real kzprobe with args, through wrap when it is not
// empty (a command line that ends where kzprobe's path and args go: "sh
// -c 'ulimit -n 64 && exec \"$0\" \"$@\"'" or "ip netns exec NAME"), and
// returns its exit code and output. It fails the test after limit.
func runWrapped(t *testing.T, wrap []string, limit time.Duration, args ...string) binRun {
	t.Helper()
	argv := append(append(append([]string{}, wrap...), kzprobeBinary(t)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		r := binRun{stdout: stdout.String(), stderr: stderr.String()}
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			r.code = ee.ExitCode()
		case err != nil:
			t.Fatal(err)
		}
		return r
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s: still running after %s\nstderr:\n%s", strings.Join(argv, " "), limit, stderr.String())
		return binRun{}
	}
}

// ulimitN wraps a command so that it runs with at most n open files (soft
// and hard limit), as after "ulimit -n n" in a shell.
func ulimitN(n int) []string {
	return []string{"sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, n)}
}

// startLabRun starts an in-process lab of scenario sc and returns it with
// the `kzprobe run` arguments that measure it (quiet; add -o).
func startLabRun(t *testing.T, sc lab.Scenario) (*lab.Lab, []string) {
	t.Helper()
	l, dir, files := startLab(t, lab.Config{Scenario: sc})
	args := strings.Fields(labCommandLine(labConfig(l, files, dir)))[2:] // drop "kzprobe run"
	return l, append([]string{"run", "-q"}, args...)
}

// readRecords reads every measurement of a JSONL file, by domain.
func readRecords(t *testing.T, path string) map[string]*measurement.Measurement {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]*measurement.Measurement{}
	if _, err := measurement.ReadJSONL(f, func(m *measurement.Measurement) error {
		out[m.TestKeys.Domain] = m
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// silentUDP is a UDP socket on loopback that reads and never answers: a
// control resolver that times out.
func silentUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

// closedTCP is a loopback port where nothing listens: a connect is refused.
func closedTCP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestRunControlUnansweredIsError runs the real binary against the lab
// with a control resolver that never answers (refused, silent, a TLS peer
// that fails verification, outside --allow-net) and with a target timeout
// of 1ms. Each is the probe's own failure: every target is error by rule
// control_unanswered (never down, never dns_tampering), the run warns once
// that no control resolver answered and exits 1 saying how many targets
// failed for a local reason. With the lab's own control, its down targets
// (NXDOMAIN from the control too) stay down and the run exits 0. Before,
// a refused control gave down (same_failure) or dns_tampering and exit 0.
func TestRunControlUnansweredIsError(t *testing.T) {
	clearEnv(t)
	sc := lab.Scenario{Name: "control", Sites: []lab.Site{
		{Domain: "clean.example", TLS: lab.Pass},
		{Domain: "isca.example", TLS: lab.InterceptISCA},
		{Domain: "gone.example", DNS: lab.DNSNonexistent},
		{Domain: "lie.example", TLS: lab.Pass, DNS: lab.DNSNXDOMAIN},
	}}
	l, base := startLabRun(t, sc)
	refused := closedTCP(t)
	silent := silentUDP(t)
	tests := []struct {
		name string
		args []string
		// fail is the control's failure every query must record.
		fail string
	}{
		{"refused", []string{"--control", "https://" + refused + "/dns-query"}, "connection_refused"},
		{"silent", []string{"--control", "udp://" + silent}, "generic_timeout_error"},
		{"TLS verification fails", []string{"--control", l.DoHURL, "--control-name", "not-the-control.test"}, "ssl_invalid_hostname"},
		{"outside --allow-net", []string{"--control", "udp://192.0.2.53:53"}, "blocked_by_allow_net"},
		{"target timeout 1ms", []string{"--target-timeout", "1ms"}, "generic_timeout_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "m.jsonl")
			args := append(append(slices.Clone(base), "-o", out, "--dns-timeout", "500ms"), tc.args...)
			r := runWrapped(t, nil, 60*time.Second, args...)
			if r.code != exitFailure {
				t.Errorf("exit code %d; want %d\n%s", r.code, exitFailure, r.stderr)
			}
			if n := strings.Count(r.stderr, "no control resolver answered: are you online?"); n != 1 {
				t.Errorf("the warning appears %d times; want once:\n%s", n, r.stderr)
			}
			want := fmt.Sprintf("%d of %d targets failed for a local reason", len(sc.Sites), len(sc.Sites))
			if !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, string(probe.CodeControlUnanswered)) {
				t.Errorf("stderr lacks %q and the rule:\n%s", want, r.stderr)
			}
			recs := readRecords(t, out)
			for _, s := range sc.Sites {
				m := recs[s.Domain]
				if m == nil {
					t.Errorf("%s: no record", s.Domain)
					continue
				}
				d := probe.Decide(m)
				if m.TestKeys.Verdict != measurement.VerdictError || d.Code != probe.CodeControlUnanswered {
					t.Errorf("%s: verdict %s by %s (%s); want error by %s", s.Domain, m.TestKeys.Verdict, d.Code, m.TestKeys.VerdictReason, probe.CodeControlUnanswered)
				}
				if c := m.TestKeys.DNSConsistency; c == nil || c.Status == measurement.Consistent {
					t.Errorf("%s: dns_consistency %+v; want not consistent without a control answer", s.Domain, c)
				}
				for _, q := range m.TestKeys.ControlQueries {
					if q.Failure == nil || *q.Failure != tc.fail || len(q.Tries) == 0 {
						t.Errorf("%s: control query %s failure %v tries %d; want %s and its tries", s.Domain, q.QueryType, q.Failure, len(q.Tries), tc.fail)
					}
				}
			}
		})
	}

	t.Run("the lab's control answers", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "m.jsonl")
		r := runWrapped(t, nil, 60*time.Second, append(slices.Clone(base), "-o", out)...)
		if r.code != exitOK || strings.Contains(r.stderr, "no control resolver answered") || strings.Contains(r.stderr, "local reason") {
			t.Errorf("exit code %d; want 0 without a warning\n%s", r.code, r.stderr)
		}
		recs := readRecords(t, out)
		for _, s := range l.Scenario.Sites {
			if m := recs[s.Domain]; m == nil || string(m.TestKeys.Verdict) != s.Expect {
				t.Errorf("%s: record %v; want verdict %s", s.Domain, m != nil, s.Expect)
			}
		}
		if v := recs["gone.example"].TestKeys.Verdict; v != measurement.VerdictDown {
			t.Errorf("gone.example (NXDOMAIN from the control too): %s; want down", v)
		}
	})
}

// TestParallelFitsOpenFileLimit runs the real binary with --parallel 10000
// under a lowered open-file limit against the lab. The run lowers its
// parallelism to what the limit allows, says so, and measures every
// target as the scenario expects, with no "too many open files" anywhere.
// Before, the run only warned: the targets past the limit failed with
// unknown_failure (too many open files), got wrong verdicts, and the run
// exited 0. Under a limit that even one target at a time exceeds, each
// target that ran out of file descriptors is error by rule probe_fault,
// and the run exits 1 saying how many.
func TestParallelFitsOpenFileLimit(t *testing.T) {
	clearEnv(t)
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to lower the open-file limit with ulimit -n")
	}
	// Many sites behind some latency, so that targets measured at once
	// hold their sockets together.
	sc := lab.Scenario{Name: "many", Latency: 30 * time.Millisecond}
	for i := range 100 {
		behaviour := lab.Pass
		if i%3 == 0 {
			behaviour = lab.InterceptISCA
		}
		sc.Sites = append(sc.Sites, lab.Site{Domain: fmt.Sprintf("site-%03d.example", i), TLS: behaviour})
	}
	l, base := startLabRun(t, sc)
	sites := l.Scenario.Sites
	// tooMany reports whether a step of m ran out of file descriptors,
	// as recorded now (too_many_open_files) or before (unknown_failure
	// with the system's text).
	tooMany := func(m *measurement.Measurement) bool {
		var fs []*string
		for _, q := range append(slices.Clone(m.TestKeys.Queries), m.TestKeys.ControlQueries...) {
			fs = append(fs, q.Failure)
		}
		for _, c := range m.TestKeys.TCPConnect {
			fs = append(fs, c.Status.Failure)
		}
		for _, f := range fs {
			if f != nil && (*f == failure.TooManyOpenFiles || strings.Contains(*f, "too many open files")) {
				return true
			}
		}
		return false
	}

	t.Run("lowered to fit", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "m.jsonl")
		r := runWrapped(t, ulimitN(128), 120*time.Second, append(slices.Clone(base), "-o", out, "--parallel", "10000")...)
		if r.code != exitOK {
			t.Errorf("exit code %d; want 0\n%s", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "lowering --parallel (run.parallel) from 10000 to 8") || !strings.Contains(r.stderr, "128 files") {
			t.Errorf("stderr does not say --parallel was lowered from 10000 to 8 for 128 files:\n%s", r.stderr)
		}
		recs := readRecords(t, out)
		for _, s := range sites {
			m := recs[s.Domain]
			switch {
			case m == nil:
				t.Errorf("%s: no record", s.Domain)
			case tooMany(m):
				t.Errorf("%s: too many open files in the record (%s: %s)", s.Domain, m.TestKeys.Verdict, m.TestKeys.VerdictReason)
			case string(m.TestKeys.Verdict) != s.Expect:
				t.Errorf("%s: verdict %s (%s); want %s", s.Domain, m.TestKeys.Verdict, m.TestKeys.VerdictReason, s.Expect)
			}
		}
	})

	t.Run("out of file descriptors", func(t *testing.T) {
		// 10 files: the binary starts and writes its output, and even one
		// target at a time runs out (the threshold, 9-11 with Go 1.26, is
		// checked below: the test fails rather than passing vacuously).
		out := filepath.Join(t.TempDir(), "m.jsonl")
		r := runWrapped(t, ulimitN(10), 120*time.Second, append(slices.Clone(base), "-o", out)...)
		recs := readRecords(t, out)
		local := 0
		for _, s := range sites {
			m := recs[s.Domain]
			if m == nil {
				t.Errorf("%s: no record", s.Domain)
				continue
			}
			if !tooMany(m) {
				continue
			}
			local++
			if d := probe.Decide(m); m.TestKeys.Verdict != measurement.VerdictError || d.Code != probe.CodeProbeFault {
				t.Errorf("%s ran out of file descriptors: verdict %s by %s (%s); want error by %s", s.Domain, m.TestKeys.Verdict, d.Code, m.TestKeys.VerdictReason, probe.CodeProbeFault)
			}
		}
		if local == 0 {
			t.Fatalf("no target ran out of file descriptors under ulimit -n 10: lower the limit in this test\n%s", r.stderr)
		}
		if r.code != exitFailure {
			t.Errorf("exit code %d; want %d\n%s", r.code, exitFailure, r.stderr)
		}
		if want := fmt.Sprintf("%d of %d targets failed for a local reason", local, len(sites)); !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	})
}

// TestRunFailOn runs the real binary against the lab with --fail-on: exit
// 3 when a target got a verdict named (and which, how many), 0 when none
// did, 2 for a name that is no verdict. A verdict of --fail-on wins over a
// local failure (exit 1): the finding is what a script waits for.
func TestRunFailOn(t *testing.T) {
	clearEnv(t)
	sc := lab.Scenario{Name: "fail-on", Sites: []lab.Site{
		{Domain: "clean.example", TLS: lab.Pass},
		{Domain: "isca-1.example", TLS: lab.InterceptISCA},
		{Domain: "isca-2.example", TLS: lab.InterceptISCAExpired},
		{Domain: "corp.example", TLS: lab.InterceptCorporate},
	}}
	_, base := startLabRun(t, sc)
	refused := closedTCP(t)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		code int
		want []string
	}{
		{"interception found", []string{"--fail-on", "mitm_isca,mitm_other"}, nil, exitFailOn,
			[]string{"3 of 4 targets got a verdict of --fail-on (mitm_isca 2, mitm_other 1)"}},
		{"from the environment", nil, map[string]string{"KZPROBE_RUN_FAIL_ON": "mitm_other"}, exitFailOn,
			[]string{"1 of 4 targets got a verdict of --fail-on (mitm_other 1)"}},
		{"none found", []string{"--fail-on", "tcp_blocking,dns_tampering"}, nil, exitOK, nil},
		{"not a verdict", []string{"--fail-on", "mitm"}, nil, exitUsage, []string{"--fail-on", `"mitm" is not a verdict`, "mitm_isca"}},
		{"with local failures", []string{"--fail-on", "error", "--control", "https://" + refused + "/dns-query"}, nil, exitFailOn,
			[]string{"4 of 4 targets failed for a local reason", "4 of 4 targets got a verdict of --fail-on (error 4)"}},
		{"local failures only", []string{"--fail-on", "mitm_isca", "--control", "https://" + refused + "/dns-query"}, nil, exitFailure,
			[]string{"4 of 4 targets failed for a local reason"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			out := filepath.Join(t.TempDir(), "m.jsonl")
			r := runWrapped(t, nil, 60*time.Second, append(append(slices.Clone(base), "-o", out), tc.args...)...)
			if r.code != tc.code {
				t.Errorf("exit code %d; want %d\n%s", r.code, tc.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}
