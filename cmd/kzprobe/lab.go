package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"kzprobe/lab"
	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/sweep"
	"kzprobe/trace"
)

// labArgs are the flags of `kzprobe lab`.
type labArgs struct {
	scenario string
	dir      string
	output   string
	serve    bool
	port     int
	parallel int
	quiet    bool
	latency  time.Duration
	hostile  bool
}

func newLabCmd() *cobra.Command {
	var a labArgs
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Probe a simulated censored network on loopback (offline demo)",
		Long: `Start a simulated censored network inside this process, on loopback only:
a "public" test CA and origin servers, an ISCA-like interception PKI (a
test key generated now, never the real one) and a middlebox that intercepts
by SNI, a local resolver that lies for some names, a DNS-over-HTTPS control
resolver, and a control server (kzprobe control serve) that sees the sites
from outside the middlebox. Then run the real probe against it and show, for
each domain, the verdict next to the one the scenario expects. Then sweep
the same names by SNI (kzprobe sweep) against the lab's neutral endpoint,
whose address passes the middlebox, and show each sweep verdict next to the
one the name's TLS behaviour gives.

Nothing leaves the machine: the probe runs with --allow-net 127.0.0.0/8
(and ::1/128 when the scenario has IPv6 sites).

The lab's files (its PEM certificates, resolv.conf, the target list) go
into --dir, or into a temporary folder removed when the lab stops. The
measurements are kept: -o, else lab-measurements.jsonl in --dir, else
kzprobe-lab-<UTC time>/lab-measurements.jsonl in the current folder, with
the lab's interception root beside them; the analyze and report commands
printed at the end read them with that root, as the run judged them.

With --serve the lab stays up, prints the kzprobe run command that measures
it from another terminal (-c with a configuration file the lab wrote) and
the commands that read what it measured, logs every request it answers, and
stops on Ctrl-C.`,
		Example: `  kzprobe lab
  kzprobe lab --scenario my-scenario.yaml --latency 50ms
  kzprobe lab --serve`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runLab(ctx, a, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&a.scenario, "scenario", "", "scenario YAML `file` (default: the built-in scenario covering every verdict)")
	f.StringVar(&a.dir, "dir", "", "`folder` for the lab's PEM files, resolv.conf and the measurements, kept (default: a temporary folder, removed when the lab stops)")
	f.StringVarP(&a.output, "output", "o", "", "JSONL output `file` (default: lab-measurements.jsonl in --dir, else in a new kzprobe-lab-<UTC time> folder here)")
	f.BoolVar(&a.serve, "serve", false, "keep the lab up for manual use instead of running the probe")
	f.IntVar(&a.port, "port", 0, "TLS port of the lab's servers (default 443 when it can be bound, else a free port)")
	f.IntVar(&a.parallel, "parallel", probe.DefaultParallel, "targets measured at once")
	f.BoolVarP(&a.quiet, "quiet", "q", false, "print only the summaries: no start line, no line per target, no progress")
	f.DurationVar(&a.latency, "latency", 0, "added latency per round trip in the lab's servers")
	f.BoolVar(&a.hostile, "hostile", false, "run the hostile scenario instead: garbage, drip, 200-certificate and 2 MB chains, malformed certificates, alerts, hostile DNS")
	return cmd
}

func runLab(ctx context.Context, a labArgs, stdout, stderr io.Writer) (err error) {
	sc := lab.DefaultScenario()
	if a.hostile {
		sc = lab.HostileScenario()
		sc.DripInterval = 100 * time.Millisecond // cut at the handshake timeout, not after minutes
	}
	if a.scenario != "" {
		if sc, err = lab.LoadScenario(a.scenario); err != nil {
			return usageError("%v", err)
		}
	}
	if a.latency > 0 {
		sc.Latency = a.latency
	}
	var reqLog *log.Logger
	if a.serve {
		reqLog = log.New(stderr, "lab: ", log.Ltime)
	}
	l, err := lab.Start(lab.Config{Scenario: sc, Port: a.port, RequestLog: reqLog})
	if err != nil {
		return fmt.Errorf("starting the lab: %w", err)
	}
	defer l.Close()

	// The lab's files (PEM, resolv.conf, the target list) go into --dir,
	// kept, or a temporary folder removed when the lab stops, however
	// it stops.
	work := &labWorkDir{path: a.dir}
	if err := work.create(); err != nil {
		return err
	}
	defer func() {
		if rerr := work.remove(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	files, err := l.WriteFiles(work.path)
	if err != nil {
		return fmt.Errorf("writing the lab's files: %w", err)
	}
	cfg := labConfig(l, files, work.path)
	cfg.Run.Parallel = a.parallel
	cfg.Run.Quiet = a.quiet
	// The measurements, and the lab's root to read them with, outlive a
	// temporary folder.
	if cfg.Run.Output, err = labOutput(a, work, time.Now()); err != nil {
		return err
	}
	root, err := labRootFile(cfg.Run.Output, files)
	if err != nil {
		return err
	}

	if a.serve {
		return serveLab(ctx, l, cfg, work, root, stdout)
	}
	fmt.Fprintf(stderr, "lab %q up on %s (TLS port %d): probing its %s\n", sc.Name, l.Net, l.Port, plural(len(sc.Sites), "domain"))
	if err := runProbe(ctx, cfg, nil, strings.NewReader(""), stdout, stderr); err != nil {
		return err
	}
	if err := checkLab(cfg.Run.Output, sc, stdout, terminalWidth(stdout)); err != nil {
		return err
	}
	if err := labSweep(ctx, l, cfg, stdout, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nRead them again, judged with the lab's root:\n\n")
	printCommands(stdout, readCommands(cfg.Run.Output, root, false)...)
	return nil
}

// serveLab keeps the lab up until ctx ends (Ctrl-C), after printing the
// command that measures it and the ones that read what it measured. The
// lab logs every request it answers meanwhile.
func serveLab(ctx context.Context, l *lab.Lab, cfg *Config, work *labWorkDir, root string, stdout io.Writer) error {
	// The command runs in another terminal, wherever it is: every path
	// absolute.
	cfg.Run.Output = absPath(cfg.Run.Output)
	cfg.Targets.Files = []string{filepath.Join(absPath(work.path), "targets.txt")}
	cfg.Targets.Domains = nil
	var list strings.Builder
	for _, s := range l.Sites() {
		list.WriteString(s.Domain + "\n")
	}
	if err := os.WriteFile(cfg.Targets.Files[0], []byte(list.String()), 0o644); err != nil {
		return fmt.Errorf("writing the lab's target list: %w", err)
	}
	conf := filepath.Join(work.path, "lab.yaml")
	if err := writeLabConfig(conf, cfg); err != nil {
		return err
	}
	where := "files in " + work.path
	if work.temp {
		where = "its files are in " + work.path + " until it stops"
	}
	printWrapped(stdout, fmt.Sprintf("lab %q is up on %s (TLS port %d); %s.", l.Scenario.Name, l.Net, l.Port, where))
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "Measure it from another terminal with:\n\n")
	printCommands(stdout, []string{"kzprobe", "run", "-c", conf})
	sweepOut := strings.TrimSuffix(cfg.Run.Output, filepath.Ext(cfg.Run.Output)) + "-sweep.jsonl"
	fmt.Fprintln(stdout)
	printWrapped(stdout, fmt.Sprintf("sweep its names by SNI against its neutral endpoint (%s, behind the middlebox) with:", l.SNIEndpointAddr))
	fmt.Fprintln(stdout)
	printCommands(stdout, []string{"kzprobe", "sweep", "-c", conf, "--rate", "0", "-o", sweepOut})
	fmt.Fprintf(stdout, "\nthen read what it measured, judged with the lab's root:\n\n")
	printCommands(stdout, readCommands(cfg.Run.Output, root, true)...)
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "Requests are logged below. Ctrl-C stops the lab.\n\n")
	<-ctx.Done()
	l.Close()
	if err := work.remove(); err != nil {
		return err
	}
	bye := "\nThe lab has stopped"
	if work.temp {
		bye += " and its temporary folder is removed"
	}
	fmt.Fprintf(stdout, "%s; the measurements stay in %s. Goodbye.\n", bye, displayPath(filepath.Dir(cfg.Run.Output)))
	return nil
}

// labWorkDir is the folder of the lab's files: path when the user gave
// one (--dir, kept), else a temporary folder that remove deletes.
type labWorkDir struct {
	path    string
	temp    bool
	removed bool
}

func (d *labWorkDir) create() error {
	if d.path != "" {
		d.path = absPath(d.path) // named in commands run elsewhere
		if err := os.MkdirAll(d.path, 0o755); err != nil {
			return fmt.Errorf("creating the lab's folder: %w", err)
		}
		return nil
	}
	p, err := os.MkdirTemp("", "kzprobe-lab-")
	if err != nil {
		return fmt.Errorf("creating the lab's temporary folder: %w", err)
	}
	d.path, d.temp = p, true
	return nil
}

// remove deletes a temporary folder, once; a folder the user gave stays.
func (d *labWorkDir) remove() error {
	if !d.temp || d.removed {
		return nil
	}
	d.removed = true
	if err := os.RemoveAll(d.path); err != nil {
		return fmt.Errorf("removing the lab's temporary folder: %w", err)
	}
	return nil
}

// labOutput is where the lab's measurements go: -o, else
// lab-measurements.jsonl in --dir, else in a new folder
// kzprobe-lab-<UTC time> of the current folder (not the temporary one:
// the measurements are kept).
func labOutput(a labArgs, work *labWorkDir, now time.Time) (string, error) {
	switch {
	case a.output != "":
		// Checked here, before the lab's root is written beside it.
		return a.output, checkOutputFolder(a.output)
	case !work.temp:
		out := filepath.Join(work.path, "lab-measurements.jsonl")
		if err := os.Remove(out); err != nil && !errors.Is(err, fs.ErrNotExist) {
			// The lab's own file in its folder holds the last demo's
			// measurements, of a lab that no longer exists: replaced, as
			// the PEM files beside it are. A file given with -o is never
			// removed (runProbe refuses it when it is not empty).
			return "", fmt.Errorf("replacing the lab's measurements: %w", err)
		}
		return out, nil
	}
	base := "kzprobe-lab-" + now.UTC().Format("20060102T150405Z")
	// A folder of its own: two labs started in the same second do not
	// share one.
	for i := 1; ; i++ {
		dir := base
		if i > 1 {
			dir = fmt.Sprintf("%s-%d", base, i)
		}
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			return filepath.Join(dir, "lab-measurements.jsonl"), nil
		}
		if !errors.Is(err, fs.ErrExist) || i == 100 {
			return "", fmt.Errorf("cannot create a folder for the measurements here: %w (choose another path with -o)", err)
		}
	}
}

// labRootFile writes the lab's interception root beside the
// measurements at output ("x.jsonl": "x-isca-root.pem"), for the reading
// commands: the lab's own file is temporary, or replaced by the next lab
// in the same --dir. The root of an output that already holds
// measurements (given with -o: the run refuses to add to it) is left as
// it is.
func labRootFile(output string, files lab.Files) (string, error) {
	root := strings.TrimSuffix(output, filepath.Ext(output)) + "-isca-root.pem"
	if st, err := os.Stat(output); err == nil && st.Size() > 0 {
		return root, nil
	}
	data, err := os.ReadFile(files.ISCARoot)
	if err != nil {
		return "", fmt.Errorf("reading the lab's root: %w", err)
	}
	if err := os.WriteFile(root, data, 0o644); err != nil {
		return "", fmt.Errorf("writing the lab's root beside the measurements: %w", err)
	}
	return root, nil
}

// readCommands are the analyze and report commands that read a lab's
// measurements with its interception root: without it, the chains would
// lead to an unknown signer, named only by the issuer's name.
// Paths are relative to the current folder when under it, unless
// absolute is set (for another terminal, wherever it is).
func readCommands(output, root string, absolute bool) [][]string {
	show := displayPath
	if absolute {
		show = absPath
	}
	out, r := show(output), show(root)
	report := filepath.Join(filepath.Dir(out), "report.html")
	return [][]string{
		{"kzprobe", "analyze", out, "--interception-roots", r},
		{"kzprobe", "report", out, "--interception-roots", r, "-o", report},
	}
}

// printCommands prints each command indented by two spaces, broken to
// the width of w's terminal with line continuations (whole lines on a
// pipe or in a file).
func printCommands(w io.Writer, cmds ...[]string) {
	width := terminalWidth(w)
	for _, c := range cmds {
		for _, line := range commandLines(width, "  ", c...) {
			fmt.Fprintln(w, line)
		}
	}
}

// printWrapped prints text broken between words to the width of w's
// terminal (one line on a pipe or in a file).
func printWrapped(w io.Writer, text string) {
	for _, line := range wrapWords(text, terminalWidth(w)) {
		fmt.Fprintln(w, line)
	}
}

// labConfig is a run configuration pointing at l: its resolver, its DoH
// control, its control server, its trust roots and interception roots, and
// loopback only.
func labConfig(l *lab.Lab, files lab.Files, dir string) *Config {
	cfg := &Config{}
	cfg.Targets.Port = l.Port
	cfg.Submit.Wait = defaultSubmitWait
	for _, s := range l.Sites() {
		cfg.Targets.Domains = append(cfg.Targets.Domains, s.Domain)
	}
	cfg.DNS.Resolver = l.LocalDNS
	cfg.DNS.ResolvConf = files.ResolvConf
	// Generous for loopback, so that a loaded machine (CI, 2 cores, -race)
	// does not turn a slow handshake into tls_blocking; the blackhole
	// targets wait this long.
	cfg.DNS.Timeout = 4 * time.Second
	cfg.DNS.Retries = 1
	cfg.Control.URL = l.DoHURL
	cfg.Control.Name = l.ControlServerName
	cfg.Control.CA = files.PublicRoot
	cfg.Control.Server = l.ControlServerURL
	cfg.TLS.Fingerprints = []string{probe.DefaultFingerprint}
	cfg.TLS.MaxAddresses = probe.DefaultMaxAddresses
	cfg.TLS.SmallHelloRetry = true
	cfg.TLS.Timeout = 5 * time.Second
	cfg.TLS.TrustRoots = files.PublicRoot
	cfg.Interception.ExtraRoots = []string{files.ISCARoot}
	cfg.Run.Parallel = probe.DefaultParallel
	cfg.Run.TargetTimeout = 20 * time.Second
	cfg.Run.Output = filepath.Join(dir, "lab-measurements.jsonl")
	cfg.Run.SyncInterval = time.Second
	cfg.Run.TraceControlSNI = trace.DefaultControlSNI
	cfg.Network.Allow = []string{"127.0.0.0/8"}
	for _, n := range l.Nets() {
		if n.Addr().Is6() {
			cfg.Network.Allow = append(cfg.Network.Allow, n.String()) // ::1/128, for IPv6 sites
		}
	}
	cfg.Vantage.Network = "kzprobe lab"
	cfg.Sweep = SweepConfig{ControlSNI: sweep.DefaultControlSNI, ControlEvery: sweep.DefaultControlEvery,
		Rate: defaults["sweep.rate"].(string), Parallel: sweep.DefaultParallel, Hello: defaults["sweep.hello"].(string)}
	return cfg
}

// labCommandLine is the `kzprobe run` invocation equivalent to cfg.
func labCommandLine(cfg *Config) string {
	args := []string{"kzprobe", "run",
		"--resolver", cfg.DNS.Resolver,
		"--control", cfg.Control.URL, "--control-name", cfg.Control.Name, "--control-ca", cfg.Control.CA,
		"--control-server", cfg.Control.Server,
		"--trust-roots", cfg.TLS.TrustRoots,
		"--port", fmt.Sprint(cfg.Targets.Port),
		"--allow-net", strings.Join(cfg.Network.Allow, ","),
		"--timeout", cfg.TLS.Timeout.String(),
	}
	for _, r := range cfg.Interception.ExtraRoots {
		args = append(args, "--interception-roots", r)
	}
	for _, d := range cfg.Targets.Domains {
		args = append(args, "-d", d)
	}
	return strings.Join(args, " ")
}

// checkLab compares every measured verdict with the scenario's
// expectation, prints the comparison (fitted to width columns; 0 for no
// limit) and fails when one differs.
func checkLab(path string, sc lab.Scenario, w io.Writer, width int) error {
	got, err := readVerdicts(path)
	if err != nil {
		return err
	}
	header := []string{"DOMAIN", "LAB BEHAVIOUR", "EXPECTED", "GOT"}
	var rows [][]string
	bad := 0
	for _, s := range sc.Sites {
		mark := "✓"
		if got[s.Domain] != s.Expect {
			mark = "✗ " + dash(got[s.Domain])
			bad++
		}
		rows = append(rows, []string{s.Domain, labBehaviour(s), s.Expect, mark})
	}
	widths := naturalWidths(header, rows)
	if width > 0 {
		// The behaviour is cut first, then the domain.
		for _, col := range []int{1, 0} {
			if over := sumWidths(widths) - (width - 1); over > 0 {
				widths[col] = max(widths[col]-over, min(widths[col], 12))
			}
		}
	}
	var b strings.Builder
	b.WriteString("\n" + tableRow(header, widths, nil) + "\n")
	for _, r := range rows {
		b.WriteString(tableRow(r, widths, nil) + "\n")
	}
	b.WriteString("\nmeasurements: " + displayPath(path) + "\n")
	io.WriteString(w, b.String())
	if bad > 0 {
		return fmt.Errorf("%d of %d lab verdicts differ from the scenario's expectations", bad, len(sc.Sites))
	}
	fmt.Fprintf(w, "all %s match the scenario\n", plural(len(sc.Sites), "verdict"))
	return nil
}

// labSweep sweeps the scenario's names by SNI against the lab's neutral
// endpoint (found through the lab's control server), as kzprobe sweep
// would, into <output>-sweep.jsonl, and shows each name's verdict next to
// the one the scenario's TLS behaviour gives (lab.ExpectedSweepVerdict).
func labSweep(ctx context.Context, l *lab.Lab, run *Config, stdout, stderr io.Writer) error {
	cfg := *run
	cfg.Run.Output = strings.TrimSuffix(run.Run.Output, filepath.Ext(run.Run.Output)) + "-sweep.jsonl"
	cfg.Run.Quiet = true
	cfg.Sweep.Rate, cfg.Sweep.Parallel = "0", run.Run.Parallel
	// Beside the run's new measurements: the last demo's sweep is
	// replaced, as the lab's other files are.
	if err := os.Remove(cfg.Run.Output); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replacing the lab's sweep: %w", err)
	}
	fmt.Fprintln(stderr)
	printWrapped(stderr, fmt.Sprintf("sweeping the same %s by SNI against the lab's neutral endpoint %s, behind its middlebox", plural(len(l.Sites()), "name"), l.SNIEndpointAddr))
	// The sweep's own table would repeat the check's: only its errors show.
	if err := runSweep(ctx, &cfg, strings.NewReader(""), io.Discard, io.Discard); err != nil {
		return fmt.Errorf("the lab's sweep: %w", err)
	}
	return checkSweep(cfg.Run.Output, l.Scenario, stdout, terminalWidth(stdout))
}

// checkSweep compares a lab sweep's verdicts with the scenario's and
// prints them side by side; a name whose behaviour says nothing about SNI
// filtering (the hostile ones) shows its verdict unchecked.
func checkSweep(path string, sc lab.Scenario, w io.Writer, width int) error {
	got, err := readVerdicts(path)
	if err != nil {
		return err
	}
	header := []string{"DOMAIN", "TLS BEHAVIOUR", "SWEEP EXPECTED", "GOT"}
	var rows [][]string
	bad, checked := 0, 0
	for _, s := range sc.Sites {
		want := lab.ExpectedSweepVerdict(s.TLS, false)
		mark := "✓"
		switch {
		case want == "":
			mark = dash(got[s.Domain]) + " (not checked)"
		case got[s.Domain] != want:
			mark = "✗ " + dash(got[s.Domain])
			bad++
			checked++
		default:
			checked++
		}
		rows = append(rows, []string{s.Domain, cmpOr(s.TLS, lab.Pass), dash(want), mark})
	}
	widths := naturalWidths(header, rows)
	if width > 0 {
		for _, col := range []int{1, 0} {
			if over := sumWidths(widths) - (width - 1); over > 0 {
				widths[col] = max(widths[col]-over, min(widths[col], 12))
			}
		}
	}
	var b strings.Builder
	b.WriteString("\n" + tableRow(header, widths, nil) + "\n")
	for _, r := range rows {
		b.WriteString(tableRow(r, widths, nil) + "\n")
	}
	b.WriteString("\nsweep: " + displayPath(path) + "\n")
	io.WriteString(w, b.String())
	if bad > 0 {
		return fmt.Errorf("%d of %d sweep verdicts differ from the scenario's expectations", bad, checked)
	}
	fmt.Fprintf(w, "all %s of the sweep match the scenario\n", plural(checked, "verdict"))
	return nil
}

// cmpOr is s, or def when s is empty.
func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// labBehaviour says what the lab does for a site: its DNS behaviour
// unless truthful, its TLS behaviour unless it passes ("pass" when both
// are ordinary).
func labBehaviour(s lab.Site) string {
	var parts []string
	if s.DNS != "" && s.DNS != lab.DNSTruthful {
		parts = append(parts, "dns "+s.DNS)
	}
	if s.TLS != "" && s.TLS != lab.Pass {
		parts = append(parts, "tls "+s.TLS)
	}
	if len(parts) == 0 {
		return lab.Pass
	}
	return strings.Join(parts, ", ")
}

// readVerdicts reads domain -> verdict from a JSONL file of measurements.
func readVerdicts(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	_, err = measurement.ReadJSONL(f, func(m *measurement.Measurement) error {
		out[m.TestKeys.Domain] = string(m.TestKeys.Verdict)
		return nil
	})
	return out, err
}
