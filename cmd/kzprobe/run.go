package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"kzprobe/control"
	"kzprobe/dnsx"
	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/chain"
	"kzprobe/probe/guard"
)

func newRunCmd() *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "run [flags]",
		Short: "Measure a list of domains and say which are intercepted",
		Long: `Measure each target: resolve it with the local resolver and with the control
resolver, compare the answers, hand-shake with browser fingerprints, record
the chain that was presented and judge it. One JSON line per target goes to
the output file as soon as the target is done; a verdict table goes to the
terminal.

The output file is locked while the run writes it: a second run on the same
file stops at once (exit code 1). A file that is not empty is refused
(exit code 2) unless --append (add this run to it, as a new report) or
--resume (continue the run it holds: the file must exist, and a target list
that differs from the file's is named) says what to do with it. -o -
(stdout) is never refused.

Verdicts: ok, mitm_isca (chain leads to an ISCA/Qaznet root on consistent
DNS), mitm_other (other untrusted chain), dns_tampering, tls_blocking,
tcp_blocking, down (fails from the control too), error (could not decide,
or the probe's own failure: no control resolver answered, out of file
descriptors).

--trace (Linux only) traces each target found mitm_isca, mitm_other,
tls_blocking or tcp_blocking as kzprobe trace does, at most 4 at once while
the run goes on: to the address the verdict was measured on, with the
target's SNI and --trace-control-sni. One kzprobe_trace record per trace goes
to --trace-output (default: -o's name with -trace before .jsonl). ok,
dns_tampering, down and error targets are not traced; a trace that fails is
reported and changes no verdict and no exit code.

Exit codes: 0 done; 1 a runtime failure, a target that failed for a local
reason among them (the run says how many); 2 a usage or configuration
error; 3 a target got a verdict of --fail-on; 130 interrupted. See
kzprobe --help.`,
		Example: `  kzprobe run                                  # the 14 report domains
  kzprobe run -i kz.csv -o kz.jsonl            # a Citizen Lab list
  kzprobe run -d regnum.ru -d xakep.ru         # a quick recheck
  kzprobe run -i kz.csv --resume kz.jsonl      # continue an interrupted run
  kzprobe run -c probe.yaml --parallel 32`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configFile, cmd.Flags(), runFlags)
			if err != nil {
				return err
			}
			if err := outputFlags(cmd, &cfg.Run, "run"); err != nil {
				return err
			}
			tf := traceFlagsOf(cfg, cfg.Run.TraceControlSNI)
			if err := tf.check(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runProbe(ctx, cfg, &tf, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVarP(&configFile, "config", "c", "", "configuration `file` (YAML; see probe.yaml)")
	cmd.Flags().String("resume", "", "continue an interrupted run: skip the targets already measured in this JSONL `file` (which must exist) and append the rest to it, in the same report")
	cmd.Flags().Bool("append", false, "add this run, as a new report, to an -o file that is not empty (without --append or --resume such a file is refused)")
	addRunFlags(cmd.Flags())
	return cmd
}

// wiring is a run's parts, built from the configuration before any
// network activity.
type wiring struct {
	prober  *probe.Prober
	dial    guard.DialFunc
	closers []io.Closer
}

func (w *wiring) Close() {
	for _, c := range w.closers {
		c.Close()
	}
}

// buildProber turns the configuration into a Prober. It reads every file
// the configuration names, so that mistakes surface before measuring.
func buildProber(cfg *Config, start time.Time, version string) (*wiring, error) {
	g, err := guard.Parse(cfg.Network.Allow...)
	if err != nil {
		return nil, fmt.Errorf("%w: network.allow: %v", ErrConfig, err)
	}
	dial := g.Dialer(bindDialer(cfg.Network.Bind))
	w := &wiring{dial: dial}
	analyzer, err := newAnalyzer(cfg)
	if err != nil {
		return nil, err
	}
	local, err := newLocalResolver(cfg, dial)
	if err != nil {
		return nil, err
	}
	controlResolver, controlServer, err := w.addControl(cfg)
	if err != nil {
		w.Close()
		return nil, err
	}
	w.prober = &probe.Prober{
		Local:           local,
		Control:         controlResolver,
		ControlServer:   controlServer,
		Connector:       &probe.Connector{Dial: dial, Timeout: cfg.TLS.Timeout},
		Handshaker:      &probe.Handshaker{Timeout: cfg.TLS.Timeout},
		Analyzer:        analyzer,
		Fingerprints:    cfg.TLS.Fingerprints,
		SmallHelloRetry: cfg.TLS.SmallHelloRetry,
		MaxAddresses:    cfg.TLS.MaxAddresses,
		Port:            cfg.Targets.Port,
		// A run confined to some ranges (the lab: loopback) treats
		// answers in them as ordinary addresses, not bogons.
		Consistency: probe.ConsistencyOptions{Exempt: g.Prefixes()},
		Timeout:     cfg.Run.TargetTimeout,
		// The report ID is made once the vantage is known (runProbe): it
		// names the network and the country.
		Envelope: probe.Envelope{
			SoftwareVersion:  version,
			ProbeASN:         cfg.Vantage.ASN,
			ProbeCC:          cfg.Vantage.CC,
			ProbeNetworkName: cfg.Vantage.Network,
			TestStartTime:    start,
		},
	}
	return w, nil
}

// newAnalyzer is the chain judge: the trust store (tls.trust_roots or the
// embedded Mozilla bundle) and the embedded knowledge of the interception
// PKI with interception.extra_roots added.
func newAnalyzer(cfg *Config) (*chain.Analyzer, error) {
	trust, err := loadTrust(cfg.TLS.TrustRoots)
	if err != nil {
		return nil, err
	}
	kb, err := chain.Default()
	if err != nil {
		return nil, fmt.Errorf("loading the embedded knowledge base: %w", err)
	}
	for _, f := range cfg.Interception.ExtraRoots {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("%w: interception.extra_roots: %s", ErrConfig, pathProblem(f, err))
		}
		if _, err := kb.AddRootsPEM(data, f); err != nil {
			return nil, fmt.Errorf("%w: interception.extra_roots: %s: %v", ErrConfig, f, err)
		}
	}
	return chain.NewAnalyzer(trust, kb), nil
}

// newLocalResolver is the network's own resolver: dns.resolver (port 53
// when it names none), else the first nameserver of dns.resolv_conf.
func newLocalResolver(cfg *Config, dial guard.DialFunc) (*probe.DNSResolver, error) {
	resolver := cfg.DNS.Resolver
	if resolver == "" {
		servers, err := dnsx.ReadResolvConf(cfg.DNS.ResolvConf)
		if err != nil {
			return nil, fmt.Errorf("%w: dns.resolv_conf: %v (or set --resolver ip:port)", ErrConfig, err)
		}
		resolver = servers[0]
	} else if a, err := netip.ParseAddr(resolver); err == nil {
		resolver = netip.AddrPortFrom(a, 53).String()
	}
	return &probe.DNSResolver{
		Exchanger: dnsx.NewDNSExchanger(resolver, dial),
		Timeout:   cfg.DNS.Timeout,
		Retries:   cfg.DNS.Retries,
	}, nil
}

// addControl builds the view from outside: the control resolver
// (ControlConfig.Specs: control.url, then control.fallbacks when they
// apply) and, when control.server is set,
// the control server's client, both dialled through w.dial and closed
// with w.
func (w *wiring) addControl(cfg *Config) (*probe.DNSResolver, probe.ControlServer, error) {
	var roots *x509.CertPool
	if cfg.Control.CA != "" {
		var err error
		if roots, err = loadPool(cfg.Control.CA, "control.ca"); err != nil {
			return nil, nil, err
		}
	}
	ex, err := dnsx.NewWithFallbacks(cfg.Control.Specs(), dnsx.Options{RootCAs: roots, Dial: w.dial, Timeout: cfg.DNS.Timeout})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: control.url: %v", ErrConfig, err)
	}
	w.closers = append(w.closers, ex)
	resolver := &probe.DNSResolver{Exchanger: ex, Timeout: cfg.DNS.Timeout, Retries: cfg.DNS.Retries}
	if cfg.Control.Server == "" {
		return resolver, nil, nil
	}
	// The control server's certificate is checked against the same roots
	// as the control resolver's (control.ca), and a host name in its URL
	// is resolved by the control resolver, never the local one.
	c, err := control.NewClient(cfg.Control.Server, control.ClientOptions{
		Token: cfg.Control.Token, RootCAs: roots, Dial: w.dial, Resolver: resolver,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: control.server: %v", ErrConfig, err)
	}
	w.closers = append(w.closers, c)
	return resolver, c, nil
}

// controlName is the TLS name to verify for the control at rawURL: name
// when given, else the well-known name of a public resolver's IP
// (dnsx.KnownServerName), else "" (the IP).
func controlName(rawURL, name string) string {
	if name != "" {
		return name
	}
	return dnsx.KnownServerName(rawURL)
}

// loadTrust returns the trust store: nil (the embedded Mozilla bundle) or
// the roots of file.
func loadTrust(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	return loadPool(file, "tls.trust_roots")
}

// loadPool reads a PEM file of certificates into a pool.
func loadPool(file, key string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrConfig, key, pathProblem(file, err))
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %s: certificate %d: %v", ErrConfig, key, file, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: %s: %s holds no PEM certificate", ErrConfig, key, file)
	}
	return pool, nil
}

// runProbe is `kzprobe run` after flag parsing.
func runProbe(ctx context.Context, cfg *Config, tf *traceFlags, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	// Every byte for the terminal goes through the privacy scrubber, and
	// so does the error returned; the JSONL is scrubbed by its writer.
	priv := newPrivacy(cfg, stdout, stderr)
	jsonlStdout := stdout
	stdout, stderr = priv.stdout, priv.stderr
	defer func() { err = priv.scrubErr(err) }()
	start := time.Now()
	w, err := buildProber(cfg, start, softwareVersion())
	if err != nil {
		return err
	}
	defer w.Close()
	if msg := fitParallel(cfg); msg != "" {
		fmt.Fprintln(stderr, msg)
	}

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
		if err := src.resume(out, w.prober, stderr); err != nil {
			return err
		}
	}
	writer := measurement.NewWriter(out, cfg.Run.SyncInterval)
	public, err := applyVantage(ctx, cfg, w.prober, w.dial, stderr)
	if err != nil {
		return err
	}
	sub, err := startRunSubmission(ctx, cfg, &w.prober.Envelope, measurement.TestName, measurement.TestVersion, w.dial, outPath, stderr)
	if err != nil {
		return err
	}
	if e := &w.prober.Envelope; e.ReportID == "" { // not resumed, not given by the collector
		e.ReportID = probe.NewReportID(start, e.ProbeASN, e.ProbeCC)
	}
	priv.addPublic(cfg, public)
	priv.apply(writer)

	var tracer *foundTracer
	if tf != nil && tf.on {
		resolverIP := ""
		if ap, err := netip.ParseAddrPort(w.prober.Local.Exchanger.Address()); err == nil {
			resolverIP = ap.Addr().String()
		}
		tracer, err = startFoundTracer(ctx, cfg, tf.tracePath(outPath, start), cfg.Run.outputMode(), start,
			w.prober.Envelope, tf.controlSNI, resolverIP, priv, stderr)
		if err != nil {
			return err
		}
	}
	table := stdout
	if outPath == "-" {
		table = stderr
	}
	con := startConsole(table, stderr, cfg, w, src, outPath, start)
	if cfg.Run.Verbose {
		// The steps as they happen, so that a target that hangs shows
		// what it waits for.
		w.prober.OnStep = con.step
	}
	runner := &probe.Runner{
		Prober:   w.prober,
		Parallel: cfg.Run.Parallel,
		Writer:   writer,
		OnResult: func(m *measurement.Measurement) {
			con.result(m)
			sub.notify()
			if addr, ok := runTraceTarget(m); ok && tracer != nil {
				tracer.trace(addr, m.TestKeys.Domain, m.Input, m.TestKeys.Queries)
			}
		},
	}
	inputs := make(chan probe.Input)
	go src.feed(ctx, inputs, stderr, con)
	stats, runErr := runner.Run(ctx, inputs)
	if err := writer.Close(); err != nil && runErr == nil {
		runErr = err
	}
	con.finish()
	subErr := sub.finish(stderr, runErr == nil && ctx.Err() == nil)
	con.printSummary(src.skipped())
	if outPath != "-" {
		con.wrote(stats.Written, outPath)
	}
	if tracer != nil {
		tracer.report(con)
	}
	switch {
	case errors.Is(runErr, context.Canceled) || (runErr == nil && ctx.Err() != nil):
		return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted: %s measured and written, %d in flight dropped; rerun to measure the rest", plural(stats.Written, "target"), stats.Interrupted)}
	case runErr != nil:
		if outPath != "-" {
			return fmt.Errorf("%w\n(%s safe in %s; free space or choose another -o, then continue with: kzprobe run --resume %s and the same targets)", runErr, plural(stats.Written, "measurement")+isAre(stats.Written), outPath, outPath)
		}
		return runErr
	}
	if subErr != nil {
		return subErr
	}
	if stats.Written == 0 && src.resumed == 0 {
		// Exit 1, as a reading command that read no measurement: the
		// inputs named exist, and hold nothing to work on.
		return errors.New("no target was measured: the target list is empty or every line was invalid (see the messages above; give domains with -d or a list with -i)")
	}
	return runOutcome(con.summary)
}

// runOutcome is the exit of a run that measured every target: exitFailOn
// when a target got a verdict of --fail-on (it wins: the finding is the
// network's, and a script waits for it), exitFailure when a target failed
// for a local reason (its verdict is error: the probe's own failure, not
// the network's), nil otherwise.
func runOutcome(s *summary) error {
	var msgs []string
	local, byRule := s.localFailures()
	if local > 0 {
		msgs = append(msgs, fmt.Sprintf("%d of %d targets failed for a local reason, the probe's own failure and not the network's (%s): their verdict is error, see verdict_reason",
			local, s.total, byRule))
	}
	hits, byVerdict := s.failOnHits()
	if hits > 0 {
		msgs = append(msgs, fmt.Sprintf("%d of %d targets got a verdict of --fail-on (%s)", hits, s.total, byVerdict))
	}
	switch {
	case hits > 0:
		return &exitError{code: exitFailOn, err: errors.New(strings.Join(msgs, "\nkzprobe: "))}
	case local > 0:
		return &exitError{code: exitFailure, err: errors.New(msgs[0])}
	}
	return nil
}

// socketsPerTarget is the most sockets one target holds at once: the
// local A and AAAA queries, the control's (over UDP; DoH and DoT share
// kept connections), and one connection per address and fingerprint.
func socketsPerTarget(cfg *Config) int {
	return 4 + cfg.TLS.MaxAddresses*len(cfg.TLS.Fingerprints)
}

// fitParallel lowers run.parallel to what the open-file limit allows
// (ulimit -n, which Go has already raised to the hard limit) when that
// many targets at once may need more sockets than the process may open,
// and says so; it returns "" when they fit. Targets past the limit failed
// with "too many open files": 2 886 of 3 027 records were error at
// --parallel 10000 under ulimit -n 1024.
func fitParallel(cfg *Config) string {
	limit, ok := openFileLimit()
	if !ok {
		return ""
	}
	const reserve = 64 // output, input, the guard's listeners, kept connections
	per := socketsPerTarget(cfg)
	need := uint64(cfg.Run.Parallel)*uint64(per) + reserve
	if need <= limit {
		return ""
	}
	fit := max((int(limit)-reserve)/per, 1)
	msg := fmt.Sprintf("kzprobe: warning: lowering --parallel (run.parallel) from %d to %d: %d targets at once may hold up to %d sockets (%d each), "+
		"more than the %d files this process may open; raise the limit (ulimit -n) to measure more at once",
		cfg.Run.Parallel, fit, cfg.Run.Parallel, need, per, limit)
	cfg.Run.Parallel = fit
	return msg
}
