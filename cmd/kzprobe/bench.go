package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"kzprobe/bench"
	"kzprobe/probe"
)

// benchArgs are the flags of `kzprobe bench`.
type benchArgs struct {
	n           int
	parallel    int
	rtt         time.Duration
	timeout     time.Duration
	scenario    string
	json        bool
	output      string
	baselineOps int
	// controlServer keeps the lab's control server in the run (labConfig
	// sets it); without it the probe works from DNS and its own handshakes.
	controlServer bool
	// sweep benches kzprobe sweep (against the lab's neutral endpoint)
	// instead of kzprobe run, with the hello hello.
	sweep bool
	hello string
	// collector benches kzprobe collector serve (a child process):
	// n submissions from parallel probes, at rate per second in all (0:
	// as fast as it answers).
	collector  bool
	rate       float64
	cpuProfile string
	// labCPUProfile is the lab's CPU profile.
	labCPUProfile string
	// memProfile is a heap profile of the run, taken when the heap in use
	// was at its largest.
	memProfile string
	// labOnly runs the lab alone (the child process, bench.ServeLab): it
	// reads what to start on stdin and serves until stdin closes.
	labOnly bool
	// labInProcess runs the lab inside this process (tests): client CPU
	// and RSS then include the lab's.
	labInProcess bool
}

func newBenchCmd() *cobra.Command {
	var a benchArgs
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure speed, CPU and memory against a simulated network",
		Long: `Start a lab (kzprobe lab) in a child process with the given latency per
round trip, generate N targets spread over the scenario's behaviours, and
measure them with the real engine at parallelism P, wired as kzprobe run is
(loopback only: --allow-net 127.0.0.0/8). Then print:

  wall time, and the latency bound ceil(N/P) x round trips x RTT, with the
  ratio of the two (the lab delays 2 round trips on one target's critical
  path: DNS, then the TLS server's first flight; 3 for a reset or an EOF,
  whose small-hello retry is refused too; a blackhole target waits for the
  timeout instead of the second; round trips is the mean over the targets);
  the CPU floor, (client CPU + lab CPU during the run) / cores: the lab
  shares this machine's cores, so the run cannot end sooner; and the wall
  time over the tighter of the two limits;
  the client's CPU per target, and the CPU of one handshake of the
  engine's own (connect, Chrome handshake, chain judgement) against the
  lab, measured just before and just after the run, with the ratio of the
  two;
  peak RSS and targets per second.

Scenarios: mix (pass, ISCA and corporate interception, reset, EOF, block
page), pass, blackhole (no server flight ever; use a short --timeout).

With --sweep it benches kzprobe sweep instead: one handshake per name to the
lab's neutral SNI endpoint behind its middlebox (1 round trip for a clean
name, 2 for an intercepted one, whose control follows it, 3 for one refused
before any certificate, tried again after its control; a control every 100
names), with --hello fingerprint (Chrome) or tls12, and a baseline of one
handshake (with the same hello) and chain judgement against that endpoint.

With --collector it benches kzprobe collector serve instead, in a child
process with its file store in a temporary folder: 70 records measured in
the lab first, then submitted N times in all (each with a measurement_uid
of its own) by P probes, each with its own connection and report, at --rate
submissions/s in all (0: each probe sends its next once the last is
acknowledged). It prints the acknowledgements per second, their latency
(p50, p90, p99, max; with --rate counted from when each was due), the
fsync latency of the store's disk, the collector's CPU and peak RSS, and
checks the store holds every record acknowledged.`,
		Example: `  kzprobe bench --n 2000 --parallel 200 --rtt 50ms
  kzprobe bench --n 20000 --parallel 64 --rtt 0 --json
  kzprobe bench --scenario blackhole --timeout 200ms --n 100000 --parallel 1000
  kzprobe bench --sweep --scenario pass --n 1000000 --parallel 500 --rtt 0 --hello tls12
  kzprobe bench --collector --n 20000 --parallel 100 --rate 1000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if a.labOnly {
				return bench.ServeLab(ctx, cmd.InOrStdin(), cmd.OutOrStdout())
			}
			if a.collector {
				return runBenchCollector(ctx, a, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			return runBench(ctx, a, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntVar(&a.n, "n", 2000, "number of generated targets")
	f.IntVar(&a.parallel, "parallel", 200, "targets measured at once")
	f.DurationVar(&a.rtt, "rtt", 50*time.Millisecond, "latency the lab adds per round trip")
	f.DurationVar(&a.timeout, "timeout", 2*time.Second, "timeout of one TCP connect and of one TLS handshake")
	f.StringVar(&a.scenario, "scenario", bench.ScenarioMix, "behaviours of the targets: mix, pass or blackhole")
	f.BoolVar(&a.json, "json", false, "print the result as one JSON object")
	f.StringVarP(&a.output, "output", "o", "", "keep the measurements in this JSONL `file` (default: a temporary file, removed)")
	f.IntVar(&a.baselineOps, "baseline-ops", 500, "baseline operations (the engine's connect, Chrome handshake and chain judgement) measured for the CPU baseline, before the run and again after it")
	f.BoolVar(&a.controlServer, "control-server", false, "also ask the lab's control server about every target, as kzprobe lab does (kzprobe run asks none unless configured; the server's own handshakes cost the lab CPU)")
	f.BoolVar(&a.sweep, "sweep", false, "bench kzprobe sweep (against the lab's neutral SNI endpoint) instead of kzprobe run")
	f.StringVar(&a.hello, "hello", "fingerprint", "with --sweep: the sweep's ClientHello, fingerprint (Chrome) or tls12")
	f.BoolVar(&a.collector, "collector", false, "bench kzprobe collector serve: N submissions from P probes")
	f.Float64Var(&a.rate, "rate", 0, "with --collector: submissions per second in all; 0 for no pacing")
	f.StringVar(&a.cpuProfile, "cpuprofile", "", "write a CPU profile of the run (not the baseline) to `file`")
	f.StringVar(&a.memProfile, "memprofile", "", "write a heap profile of the run, taken when its heap was largest, to `file`")
	f.StringVar(&a.labCPUProfile, "lab-cpuprofile", "", "write a CPU profile of the lab (the child process) to `file`")
	f.BoolVar(&a.labOnly, "lab-only", false, "run only the lab (the child process)")
	f.BoolVar(&a.labInProcess, "lab-in-process", false, "run the lab in this process (CPU and RSS then include it)")
	for _, h := range []string{"lab-only", "lab-in-process"} {
		f.MarkHidden(h)
	}
	return cmd
}

// runBench is `kzprobe bench`: the bench package's Run with this binary's
// engine wiring and lab process, and the result printed.
func runBench(ctx context.Context, a benchArgs, stdout, stderr io.Writer) error {
	for _, out := range []string{a.output, a.cpuProfile, a.memProfile, a.labCPUProfile} {
		if out == "" {
			continue
		}
		if err := checkOutputFolder(out); err != nil {
			return err
		}
	}
	if a.hello == "" {
		a.hello = "fingerprint"
	}
	switch {
	case a.hello != "fingerprint" && a.hello != probe.HelloTLS12:
		return usageError("--hello %q: want fingerprint or %s", a.hello, probe.HelloTLS12)
	case a.hello != "fingerprint" && !a.sweep:
		return usageError("--hello is for --sweep")
	case a.rate != 0:
		return usageError("--rate is for --collector")
	case a.sweep && a.controlServer:
		return usageError("--control-server is for a bench of kzprobe run; a sweep asks the control server nothing per name")
	}
	hello := ""
	if a.hello == probe.HelloTLS12 {
		hello = probe.HelloTLS12
	}
	cfg := bench.Config{
		Scenario: a.scenario, N: a.n, Parallel: a.parallel, RTT: a.rtt, Timeout: a.timeout,
		BaselineOps: a.baselineOps, ControlServer: a.controlServer, Output: a.output,
		Sweep: a.sweep, Hello: hello,
		CPUProfile: a.cpuProfile, MemProfile: a.memProfile, LabCPUProfile: a.labCPUProfile,
		Engine: benchEngine,
	}
	if !a.labInProcess {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cfg.LabCommand = func() *exec.Cmd { return exec.Command(exe, "bench", "--lab-only") }
	}
	res, err := bench.Run(ctx, cfg, stderr)
	if errors.Is(err, bench.ErrBadConfig) {
		return usageError("%v", err)
	}
	if err != nil && ctx.Err() != nil {
		return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted: %w", err)}
	}
	if err != nil {
		return err
	}
	res.SoftwareVersion = softwareVersion()
	if a.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printBench(stdout, res)
	return nil
}

// benchEngine runs the real engine for a bench, wired as `kzprobe lab`
// and `kzprobe run` are: labConfig, then runProbe.
func benchEngine(ctx context.Context, r bench.EngineRun) error {
	cfg := labConfig(r.Lab, r.Files, r.Dir)
	if r.Sweep {
		return benchSweep(ctx, cfg, r)
	}
	cfg.Targets.Domains = nil
	cfg.Targets.Files = []string{r.Targets}
	cfg.Run.Parallel = r.Parallel
	cfg.Run.Quiet = r.Quiet
	cfg.Run.Output = r.Output
	cfg.TLS.Timeout = r.Timeout
	if !r.ControlServer {
		cfg.Control.Server = ""
	}
	return runProbe(ctx, cfg, nil, strings.NewReader(""), io.Discard, r.Stderr)
}

// benchSweep runs kzprobe sweep for a bench, wired as kzprobe lab's sweep
// is, against the lab's endpoint given by address and pin.
func benchSweep(ctx context.Context, cfg *Config, r bench.EngineRun) error {
	cfg.Targets.Domains = nil
	cfg.Targets.Files = []string{r.Targets}
	cfg.Control.Server = ""
	cfg.Sweep.Endpoint = r.Lab.SNIEndpointAddr.String()
	cfg.Sweep.EndpointPin = r.Lab.SNIEndpointPin.String()
	cfg.Sweep.Rate = "0"
	cfg.Sweep.Parallel = r.Parallel
	if r.Hello != "" {
		cfg.Sweep.Hello = r.Hello
	}
	cfg.Run.Quiet = r.Quiet
	cfg.Run.Output = r.Output
	cfg.TLS.Timeout = r.Timeout
	return runSweep(ctx, cfg, strings.NewReader(""), io.Discard, r.Stderr)
}

// printBench writes the result as a table.
func printBench(w io.Writer, r bench.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	ratio := "n/a (no latency)"
	if r.WallOverBound != nil {
		ratio = fmt.Sprintf("%.3f", *r.WallOverBound)
	}
	wait := ""
	if r.Wait > 0 {
		wait = fmt.Sprintf(" + %gs timeout", r.Wait)
	}
	where := "client process only (lab in a child process)"
	if r.LabInProcess {
		where = "client and lab (lab in this process)"
	}
	fmt.Fprintf(tw, "kzprobe\t%s\n", r.SoftwareVersion)
	if r.Sweep {
		fmt.Fprintf(tw, "sweep\t%s: N=%d P=%d RTT=%v timeout=%v hello %s\n", r.Scenario, r.N, r.Parallel, secs(r.RTT), secs(r.Timeout), cmpOr(r.Hello, "chrome"))
	} else {
		fmt.Fprintf(tw, "scenario\t%s: N=%d P=%d RTT=%v timeout=%v control server=%v\n", r.Scenario, r.N, r.Parallel, secs(r.RTT), secs(r.Timeout), r.ControlServer)
	}
	fmt.Fprintf(tw, "wall\t%.3f s\n", r.Wall)
	fmt.Fprintf(tw, "latency bound\t%.3f s = ceil(%d/%d) x (%.2f RTT%s)\n", r.Bound, r.N, r.Parallel, r.RoundTrips, wait)
	fmt.Fprintf(tw, "wall / bound\t%s\n", ratio)
	if !r.LabInProcess {
		fmt.Fprintf(tw, "CPU floor\t%.3f s = (client %.1f s + lab %.1f s CPU) / %d cores\n", r.CPUFloor, r.CPUPerTarget*float64(r.N)/1000, r.LabCPU, r.Cores)
		if r.WallOverLimit != nil {
			bound := "latency"
			if r.CPUFloor > r.Bound {
				bound = "CPU"
			}
			fmt.Fprintf(tw, "wall / limit\t%.3f (the tighter limit here: %s)\n", *r.WallOverLimit, bound)
		}
	}
	fmt.Fprintf(tw, "targets/s\t%.1f\n", r.TargetsPerSecond)
	fmt.Fprintf(tw, "CPU per target\t%.3f ms (%s)\n", r.CPUPerTarget, where)
	base := "engine connect + Chrome handshake + chain judgement"
	if r.Sweep {
		base = "engine connect + " + cmpOr(r.Hello, "Chrome") + " handshake + chain judgement at the SNI endpoint"
	}
	fmt.Fprintf(tw, "baseline CPU\t%.3f ms per %s (mean of %.3f before the run and %.3f after, %d ops each)\n",
		r.BaselineCPU, base, r.BaselineBefore, r.BaselineAfter, r.BaselineOps)
	fmt.Fprintf(tw, "CPU / baseline\t%.2f\n", r.CPURatio)
	fmt.Fprintf(tw, "peak RSS\t%.1f MiB\n", r.PeakRSS)
	if !r.LabInProcess {
		fmt.Fprintf(tw, "lab CPU\t%.1f s during the run (child process, not counted above)\n", r.LabCPU)
	}
	fmt.Fprintf(tw, "written\t%d: %s\n", r.Written, verdictLine(r.Verdicts))
	tw.Flush()
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func verdictLine(v map[string]int) string {
	var parts []string
	for _, k := range verdictOrder {
		if n := v[string(k)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	return strings.Join(parts, ", ")
}
