package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	utls "github.com/refraction-networking/utls"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"kzprobe/lab"
	"kzprobe/probe/guard"
)

// `kzprobe bench` measures the real engine (runProbe, wired by labConfig
// and buildProber exactly as `kzprobe lab` and `kzprobe run` are) against a
// lab with a given latency and N generated targets, and compares the run
// with two limits measured in the same run:
//
//   - the latency bound: ceil(N/P) x the lab round trips on one target's
//     critical path (the mean over the targets) x RTT (benchRoundTrips
//     says which);
//   - the CPU baseline: a bare uTLS Chrome handshake plus chain
//     verification against one of the lab's origins, CPU per operation.
//
// The lab runs in a child process (this binary, `bench --lab-only`), so
// that getrusage(RUSAGE_SELF) counts the client's CPU and memory only.
// Many names share few sites through the lab's wildcard sites
// (lab/wildcard.go): target i is t<i>.<behaviour>.bench.test.

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
	cpuProfile    string
	// labCPUProfile is the lab's CPU profile (the child's --cpuprofile).
	labCPUProfile string
	// memProfile is a heap profile of the run, taken when the heap in use
	// was at its largest.
	memProfile string
	// labOnly runs the lab alone (the child process): it prints its
	// addresses as one JSON line and serves until stdin closes.
	labOnly bool
	// dir is the lab's files folder (the child's, given by the parent).
	dir string
	// labInProcess runs the lab inside this process (tests): client CPU
	// and RSS then include the lab's.
	labInProcess bool
}

// Bench scenarios.
const (
	benchMix       = "mix"
	benchPass      = "pass"
	benchBlackhole = "blackhole"
)

// benchZone is the parent of every bench name.
const benchZone = "bench.test"

// benchBaseZone is the wildcard site the baseline hand-shakes with.
const benchBaseZone = "base." + benchZone

// benchSites returns the wildcard sites of a bench scenario: the
// behaviours target i cycles through, and the baseline's pass site.
func benchSites(scenario string) ([]lab.Site, error) {
	var behaviours []lab.Site
	switch scenario {
	case benchPass:
		behaviours = []lab.Site{{TLS: lab.Pass}}
	case benchMix:
		// Each behaviour's lab round trips: benchRoundTrips.
		behaviours = []lab.Site{
			{TLS: lab.Pass}, {TLS: lab.InterceptISCA}, {TLS: lab.InterceptISCAExpired},
			{TLS: lab.InterceptCorporate}, {TLS: lab.Reset}, {TLS: lab.EOF},
			{TLS: lab.Pass, DNS: lab.DNSBlockpage},
		}
	case benchBlackhole:
		behaviours = []lab.Site{{TLS: lab.Blackhole}}
	default:
		return nil, fmt.Errorf("unknown bench scenario %q; want %s, %s or %s", scenario, benchMix, benchPass, benchBlackhole)
	}
	for i := range behaviours {
		behaviours[i].Domain = "*." + benchLabel(behaviours[i]) + "." + benchZone
	}
	return append(behaviours, lab.Site{Domain: "*." + benchBaseZone, TLS: lab.Pass}), nil
}

// benchLabel names a behaviour in target names.
func benchLabel(s lab.Site) string {
	if s.DNS != "" && s.DNS != lab.DNSTruthful {
		return strings.ReplaceAll(s.DNS, "_", "-")
	}
	return strings.ReplaceAll(s.TLS, "_", "-")
}

// benchRoundTrips is the number of lab round trips on the critical path of
// a target with behaviour s, from what the engine does (Prober.Measure)
// and what the lab delays (Scenario.Latency):
//
//  1. DNS: the local A and AAAA queries (UDP) and the control's (DoH, on
//     its one kept HTTP/2 connection) all run at once: 1 RTT.
//  2. TCP connect: done by the kernel, which the lab does not delay: 0.
//  3. TLS: the server's first flight answers the ClientHello: 1 RTT
//     (TLS 1.3; the client's Finished and close_notify need no answer).
//     Reset and EOF wait one RTT before closing: 1 RTT too, and then the
//     small-hello retry (Prober.SmallHelloRetry, on in kzprobe run) is
//     refused the same way: 1 RTT more. A blackhole never answers: the
//     handshake timeout instead (runBench), and no retry.
//  4. The control server's check runs concurrently with step 3; its own
//     DNS and handshake run concurrently too, 1 RTT.
//  5. Chain analysis and classification: CPU only.
//
// On a real network the TCP connect adds one more RTT; the lab cannot
// delay it, so it is not counted.
func benchRoundTrips(s lab.Site) int {
	if s.TLS == lab.Reset || s.TLS == lab.EOF {
		return 3
	}
	return 2
}

// benchResult is what `kzprobe bench` prints; the JSON form is stable for
// comparisons over time. Durations are in seconds.
type benchResult struct {
	Scenario string `json:"scenario"`
	// ControlServer says whether the lab's control server was asked.
	ControlServer bool `json:"control_server"`
	// N, Parallel: targets and targets measured at once.
	N        int `json:"n"`
	Parallel int `json:"parallel"`
	// RTT is the lab's latency per round trip, s.
	RTT float64 `json:"rtt_s"`
	// Timeout is the connect and handshake timeout, s.
	Timeout float64 `json:"timeout_s"`
	// RoundTrips is the lab round trips on a target's critical path, the
	// mean over the N targets (benchRoundTrips), and Wait the extra wait
	// per target (the timeout for a blackhole), s.
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
	// BaselineCPU is the client's CPU for one bare uTLS Chrome handshake
	// plus chain verification, ms: the mean of BaselineBefore and
	// BaselineAfter, each over BaselineOps operations just before and just
	// after the run, so that a change in the machine's speed during the
	// run (a shared host) weighs on both sides of CPURatio, which is
	// CPUPerTarget / BaselineCPU.
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

func newBenchCmd() *cobra.Command {
	var a benchArgs
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the probe's speed, CPU and memory against a simulated network on loopback",
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
  the client's CPU per target, and the CPU of a bare uTLS Chrome handshake
  plus chain verification against the lab, measured just before and just
  after the run, with the ratio of the two;
  peak RSS and targets per second.

Scenarios: mix (pass, ISCA and corporate interception, reset, EOF, block
page), pass, blackhole (no server flight ever; use a short --timeout).`,
		Example: `  kzprobe bench --n 2000 --parallel 200 --rtt 50ms
  kzprobe bench --n 20000 --parallel 64 --rtt 0 --json
  kzprobe bench --scenario blackhole --timeout 200ms --n 100000 --parallel 1000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if a.labOnly {
				return serveBenchLab(ctx, a, cmd.InOrStdin(), cmd.OutOrStdout())
			}
			return runBench(ctx, a, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntVar(&a.n, "n", 2000, "number of generated targets")
	f.IntVar(&a.parallel, "parallel", 200, "targets measured at once")
	f.DurationVar(&a.rtt, "rtt", 50*time.Millisecond, "latency the lab adds per round trip")
	f.DurationVar(&a.timeout, "timeout", 2*time.Second, "timeout of one TCP connect and of one TLS handshake")
	f.StringVar(&a.scenario, "scenario", benchMix, "behaviours of the targets: mix, pass or blackhole")
	f.BoolVar(&a.json, "json", false, "print the result as one JSON object")
	f.StringVarP(&a.output, "output", "o", "", "keep the measurements in this JSONL `file` (default: a temporary file, removed)")
	f.IntVar(&a.baselineOps, "baseline-ops", 500, "bare handshakes measured for the CPU baseline, before the run and again after it")
	f.BoolVar(&a.controlServer, "control-server", false, "also ask the lab's control server about every target, as kzprobe lab does (kzprobe run asks none unless configured; the server's own handshakes cost the lab CPU)")
	f.StringVar(&a.cpuProfile, "cpuprofile", "", "write a CPU profile of the run (not the baseline) to `file`")
	f.StringVar(&a.memProfile, "memprofile", "", "write a heap profile of the run, taken when its heap was largest, to `file`")
	f.StringVar(&a.labCPUProfile, "lab-cpuprofile", "", "write a CPU profile of the lab (the child process) to `file`")
	f.BoolVar(&a.labOnly, "lab-only", false, "run only the lab (the child process)")
	f.StringVar(&a.dir, "dir", "", "`folder` for the lab's files (with --lab-only)")
	f.BoolVar(&a.labInProcess, "lab-in-process", false, "run the lab in this process (CPU and RSS then include it)")
	for _, h := range []string{"lab-only", "dir", "lab-in-process"} {
		f.MarkHidden(h)
	}
	return cmd
}

// benchLabInfo is what the lab process tells the client: the addresses of
// a lab.Lab that labConfig reads, the sites, and the files.
type benchLabInfo struct {
	Net               string         `json:"net"`
	Port              int            `json:"port"`
	LocalDNS          string         `json:"local_dns"`
	DoHURL            string         `json:"doh_url"`
	ControlServerName string         `json:"control_server_name"`
	ControlServerURL  string         `json:"control_server_url"`
	Sites             []lab.SiteInfo `json:"sites"`
	Files             lab.Files      `json:"files"`
}

// benchLabDone is the lab process's last line: its own CPU.
type benchLabDone struct {
	CPU float64 `json:"cpu_s"`
}

// startBenchLab starts the bench scenario's lab and writes its files.
func startBenchLab(a benchArgs, dir string) (*lab.Lab, benchLabInfo, error) {
	sites, err := benchSites(a.scenario)
	if err != nil {
		return nil, benchLabInfo{}, usageError("%v", err)
	}
	l, err := lab.Start(lab.Config{Scenario: lab.Scenario{Name: "bench-" + a.scenario, Sites: sites, Latency: a.rtt}})
	if err != nil {
		return nil, benchLabInfo{}, fmt.Errorf("starting the lab: %w", err)
	}
	files, err := l.WriteFiles(dir)
	if err != nil {
		l.Close()
		return nil, benchLabInfo{}, fmt.Errorf("writing the lab's files: %w", err)
	}
	return l, benchLabInfo{
		Net: l.Net.String(), Port: l.Port, LocalDNS: l.LocalDNS, DoHURL: l.DoHURL,
		ControlServerName: l.ControlServerName, ControlServerURL: l.ControlServerURL,
		Sites: l.Sites(), Files: files,
	}, nil
}

// serveBenchLab is the child process: the lab, until stdin closes.
func serveBenchLab(ctx context.Context, a benchArgs, stdin io.Reader, stdout io.Writer) error {
	if a.dir == "" {
		return usageError("--lab-only needs --dir")
	}
	l, info, err := startBenchLab(a, a.dir)
	if err != nil {
		return err
	}
	defer l.Close()
	if a.cpuProfile != "" {
		stop, err := startCPUProfile(a.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if err := json.NewEncoder(stdout).Encode(info); err != nil {
		return err
	}
	// Each line from the parent asks for the lab's CPU so far; the end of
	// stdin ends the lab.
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			if json.NewEncoder(stdout).Encode(benchLabDone{CPU: cpuSeconds()}) != nil {
				return
			}
		}
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	l.Close()
	return json.NewEncoder(stdout).Encode(benchLabDone{CPU: cpuSeconds()})
}

// benchLab is the lab a bench runs against, in a child process or not.
type benchLab struct {
	info benchLabInfo
	// cpu returns the lab process's CPU so far, s (0 for a lab in this
	// process).
	cpu   func() float64
	close func()
}

// startBenchLabProcess runs `kzprobe bench --lab-only` and reads its
// addresses.
func startBenchLabProcess(ctx context.Context, a benchArgs, dir string, stderr io.Writer) (*benchLab, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "bench", "--lab-only", "--dir", dir, "--scenario", a.scenario, "--rtt", a.rtt.String(),
		"--cpuprofile", a.labCPUProfile)
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the lab process: %w", err)
	}
	out := bufio.NewReader(outPipe)
	kill := func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	line, err := out.ReadBytes('\n')
	var info benchLabInfo
	if err == nil {
		err = json.Unmarshal(line, &info)
	}
	if err != nil {
		kill()
		return nil, fmt.Errorf("the lab process did not start: %v", err)
	}
	stop := context.AfterFunc(ctx, kill)
	readCPU := func() float64 {
		var done benchLabDone
		if line, err := out.ReadBytes('\n'); err == nil {
			json.Unmarshal(line, &done)
		}
		return done.CPU
	}
	return &benchLab{info: info,
		cpu: func() float64 {
			if _, err := io.WriteString(in, "cpu\n"); err != nil {
				return 0
			}
			return readCPU()
		},
		close: func() {
			stop()
			in.Close()
			readCPU()
			cmd.Wait()
		}}, nil
}

// runBench is `kzprobe bench`.
func runBench(ctx context.Context, a benchArgs, stdout, stderr io.Writer) error {
	if a.n <= 0 || a.parallel <= 0 || a.rtt < 0 || a.timeout <= 0 || a.baselineOps < 0 {
		return usageError("--n, --parallel, --timeout must be positive, --rtt and --baseline-ops not negative")
	}
	if _, err := benchSites(a.scenario); err != nil {
		return usageError("%v", err)
	}
	dir, err := os.MkdirTemp("", "kzprobe-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	var bl *benchLab
	if a.labInProcess {
		l, info, err := startBenchLab(a, filepath.Join(dir, "lab"))
		if err != nil {
			return err
		}
		bl = &benchLab{info: info, cpu: func() float64 { return 0 }, close: func() { l.Close() }}
	} else if bl, err = startBenchLabProcess(ctx, a, filepath.Join(dir, "lab"), stderr); err != nil {
		return err
	}
	defer bl.close()
	info := bl.info

	// The targets go through a file, as a user's list does: the run
	// streams it (a million lines are never in memory at once).
	sites, _ := benchSites(a.scenario)
	behaviours := sites[:len(sites)-1]
	targetsFile := filepath.Join(dir, "targets.txt")
	if err := writeBenchTargets(targetsFile, a.n, behaviours); err != nil {
		return err
	}

	res := benchResult{
		Scenario: a.scenario, N: a.n, Parallel: a.parallel,
		RTT: a.rtt.Seconds(), Timeout: a.timeout.Seconds(),
		LabInProcess: a.labInProcess, BaselineOps: a.baselineOps, ControlServer: a.controlServer,
	}
	if a.scenario == benchBlackhole {
		// DNS, then the handshake's timeout instead of a server flight.
		res.RoundTrips, res.Wait = 1, a.timeout.Seconds()
	} else {
		total := 0
		for i := range a.n {
			total += benchRoundTrips(behaviours[i%len(behaviours)])
		}
		res.RoundTrips = float64(total) / float64(a.n)
	}
	rounds := math.Ceil(float64(a.n) / float64(a.parallel))
	res.Bound = rounds * (res.RoundTrips*a.rtt.Seconds() + res.Wait)

	// The baseline runs before and after the run, never during it, so
	// that its CPU is not mixed with the run's.
	baseline := func() (float64, error) {
		if a.baselineOps == 0 {
			return 0, nil
		}
		base, err := benchBaseline(ctx, info, a.baselineOps, min(a.parallel, 16))
		if err != nil {
			return 0, fmt.Errorf("baseline: %w", err)
		}
		return base * 1000, nil
	}
	if res.BaselineBefore, err = baseline(); err != nil {
		return err
	}

	l := &lab.Lab{
		Port: info.Port, LocalDNS: info.LocalDNS, DoHURL: info.DoHURL,
		ControlServerName: info.ControlServerName, ControlServerURL: info.ControlServerURL,
	}
	cfg := labConfig(l, info.Files, dir)
	cfg.Targets.Domains = nil
	cfg.Targets.Files = []string{targetsFile}
	cfg.Run.Parallel = a.parallel
	// The run's messages are kept for the report, and its progress line
	// is shown only on a terminal.
	var errBuf limitedBuffer
	runStderr := io.Writer(&errBuf)
	cfg.Run.Quiet = true
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		runStderr, cfg.Run.Quiet = stderr, false
	}
	cfg.TLS.Timeout = a.timeout
	cfg.Run.Output = filepath.Join(dir, "measurements.jsonl")
	if a.output != "" {
		cfg.Run.Output = a.output
	}
	if !a.controlServer {
		cfg.Control.Server = ""
	}
	stopProfile := func() {}
	if a.cpuProfile != "" {
		stop, err := startCPUProfile(a.cpuProfile)
		if err != nil {
			return err
		}
		stopProfile = stop
	}
	if a.memProfile != "" {
		stop := watchHeap(a.memProfile, stderr)
		defer stop()
	}
	labCPU0 := bl.cpu()
	cpu0, start := cpuSeconds(), time.Now()
	runErr := runProbe(ctx, cfg, strings.NewReader(""), io.Discard, runStderr)
	wall, cpu := time.Since(start), cpuSeconds()-cpu0
	labCPU := bl.cpu() - labCPU0
	stopProfile()
	res.PeakRSS = peakRSSMiB()
	if runErr != nil {
		return fmt.Errorf("run: %w\n%s", runErr, errBuf.String())
	}
	res.LabCPU = labCPU
	if res.BaselineAfter, err = baseline(); err != nil {
		return err
	}
	res.BaselineCPU = (res.BaselineBefore + res.BaselineAfter) / 2

	res.Wall = wall.Seconds()
	res.Cores = runtime.NumCPU()
	res.CPUFloor = (cpu + labCPU) / float64(res.Cores)
	if lim := max(res.Bound, res.CPUFloor); lim > 0 {
		r := res.Wall / lim
		res.WallOverLimit = &r
	}
	if res.Bound > 0 {
		r := res.Wall / res.Bound
		res.WallOverBound = &r
	}
	res.TargetsPerSecond = float64(a.n) / res.Wall
	res.CPUPerTarget = cpu / float64(a.n) * 1000
	if res.BaselineCPU > 0 {
		res.CPURatio = res.CPUPerTarget / res.BaselineCPU
	}
	if res.Written, res.Verdicts, err = countVerdicts(cfg.Run.Output); err != nil {
		return err
	}
	if res.Written != a.n {
		fmt.Fprintf(stderr, "kzprobe: %d of %d targets written\n%s", res.Written, a.n, errBuf.String())
	}
	if a.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printBench(stdout, res)
	return nil
}

// writeBenchTargets writes n target names, cycling through behaviours.
func writeBenchTargets(path string, n int, behaviours []lab.Site) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for i := range n {
		fmt.Fprintf(w, "t%d.%s.%s\n", i, benchLabel(behaviours[i%len(behaviours)]), benchZone)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// benchBaseline measures the client CPU of one bare uTLS Chrome handshake
// with chain verification, against the lab's baseline origin, over ops
// operations par at a time. It returns CPU seconds per operation.
func benchBaseline(ctx context.Context, info benchLabInfo, ops, par int) (float64, error) {
	var origin netip.Addr
	for _, s := range info.Sites {
		if s.Domain == "*."+benchBaseZone {
			origin = s.OriginAddr
		}
	}
	if !origin.IsValid() {
		return 0, errors.New("the lab has no baseline site")
	}
	roots, err := loadPool(info.Files.PublicRoot, "tls.trust_roots")
	if err != nil {
		return 0, err
	}
	g, err := guard.Parse("127.0.0.0/8")
	if err != nil {
		return 0, err
	}
	dial := g.Dialer(nil)
	addr := netip.AddrPortFrom(origin, uint16(info.Port)).String()
	one := func(i int) error {
		name := fmt.Sprintf("b%d.%s", i, benchBaseZone)
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		conn, err := dial(hctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		uc := utls.UClient(conn, &utls.Config{ServerName: name, InsecureSkipVerify: true}, utls.HelloChrome_Auto)
		if err := uc.HandshakeContext(hctx); err != nil {
			return err
		}
		defer uc.Close()
		certs := uc.ConnectionState().PeerCertificates
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err = certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name})
		return err
	}
	if err := one(-1); err != nil { // warm up, and fail early
		return 0, err
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     = make(chan int)
	)
	cpu0 := cpuSeconds()
	for range par {
		wg.Go(func() {
			for i := range next {
				if err := one(i); err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range ops {
		next <- i
	}
	close(next)
	wg.Wait()
	cpu := cpuSeconds() - cpu0
	if firstErr != nil {
		return 0, firstErr
	}
	return cpu / float64(ops), nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// countVerdicts counts the lines of a JSONL output and their verdicts. It
// looks for the "verdict" key in each line rather than decoding it: a
// million records are counted in seconds.
func countVerdicts(path string) (int, map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	n, verdicts := 0, map[string]int{}
	key := []byte(`"verdict":"`)
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line: its verdict is in the test keys, after the
			// chains; read on to the end of the line.
			var long []byte
			long = append(long, line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = r.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 {
			n++
			if i := bytes.Index(line, key); i >= 0 {
				v := line[i+len(key):]
				if j := bytes.IndexByte(v, '"'); j >= 0 {
					verdicts[string(v[:j])]++
				}
			}
		}
		if err == io.EOF {
			return n, verdicts, nil
		}
		if err != nil {
			return n, verdicts, err
		}
	}
}

// printBench writes the result as a table.
func printBench(w io.Writer, r benchResult) {
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
	fmt.Fprintf(tw, "scenario\t%s: N=%d P=%d RTT=%v timeout=%v control server=%v\n", r.Scenario, r.N, r.Parallel, secs(r.RTT), secs(r.Timeout), r.ControlServer)
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
	fmt.Fprintf(tw, "baseline CPU\t%.3f ms per bare uTLS Chrome handshake + chain verification (mean of %.3f before the run and %.3f after, %d ops each)\n",
		r.BaselineCPU, r.BaselineBefore, r.BaselineAfter, r.BaselineOps)
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

// limitedBuffer keeps the first 64 KiB written to it: the run's messages.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 64<<10 - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startCPUProfile writes a CPU profile to path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("CPU profile %s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// watchHeap writes a heap profile to path each time the heap in use has
// grown by a tenth past its largest size so far, checked every 200 ms,
// until stop, and reports the heap and stack sizes on w each time.
func watchHeap(path string, w io.Writer) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		var most uint64
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse <= most*11/10 {
				continue
			}
			most = ms.HeapInuse
			fmt.Fprintf(w, "heap in use %d MiB, stacks %d MiB, sys %d MiB, goroutines %d\n", ms.HeapInuse>>20, ms.StackInuse>>20, ms.Sys>>20, runtime.NumGoroutine())
			if f, err := os.Create(path); err == nil {
				pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
