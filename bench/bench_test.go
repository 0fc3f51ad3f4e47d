package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kzprobe/probe"
)

// startTestLab starts a scenario's lab in this process for the test.
func startTestLab(t *testing.T, scenario string) *runningLab {
	t.Helper()
	l, err := startLabHere(labArgs{Scenario: scenario, Dir: filepath.Join(t.TempDir(), "lab")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close)
	return l
}

// TestBaseline runs the baseline, the engine's connect, handshake and
// judgement, against the lab's baseline origin: trusted against the lab's
// public root, refused against another root, which shows the chain is
// judged.
func TestBaseline(t *testing.T) {
	t.Parallel()
	l := startTestLab(t, ScenarioPass)
	b, err := newBaseline(l.info)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := b.one(ctx, 1); err != nil {
		t.Fatalf("baseline against the lab: %v", err)
	}
	cpu, err := b.cpuPerOp(ctx, 5, 2)
	if err != nil || cpu <= 0 {
		t.Errorf("CPU per baseline operation = %v, %v; want > 0, nil", cpu, err)
	}

	other := l.info
	other.Files.PublicRoot = l.info.Files.ISCARoot
	wrong, err := newBaseline(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := wrong.one(ctx, 1); err == nil || !strings.Contains(err.Error(), "not trusted") {
		t.Errorf("baseline judged against the wrong root: %v; want a chain that is not trusted", err)
	}
}

func TestNewResultBound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		cfg              Config
		roundTrips, wait float64
		bound            float64
	}{
		// 20 targets over the 7 behaviours of mix: 2 round trips each, 3
		// for the 3 resets and the 3 EOFs (the small-hello retry): 46/20.
		{"mix", Config{Scenario: ScenarioMix, N: 20, Parallel: 8, RTT: 5 * time.Millisecond, Timeout: time.Second}, 2.3, 0, 3 * 2.3 * 0.005},
		{"pass", Config{Scenario: ScenarioPass, N: 10, Parallel: 10, RTT: 50 * time.Millisecond, Timeout: time.Second}, 2, 0, 0.1},
		{"blackhole", Config{Scenario: ScenarioBlackhole, N: 5, Parallel: 2, RTT: 10 * time.Millisecond, Timeout: 200 * time.Millisecond}, 1, 0.2, 3 * (0.01 + 0.2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			behaviours, _, err := sites(tc.cfg.Scenario)
			if err != nil {
				t.Fatal(err)
			}
			r := tc.cfg.newResult(behaviours)
			if math.Abs(r.RoundTrips-tc.roundTrips) > 1e-9 || math.Abs(r.Wait-tc.wait) > 1e-9 || math.Abs(r.Bound-tc.bound) > 1e-9 {
				t.Errorf("round trips, wait, bound = %v, %v, %v; want %v, %v, %v", r.RoundTrips, r.Wait, r.Bound, tc.roundTrips, tc.wait, tc.bound)
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	engine := func(context.Context, EngineRun) error { return nil }
	good := Config{Scenario: ScenarioMix, N: 1, Parallel: 1, Timeout: time.Second, Engine: engine}
	tests := []struct {
		name   string
		change func(*Config)
		ok     bool
	}{
		{"good", func(*Config) {}, true},
		{"zero N", func(c *Config) { c.N = 0 }, false},
		{"zero parallel", func(c *Config) { c.Parallel = 0 }, false},
		{"negative RTT", func(c *Config) { c.RTT = -time.Millisecond }, false},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, false},
		{"negative baseline", func(c *Config) { c.BaselineOps = -1 }, false},
		{"no engine", func(c *Config) { c.Engine = nil }, false},
		{"unknown scenario", func(c *Config) { c.Scenario = "rush" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.change(&c)
			_, err := c.check()
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, ErrBadConfig) {
				t.Errorf("check() = %v; want ok %v or ErrBadConfig", err, tc.ok)
			}
		})
	}
}

// TestRunEngineFails checks that an Engine's error ends the bench with it
// and the run's messages, and that the Engine was given the lab, the
// targets and the run's parameters.
func TestRunEngineFails(t *testing.T) {
	t.Parallel()
	var got EngineRun
	var targets []string
	engine := func(_ context.Context, r EngineRun) error {
		got = r
		data, err := readLines(r.Targets)
		targets = data
		io.WriteString(r.Stderr, "the run's own message\n")
		if err != nil {
			return err
		}
		return errors.New("engine down")
	}
	cfg := Config{Scenario: ScenarioMix, N: 9, Parallel: 3, Timeout: time.Second, Engine: engine}
	_, err := Run(t.Context(), cfg, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "engine down") || !strings.Contains(err.Error(), "the run's own message") {
		t.Fatalf("Run = %v; want the engine's error and its messages", err)
	}
	if got.Lab == nil || got.Lab.Port == 0 || got.Lab.LocalDNS == "" || got.Files.PublicRoot == "" || got.Parallel != 3 || got.Timeout != time.Second || got.ControlServer {
		t.Errorf("engine run = %+v; want the lab's addresses and files, parallel 3, timeout 1s, no control server", got)
	}
	if len(targets) != 9 || targets[0] != "t0.pass.bench.test" || targets[7] != "t7.pass.bench.test" || targets[4] != "t4.reset.bench.test" {
		t.Errorf("targets = %q; want 9 names cycling through mix's behaviours", targets)
	}
}

func readLines(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	return strings.Fields(string(data)), err
}

// TestServeLab runs the lab process's side over pipes: what to start on
// the first line, the addresses back, CPU on request, the end with stdin.
func TestServeLab(t *testing.T) {
	t.Parallel()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- ServeLab(t.Context(), inR, outW)
		outW.Close()
	}()
	json.NewEncoder(inW).Encode(labArgs{Scenario: ScenarioPass, Dir: filepath.Join(t.TempDir(), "lab")})
	out := bufio.NewReader(outR)
	var info labInfo
	line, err := out.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &info)
	}
	if err != nil || info.Port == 0 || info.LocalDNS == "" || len(info.Sites) != 2 || info.Files.PublicRoot == "" {
		t.Fatalf("lab info = %+v, %v; want addresses, the pass and baseline sites and the files", info, err)
	}
	io.WriteString(inW, "cpu\n")
	var c labCPU
	if line, err = out.ReadBytes('\n'); err != nil || json.Unmarshal(line, &c) != nil {
		t.Fatalf("no CPU line: %q, %v", line, err)
	}
	inW.Close()
	rest, _ := io.ReadAll(out)
	if err := <-done; err != nil || !bytes.Contains(rest, []byte("cpu_s")) {
		t.Errorf("ServeLab = %v, last line %q; want nil and its CPU", err, rest)
	}
}

func TestServeLabBadArgs(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "not json\n", `{"scenario":"pass"}` + "\n", `{"scenario":"rush","dir":"x"}` + "\n"} {
		err := ServeLab(t.Context(), strings.NewReader(in), io.Discard)
		if !errors.Is(err, ErrBadConfig) {
			t.Errorf("ServeLab(%q) = %v; want ErrBadConfig", in, err)
		}
	}
}

// BenchmarkBaseline is one baseline operation, the unit of the bench's
// CPU ratio: the engine's connect, Chrome handshake and chain judgement
// against the lab in this process (so the lab's side is counted too).
func BenchmarkBaseline(b *testing.B) {
	l, err := startLabHere(labArgs{Scenario: ScenarioPass, Dir: filepath.Join(b.TempDir(), "lab")})
	if err != nil {
		b.Fatal(err)
	}
	defer l.close()
	base, err := newBaseline(l.info)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0 := cpuSeconds()
	for i := 0; b.Loop(); i++ {
		if err := base.one(b.Context(), i); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cpuSeconds()-cpu0)*1000/float64(b.N), "cpu-ms/op")
}

// TestSweepBaseline runs the sweep's baseline, a handshake with the lab's
// neutral SNI endpoint through its middlebox, with each hello; a pin that
// is not the endpoint's fails it, which shows the key is checked.
func TestSweepBaseline(t *testing.T) {
	t.Parallel()
	l := startTestLab(t, ScenarioPass)
	for _, hello := range []string{"", probe.HelloTLS12} {
		b, err := newSweepBaseline(l.info, hello)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.one(t.Context(), 1); err != nil {
			t.Errorf("hello %q: sweep baseline against the lab: %v", hello, err)
		}
	}
	other := l.info
	other.SNIEndpointPin = "sha256:" + strings.Repeat("A", 43) + "="
	b, err := newSweepBaseline(other, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.one(t.Context(), 1); err == nil || !strings.Contains(err.Error(), "not its pin") {
		t.Errorf("sweep baseline with another pin: %v; want the key refused", err)
	}
}
