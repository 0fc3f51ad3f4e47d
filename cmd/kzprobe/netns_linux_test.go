package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/targets"
)

// requireEnv is the variable that turns "cannot run here" into a failure
// (as in e2e/): CI sets it and runs as root, so a test that needs root
// cannot pass there by skipping.
const requireEnv = "KZPROBE_E2E_REQUIRE"

// emptyNetns creates a network namespace with nothing in it (only a
// loopback interface, down: no address, no route) for the test, deletes
// it at cleanup, and returns its name. It skips the test with the reason
// when it cannot (not root, no ip), or fails it under KZPROBE_E2E_REQUIRE=1.
func emptyNetns(t *testing.T, require bool) string {
	t.Helper()
	cannot := func(format string, a ...any) {
		msg := "SKIP (not run): " + fmt.Sprintf(format, a...)
		if require {
			t.Fatalf("%s (%s=1: failing instead of skipping)", msg, requireEnv)
		}
		t.Skip(msg)
	}
	if os.Geteuid() != 0 {
		cannot("creating a network namespace needs root (ip netns add); CI runs this as root")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		cannot("no ip command (iproute2) to create a network namespace")
	}
	name := fmt.Sprintf("kzprobe-test-%d", os.Getpid())
	if out, err := exec.Command(ip, "netns", "add", name).CombinedOutput(); err != nil {
		cannot("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(ip, "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	return name
}

// TestRunInEmptyNetns runs the real binary in an empty network namespace,
// as on a machine with no network at all: every target of the default
// list is error by rule control_unanswered, the run warns once that no
// control resolver answered and exits 1 saying all 14 failed for a local
// reason. Before, it ended at once with all 14 down (consistent,
// same_failure: both resolvers network_unreachable) and exit 0. The
// control and the resolver are TEST-NET addresses (nothing could answer
// there anyway), allowed by the guard so that the dial reaches the kernel.
func TestRunInEmptyNetns(t *testing.T) {
	require := os.Getenv(requireEnv) == "1"
	clearEnv(t)
	ns := emptyNetns(t, require)
	out := filepath.Join(t.TempDir(), "m.jsonl")
	r := runWrapped(t, []string{"ip", "netns", "exec", ns}, 60*time.Second,
		"run", "-q", "-o", out, "--resolver", "192.0.2.53:53", "--control", "https://192.0.2.1/dns-query",
		"--allow-net", "192.0.2.0/24")
	if r.code != exitFailure {
		t.Errorf("exit code %d; want %d\n%s", r.code, exitFailure, r.stderr)
	}
	if n := strings.Count(r.stderr, "no control resolver answered: are you online?"); n != 1 {
		t.Errorf("the warning appears %d times; want once:\n%s", n, r.stderr)
	}
	domains := targets.Default()
	if want := fmt.Sprintf("%d of %d targets failed for a local reason", len(domains), len(domains)); !strings.Contains(r.stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
	}
	recs := readRecords(t, out)
	if len(recs) != len(domains) {
		t.Errorf("%d records; want %d", len(recs), len(domains))
	}
	for _, d := range domains {
		m := recs[d.Domain]
		if m == nil {
			t.Errorf("%s: no record", d.Domain)
			continue
		}
		if dec := probe.Decide(m); m.TestKeys.Verdict != measurement.VerdictError || dec.Code != probe.CodeControlUnanswered {
			t.Errorf("%s: verdict %s by %s (%s); want error by %s", d.Domain, m.TestKeys.Verdict, dec.Code, m.TestKeys.VerdictReason, probe.CodeControlUnanswered)
		}
		if c := m.TestKeys.DNSConsistency; c == nil || c.Status != measurement.Unknown {
			t.Errorf("%s: dns_consistency %+v; want unknown", d.Domain, c)
		}
		for _, q := range m.TestKeys.ControlQueries {
			if q.Failure == nil || *q.Failure != "network_unreachable" {
				t.Errorf("%s: control %s query failure %v; want network_unreachable", d.Domain, q.QueryType, q.Failure)
			}
		}
	}
}
