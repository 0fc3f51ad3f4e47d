package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"kzprobe/lab"
	"kzprobe/measurement"
	"kzprobe/probe"
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
		Short: "Run the probe against a simulated censored network on loopback (offline demo)",
		Long: `Start a simulated censored network inside this process, on loopback only:
a "public" test CA and origin servers, an ISCA-like interception PKI (a
test key generated now, never the real one) and a middlebox that intercepts
by SNI, a local resolver that lies for some names, a DNS-over-HTTPS control
resolver, and a control server (kzprobe control serve) that sees the sites
from outside the middlebox. Then run the real probe against it and show, for
each domain, the verdict next to the one the scenario expects.

Nothing leaves the machine: the probe runs with --allow-net 127.0.0.0/8
(and ::1/128 when the scenario has IPv6 sites).

With --serve the lab stays up and prints the kzprobe run command line to
use against it from another terminal.`,
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
	f.StringVar(&a.dir, "dir", "", "`folder` for the lab's PEM files, resolv.conf and the measurements (default: a new temporary folder)")
	f.StringVarP(&a.output, "output", "o", "", "JSONL output `file` (default: lab-measurements.jsonl in --dir)")
	f.BoolVar(&a.serve, "serve", false, "keep the lab up for manual use instead of running the probe")
	f.IntVar(&a.port, "port", 0, "TLS port of the lab's servers (default 443 when it can be bound, else a free port)")
	f.IntVar(&a.parallel, "parallel", probe.DefaultParallel, "targets measured at once")
	f.BoolVarP(&a.quiet, "quiet", "q", false, "no progress display")
	f.DurationVar(&a.latency, "latency", 0, "added latency per round trip in the lab's servers")
	f.BoolVar(&a.hostile, "hostile", false, "run the hostile scenario instead: garbage, drip, 200-certificate and 2 MB chains, malformed certificates, alerts, hostile DNS")
	return cmd
}

func runLab(ctx context.Context, a labArgs, stdout, stderr io.Writer) error {
	sc := lab.DefaultScenario()
	if a.hostile {
		sc = lab.HostileScenario()
		sc.DripInterval = 100 * time.Millisecond // cut at the handshake timeout, not after minutes
	}
	if a.scenario != "" {
		var err error
		if sc, err = lab.LoadScenario(a.scenario); err != nil {
			return usageError("%v", err)
		}
	}
	if a.latency > 0 {
		sc.Latency = a.latency
	}
	l, err := lab.Start(lab.Config{Scenario: sc, Port: a.port})
	if err != nil {
		return fmt.Errorf("starting the lab: %w", err)
	}
	defer l.Close()

	dir := a.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "kzprobe-lab-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files, err := l.WriteFiles(dir)
	if err != nil {
		return fmt.Errorf("writing the lab's files: %w", err)
	}
	cfg := labConfig(l, files, dir)
	cfg.Run.Parallel = a.parallel
	cfg.Run.Quiet = a.quiet
	if a.output != "" {
		cfg.Run.Output = a.output
	} else if err := os.Remove(cfg.Run.Output); err != nil && !errors.Is(err, os.ErrNotExist) {
		// The lab's own file in its folder holds the last demo's
		// measurements, of a lab that no longer exists: replaced, as the
		// PEM files beside it are. A file given with -o is never removed
		// (runProbe refuses it when it is not empty).
		return fmt.Errorf("replacing the lab's measurements: %w", err)
	}

	if a.serve {
		fmt.Fprintf(stdout, "lab %q is up on %s (TLS port %d); files in %s\n\n", sc.Name, l.Net, l.Port, dir)
		fmt.Fprintf(stdout, "Measure it from another terminal with:\n\n  %s\n\nCtrl-C stops the lab.\n", labCommandLine(cfg))
		<-ctx.Done()
		return nil
	}

	fmt.Fprintf(stderr, "lab %q up on %s, TLS port %d; running the probe over %d domains\n", sc.Name, l.Net, l.Port, len(sc.Sites))
	if err := runProbe(ctx, cfg, strings.NewReader(""), stdout, stderr); err != nil {
		return err
	}
	return checkLab(cfg.Run.Output, sc, stdout)
}

// labConfig is a run configuration pointing at l: its resolver, its DoH
// control, its control server, its trust roots and interception roots, and
// loopback only.
func labConfig(l *lab.Lab, files lab.Files, dir string) *Config {
	cfg := &Config{}
	cfg.Targets.Port = l.Port
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
	cfg.Network.Allow = []string{"127.0.0.0/8"}
	for _, n := range l.Nets() {
		if n.Addr().Is6() {
			cfg.Network.Allow = append(cfg.Network.Allow, n.String()) // ::1/128, for IPv6 sites
		}
	}
	cfg.Vantage.Network = "kzprobe lab"
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
// expectation, prints the comparison and fails when one differs.
func checkLab(path string, sc lab.Scenario, w io.Writer) error {
	got, err := readVerdicts(path)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nDOMAIN\tLAB BEHAVIOUR\tEXPECTED\tGOT\t")
	bad := 0
	for _, s := range sc.Sites {
		mark := "✓"
		if got[s.Domain] != s.Expect {
			mark = "✗ MISMATCH"
			bad++
		}
		fmt.Fprintf(tw, "%s\tdns=%s tls=%s\t%s\t%s\t%s\n", s.Domain, s.DNS, s.TLS, s.Expect, dash(got[s.Domain]), mark)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nmeasurements: %s\n", path)
	if bad > 0 {
		return fmt.Errorf("%d of %d lab verdicts differ from the scenario's expectations", bad, len(sc.Sites))
	}
	fmt.Fprintf(w, "all %d verdicts match the scenario\n", len(sc.Sites))
	return nil
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
