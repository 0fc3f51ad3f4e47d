package probe

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"kzprobe/measurement"
	"kzprobe/probe/chain"
	"kzprobe/probe/failure"
)

// Envelope is the part of every measurement that describes the run and
// the vantage point rather than the target.
type Envelope struct {
	// ReportID is shared by every measurement of a run; NewReportID makes one.
	ReportID string
	// SoftwareVersion is kzprobe's version.
	SoftwareVersion string
	// ProbeASN ("AS<n>"), ProbeCC and ProbeNetworkName describe the
	// vantage; empty means unknown ("AS0", "ZZ", "").
	ProbeASN, ProbeCC, ProbeNetworkName string
	// ResolverASN and ResolverNetworkName describe the local resolver's network.
	ResolverASN, ResolverNetworkName string
	// ProbeIP is the probe's public address, written only when the user
	// opted in (--include-ip); empty means "127.0.0.1", as OONI writes.
	ProbeIP string
	// Annotations are copied into every measurement.
	Annotations map[string]string
	// TestStartTime is when the run started.
	TestStartTime time.Time
}

// Record is the envelope of one record of testName and testVersion that
// started at start: e's facts, with what a record writes for those unknown
// (AS0, ZZ, the probe_ip placeholder 127.0.0.1), a new measurement_uid,
// and e's annotations (an empty map for none) shared, not copied. The
// test adds its own: input, options, test_helpers, extensions, and the
// resolver's address and the runtime where it has them.
func (e Envelope) Record(testName, testVersion string, start time.Time) measurement.Envelope {
	asn, cc := cmp.Or(e.ProbeASN, "AS0"), cmp.Or(e.ProbeCC, "ZZ")
	ts := e.TestStartTime
	if ts.IsZero() {
		ts = start
	}
	annotations := e.Annotations
	if annotations == nil {
		annotations = map[string]string{}
	}
	return measurement.Envelope{
		DataFormatVersion:    measurement.DataFormatVersion,
		ReportID:             e.ReportID,
		MeasurementUID:       NewMeasurementUID(testName, start, cc),
		MeasurementStartTime: measurement.FormatTime(start),
		TestStartTime:        measurement.FormatTime(ts),
		TestName:             testName,
		TestVersion:          testVersion,
		SoftwareName:         measurement.SoftwareName,
		SoftwareVersion:      e.SoftwareVersion,
		ProbeASN:             asn,
		ProbeCC:              cc,
		ProbeNetworkName:     e.ProbeNetworkName,
		ProbeIP:              cmp.Or(e.ProbeIP, "127.0.0.1"),
		ResolverASN:          cmp.Or(e.ResolverASN, "AS0"),
		ResolverNetworkName:  e.ResolverNetworkName,
		Annotations:          annotations,
	}
}

// The Prober's and the Runner's defaults, used for their zero fields;
// kzprobe run's built-in configuration refers to them.
const (
	// DefaultMaxAddresses is the zero value of [Prober.MaxAddresses].
	DefaultMaxAddresses = 4
	// DefaultPort is the zero value of [Prober.Port]: HTTPS.
	DefaultPort = 443
	// DefaultTargetTimeout is the zero value of [Prober.Timeout].
	DefaultTargetTimeout = 60 * time.Second
	// DefaultParallel is the zero value of [Runner.Parallel].
	DefaultParallel = 8
)

// Prober measures one target: local and control DNS, consistency, TCP and
// TLS to each local address with each fingerprint, chain analysis and the
// verdict. Its fields are the dependencies; nil and zero fields mean the
// documented defaults. A Prober is safe for concurrent use.
type Prober struct {
	// Local is the network's own resolver. Required.
	Local *DNSResolver
	// Control is the control resolver. Nil means no control: consistency
	// is then "unknown".
	Control *DNSResolver
	// Connector makes TCP connections. Nil means a default Connector.
	Connector *Connector
	// Handshaker does the TLS handshakes. Nil means a default Handshaker.
	Handshaker *Handshaker
	// Analyzer judges chains. Required.
	Analyzer *chain.Analyzer
	// Fingerprints are the ClientHello fingerprints, one handshake each.
	// Empty means {DefaultFingerprint}.
	Fingerprints []string
	// MaxAddresses bounds the local addresses dialled. Zero means
	// DefaultMaxAddresses (4).
	MaxAddresses int
	// Port is the TLS port for targets that name none. Zero means
	// DefaultPort (443).
	Port int
	// ControlServer, when set, is asked about every target: the local
	// addresses dialled (bogons left out) are sent to it, concurrently with
	// the probe's own handshakes, and its answer is recorded in
	// test_keys.control, adds the ip_valid_from_control consistency check
	// and informs the verdict (see Classify). Nil means no control server:
	// the probe then works without it.
	ControlServer ControlServer
	// Consistency configures the DNS comparison.
	Consistency ConsistencyOptions
	// SmallHelloRetry, when set, hand-shakes once more with an address with
	// FingerprintSmall (a ClientHello of about 250 bytes) when every
	// configured fingerprint failed there at once (reset, EOF or an alert,
	// not a timeout), unless FingerprintSmall is configured itself. Some
	// middleboxes read the server name from the first KiB or segment of a
	// hello only: a browser's post-quantum hello (1.7 KB and more) leaves
	// them without it, and the interception they do shows only to a small
	// hello. The retry is recorded with SmallHelloRetry set; see Classify
	// for what it changes in the verdict.
	SmallHelloRetry bool
	// Timeout bounds one target. Zero means DefaultTargetTimeout (60s).
	Timeout time.Duration
	// Now is the clock: measurement_start_time, test_runtime, the time
	// chains are verified at, and every record's t0 and t (see [Epoch]) are
	// read on it. Nil means time.Now.
	Now func() time.Time
	// Envelope describes the run.
	Envelope Envelope
	// OnStep, when set, is told of each step of every measurement as it
	// starts and as it ends (see [Step]): each DNS query and each resolver
	// it asked, each connect and handshake, the control server's check,
	// the consistency, each chain judgement and the verdict rule. It is
	// called from the measurement's goroutines, several at once (the A and
	// AAAA queries, the handshakes, concurrent targets of a Runner), so it
	// must be safe for concurrent use; a slow OnStep slows the measurement.
	// Nil means none, and costs nothing.
	OnStep func(Step)
}

func (p *Prober) fingerprints() []string {
	if len(p.Fingerprints) == 0 {
		return []string{DefaultFingerprint}
	}
	return p.Fingerprints
}

func (p *Prober) maxAddresses() int {
	if p.MaxAddresses <= 0 {
		return DefaultMaxAddresses
	}
	return p.MaxAddresses
}

func (p *Prober) port(port int) int {
	switch {
	case port > 0:
		return port
	case p.Port > 0:
		return p.Port
	}
	return DefaultPort
}

func (p *Prober) timeout() time.Duration {
	if p.Timeout <= 0 {
		return DefaultTargetTimeout
	}
	return p.Timeout
}

// Measure measures domain on port (0 means p.Port) and returns the
// complete record. It never fails: network errors are recorded in the
// measurement. When ctx is cancelled the record is incomplete, and the
// caller should not keep it (see Runner).
func (p *Prober) Measure(ctx context.Context, domain string, port int) *measurement.Measurement {
	port = p.port(port)
	t0 := NewEpoch(p.Now)
	start := t0.Start()
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()

	m := p.newMeasurement(domain, port, start)
	tk := &m.TestKeys
	step := p.stepper(m.Input)

	// Steps 1 and 2: local and control DNS at once.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk.Queries = p.Local.lookupAll(ctx, domain, t0, step.side("local"))
	}()
	if p.Control != nil {
		tk.ControlQueries = p.Control.lookupAll(ctx, domain, t0, step.side("control"))
	}
	wg.Wait()

	// Step 4: TCP and TLS to each local address, with each fingerprint;
	// meanwhile the control server, if any, tries the same addresses from
	// outside.
	addrs := Addrs(tk.Queries)
	if len(addrs) > p.maxAddresses() {
		addrs = addrs[:p.maxAddresses()]
	}
	if p.ControlServer != nil {
		submit, notChecked := p.submittable(addrs)
		req := measurement.ControlRequest{Domain: domain, Port: port, Addresses: submit, NotChecked: notChecked, Fingerprint: p.fingerprints()[0]}
		wg.Go(func() {
			if step != nil {
				sent := req
				step(Step{Kind: StepControlServer, T: t0.Since(), ControlRequest: &sent})
			}
			r := p.ControlServer.Check(ctx, req, t0)
			if r != nil && r.Response != nil && p.Envelope.ProbeIP == "" {
				// The server saw the probe's public address: it is never
				// written unless the user opted in (Envelope.ProbeIP).
				r.Response.ClientAddress = ""
			}
			tk.Control = r
			if step != nil {
				step(Step{Kind: StepControlServer, Done: true, T: t0.Since(), Control: copyReport(r)})
			}
		})
	}
	p.handshakeAll(ctx, tk, domain, addrs, port, t0, step)
	wg.Wait()

	d := p.interpret(m, start)
	if step != nil {
		stepInterpretation(step, tk, &d, t0.Since())
	}
	m.TestRuntime = t0.Since()
	return m
}

// stepInterpretation tells step of the interpretation of tk, ended at t:
// the consistency, each handshake's chain judgement and the decision d.
func stepInterpretation(step stepFunc, tk *measurement.TestKeys, d *Decision, t float64) {
	if c := tk.DNSConsistency; c != nil {
		cc := *c
		step(Step{Kind: StepConsistency, Done: true, T: t, Consistency: &cc})
	}
	for i, j := range tk.Chains {
		if j != nil {
			h := tk.TLSHandshakes[i]
			step(Step{Kind: StepChain, Done: true, T: t, Handshake: &h, Chain: j})
		}
	}
	step(Step{Kind: StepVerdict, Done: true, T: t, Decision: d})
}

// copyReport returns a copy of r and of its response, nil for nil.
func copyReport(r *measurement.ControlReport) *measurement.ControlReport {
	if r == nil {
		return nil
	}
	c := *r
	if r.Response != nil {
		resp := *r.Response
		c.Response = &resp
	}
	return &c
}

// interpret is the second half of Measure: from the observations
// collected in m.TestKeys (the queries, connects and handshakes, the
// control server's report) to what they mean: the DNS consistency, the
// judgement of each presented chain as of at (the measurement's start),
// the interception finding and the verdict. It sends nothing and reads no
// clock. It returns the verdict rule's decision.
func (p *Prober) interpret(m *measurement.Measurement, at time.Time) Decision {
	tk := &m.TestKeys
	// Step 3, once the control server has answered: consistency.
	opts := p.Consistency
	if tk.Control != nil {
		opts.Checks = append([]ConsistencyCheck{IPValidFromControl(tk.Control)}, p.Consistency.Checks...)
	}
	tk.DNSConsistency = opts.Check(tk.Queries, tk.ControlQueries)

	// Step 5: chain analysis of every presented chain, at measurement time.
	// A chain presented again (the same site on several addresses, or to
	// several fingerprints) is judged once: the judgement depends only on
	// the chain, the domain and the time, which are the same.
	tk.Chains = make([]*chain.Judgement, len(tk.TLSHandshakes))
	for i, h := range tk.TLSHandshakes {
		if len(h.PeerCertificates) == 0 {
			continue
		}
		if k := sameChain(tk.TLSHandshakes[:i], h.PeerCertificates); k >= 0 {
			tk.Chains[i] = tk.Chains[k]
			continue
		}
		der := make([][]byte, len(h.PeerCertificates))
		for j, c := range h.PeerCertificates {
			der[j] = c
		}
		tk.Chains[i] = p.Analyzer.Judge(der, tk.Domain, at)
	}
	tk.SetInterception(chain.Strongest(tk.Chains))

	// Step 6: verdict.
	d := Decide(m)
	tk.Verdict, tk.VerdictReason = d.Verdict, d.Reason
	return d
}

// refusedEveryHello reports whether every handshake of one address
// connected and was then refused at once, before any certificate: a reset,
// an EOF or an alert, the answers of a middlebox that could not read the
// hello. A timeout is not retried: it would cost a second timeout, and a
// blackhole ignores any hello.
func refusedEveryHello(conns []measurement.TCPConnect, hs []*measurement.TLSHandshake) bool {
	for k, h := range hs {
		if !conns[k].Status.Success || h == nil || h.Failure == nil || len(h.PeerCertificates) > 0 {
			return false
		}
		switch f := *h.Failure; {
		case f == failure.ConnectionReset, f == failure.EOF, f == failure.ConnectionAborted,
			strings.HasPrefix(f, failure.SSLAlertPrefix):
		default:
			return false
		}
	}
	return len(hs) > 0
}

// sameChain returns the index of the first handshake in hs that presented
// exactly certs, or -1.
func sameChain(hs []measurement.TLSHandshake, certs []measurement.BinaryData) int {
	for k, h := range hs {
		if slices.EqualFunc(h.PeerCertificates, certs, func(a, b measurement.BinaryData) bool { return bytes.Equal(a, b) }) {
			return k
		}
	}
	return -1
}

// submittable returns the addresses worth sending to the control server,
// those that are not bogons (a bogon is never consistent, and a control
// server refuses the whole request for it), and the others as not
// checked. The control client leaves out more (measurement.ControlNotChecked).
func (p *Prober) submittable(addrs []netip.Addr) (submit []netip.Addr, notChecked []measurement.ControlNotChecked) {
	bogons := p.Consistency.Bogons
	if bogons == nil {
		bogons = DefaultBogons()
	}
	submit = []netip.Addr{}
	for _, a := range addrs {
		if !IsBogon(a, bogons) || IsBogon(a, p.Consistency.Exempt) {
			submit = append(submit, a)
		} else {
			notChecked = append(notChecked, measurement.ControlNotChecked{Address: a.String(), Reason: measurement.NotCheckedSpecialPurpose})
		}
	}
	return submit, notChecked
}

// handshakeAll runs every (address, fingerprint) pair concurrently and
// records the results in a fixed order: by address, then fingerprint. It
// tells step (unless nil) of each connect and handshake as it starts and
// ends.
func (p *Prober) handshakeAll(ctx context.Context, tk *measurement.TestKeys, domain string, addrs []netip.Addr, port int, t0 Epoch, step stepFunc) {
	fps := p.fingerprints()
	n := len(addrs) * len(fps)
	conns := make([]measurement.TCPConnect, n)
	hs := make([]*measurement.TLSHandshake, n)
	connector, handshaker := p.Connector, p.Handshaker
	if connector == nil {
		connector = &Connector{}
	}
	if handshaker == nil {
		handshaker = &Handshaker{}
	}
	one := func(k int, a netip.Addr, fp string, retry bool) {
		if step != nil {
			step(Step{Kind: StepConnect, T: t0.Since(), Connect: &measurement.TCPConnect{IP: a.Unmap().String(), Port: port}})
		}
		conn, tc := connector.Connect(ctx, a, port, t0)
		conns[k] = tc
		if step != nil {
			c := tc // a copy made here: &tc would put tc on the heap in every call
			step(Step{Kind: StepConnect, Done: true, T: c.T, Connect: &c})
		}
		if conn == nil {
			return
		}
		if step != nil {
			started := measurement.TLSHandshake{Network: "tcp", Address: netip.AddrPortFrom(a.Unmap(), uint16(port)).String(), ServerName: domain, Fingerprint: fp, SmallHelloRetry: retry}
			step(Step{Kind: StepHandshake, T: t0.Since(), Handshake: &started})
		}
		h := handshaker.Handshake(ctx, conn, domain, fp, t0)
		h.SmallHelloRetry = retry
		hs[k] = &h
		if step != nil {
			done := h
			step(Step{Kind: StepHandshake, Done: true, T: h.T, Handshake: &done})
		}
	}
	// Every pair but the last in a new goroutine; the last (the only one,
	// usually) in this one, whose stack is already grown: a handshake
	// needs a deep stack, and growing a new one is copying.
	var wg sync.WaitGroup
	for k := range n - 1 {
		wg.Go(func() { one(k, addrs[k/len(fps)], fps[k%len(fps)], false) })
	}
	if n > 0 {
		one(n-1, addrs[(n-1)/len(fps)], fps[(n-1)%len(fps)], false)
	}
	wg.Wait()
	if p.SmallHelloRetry && !slices.Contains(fps, FingerprintSmall) && ctx.Err() == nil {
		var retry []netip.Addr
		for i, a := range addrs {
			if refusedEveryHello(conns[i*len(fps):(i+1)*len(fps)], hs[i*len(fps):(i+1)*len(fps)]) {
				retry = append(retry, a)
			}
		}
		// The records grow once, before any retry writes into them.
		conns = append(conns, make([]measurement.TCPConnect, len(retry))...)
		hs = append(hs, make([]*measurement.TLSHandshake, len(retry))...)
		for j, a := range retry {
			k := n + j
			wg.Go(func() { one(k, a, FingerprintSmall, true) })
		}
		wg.Wait()
	}
	tk.TCPConnect = conns
	for _, h := range hs {
		if h != nil {
			tk.TLSHandshakes = append(tk.TLSHandshakes, *h)
		}
	}
}

func (p *Prober) newMeasurement(domain string, port int, start time.Time) *measurement.Measurement {
	e := p.Envelope
	input := domain
	if port != 443 {
		input = net.JoinHostPort(domain, strconv.Itoa(port))
	}
	env := e.Record(measurement.TestName, measurement.TestVersion, start)
	env.Input = input
	env.Options = p.options()
	env.TestHelpers = p.testHelpers()
	env.Extensions = measurement.Extensions()
	m := &measurement.Measurement{Envelope: env}
	m.TestKeys.Domain, m.TestKeys.Port = domain, port
	if p.Local != nil && p.Local.Exchanger != nil {
		if ap, err := netip.ParseAddrPort(p.Local.Exchanger.Address()); err == nil {
			m.ResolverIP = ap.Addr().String()
		}
	}
	return m
}

// options is the record's options (OONI's: the arguments of the test):
// the settings that shape what a measurement can see, named as probe.yaml
// names them, with the defaults filled in.
func (p *Prober) options() []string {
	handshaker := p.Handshaker
	if handshaker == nil {
		handshaker = &Handshaker{}
	}
	opts := []string{
		"targets.port=" + strconv.Itoa(p.port(0)),
		"tls.fingerprints=" + strings.Join(p.fingerprints(), ","),
		"tls.max_addresses=" + strconv.Itoa(p.maxAddresses()),
		"tls.small_hello_retry=" + strconv.FormatBool(p.SmallHelloRetry),
		"tls.timeout=" + seconds(handshaker.timeout()),
		"run.target_timeout=" + seconds(p.timeout()),
	}
	if p.Local != nil {
		opts = append(opts, "dns.timeout="+seconds(p.Local.timeout()), "dns.retries="+strconv.Itoa(p.Local.attempts()-1))
	}
	return opts
}

// seconds writes d as probe.yaml does: "10s", "0.5s".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// testHelpers is the record's test_helpers: the control resolver and the
// control server, where the Prober has them. A ControlServer names its URL
// with a Server() string method (control.Client has one); one that has
// none is left out.
func (p *Prober) testHelpers() map[string]measurement.TestHelper {
	th := map[string]measurement.TestHelper{}
	if p.Control != nil && p.Control.Exchanger != nil {
		th["control_resolver"] = measurement.TestHelper{Address: p.Control.Exchanger.Address(), Type: p.Control.Exchanger.Engine()}
	}
	if s, ok := p.ControlServer.(interface{ Server() string }); ok {
		scheme, _, _ := strings.Cut(s.Server(), "://")
		th["control_server"] = measurement.TestHelper{Address: s.Server(), Type: scheme}
	}
	return th
}

// NewReportID returns a fresh report ID for a run that started at start
// from the network asn ("AS<n>"; empty or unparsable is AS0) in the country
// cc (empty is "ZZ"), in the shape of the IDs OONI's collectors assign: the
// start time, the test name without underscores, the country, the AS
// number, the collector and a random part, e.g.
// "20250601T120000Z_kzprobetlsmitm_KZ_9198_n0_A6TXS7HOYQ3M2W4E". The
// collector is "n0": no OONI collector assigned it (OONI's number
// themselves from 1).
func NewReportID(start time.Time, asn, cc string) string {
	return NewReportIDFor(measurement.TestName, start, asn, cc)
}

// NewReportIDFor is NewReportID for another test of kzprobe's
// (measurement.SweepTestName): the ID names that test.
func NewReportIDFor(testName string, start time.Time, asn, cc string) string {
	n, err := strconv.ParseUint(strings.TrimPrefix(asn, "AS"), 10, 32)
	if err != nil {
		n = 0
	}
	return fmt.Sprintf("%s_%s_%s_%d_n0_%s", start.UTC().Format("20060102T150405Z"), strings.ReplaceAll(testName, "_", ""), cmp.Or(cc, "ZZ"), n, rand.Text()[:16])
}

// NewMeasurementUID is a measurement_uid for a record of testName that
// started at start in the country cc, in the shape of OONI's: the start
// time to the microsecond, the country, the test name without underscores
// and 16 random hex digits, e.g.
// "20250601120000.000000_KZ_kzprobetlsmitm_0123456789abcdef".
func NewMeasurementUID(testName string, start time.Time, cc string) string {
	return start.UTC().Format("20060102150405.000000") + "_" + cmp.Or(cc, "ZZ") + "_" + strings.ReplaceAll(testName, "_", "") + "_" + randomHex(8)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// Input is one target for a Runner.
type Input struct {
	// Domain is the normalised name.
	Domain string
	// Port is the TLS port; zero means the Prober's.
	Port int
	// Input is the target as it was given (a domain, "domain:port", a
	// URL with its path), recorded as the measurement's input; empty
	// means the domain, with ":port" when the port is not 443.
	Input string
}

// Runner measures a stream of targets with bounded parallelism and writes
// each measurement as soon as it is complete.
type Runner struct {
	// Prober measures one target. Required.
	Prober *Prober
	// Parallel is how many targets are measured at once. Zero means
	// DefaultParallel (8).
	Parallel int
	// Writer receives each completed measurement. Required.
	Writer *measurement.Writer
	// OnResult, when set, is called once per written measurement, from one
	// goroutine at a time (for progress and the summary).
	OnResult func(*measurement.Measurement)
}

// Stats counts what a run did.
type Stats struct {
	// Written counts measurements written.
	Written int
	// Interrupted counts targets started but cancelled before completion
	// (not written, so a resumed run measures them again).
	Interrupted int
}

// Run measures every input until the channel closes or ctx is cancelled.
// On cancellation it stops taking inputs, lets in-flight targets end (they
// see the cancelled context and return at once) and does not write their
// incomplete records. It returns ctx's error when interrupted and the
// first output error, which stops the run.
func (r *Runner) Run(ctx context.Context, inputs <-chan Input) (Stats, error) {
	par := r.Parallel
	if par <= 0 {
		par = DefaultParallel
	}
	parent := ctx
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var (
		t  Tally
		wg sync.WaitGroup
	)
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var in Input
				var ok bool
				select {
				case <-ctx.Done():
					return
				case in, ok = <-inputs:
					if !ok {
						return
					}
				}
				m := r.Prober.Measure(ctx, in.Domain, in.Port)
				if in.Input != "" {
					m.Input = in.Input
				}
				if ctx.Err() != nil {
					t.Interrupt()
					return
				}
				if !t.Write(r.Writer, m, r.OnResult) {
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Err != nil {
		return t.Stats, t.Err
	}
	return t.Stats, parent.Err()
}

// Tally is what the workers of a run share, under its lock: the records
// written, the targets interrupted and the first output error. [Runner]
// keeps one, and so does the sweep's Sweeper (package sweep), which guards
// its own counts with the same lock. Its zero value is an empty tally; it
// must not be copied once used.
type Tally struct {
	sync.Mutex
	Stats
	// Err is the first error writing a record, which stops the run.
	Err error
}

// Write ends a worker's record: m is written to w (which syncs it as it
// was told), then, under the lock, counted and handed to onResult (nil:
// none), so that onResult runs on one goroutine at a time. When the write
// fails it keeps the error (the first one) and returns false: the caller
// stops the run.
func (t *Tally) Write(w *measurement.Writer, m *measurement.Measurement, onResult func(*measurement.Measurement)) bool {
	if err := w.Write(m); err != nil {
		t.Lock()
		if t.Err == nil {
			t.Err = err
		}
		t.Unlock()
		return false
	}
	t.Lock()
	t.Written++
	if onResult != nil {
		onResult(m)
	}
	t.Unlock()
	return true
}

// Interrupt counts a target cancelled before its record was complete (not
// written, so a resumed run measures it again).
func (t *Tally) Interrupt() {
	t.Lock()
	t.Interrupted++
	t.Unlock()
}
