package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/term"

	"kzprobe/lab"
)

// ErrBadConfig is wrapped by the errors of a Config that cannot run.
var ErrBadConfig = errors.New("bench: bad configuration")

// Config is one bench: the lab, the targets, the run and the profiles.
type Config struct {
	// Scenario is ScenarioMix, ScenarioPass or ScenarioBlackhole.
	Scenario string
	// N is the number of targets; Parallel how many are measured at once.
	// Both must be positive.
	N, Parallel int
	// RTT is the latency the lab adds per round trip; not negative.
	RTT time.Duration
	// Timeout bounds one TCP connect and one TLS handshake; positive.
	Timeout time.Duration
	// BaselineOps is how many baseline operations are measured before the
	// run and again after it; zero means no baseline.
	BaselineOps int
	// ControlServer keeps the lab's control server in the run; without it
	// the probe works from DNS and its own handshakes.
	ControlServer bool
	// Sweep benches kzprobe sweep instead of kzprobe run: one handshake
	// per name to the lab's neutral SNI endpoint, behind its middlebox,
	// and a baseline of one handshake to that endpoint. Hello is the
	// sweep's hello: "" for the Chrome fingerprint, or probe.HelloTLS12.
	Sweep bool
	Hello string
	// Output keeps the measurements in this JSONL file. Empty means a
	// temporary file, removed.
	Output string
	// CPUProfile and MemProfile are files for the run's CPU profile and a
	// heap profile taken when its heap in use was largest; LabCPUProfile
	// is the lab process's CPU profile. Empty means none.
	CPUProfile, MemProfile, LabCPUProfile string
	// Engine runs the probe. Required.
	Engine Engine
	// LabCommand returns the command that runs [ServeLab] in a child
	// process (this binary, in its lab-only mode). Nil means the lab runs
	// in this process: the client's CPU and RSS then include the lab's.
	LabCommand func() *exec.Cmd
}

// Engine measures the targets of r.Targets against r.Lab, wired as the
// probe is for users, and writes the measurements to r.Output. It returns
// an error only when the run could not be carried out.
type Engine func(ctx context.Context, r EngineRun) error

// EngineRun is one run asked of an Engine.
type EngineRun struct {
	// Lab holds the lab's addresses (Port, LocalDNS, DoHURL, the control
	// server's), and Files its PEM files and resolv.conf.
	Lab   *lab.Lab
	Files lab.Files
	// Dir is a folder for the run's own files.
	Dir string
	// Targets is a file of target names, one a line.
	Targets string
	// Parallel is how many targets are measured at once.
	Parallel int
	// Timeout bounds one TCP connect and one TLS handshake.
	Timeout time.Duration
	// ControlServer says whether the lab's control server is asked.
	ControlServer bool
	// Sweep asks for kzprobe sweep against Lab.SNIEndpointAddr instead of
	// kzprobe run, with the hello Hello ("" for the default).
	Sweep bool
	Hello string
	// Output is the JSONL file to write.
	Output string
	// Quiet turns the progress display off; Stderr takes the run's
	// messages.
	Quiet  bool
	Stderr io.Writer
}

// Result is what a bench measured; its JSON form is stable for
// comparisons over time. Durations are in seconds.
type Result struct {
	// SoftwareVersion is kzprobe's version, as in the records the run
	// wrote; the caller sets it (Run leaves it empty).
	SoftwareVersion string `json:"software_version"`
	Scenario        string `json:"scenario"`
	// ControlServer says whether the lab's control server was asked.
	ControlServer bool `json:"control_server"`
	// Sweep says the run was kzprobe sweep, with the hello Hello.
	Sweep bool   `json:"sweep"`
	Hello string `json:"hello,omitempty"`
	// N, Parallel: targets and targets measured at once.
	N        int `json:"n"`
	Parallel int `json:"parallel"`
	// RTT is the lab's latency per round trip, s.
	RTT float64 `json:"rtt_s"`
	// Timeout is the connect and handshake timeout, s.
	Timeout float64 `json:"timeout_s"`
	// RoundTrips is the lab round trips on a target's critical path, the
	// mean over the N targets (roundTrips), and Wait the extra wait per
	// target (the timeout for a blackhole), s.
	RoundTrips float64 `json:"round_trips"`
	Wait       float64 `json:"wait_s"`
	// Wall is the run's wall time, s; Bound the latency bound
	// ceil(N/P) x (RoundTrips x RTT + Wait), s; WallOverBound their ratio
	// (null when the bound is 0).
	Wall          float64  `json:"wall_s"`
	Bound         float64  `json:"bound_s"`
	WallOverBound *float64 `json:"wall_over_bound"`
	// TargetsPerSecond is N / Wall.
	TargetsPerSecond float64 `json:"targets_per_s"`
	// CPUPerTarget is the client's CPU (user + system) over the run / N,
	// in ms.
	CPUPerTarget float64 `json:"cpu_ms_per_target"`
	// BaselineCPU is the client's CPU for one baseline operation (the
	// engine's connect, Chrome handshake and chain judgement), ms: the mean
	// of BaselineBefore and BaselineAfter, each over BaselineOps
	// operations just before and just after the run, so that a change in
	// the machine's speed during the run (a shared host) weighs on both
	// sides of CPURatio, which is CPUPerTarget / BaselineCPU.
	BaselineCPU    float64 `json:"baseline_cpu_ms_per_op"`
	BaselineBefore float64 `json:"baseline_before_ms_per_op"`
	BaselineAfter  float64 `json:"baseline_after_ms_per_op"`
	BaselineOps    int     `json:"baseline_ops"`
	CPURatio       float64 `json:"cpu_ratio"`
	// PeakRSS is the client process's peak resident set, MiB (getrusage
	// ru_maxrss, over the whole process life, baseline included).
	PeakRSS float64 `json:"peak_rss_mib"`
	// LabCPU is the lab process's CPU during the run (baseline excluded),
	// s (not counted above; 0 with LabInProcess).
	LabCPU float64 `json:"lab_cpu_s"`
	// CPUFloor is the wall time the run's CPU work needs at the least on
	// this machine: (client CPU + LabCPU) / Cores, s. Where the lab shares
	// the probe's cores, it can exceed the latency bound: the run is then
	// bound by CPU, not by round trips. WallOverLimit is
	// Wall / max(Bound, CPUFloor): how close the run came to the tighter
	// of the two limits (null when both are 0).
	Cores         int      `json:"cores"`
	CPUFloor      float64  `json:"cpu_floor_s"`
	WallOverLimit *float64 `json:"wall_over_limit"`
	// LabInProcess is true when the lab ran in this process: CPU and RSS
	// then include the lab's.
	LabInProcess bool `json:"lab_in_process"`
	// Written counts the measurements in the output, Verdicts them by verdict.
	Written  int            `json:"written"`
	Verdicts map[string]int `json:"verdicts"`
}

// Run carries out the bench: it starts the lab, writes the targets,
// measures the baseline, has cfg.Engine measure the targets, measures the
// baseline again and counts the verdicts written. Progress and the run's
// messages go to stderr.
func Run(ctx context.Context, cfg Config, stderr io.Writer) (Result, error) {
	behaviours, err := cfg.check()
	if err != nil {
		return Result{}, err
	}
	dir, err := os.MkdirTemp("", "kzprobe-bench-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	l, err := cfg.startLab(ctx, filepath.Join(dir, "lab"), stderr)
	if err != nil {
		return Result{}, err
	}
	defer l.close()

	// The targets go through a file, as a user's list does: the run
	// streams it (a million lines are never in memory at once).
	run := cfg.engineRun(l.info, dir, stderr)
	if err := writeTargets(run.Targets, cfg.N, behaviours); err != nil {
		return Result{}, err
	}
	res := cfg.newResult(behaviours)
	res.LabInProcess = cfg.LabCommand == nil

	// The baseline runs before and after the run, never during it, so
	// that its CPU is not mixed with the run's.
	newBase := newBaseline
	if cfg.Sweep {
		newBase = func(info labInfo) (*baseline, error) { return newSweepBaseline(info, cfg.Hello) }
	}
	base, err := newBase(l.info)
	if err != nil {
		return Result{}, fmt.Errorf("baseline: %w", err)
	}
	if res.BaselineBefore, err = cfg.baseline(ctx, base); err != nil {
		return Result{}, err
	}
	m, err := cfg.measure(ctx, run, l, stderr)
	if err != nil {
		return Result{}, err
	}
	if res.BaselineAfter, err = cfg.baseline(ctx, base); err != nil {
		return Result{}, err
	}
	res.add(m)
	if res.Written, res.Verdicts, err = countVerdicts(run.Output); err != nil {
		return Result{}, err
	}
	if res.Written != cfg.N {
		fmt.Fprintf(stderr, "kzprobe: %d of %d targets written\n%s", res.Written, cfg.N, m.messages)
	}
	return res, nil
}

// check validates cfg and returns its scenario's behaviours.
func (cfg Config) check() ([]lab.Site, error) {
	if cfg.N <= 0 || cfg.Parallel <= 0 || cfg.RTT < 0 || cfg.Timeout <= 0 || cfg.BaselineOps < 0 {
		return nil, fmt.Errorf("%w: N, Parallel and Timeout must be positive, RTT and BaselineOps not negative", ErrBadConfig)
	}
	if cfg.Engine == nil {
		return nil, fmt.Errorf("%w: no Engine", ErrBadConfig)
	}
	behaviours, _, err := sites(cfg.Scenario)
	return behaviours, err
}

// startLab starts the lab, in a child process unless LabCommand is nil,
// with its files in dir.
func (cfg Config) startLab(ctx context.Context, dir string, stderr io.Writer) (*runningLab, error) {
	a := labArgs{Scenario: cfg.Scenario, RTT: cfg.RTT, Dir: dir, CPUProfile: cfg.LabCPUProfile}
	if cfg.LabCommand == nil {
		return startLabHere(a)
	}
	return startLabProcess(ctx, cfg.LabCommand(), a, stderr)
}

// engineRun is the run asked of the Engine: the lab of info, the targets
// file and the output in dir (or cfg.Output), and the progress display
// only on a terminal, the run's messages being kept for the report.
func (cfg Config) engineRun(info labInfo, dir string, stderr io.Writer) EngineRun {
	r := EngineRun{
		Lab: info.addresses(), Files: info.Files, Dir: dir,
		Targets:  filepath.Join(dir, "targets.txt"),
		Parallel: cfg.Parallel, Timeout: cfg.Timeout, ControlServer: cfg.ControlServer,
		Sweep: cfg.Sweep, Hello: cfg.Hello,
		Output: filepath.Join(dir, "measurements.jsonl"),
		Quiet:  true, Stderr: &limitedBuffer{},
	}
	if cfg.Output != "" {
		r.Output = cfg.Output
	}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		r.Stderr, r.Quiet = stderr, false
	}
	return r
}

// newResult is the result before the run: the bench's parameters and the
// latency bound.
func (cfg Config) newResult(behaviours []lab.Site) Result {
	res := Result{
		Scenario: cfg.Scenario, N: cfg.N, Parallel: cfg.Parallel,
		RTT: cfg.RTT.Seconds(), Timeout: cfg.Timeout.Seconds(),
		BaselineOps: cfg.BaselineOps, ControlServer: cfg.ControlServer,
		Sweep: cfg.Sweep, Hello: cfg.Hello,
	}
	switch {
	case cfg.Sweep:
		total := 0
		for i := range cfg.N {
			total += sweepRoundTrips(behaviours[i%len(behaviours)])
		}
		res.RoundTrips = float64(total)/float64(cfg.N) + 1/float64(sweepControlEvery)
		if cfg.Scenario == ScenarioBlackhole {
			res.Wait = 2 * cfg.Timeout.Seconds() // the name's try and its second try
		}
	case cfg.Scenario == ScenarioBlackhole:
		// DNS, then the handshake's timeout instead of a server flight.
		res.RoundTrips, res.Wait = 1, cfg.Timeout.Seconds()
	default:
		total := 0
		for i := range cfg.N {
			total += roundTrips(behaviours[i%len(behaviours)])
		}
		res.RoundTrips = float64(total) / float64(cfg.N)
	}
	rounds := math.Ceil(float64(cfg.N) / float64(cfg.Parallel))
	res.Bound = rounds * (res.RoundTrips*cfg.RTT.Seconds() + res.Wait)
	return res
}

// baseline is the baseline's CPU per operation, ms, over cfg.BaselineOps
// operations (0 for none).
func (cfg Config) baseline(ctx context.Context, b *baseline) (float64, error) {
	if cfg.BaselineOps == 0 {
		return 0, nil
	}
	s, err := b.cpuPerOp(ctx, cfg.BaselineOps, min(cfg.Parallel, 16))
	if err != nil {
		return 0, fmt.Errorf("baseline: %w", err)
	}
	return s * 1000, nil
}

// runCost is what the run cost, measured around the Engine.
type runCost struct {
	wall     time.Duration
	cpu      float64 // client CPU, s
	labCPU   float64 // the lab process's CPU, s
	peakRSS  float64 // MiB
	messages string  // the run's messages, when they were kept
}

// measure has the Engine carry out run, with the profiles asked for, and
// measures its wall time, its CPU and the lab's. The heap profiler reports
// on stderr.
func (cfg Config) measure(ctx context.Context, run EngineRun, l *runningLab, stderr io.Writer) (runCost, error) {
	stopProfile := func() {}
	if cfg.CPUProfile != "" {
		stop, err := startCPUProfile(cfg.CPUProfile)
		if err != nil {
			return runCost{}, err
		}
		stopProfile = stop
	}
	if cfg.MemProfile != "" {
		stop := watchHeap(cfg.MemProfile, stderr)
		defer stop()
	}
	labCPU0 := l.cpu()
	cpu0, start := cpuSeconds(), time.Now()
	err := cfg.Engine(ctx, run)
	c := runCost{wall: time.Since(start), cpu: cpuSeconds() - cpu0}
	c.labCPU = l.cpu() - labCPU0
	stopProfile()
	c.peakRSS = peakRSSMiB()
	if kept, ok := run.Stderr.(*limitedBuffer); ok {
		c.messages = kept.String()
	}
	if err != nil {
		return runCost{}, fmt.Errorf("run: %w\n%s", err, c.messages)
	}
	return c, nil
}

// add fills in the figures of the run and those derived from them.
func (res *Result) add(c runCost) {
	res.PeakRSS = c.peakRSS
	res.LabCPU = c.labCPU
	res.BaselineCPU = (res.BaselineBefore + res.BaselineAfter) / 2
	res.Wall = c.wall.Seconds()
	res.Cores = runtime.NumCPU()
	res.CPUFloor = (c.cpu + c.labCPU) / float64(res.Cores)
	if lim := max(res.Bound, res.CPUFloor); lim > 0 {
		r := res.Wall / lim
		res.WallOverLimit = &r
	}
	if res.Bound > 0 {
		r := res.Wall / res.Bound
		res.WallOverBound = &r
	}
	res.TargetsPerSecond = float64(res.N) / res.Wall
	res.CPUPerTarget = c.cpu / float64(res.N) * 1000
	if res.BaselineCPU > 0 {
		res.CPURatio = res.CPUPerTarget / res.BaselineCPU
	}
}
