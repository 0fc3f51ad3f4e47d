package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"math"
	"os/exec"
	"testing"
	"time"

	"kzprobe/bench"
)

// TestBenchSmoke runs `kzprobe bench` on 20 targets of the mix scenario
// with the lab in process, and checks every target was measured with the
// verdict its behaviour implies.
func TestBenchSmoke(t *testing.T) {
	var out, errOut bytes.Buffer
	a := benchArgs{n: 20, parallel: 8, rtt: 5 * time.Millisecond, timeout: 2 * time.Second,
		scenario: bench.ScenarioMix, json: true, baselineOps: 5, controlServer: true, labInProcess: true}
	if err := runBench(context.Background(), a, &out, &errOut); err != nil {
		t.Fatalf("runBench: %v\n%s", err, errOut.String())
	}
	var r bench.Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if r.Written != 20 {
		t.Errorf("written %d; want 20", r.Written)
	}
	// 20 targets over the 7 behaviours of mix: 3 of each for the first 6.
	want := map[string]int{"ok": 3, "mitm_isca": 6, "mitm_other": 3, "tls_blocking": 6, "dns_tampering": 2}
	for v, n := range want {
		if r.Verdicts[v] != n {
			t.Errorf("verdicts %v; want %v", r.Verdicts, want)
			break
		}
	}
	// Round trips: 2 a target, 3 for the 3 resets and 3 EOFs (the small-
	// hello retry): 46/20.
	if math.Abs(r.RoundTrips-2.3) > 1e-9 || math.Abs(r.Bound-3*2.3*0.005) > 1e-9 || r.Wall <= 0 || r.CPUPerTarget <= 0 || r.BaselineCPU <= 0 || r.PeakRSS <= 0 || r.WallOverBound == nil {
		t.Errorf("incomplete result: %+v", r)
	}
	// The lab ran in this process: the floor is the client's CPU alone.
	if r.Cores <= 0 || r.CPUFloor <= 0 || r.WallOverLimit == nil ||
		*r.WallOverLimit != r.Wall/max(r.Bound, r.CPUFloor) {
		t.Errorf("CPU floor or limit missing: %+v", r)
	}
}

// TestBenchLabProcess runs the real binary's `kzprobe bench`, whose lab
// runs in a child process (`kzprobe bench --lab-only`), and checks the run
// and the lab's own CPU were measured.
func TestBenchLabProcess(t *testing.T) {
	cmd := exec.Command(kzprobeBinary(t), "bench", "--n", "14", "--parallel", "7", "--rtt", "0", "--baseline-ops", "3", "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kzprobe bench: %v\n%s", err, stderr.String())
	}
	var r bench.Result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	// 14 targets over the 7 behaviours of mix: 2 of each.
	want := map[string]int{"ok": 2, "mitm_isca": 4, "mitm_other": 2, "tls_blocking": 4, "dns_tampering": 2}
	if r.Written != 14 || !maps.Equal(r.Verdicts, want) {
		t.Errorf("written %d, verdicts %v; want 14, %v", r.Written, r.Verdicts, want)
	}
	if r.LabInProcess || r.LabCPU <= 0 || r.BaselineCPU <= 0 {
		t.Errorf("lab in process %v, lab CPU %v s, baseline %v ms; want a child process with its CPU, and a baseline", r.LabInProcess, r.LabCPU, r.BaselineCPU)
	}
}

// TestBenchSweepSmoke runs `kzprobe bench --sweep` on 20 names of the mix
// scenario with the lab in process, with each hello: every name swept,
// with the verdict its behaviour gives, and the sweep's round trips.
func TestBenchSweepSmoke(t *testing.T) {
	for _, hello := range []string{"fingerprint", "tls12"} {
		t.Run(hello, func(t *testing.T) {
			var out, errOut bytes.Buffer
			a := benchArgs{n: 20, parallel: 8, rtt: 5 * time.Millisecond, timeout: 2 * time.Second,
				scenario: bench.ScenarioMix, json: true, baselineOps: 5, labInProcess: true, sweep: true, hello: hello}
			if err := runBench(context.Background(), a, &out, &errOut); err != nil {
				t.Fatalf("runBench: %v\n%s", err, errOut.String())
			}
			var r bench.Result
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out.String())
			}
			// 20 names over mix's 7 behaviours: pass and the block page
			// (DNS only) are clean, 3+2; 3 each of ISCA, expired ISCA,
			// corporate, reset and EOF.
			want := map[string]int{"clean": 5, "sni_intercepted_isca": 6, "sni_intercepted_other": 3, "sni_blocked": 6}
			if !maps.Equal(r.Verdicts, want) || r.Written != 20 || !r.Sweep {
				t.Errorf("sweep %v, written %d, verdicts %v; want a sweep of 20 with %v", r.Sweep, r.Written, r.Verdicts, want)
			}
			// 1 round trip for the 5 clean names, 2 for the 9 intercepted
			// (the name, its control), 3 for the 6 reset or closed (and
			// the second try), and a periodic control every 100 names:
			// 41/20 + 0.01.
			if math.Abs(r.RoundTrips-(41.0/20+0.01)) > 1e-9 || r.BaselineCPU <= 0 || r.CPUPerTarget <= 0 {
				t.Errorf("round trips %v, baseline %v, CPU %v; want 2.06 and both > 0", r.RoundTrips, r.BaselineCPU, r.CPUPerTarget)
			}
		})
	}
}

// TestBenchCollector runs the real binary's `kzprobe bench --collector`:
// a real collector in a child process takes every submission, as fast as
// it answers and paced by --rate, and its store holds each record
// acknowledged; the figures are there and in order. Flags of another
// bench are usage errors.
func TestBenchCollector(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		n        int
		minWall  float64
		wantCode int
	}{
		{"unpaced", []string{"--n", "300", "--parallel", "6"}, 300, 0, 0},
		{"paced", []string{"--n", "100", "--parallel", "4", "--rate", "100"}, 100, 0.95, 0},
		{"--rate without --collector", []string{"--rate", "10"}, 0, 0, exitUsage},
		{"--collector --sweep", []string{"--sweep"}, 0, 0, exitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"bench", "--json"}, tc.args...)
			if tc.name != "--rate without --collector" {
				args = append(args, "--collector")
			}
			r := runWrapped(t, nil, 120*time.Second, args...)
			if r.code != tc.wantCode {
				t.Fatalf("exit code %d; want %d\n%s", r.code, tc.wantCode, r.stderr)
			}
			if tc.wantCode != 0 {
				return
			}
			var res bench.CollectorResult
			if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, r.stdout)
			}
			if res.N != tc.n || res.Acked != tc.n || res.Stored != tc.n || res.Failed != 0 {
				t.Errorf("n %d, acked %d, stored %d, failed %d; want %d each, none failed", res.N, res.Acked, res.Stored, res.Failed, tc.n)
			}
			if !(0 < res.P50 && res.P50 <= res.P90 && res.P90 <= res.P99 && res.P99 <= res.Max) || res.AcksPerSec <= 0 || res.RecordBytes < 1000 {
				t.Errorf("latency or throughput out of order: %+v", res)
			}
			if res.Wall < tc.minWall {
				t.Errorf("wall %.3f s; want at least %.2f s at --rate", res.Wall, tc.minWall)
			}
			if res.CollectorCPU <= 0 || res.CollectorRSS <= 0 || res.FsyncP50 <= 0 || res.FsyncP50 > res.FsyncP99 {
				t.Errorf("collector CPU %v s, RSS %v MiB, fsync %v/%v ms; want each measured", res.CollectorCPU, res.CollectorRSS, res.FsyncP50, res.FsyncP99)
			}
		})
	}
}
