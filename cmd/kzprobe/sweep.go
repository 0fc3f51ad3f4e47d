package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"kzprobe/control"
	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/chain"
	"kzprobe/probe/guard"
	"kzprobe/sweep"
)

// sweepSharedFlags are the flags of kzprobe run that kzprobe sweep takes
// too, with the same keys and help (the settings table).
var sweepSharedFlags = []string{
	"input", "domain", "output", "fingerprint", "timeout", "trust-roots", "interception-roots",
	"quiet", "wide", "no-color", "allow-net", "bind",
	"asn", "cc", "network-name", "asn-db", "country-db", "whoami", "include-ip", "no-asn", "no-cc",
	"control-server", "control-token", "control-ca",
	"submit", "submit-pin", "submit-ca", "submit-token-file", "submit-wait",
	"trace", "trace-output",
}

// sweepOwnFlags are kzprobe sweep's own flags: flag, short, key, usage;
// the defaults are the settings table's.
var sweepOwnFlags = [][4]string{
	{"endpoint", "", "sweep.endpoint", "the neutral endpoint `ip:port` (default: the one --control-server names); needs --endpoint-pin"},
	{"endpoint-pin", "", "sweep.endpoint_pin", "the endpoint certificate's key `pin`, sha256:BASE64 or sha256:HEX (the SHA-256 of its SubjectPublicKeyInfo; see the example)"},
	{"control-sni", "", "sweep.control_sni", "the control `name`, one nobody blocks: tried first, every --control-every names and after every name that is not clean"},
	{"control-every", "", "sweep.control_every", "names between two control handshakes"},
	{"rate", "", "sweep.rate", "names started per second at most, as `N/s` (modest by default: a sweep is loud); 0 for no limit"},
	{"parallel", "", "sweep.parallel", "names in progress at once"},
	{"hello", "", "sweep.hello", "the `ClientHello`: fingerprint (the first --fingerprint) or tls12 (TLS 1.2 only, ended once the certificate is read: less work per name, but it does not see what a middlebox does to TLS 1.3 or after the certificate; see README)"},
	{"found", "", "sweep.found", "write the intercepted and blocked names to this `file`, one a line, to confirm with kzprobe run -i FILE"},
}

// sweepUsage is the help of the shared flags whose run help does not fit
// a sweep (the same keys, another meaning of the words).
var sweepUsage = map[string]string{
	"output":      "JSONL output `file` (default sweep-<UTC time>.jsonl; - for stdout)",
	"fingerprint": "the ClientHello `fingerprint` of every handshake (the first, if several): " + strings.Join(probe.Fingerprints(), ", "),
	"timeout":     "timeout of one TCP connect and of one TLS handshake",
	"trace":       "trace each name found intercepted or blocked, hop by hop as kzprobe trace does (Linux only), at most 4 at once, to --trace-output (with --submit, sent too)",
	"domain":      "sweep this name (repeatable); without -i or -d the embedded list of the 14 report domains is used",
}

// sweepFlags maps each flag of kzprobe sweep to its configuration key.
var sweepFlags = func() map[string]string {
	m := map[string]string{}
	for _, name := range sweepSharedFlags {
		m[name] = runFlags[name]
	}
	for _, f := range sweepOwnFlags {
		m[f[0]] = f[2]
	}
	return m
}()

// addSweepFlags declares kzprobe sweep's flags on fs, with the settings
// table's defaults.
func addSweepFlags(fs *pflag.FlagSet) {
	all := pflag.NewFlagSet("run", pflag.ContinueOnError)
	addRunFlags(all)
	for _, name := range sweepSharedFlags {
		f := all.Lookup(name)
		if u, ok := sweepUsage[name]; ok {
			f.Usage = u
		}
		fs.AddFlag(f)
	}
	for _, f := range sweepOwnFlags {
		switch d := defaults[f[2]].(type) {
		case string:
			fs.StringP(f[0], f[1], d, f[3])
		case int:
			fs.IntP(f[0], f[1], d, f[3])
		default:
			panic(fmt.Sprintf("sweep flag --%s: default of type %T", f[0], d))
		}
	}
}

func newSweepCmd() *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "sweep -i LIST (--control-server URL | --endpoint ADDR ...)",
		Short: "Find names intercepted or blocked by SNI alone, on one endpoint",
		Long: `Hand-shake once per name with one neutral TLS endpoint outside the network,
the same address every time, with the name as the SNI and the configured
fingerprint. Nothing is resolved and no site is touched. The endpoint's own
certificate is pinned by its key: any other chain is interception on the way
(judged as kzprobe run judges chains: sni_intercepted_isca with the root,
the intermediates and the expired flag, or sni_intercepted_other); a
handshake that fails for one name while the control name succeeds right after
it is sni_blocked; the endpoint's own certificate is clean.

The endpoint is kzprobe control serve --sni-endpoint on a server abroad: with
--control-server URL its address and pin come from the control API. Any TLS
server abroad whose certificate you know serves too: --endpoint IP:PORT
--endpoint-pin sha256:... The control name is tried first, every
--control-every names and after every name that is not clean: a dead endpoint,
an endpoint whose address is blocked and a pin that does not match end the
sweep with error and a message saying which, never with a list of false
findings.

Lists: one name a line, a Citizen Lab CSV or a Tranco-style rank,domain list
(found by its first line, whatever its name), read as a stream (any size);
--resume FILE continues an interrupted sweep. One JSON line per name
(test_name kzprobe_sni_sweep, the format of kzprobe run's records,
documented in measurement/sweep.go). --found FILE collects the
intercepted and blocked names: confirm each on its real addresses, with DNS
consistency, with kzprobe run -i FILE.

Verdicts: sni_intercepted_isca, sni_intercepted_other, sni_blocked, clean,
error (the control failed too, the TCP connect failed before any SNI was sent,
or the probe's own failure: --allow-net, out of file descriptors).

--trace (Linux only) traces each name found sni_intercepted_isca,
sni_intercepted_other or sni_blocked as kzprobe trace does, at most 4 at
once while the sweep goes on: to the endpoint, with the name as the SNI and
--control-sni as the control. One kzprobe_trace record per trace goes to
--trace-output (default: -o's name with -trace before .jsonl). clean and
error names are not traced; a trace that fails is reported and changes no
verdict and no exit code.

Exit codes: 0 done; 1 a runtime failure, the endpoint failing the control or a
name failing for a local reason among them; 2 a usage or configuration error;
130 interrupted. See kzprobe --help.`,
		Example: `  kzprobe sweep -i top-1m.csv --control-server https://203.0.113.5:8443 --control-token "$(cat token)" --found found.txt
  kzprobe sweep -i list.txt --endpoint 203.0.113.5:443 --endpoint-pin sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
  kzprobe run -i found.txt                      # confirm what the sweep found

  # the pin of a certificate you hold (cert.pem):
  openssl x509 -in cert.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | openssl base64`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configFile, cmd.Flags(), sweepFlags)
			if err != nil {
				return err
			}
			if err := outputFlags(cmd, &cfg.Run, "sweep"); err != nil {
				return err
			}
			if cfg.Sweep.Endpoint == "" && cfg.Control.Server == "" {
				return usageError("say which endpoint to sweep against: --control-server URL (kzprobe control serve --sni-endpoint), or --endpoint IP:PORT --endpoint-pin PIN")
			}
			if cfg.Sweep.Endpoint != "" && cfg.Sweep.EndpointPin == "" {
				return usageError("--endpoint needs --endpoint-pin: without the endpoint's key nothing tells its certificate from an interception")
			}
			tf := traceFlagsOf(cfg, cfg.Sweep.ControlSNI)
			if err := tf.check(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runSweepTraced(ctx, cfg, &tf, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVarP(&configFile, "config", "c", "", "configuration `file` (YAML; see probe.yaml: sweep, targets, tls, network, vantage, control.server)")
	cmd.Flags().String("resume", "", "continue an interrupted sweep: skip the names already in this JSONL `file` (which must exist; names that ended in error because the control failed are tried again) and append the rest to it")
	cmd.Flags().Bool("append", false, "add this sweep, as a new report, to an -o file that is not empty")
	addSweepFlags(cmd.Flags())
	return cmd
}

// parseRate reads sweep.rate: "N/s" or "N", N >= 0; 0 means no limit
// (returned as -1, the Sweeper's "no limit").
func parseRate(s string) (float64, error) {
	n := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "/s"))
	r, err := strconv.ParseFloat(n, 64)
	if err != nil || r < 0 || r != r {
		return 0, fmt.Errorf("is %q, not a rate such as 10/s (0 for no limit)", s)
	}
	if r == 0 {
		return -1, nil
	}
	return r, nil
}

// sweepEndpoint is the endpoint of cfg: asked of the control server, or
// given by --endpoint and --endpoint-pin (then checked against the control
// server's pin when both are there).
func sweepEndpoint(ctx context.Context, cfg *Config, client *control.Client) (sweep.Endpoint, error) {
	var ep sweep.Endpoint
	if cfg.Sweep.Endpoint != "" {
		addr, _ := netip.ParseAddrPort(cfg.Sweep.Endpoint)
		pin, _ := chain.ParsePin(cfg.Sweep.EndpointPin)
		return sweep.Endpoint{Addr: addr, Pin: pin, PinSource: sweep.PinFromFlag}, nil
	}
	addr, pin, err := client.SNIEndpoint(ctx)
	if err != nil {
		return ep, fmt.Errorf("asking the control server %s for its SNI endpoint: %w", cfg.Control.Server, err)
	}
	if cfg.Sweep.EndpointPin != "" {
		if want, _ := chain.ParsePin(cfg.Sweep.EndpointPin); want != pin {
			return ep, fmt.Errorf("the control server %s gives the pin %s for its SNI endpoint, not --endpoint-pin %s: a changed endpoint, or another server", cfg.Control.Server, pin, want)
		}
	}
	return sweep.Endpoint{Addr: addr, Pin: pin, PinSource: sweep.PinFromControlServer}, nil
}

// runSweep is `kzprobe sweep` after flag parsing, without --trace.
func runSweep(ctx context.Context, cfg *Config, stdin io.Reader, stdout, stderr io.Writer) error {
	return runSweepTraced(ctx, cfg, nil, stdin, stdout, stderr)
}

// runSweepTraced is `kzprobe sweep` after flag parsing; tf (nil: none)
// is --trace.
func runSweepTraced(ctx context.Context, cfg *Config, tf *traceFlags, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	priv := newPrivacy(cfg, stdout, stderr)
	jsonlStdout := stdout
	stdout, stderr = priv.stdout, priv.stderr
	defer func() { err = priv.scrubErr(err) }()
	start := time.Now()
	if cfg.Run.Output == "" {
		cfg.Run.Output = "sweep-" + start.UTC().Format("20060102T150405Z") + ".jsonl"
	}
	rate, _ := parseRate(cfg.Sweep.Rate)
	// The wiring of kzprobe run, for its guard, its control server
	// client and its chain judge; the sweep resolves nothing.
	g, err := guard.Parse(cfg.Network.Allow...)
	if err != nil {
		return fmt.Errorf("%w: network.allow: %v", ErrConfig, err)
	}
	dial := g.Dialer(bindDialer(cfg.Network.Bind))
	w := &wiring{dial: dial}
	analyzer, err := newAnalyzer(cfg)
	if err != nil {
		return err
	}
	_, controlServer, err := w.addControl(cfg)
	if err != nil {
		w.Close()
		return err
	}
	defer w.Close()
	client, _ := controlServer.(*control.Client)
	ep, err := sweepEndpoint(ctx, cfg, client)
	if err != nil {
		return err
	}
	carrier := &probe.Prober{ControlServer: controlServer, Envelope: probe.Envelope{
		SoftwareVersion: softwareVersion(), ProbeASN: cfg.Vantage.ASN, ProbeCC: cfg.Vantage.CC,
		ProbeNetworkName: cfg.Vantage.Network, TestStartTime: start,
	}}
	w.prober = carrier

	src, err := openTargets(cfg, stdin)
	if err != nil {
		return err
	}
	defer src.Close()
	out, err := openOutput(cfg.Run.Output, cfg.Run.outputMode(), start, jsonlStdout, stderr)
	if err != nil {
		return err
	}
	defer out.Close()
	outPath := out.Path
	if cfg.Run.Resume {
		if err := src.resume(out, carrier, stderr); err != nil {
			return err
		}
	}
	found, err := openFound(cfg)
	if err != nil {
		return err
	}
	defer found.Close()
	writer := measurement.NewWriter(out, cfg.Run.SyncInterval)
	public, err := applyVantage(ctx, cfg, carrier, dial, stderr)
	if err != nil {
		return err
	}
	sub, err := startRunSubmission(ctx, cfg, &carrier.Envelope, measurement.SweepTestName, measurement.SweepTestVersion, dial, outPath, stderr)
	if err != nil {
		return err
	}
	if e := &carrier.Envelope; e.ReportID == "" { // not resumed, not given by the collector
		e.ReportID = probe.NewReportIDFor(measurement.SweepTestName, start, e.ProbeASN, e.ProbeCC)
	}
	priv.addPublic(cfg, public)
	priv.apply(writer)

	var tracer *foundTracer
	if tf != nil && tf.on {
		if tracer, err = startFoundTracer(ctx, cfg, tf.tracePath(outPath, start), cfg.Run.outputMode(), start,
			carrier.Envelope, cfg.Sweep.ControlSNI, "", priv, stderr); err != nil {
			return err
		}
	}
	table := stdout
	if outPath == "-" {
		table = stderr
	}
	con := newConsole(table, stderr, cfg, start)
	con.layout.verdictWidth = sweepVerdictWidth
	if n, counted := src.count(); counted {
		con.setCounted(n)
	}
	con.info(sweepStartLines(cfg, ep, outPath).lines(con.errWidth() - 1)...)
	s := &sweep.Sweeper{
		Endpoint:     ep,
		Connector:    &probe.Connector{Dial: dial, Timeout: cfg.TLS.Timeout},
		Handshaker:   &probe.Handshaker{Timeout: cfg.TLS.Timeout},
		Analyzer:     analyzer,
		Fingerprint:  sweepHello(cfg),
		ControlSNI:   cfg.Sweep.ControlSNI,
		ControlEvery: cfg.Sweep.ControlEvery,
		Rate:         rate,
		Parallel:     cfg.Sweep.Parallel,
		Envelope:     carrier.Envelope,
		Writer:       writer,
		OnResult: func(m *measurement.Measurement) {
			found.add(m)
			con.result(m)
			sub.notify()
			if tracer != nil && sweepTraced(m) {
				tracer.trace(ep.Addr, m.TestKeys.Domain, m.TestKeys.Domain+"@"+ep.Addr.String(), nil)
			}
		},
	}
	fctx, cancelFeed := context.WithCancel(ctx)
	defer cancelFeed()
	inputs := make(chan probe.Input)
	go src.feed(fctx, inputs, stderr, con)
	stats, runErr := s.Run(ctx, inputs)
	cancelFeed()
	if err := writer.Close(); err != nil && runErr == nil {
		runErr = err
	}
	if err := found.Close(); err != nil && runErr == nil {
		runErr = err
	}
	con.finish()
	subErr := sub.finish(stderr, runErr == nil && ctx.Err() == nil)
	con.printSummary(src.skipped())
	if outPath != "-" {
		con.wrote(stats.Written, outPath)
	}
	if subErr != nil && runErr == nil {
		runErr = subErr
	}
	if found.n > 0 {
		con.message(fmt.Sprintf("%s intercepted or blocked by SNI written to %s: confirm each on its real addresses, with DNS consistency, with: kzprobe run -i %s\n",
			plural(found.n, "name"), displayPath(found.path), found.path))
	}
	if tracer != nil {
		tracer.report(con)
	}
	var ee *sweep.EndpointError
	switch {
	case errors.Is(runErr, context.Canceled) || (runErr == nil && ctx.Err() != nil):
		return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted: %s swept and written, %d in flight dropped; continue with --resume %s", plural(stats.Written, "name"), stats.Interrupted, outPath)}
	case errors.As(runErr, &ee):
		return fmt.Errorf("%w\n(%s written to %s; once the endpoint answers again, continue with: kzprobe sweep --resume %s and the same list)", runErr, plural(stats.Written, "record"), outPath, outPath)
	case runErr != nil:
		return runErr
	}
	if stats.Written == 0 && src.resumed == 0 {
		return errors.New("no name was swept: the list is empty or every line was invalid (see the messages above)")
	}
	return runOutcome(con.summary)
}

// sweepHello is the hello of cfg: the first fingerprint, or tls12.
func sweepHello(cfg *Config) string {
	if cfg.Sweep.Hello == probe.HelloTLS12 {
		return probe.HelloTLS12
	}
	return cfg.TLS.Fingerprints[0]
}

// sweepVerdictWidth is the widest sweep verdict, "sni_intercepted_other".
const sweepVerdictWidth = 21

// sweepStartLines says what a sweep will do.
func sweepStartLines(cfg *Config, ep sweep.Endpoint, outPath string) startBlock {
	output := displayPath(outPath)
	if outPath == "-" {
		output = "stdout"
	}
	rate := "at most " + cfg.Sweep.Rate
	if r, _ := parseRate(cfg.Sweep.Rate); r < 0 {
		rate = "no rate limit"
	}
	pinFrom := "--endpoint-pin"
	if ep.PinSource == sweep.PinFromControlServer {
		pinFrom = "the control server"
	}
	return startBlock{
		head: fmt.Sprintf("sweeping names by SNI against %s, %d at once, %s, hello %s", ep.Addr, cfg.Sweep.Parallel, rate, sweepHello(cfg)),
		details: [][2]string{
			{"pin", ep.Pin.String() + " (from " + pinFrom + ")"},
			{"control SNI", fmt.Sprintf("%s, first, every %d names and after every name that is not clean", cfg.Sweep.ControlSNI, cfg.Sweep.ControlEvery)},
			{"output", output},
		}}
}

// foundFile is --found: the intercepted and blocked names, one a line,
// written as they are found.
type foundFile struct {
	path string
	f    *os.File
	mu   sync.Mutex
	n    int
	err  error
}

// openFound creates (or, resuming, appends to) the --found file; a nil
// file's methods do nothing.
func openFound(cfg *Config) (*foundFile, error) {
	if cfg.Sweep.Found == "" {
		return &foundFile{}, nil
	}
	if err := checkOutputFolder(cfg.Sweep.Found); err != nil {
		return nil, err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if cfg.Run.Resume || cfg.Run.Append {
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	f, err := os.OpenFile(cfg.Sweep.Found, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot write --found %s: %w", cfg.Sweep.Found, err)
	}
	return &foundFile{path: cfg.Sweep.Found, f: f}, nil
}

// add writes m's name when its verdict is a finding.
func (ff *foundFile) add(m *measurement.Measurement) {
	if ff.f == nil {
		return
	}
	switch m.TestKeys.Verdict {
	case measurement.VerdictSNIInterceptedISCA, measurement.VerdictSNIInterceptedOther, measurement.VerdictSNIBlocked:
	default:
		return
	}
	ff.mu.Lock()
	defer ff.mu.Unlock()
	if _, err := fmt.Fprintf(ff.f, "%s  # %s\n", m.TestKeys.Domain, m.TestKeys.Verdict); err != nil && ff.err == nil {
		ff.err = err
	}
	ff.n++
}

// Close closes the file and returns the first write error.
func (ff *foundFile) Close() error {
	if ff.f == nil {
		return nil
	}
	err := ff.f.Close()
	ff.f = nil
	if ff.err != nil {
		return fmt.Errorf("writing --found %s: %w", ff.path, ff.err)
	}
	if err != nil {
		return fmt.Errorf("writing --found %s: %w", ff.path, err)
	}
	return nil
}
