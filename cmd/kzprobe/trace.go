package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/chain"
	"kzprobe/probe/failure"
	"kzprobe/probe/guard"
	"kzprobe/targets"
	"kzprobe/trace"
	"kzprobe/vantage"
)

// traceSettings are the configuration keys `kzprobe trace` reads, each
// with run's flag for it: the same resolver, guard, TLS, chain and
// vantage settings as a run.
var traceSettings = []string{
	"targets.port",
	"dns.resolver", "dns.resolv_conf", "dns.timeout",
	"tls.fingerprints", "tls.max_addresses", "tls.trust_roots",
	"interception.extra_roots",
	"run.output", "run.quiet",
	"network.allow", "network.bind",
	"vantage.asn", "vantage.cc", "vantage.network", "vantage.asn_db", "vantage.country_db",
	"vantage.include_ip", "vantage.no_asn", "vantage.no_cc",
	"submit.url", "submit.pin", "submit.ca", "submit.token_file", "submit.wait",
}

// traceArgs are the flags of `kzprobe trace` that are not configuration
// keys.
type traceArgs struct {
	config     string
	sni        string
	to         string
	controlSNI string
	maxHops    int
	hopTimeout time.Duration
	attempts   int
	appendOut  bool
}

func newTraceCmd() *cobra.Command {
	var a traceArgs
	flagKeys := map[string]string{}
	cmd := &cobra.Command{
		Use:   "trace [flags] TARGET | --sni NAME --to IP[:PORT]",
		Short: "Find the hop at which a domain's TLS is intercepted or reset",
		Long: `Trace where on the path a TLS interception (or a reset) answers, hop by hop
(Linux only: it reads ICMP errors from the socket's error queue, IP_RECVERR;
no root needed).

TARGET is a domain (domain:port for another port than --port), resolved by
the local resolver as kzprobe run does; each resolved address (at most
--max-addresses) is traced. Or name the SNI and the address yourself:
--sni NAME --to IP[:PORT], e.g. a neutral endpoint outside the network.

For each address, one after the other:
  1. a TCP traceroute to the port: connects with the TTL (IPv6: hop limit)
     set to 1, 2, 3 ..., until the port answers;
  2. a UDP traceroute to the address (as traceroute does): the
     destination's own distance, which a box that takes over TCP does not
     change; TCP answered before it is a transparent proxy;
  3. an iterative TLS trace for the SNI and for --control-sni: connect at
     the normal TTL, lower the TTL to 1, 2, 3 ..., send the ClientHello and
     record what comes back (a router's ICMP error, a server flight and its
     chain, a reset, a close, an alert, nothing).
Then the finding: the hop at which the SNI is answered by an interception
chain or a reset, how far the control SNI goes, the destination's distance
and the networks of the hops around it (with --asn-db / --country-db).

The ClientHello is the first --fingerprint's. Routers are written as their
/24 (IPv6 /48) prefix with ASN and country, never a whole address; private,
CGNAT and link-local hops (your side) as such, with no address, and a
router in your own address's /24 (/48) as "vantage". One JSON line
(test_name kzprobe_trace) per address goes to -o; a hop table to the
terminal.

--submit URL sends each record, as it is written, to a collector (kzprobe
collector serve) as kzprobe run --submit does: -o and FILE.submit are the
outbox, and what the collector did not take is sent later with kzprobe
submit.

Exit codes: 0 done; 1 a runtime failure (not Linux, an address outside
--allow-net, nothing resolved); 2 a usage or configuration error; 130
interrupted. See kzprobe --help.`,
		Example: `  kzprobe trace regnum.ru
  kzprobe trace --sni regnum.ru --to 203.0.113.7 --control-sni example.com
  kzprobe trace regnum.ru --max-hops 16 --hop-timeout 1s -o trace.jsonl`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(a.config, cmd.Flags(), flagKeys)
			if err != nil {
				return err
			}
			target := ""
			if len(args) == 1 {
				target = args[0]
			}
			if err := a.check(target); err != nil {
				return err
			}
			if !cmd.Flags().Changed("output") && cfg.Run.Output == "" {
				cfg.Run.Output = "trace-" + time.Now().UTC().Format("20060102T150405Z") + ".jsonl"
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runTrace(ctx, cfg, &a, target, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&a.config, "config", "c", "", "configuration `file` (YAML; see probe.yaml)")
	fs.StringVar(&a.sni, "sni", "", "the SNI to trace (with --to: the address to trace it to)")
	fs.StringVar(&a.to, "to", "", "trace to this `IP[:PORT]` (with --sni) instead of resolving TARGET")
	fs.StringVar(&a.controlSNI, "control-sni", trace.DefaultControlSNI, "the control SNI, one no censor blocks: how far it goes is compared with the target's")
	fs.IntVar(&a.maxHops, "max-hops", trace.DefaultMaxHops, "the largest TTL tried")
	fs.DurationVar(&a.hopTimeout, "hop-timeout", trace.DefaultHopTimeout, "how long one probe waits for an answer")
	fs.IntVar(&a.attempts, "attempts", trace.DefaultAttempts, "probes for a TTL of a traceroute that gets no answer (ICMP rate limits eat some)")
	fs.BoolVar(&a.appendOut, "append", false, "add to an -o file that is not empty")
	addSettingFlags(fs, flagKeys, traceSettings)
	return cmd
}

// addSettingFlags declares run's flag of each key (from the settings
// table, with its default and help) on fs and records it in flagKeys.
func addSettingFlags(fs *pflag.FlagSet, flagKeys map[string]string, keys []string) {
	tmp := pflag.NewFlagSet("settings", pflag.ContinueOnError)
	addRunFlags(tmp)
	for _, s := range settings {
		for _, k := range keys {
			if s.key == k && s.flag != "" {
				fs.AddFlag(tmp.Lookup(s.flag))
				flagKeys[s.flag] = s.key
			}
		}
	}
}

// check validates the arguments together: a TARGET, or --sni with --to.
func (a *traceArgs) check(target string) error {
	switch {
	case target != "" && a.to != "":
		return usageError("give a TARGET or --sni NAME --to IP[:PORT], not both")
	case target == "" && a.to == "":
		return usageError("nothing to trace: give a TARGET domain, or --sni NAME --to IP[:PORT] (see kzprobe trace --help)")
	case a.to != "" && a.sni == "":
		return usageError("--to %s needs --sni NAME: the server name to send to it", a.to)
	case a.maxHops < 1 || a.maxHops > 255:
		return usageError("--max-hops %d: give 1 to 255", a.maxHops)
	case a.hopTimeout <= 0:
		return usageError("--hop-timeout %s: give a positive duration, e.g. 2s", a.hopTimeout)
	case a.attempts < 1 || a.attempts > 10:
		return usageError("--attempts %d: give 1 to 10", a.attempts)
	}
	if target != "" {
		if _, err := netip.ParseAddr(target); err == nil {
			return usageError("%s is an address: give --sni NAME --to %s", target, target)
		}
	}
	return nil
}

// traceTarget is one address to trace, with the name it stands for.
type traceTarget struct {
	input   string
	domain  string
	addr    netip.AddrPort
	queries []measurement.DNSQuery
}

// parseTo reads --to: an IP, or IP:PORT ([v6]:port).
func parseTo(s string, port int) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.AddrPort{}, usageError("--to %q: give an IP address, or IP:PORT ([IPv6]:PORT)", s)
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// runTrace is `kzprobe trace` after flag parsing.
func runTrace(ctx context.Context, cfg *Config, a *traceArgs, target string, stdout, stderr io.Writer) (err error) {
	priv := newPrivacy(cfg, stdout, stderr)
	jsonlStdout := stdout
	stdout, stderr = priv.stdout, priv.stderr
	defer func() { err = priv.scrubErr(err) }()
	start := time.Now()

	if !trace.Supported() {
		return trace.ErrUnsupported // before any file is made
	}
	var to netip.AddrPort
	if a.to != "" {
		if to, err = parseTo(a.to, cfg.Targets.Port); err != nil {
			return err
		}
	}
	parts, err := newTraceParts(cfg)
	if err != nil {
		return err
	}
	defer parts.Close()
	dial := parts.dial

	mode := outputNewOnly
	if a.appendOut {
		mode = outputAppend
	}
	out, err := openOutput(cfg.Run.Output, mode, start, jsonlStdout, stderr)
	if err != nil {
		return err
	}
	defer out.Close()
	table := stdout
	if out.Path == "-" {
		table = stderr
	}

	// The vantage and the local resolver, as for a run.
	p := &probe.Prober{Envelope: probe.Envelope{
		SoftwareVersion: softwareVersion(), ProbeASN: cfg.Vantage.ASN, ProbeCC: cfg.Vantage.CC,
		ProbeNetworkName: cfg.Vantage.Network, TestStartTime: start,
	}}
	var resolverIP string
	var tts []traceTarget
	if a.to != "" {
		tts = []traceTarget{{input: a.sni + "@" + to.String(), domain: a.sni, addr: to}}
	} else {
		local, err := newLocalResolver(cfg, dial)
		if err != nil {
			return err
		}
		p.Local = local
		if ap, err := netip.ParseAddrPort(local.Exchanger.Address()); err == nil {
			resolverIP = ap.Addr().String()
		}
		if tts, err = resolveTrace(ctx, cfg, local, target); err != nil {
			return err
		}
	}
	public, err := applyVantage(ctx, cfg, p, dial, stderr)
	if err != nil {
		return err
	}
	priv.addPublic(cfg, public)
	env := p.Envelope
	sub, err := startRunSubmission(ctx, cfg, &env, measurement.TraceTestName, measurement.TraceTestVersion, dial, out.Path, stderr)
	if err != nil {
		return err
	}
	if env.ReportID == "" { // not given by the collector
		env.ReportID = trace.NewReportID(start, env.ProbeASN, env.ProbeCC)
	}
	writer := measurement.NewWriter(out, time.Second)
	local, err := traceEach(ctx, cfg, a, parts, priv, env, resolverIP, tts, writer, sub, table, stderr)
	if cerr := writer.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if serr := sub.finish(stderr, err == nil && ctx.Err() == nil); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	if out.Path != "-" && !cfg.Run.Quiet {
		fmt.Fprintf(stderr, "kzprobe: wrote %s to %s\n", plural(writer.Count(), "trace"), out.Path)
	}
	if local > 0 {
		return fmt.Errorf("%d of %d traces failed for a local reason (blocked_by_allow_net: the address is outside --allow-net)", local, len(tts))
	}
	return nil
}

// traceEach traces each target in turn, writes its record (and tells the
// submitter, nil without --submit) and prints its hop table; local counts
// the traces that failed for a local reason.
func traceEach(ctx context.Context, cfg *Config, a *traceArgs, parts *traceParts, priv *privacy, env probe.Envelope, resolverIP string,
	tts []traceTarget, writer *measurement.Writer, sub *runSubmission, table, stderr io.Writer) (local int, err error) {
	quiet := cfg.Run.Quiet
	for _, tt := range tts {
		tc := parts.config(tt.addr, tt.domain, cmp.Or(a.sni, tt.domain), a.controlSNI, priv.hide)
		tc.MaxHops, tc.HopTimeout, tc.Attempts = a.maxHops, a.hopTimeout, a.attempts
		if !quiet {
			printWrapped(stderr, fmt.Sprintf("kzprobe: tracing %s at %s (control SNI %s, at most %d hops, %s a probe)",
				tc.SNI, tt.addr, tc.ControlSNI, a.maxHops, a.hopTimeout))
			if isTerminal(stderr) {
				tc.Progress = traceProgress(stderr)
			}
		}
		res, err := trace.Run(ctx, tc)
		if tc.Progress != nil {
			fmt.Fprint(stderr, "\r\033[K")
		}
		if errors.Is(err, trace.ErrUnsupported) {
			return local, err
		}
		if err != nil && ctx.Err() != nil {
			return local, &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted: the trace of %s was not finished and is not written", tt.addr)}
		}
		if err != nil {
			return local, err
		}
		res.TestKeys.Queries = tt.queries
		if res.TestKeys.Queries == nil {
			res.TestKeys.Queries = []measurement.DNSQuery{}
		}
		rec := res.Record(env, tt.input, append(trace.Options(&tc), "targets.port="+strconv.Itoa(int(tt.addr.Port()))), resolverIP)
		if err := writeTraceRecord(writer, priv, rec); err != nil {
			return local, err
		}
		sub.notify()
		printTraceTable(table, &res.TestKeys)
		if f := res.TestKeys.Failure; f != nil && failure.IsLocal(*f) {
			local++
		}
	}
	return local, nil
}

// traceParts are what every trace of a command shares, built once from
// the configuration: the guard and its dialer (--allow-net, --bind), the
// chain judge (--trust-roots, --interception-roots), the MMDB files for
// the routers' networks, the fingerprint. kzprobe trace uses them; so can
// a command that traces what it found (run --trace): newTraceParts, then
// trace.Run with parts.config(...) for each address, then
// Result.Record and writeTraceRecord.
type traceParts struct {
	guard       *guard.Guard
	dial        guard.DialFunc
	analyzer    *chain.Analyzer
	db          *vantage.DB
	fingerprint string
	bind        netip.Addr
	vantage     VantageConfig
}

// newTraceParts builds the parts from cfg; Close releases the MMDB files.
func newTraceParts(cfg *Config) (*traceParts, error) {
	g, err := guard.Parse(cfg.Network.Allow...)
	if err != nil {
		return nil, fmt.Errorf("%w: network.allow: %v", ErrConfig, err)
	}
	analyzer, err := newAnalyzer(cfg)
	if err != nil {
		return nil, err
	}
	db, err := vantage.Open(cfg.Vantage.ASNDB, cfg.Vantage.CountryDB)
	if err != nil {
		return nil, fmt.Errorf("%w: vantage: %v", ErrConfig, err)
	}
	tp := &traceParts{guard: g, dial: g.Dialer(bindDialer(cfg.Network.Bind)), analyzer: analyzer, db: db,
		fingerprint: probe.DefaultFingerprint, vantage: cfg.Vantage}
	if len(cfg.TLS.Fingerprints) > 0 {
		tp.fingerprint = cfg.TLS.Fingerprints[0]
	}
	if cfg.Network.Bind != "" {
		tp.bind, _ = netip.ParseAddr(cfg.Network.Bind)
	}
	return tp, nil
}

// Close releases the MMDB files.
func (tp *traceParts) Close() error { return tp.db.Close() }

// config is the trace of one address with the parts; own are the
// probe's addresses the scrubber hides (privacy.hide). The bounds are the
// trace package's defaults until the caller sets them.
func (tp *traceParts) config(addr netip.AddrPort, domain, sni, controlSNI string, own []netip.Addr) trace.Config {
	return trace.Config{
		Address: addr, Domain: domain, SNI: sni, ControlSNI: controlSNI,
		Fingerprint: tp.fingerprint, Handshaker: &probe.Handshaker{},
		Analyzer: tp.analyzer, Guard: tp.guard, Dial: tp.dial, Bind: tp.bind,
		Lookup: hopLookup(tp.db, tp.vantage), Own: own,
	}
}

// writeTraceRecord writes one trace record through the privacy layer:
// raw bytes that hold the probe's address (a forged leaf that names the
// client) withheld as in run's records, then the line scrubbed.
func writeTraceRecord(w *measurement.Writer, priv *privacy, rec *measurement.Trace) error {
	if !priv.sc.Empty() {
		measurement.WithholdTrace(rec, priv.sc.Contains)
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding the trace of %s: %w", rec.TestKeys.Address, err)
	}
	if !priv.sc.Empty() {
		line = priv.sc.ScrubBytes(line)
	}
	return w.WriteLine(append(line, '\n'))
}

// hopLookup is the routers' network lookup: the MMDB files, less what
// --no-asn and --no-cc leave out (a router's network would otherwise name
// the volunteer's).
func hopLookup(db *vantage.DB, v VantageConfig) func(netip.Addr) vantage.Info {
	return func(a netip.Addr) vantage.Info {
		info := db.Lookup(a)
		if v.NoASN {
			info.ASN, info.Network = "", ""
		}
		if v.NoCC {
			info.CC = ""
		}
		return info
	}
}

// resolveTrace resolves target (a domain, or domain:port) with the local
// resolver and returns its addresses, at most tls.max_addresses.
func resolveTrace(ctx context.Context, cfg *Config, local *probe.DNSResolver, target string) ([]traceTarget, error) {
	tg, err := targets.Normalize(target)
	if err != nil {
		return nil, usageError("%s: %v", target, err)
	}
	port := cfg.Targets.Port
	if tg.Port != 0 {
		port = tg.Port
	}
	queries := probe.LookupAll(ctx, local, tg.Domain, probe.NewEpoch(nil))
	addrs := probe.Addrs(queries)
	if len(addrs) == 0 {
		why := "no address"
		for _, q := range queries {
			if q.Failure != nil {
				why = *q.Failure
			}
		}
		return nil, fmt.Errorf("%s did not resolve (%s) through %s: nothing to trace", tg.Domain, why, local.Exchanger.Address())
	}
	if n := cfg.TLS.MaxAddresses; n > 0 && len(addrs) > n {
		addrs = addrs[:n]
	}
	out := make([]traceTarget, len(addrs))
	for i, ad := range addrs {
		out[i] = traceTarget{input: target, domain: tg.Domain, addr: netip.AddrPortFrom(ad, uint16(port)), queries: queries}
	}
	return out, nil
}

// traceProgress shows the probe under way on one line of w.
func traceProgress(w io.Writer) func(trace.Step) {
	return func(s trace.Step) {
		fmt.Fprintf(w, "\r\033[K  %s trace, TTL %d: %s", s.Trace, s.TTL, s.Answer)
	}
}

// The hop table's columns, 76 characters wide in all.
const traceRowFormat = "%3s %-18s %-15s %-7s %-7s %-10s %-10s"

// traceRow writes one row of the hop table, without trailing blanks.
func traceRow(w io.Writer, cells ...any) {
	fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf(traceRowFormat, cells...), " "))
}

// printTraceTable writes one trace as a hop table and its finding, in
// 80 columns.
func printTraceTable(w io.Writer, tk *measurement.TraceTestKeys) {
	fmt.Fprintf(w, "\ntrace %s at %s (control SNI %s)\n", tk.SNI, tk.Address, tk.ControlSNI)
	if tk.Failure != nil {
		fmt.Fprintf(w, "  not traced: %s\n", *tk.Failure)
		return
	}
	traceRow(w, "hop", "router", "network", "tcp", "udp", "target", "control")
	last := 0
	for _, ps := range [][]measurement.TraceProbe{tk.TCPTraceroute, tk.UDPTraceroute} {
		for _, p := range ps {
			last = max(last, p.TTL)
		}
	}
	for _, its := range [][]measurement.TLSIteration{tk.TargetTrace, tk.ControlTrace} {
		for _, it := range its {
			last = max(last, it.TTL)
		}
	}
	for ttl := 1; ttl <= last; ttl++ {
		hop := traceHopAt(tk, ttl)
		router, network := "*", ""
		if hop != nil {
			router = hop.Class
			if hop.Prefix != "" {
				router = hop.Prefix
			}
			network = strings.TrimSpace(hop.ASN + " " + hop.CC)
		}
		traceRow(w, strconv.Itoa(ttl), router, fit(network, 15),
			probeCell(tk.TCPTraceroute, ttl), probeCell(tk.UDPTraceroute, ttl),
			helloCell(tk.TargetTrace, ttl), helloCell(tk.ControlTrace, ttl))
	}
	fmt.Fprintln(w, strings.Join(wrapWords("finding: "+tk.Finding.Summary, 78), "\n"))
}

// traceHopAt is the router or destination at ttl as any trace met it.
func traceHopAt(tk *measurement.TraceTestKeys, ttl int) *measurement.TraceHop {
	for _, ps := range [][]measurement.TraceProbe{tk.UDPTraceroute, tk.TCPTraceroute} {
		for _, p := range ps {
			if p.TTL == ttl && p.Hop != nil {
				return p.Hop
			}
		}
	}
	for _, its := range [][]measurement.TLSIteration{tk.TargetTrace, tk.ControlTrace} {
		for _, it := range its {
			if it.TTL == ttl && it.Hop != nil {
				return it.Hop
			}
		}
	}
	return nil
}

// probeCell is a traceroute's answer at ttl, in a word.
func probeCell(ps []measurement.TraceProbe, ttl int) string {
	for _, p := range ps {
		if p.TTL != ttl {
			continue
		}
		switch p.Answer {
		case measurement.AnswerRouter:
			return "ttl-ex"
		case measurement.AnswerSilent:
			return "*"
		case measurement.AnswerDestination:
			if p.Connected {
				return "open"
			}
			if p.ICMP != nil {
				return "dest"
			}
			return "refused"
		case measurement.AnswerUnreachable:
			return "unreach"
		}
		return "fail"
	}
	return ""
}

// helloCell is a TLS trace's answer at ttl, in a word or two.
func helloCell(its []measurement.TLSIteration, ttl int) string {
	for _, it := range its {
		if it.TTL != ttl {
			continue
		}
		switch it.Answer {
		case measurement.AnswerRouter:
			return "ttl-ex"
		case measurement.AnswerSilent:
			return "*"
		case measurement.AnswerServer:
			switch c := it.Chain; {
			case c == nil:
				return "server"
			case c.Interception != nil:
				return "INTERCEPT"
			case c.Trusted:
				return "trusted"
			}
			return "untrusted"
		case measurement.AnswerReset:
			return "RESET"
		case measurement.AnswerEOF:
			return "CLOSED"
		case measurement.AnswerAlert:
			return "ALERT"
		}
		return "fail"
	}
	return ""
}

// fit cuts s to n runes.
func fit(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
