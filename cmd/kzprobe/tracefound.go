package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/trace"
)

// traceParallel is how many traces of --trace run at once: a trace is
// slow (a TTL at a time, up to --hop-timeout each), and each holds a
// socket per probe in flight.
const traceParallel = 4

// traceFlags are run.trace, run.trace_output and the control SNI of
// the traces (run.trace_control_sni, or a sweep's sweep.control_sni).
type traceFlags struct {
	on         bool
	output     string
	controlSNI string
}

// traceFlagsOf reads cfg's trace settings; controlSNI is the traces'.
func traceFlagsOf(cfg *Config, controlSNI string) traceFlags {
	return traceFlags{on: cfg.Run.Trace, output: cfg.Run.TraceOutput, controlSNI: controlSNI}
}

// check refuses --trace where it cannot work and --trace-output without
// it, before anything is measured.
func (tf *traceFlags) check() error {
	switch {
	case !tf.on && tf.output != "":
		return usageError("--trace-output %s (run.trace_output) needs --trace (run.trace)", tf.output)
	case tf.on && !trace.Supported():
		return usageError("--trace (run.trace) works on Linux only: it reads the routers' ICMP errors from the socket's error queue (IP_RECVERR), which %s lacks; run without --trace", runtime.GOOS)
	}
	return nil
}

// tracePath is the trace records' file: --trace-output, else outPath
// (the measurements' file, absolute) with -trace before .jsonl, else
// (measurements on stdout) trace-<UTC time>.jsonl.
func (tf *traceFlags) tracePath(outPath string, start time.Time) string {
	switch {
	case tf.output != "":
		return tf.output
	case outPath == "-":
		return "trace-" + start.UTC().Format("20060102T150405Z") + ".jsonl"
	}
	return strings.TrimSuffix(outPath, ".jsonl") + "-trace.jsonl"
}

// foundTracer traces, in the background, at most traceParallel at once,
// each target a run or sweep found intercepted or blocked, and writes
// one kzprobe_trace record per trace to its own file. Its failures are
// counted and reported (report); they never change a verdict or the exit
// code.
type foundTracer struct {
	ctx        context.Context
	parts      *traceParts
	priv       *privacy
	out        *runOutput
	writer     *measurement.Writer
	sub        *runSubmission // --submit's, nil without it
	stderr     io.Writer
	controlSNI string
	resolverIP string
	env        probe.Envelope
	sem        chan struct{}
	wg         sync.WaitGroup

	mu                          sync.Mutex
	started, written, notTraced int
	interrupted                 int
	failures                    []string
}

// startFoundTracer opens the trace file (mode as the measurements'
// file's: new, or appended to) and builds the trace parts from cfg; env
// is the run's envelope once the vantage is known.
func startFoundTracer(ctx context.Context, cfg *Config, path string, mode outputMode, start time.Time, env probe.Envelope,
	controlSNI, resolverIP string, priv *privacy, stderr io.Writer) (*foundTracer, error) {
	if mode == outputResume {
		mode = outputAppend // the trace file of an interrupted run may not exist
	}
	parts, err := newTraceParts(cfg)
	if err != nil {
		return nil, err
	}
	out, err := openOutput(path, mode, start, nil, stderr)
	if err != nil {
		parts.Close()
		return nil, fmt.Errorf("--trace-output: %w", err)
	}
	// With --submit the traces are sent too, in a report of their own:
	// the trace file is their outbox, as -o is the measurements'.
	env.ReportID = ""
	sub, err := startRunSubmission(ctx, cfg, &env, measurement.TraceTestName, measurement.TraceTestVersion, parts.dial, out.Path, stderr)
	if err != nil {
		out.Close()
		parts.Close()
		return nil, fmt.Errorf("--trace with --submit: %w", err)
	}
	if sub != nil {
		sub.label = "--trace: "
	}
	if env.ReportID == "" { // not given by the collector
		env.ReportID = trace.NewReportID(start, env.ProbeASN, env.ProbeCC)
	}
	return &foundTracer{ctx: ctx, parts: parts, priv: priv, out: out, writer: measurement.NewWriter(out, time.Second), sub: sub, stderr: stderr,
		controlSNI: controlSNI, resolverIP: resolverIP, env: env, sem: make(chan struct{}, traceParallel)}, nil
}

// runTraceTarget is where a run measured m's verdict: the address of the
// handshake whose chain is the interception (mitm_*), of the first failed
// handshake (tls_blocking), of the first failed connect (tcp_blocking);
// false for any other verdict (ok, dns_tampering: the address is the
// lie, down, error), which is never traced.
func runTraceTarget(m *measurement.Measurement) (netip.AddrPort, bool) {
	tk := &m.TestKeys
	switch tk.Verdict {
	case measurement.VerdictMITMISCA, measurement.VerdictMITMOther:
		if i := tk.InterceptionChain; i != nil && *i >= 0 && *i < len(tk.TLSHandshakes) {
			return parseAddrPort(tk.TLSHandshakes[*i].Address)
		}
		for i, j := range tk.Chains {
			if j != nil && !j.Trusted && i < len(tk.TLSHandshakes) {
				return parseAddrPort(tk.TLSHandshakes[i].Address)
			}
		}
	case measurement.VerdictTLSBlocking:
		for _, h := range tk.TLSHandshakes {
			if h.Failure != nil {
				return parseAddrPort(h.Address)
			}
		}
	case measurement.VerdictTCPBlocking:
		for _, c := range tk.TCPConnect {
			if c.Status.Failure != nil {
				return parseAddrPort(netipJoin(c.IP, c.Port))
			}
		}
	}
	return netip.AddrPort{}, false
}

// sweepTraced reports whether a sweep traces m: an interception or a
// block by SNI (never clean or error).
func sweepTraced(m *measurement.Measurement) bool {
	switch m.TestKeys.Verdict {
	case measurement.VerdictSNIInterceptedISCA, measurement.VerdictSNIInterceptedOther, measurement.VerdictSNIBlocked:
		return true
	}
	return false
}

func netipJoin(ip string, port int) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:" + strconv.Itoa(port)
	}
	return ip + ":" + strconv.Itoa(port)
}

func parseAddrPort(s string) (netip.AddrPort, bool) {
	ap, err := netip.ParseAddrPort(s)
	return ap, err == nil
}

// trace starts the trace of sni at addr in the background (it waits for
// a free slot there, never in the caller); input names it in the record,
// queries are the resolver's answers the run had for it.
func (ft *foundTracer) trace(addr netip.AddrPort, domain, input string, queries []measurement.DNSQuery) {
	ft.mu.Lock()
	ft.started++
	ft.mu.Unlock()
	ft.wg.Go(func() {
		select {
		case ft.sem <- struct{}{}:
			defer func() { <-ft.sem }()
		case <-ft.ctx.Done():
			ft.count(func() { ft.interrupted++ })
			return
		}
		tc := ft.parts.config(addr, domain, domain, ft.controlSNI, ft.priv.hide)
		res, err := trace.Run(ft.ctx, tc)
		switch {
		case err != nil && ft.ctx.Err() != nil:
			ft.count(func() { ft.interrupted++ })
			return
		case err != nil:
			ft.fail(fmt.Sprintf("%s at %s: %v", domain, addr, err))
			return
		}
		res.TestKeys.Queries = queries
		if res.TestKeys.Queries == nil {
			res.TestKeys.Queries = []measurement.DNSQuery{}
		}
		rec := res.Record(ft.env, input, append(trace.Options(&tc), "targets.port="+strconv.Itoa(int(addr.Port()))), ft.resolverIP)
		if err := writeTraceRecord(ft.writer, ft.priv, rec); err != nil {
			ft.fail(fmt.Sprintf("%s at %s: %v", domain, addr, err))
			return
		}
		ft.sub.notify()
		ft.count(func() {
			ft.written++
			if f := res.TestKeys.Failure; f != nil {
				ft.notTraced++
				ft.failures = append(ft.failures, fmt.Sprintf("%s at %s: %s", domain, addr, *f))
			}
		})
	})
}

func (ft *foundTracer) count(f func()) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	f()
}

func (ft *foundTracer) fail(msg string) {
	ft.count(func() {
		ft.notTraced++
		ft.failures = append(ft.failures, msg)
	})
}

// finish waits for the traces under way (an interrupted context ends
// them at once, unwritten), closes the file and says what was traced:
// the lines for the summary.
func (ft *foundTracer) finish() []string {
	ft.wg.Wait()
	werr := ft.writer.Close()
	// What the collector did not take stays in the trace file; a failing
	// submission changes no verdict and no exit code, as a failing trace.
	if err := ft.sub.finish(ft.stderr, ft.ctx.Err() == nil); err != nil {
		fmt.Fprintf(ft.stderr, "kzprobe: --trace: submit: %v\n", err)
	}
	cerr := ft.out.Close()
	ft.parts.Close()
	ft.mu.Lock()
	defer ft.mu.Unlock()
	path := displayPath(ft.out.Path)
	lines := []string{fmt.Sprintf("--trace: %s of %s written to %s",
		plural(ft.written, "trace record"), plural(ft.started, "target")+" found intercepted or blocked", path)}
	if ft.notTraced > 0 {
		const show = 5
		msg := fmt.Sprintf("--trace: %d not traced (the run's verdicts stand): %s", ft.notTraced, strings.Join(ft.failures[:min(show, len(ft.failures))], "; "))
		if len(ft.failures) > show {
			msg += fmt.Sprintf("; and %d more", len(ft.failures)-show)
		}
		lines = append(lines, msg)
	}
	if ft.interrupted > 0 {
		lines = append(lines, fmt.Sprintf("--trace: %s interrupted, not written", plural(ft.interrupted, "trace")))
	}
	if err := errors.Join(werr, cerr); err != nil {
		lines = append(lines, fmt.Sprintf("--trace: writing %s: %v", path, err))
	}
	return lines
}

// report prints finish's lines as the summary's last ones.
func (ft *foundTracer) report(con *console) {
	for _, l := range ft.finish() {
		con.message(strings.Join(wrapWords(l, con.errWidth()-1), "\n") + "\n")
	}
}
