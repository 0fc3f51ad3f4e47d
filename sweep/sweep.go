package sweep

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/chain"
	"kzprobe/probe/failure"
)

// The Sweeper's defaults, used for its zero fields.
const (
	// DefaultControlSNI is the control name: one that no network blocks
	// or intercepts (OONI's sni_blocking uses the same kind of name).
	DefaultControlSNI = "example.com"
	// DefaultControlEvery is how many names go between two periodic
	// control handshakes.
	DefaultControlEvery = 100
	// DefaultRate is the names started per second: modest, since a sweep
	// is loud (every name a handshake to the same address).
	DefaultRate = 10
	// DefaultParallel is the handshakes in progress at once.
	DefaultParallel = 16
	// controlRetryDelay is the pause before a failed control is tried a
	// second time (a lost packet is no dead endpoint).
	controlRetryDelay = 500 * time.Millisecond
)

// Pin sources (measurement.SNISweep.PinSource).
const (
	// PinFromControlServer: the control API gave the pin.
	PinFromControlServer = "control_server"
	// PinFromFlag: the user gave it (--endpoint-pin).
	PinFromFlag = "flag"
)

// Endpoint is the neutral endpoint a sweep hand-shakes with.
type Endpoint struct {
	// Addr is its address, the same for every name.
	Addr netip.AddrPort
	// Pin is its certificate's key pin.
	Pin chain.Pin
	// PinSource is PinFromControlServer or PinFromFlag.
	PinSource string
}

// Sweeper sweeps names against one endpoint. Its fields are the
// dependencies and settings; nil and zero fields mean the documented
// defaults. Run it once.
type Sweeper struct {
	// Endpoint is the neutral endpoint. Required.
	Endpoint Endpoint
	// Connector makes the TCP connections. Nil means a default
	// probe.Connector (no guard: give the CLI's guarded one).
	Connector *probe.Connector
	// Handshaker does the handshakes. Nil means a default probe.Handshaker.
	Handshaker *probe.Handshaker
	// Analyzer judges the presented chains. Required.
	Analyzer *chain.Analyzer
	// Fingerprint is the ClientHello (probe.Fingerprints). Empty means
	// probe.DefaultFingerprint.
	Fingerprint string
	// ControlSNI is the control name. Empty means DefaultControlSNI.
	ControlSNI string
	// ControlEvery is how many names go between two periodic controls.
	// Zero means DefaultControlEvery.
	ControlEvery int
	// Rate is the names started per second. Zero means DefaultRate; a
	// negative rate means no limit. Control handshakes are not counted.
	Rate float64
	// Parallel is the names in progress at once. Zero means
	// DefaultParallel.
	Parallel int
	// Now is the clock (see probe.Prober.Now). Nil means time.Now.
	Now func() time.Time
	// Envelope describes the run; its ReportID should come from
	// probe.NewReportIDFor(measurement.SweepTestName, ...).
	Envelope probe.Envelope
	// Writer receives each record. Required.
	Writer *measurement.Writer
	// OnResult, when set, is called once per written record, from one
	// goroutine at a time.
	OnResult func(*measurement.Measurement)
	// OnControl, when set, is called after each periodic or initial
	// control, from one goroutine at a time (for a progress line).
	OnControl func(Control)
}

func (s *Sweeper) fingerprint() string { return cmp.Or(s.Fingerprint, probe.DefaultFingerprint) }
func (s *Sweeper) controlSNI() string  { return cmp.Or(s.ControlSNI, DefaultControlSNI) }

func (s *Sweeper) controlEvery() int {
	if s.ControlEvery > 0 {
		return s.ControlEvery
	}
	return DefaultControlEvery
}

func (s *Sweeper) parallel() int {
	if s.Parallel > 0 {
		return s.Parallel
	}
	return DefaultParallel
}

func (s *Sweeper) limiter() *rate.Limiter {
	switch {
	case s.Rate < 0:
		return rate.NewLimiter(rate.Inf, 1)
	case s.Rate == 0:
		return rate.NewLimiter(DefaultRate, 1)
	}
	return rate.NewLimiter(rate.Limit(s.Rate), 1)
}

func (s *Sweeper) connector() *probe.Connector {
	if s.Connector != nil {
		return s.Connector
	}
	return &probe.Connector{}
}

func (s *Sweeper) handshaker() *probe.Handshaker {
	if s.Handshaker != nil {
		return s.Handshaker
	}
	return &probe.Handshaker{}
}

// Stats counts what a sweep did.
type Stats struct {
	// Written counts records written.
	Written int
	// Interrupted counts names started but cancelled (not written, so a
	// resumed sweep tries them again).
	Interrupted int
	// Controls counts the control handshakes made (initial, periodic
	// and confirming), retries included.
	Controls int
}

// ErrEndpoint is wrapped by every [*EndpointError].
var ErrEndpoint = errors.New("sweep: the endpoint failed the control")

// EndpointError says why the control name failed at the endpoint, which
// stops a sweep: nothing more can be said about any name.
type EndpointError struct {
	// Endpoint is the endpoint's "ip:port".
	Endpoint string
	// ControlSNI is the control name.
	ControlSNI string
	// Control is the failed control handshake.
	Control Control
	// Written is how many records were written, the names in flight
	// when it failed included.
	Written int
}

func (e *EndpointError) Error() string {
	return fmt.Sprintf("the control SNI %s failed at the endpoint %s: %s; stopped after %d names (every later one would say nothing)",
		e.ControlSNI, e.Endpoint, e.Control.Problem(), e.Written)
}

// Unwrap makes errors.Is(err, ErrEndpoint) true.
func (e *EndpointError) Unwrap() error { return ErrEndpoint }

// Control is one control handshake's outcome.
type Control struct {
	// Record is what the record keeps of it.
	Record measurement.SweepControl
	// Judgement is its chain's judgement when the pin did not match (the
	// endpoint intercepted for every name?), nil otherwise.
	Judgement *chain.Judgement
	// Pinned is the pin expected.
	Pinned chain.Pin
}

// OK reports whether the control confirmed the endpoint.
func (c Control) OK() bool { return c.Record.OK }

// Problem says in words why a control failed, naming the likely cause;
// "" when it succeeded.
func (c Control) Problem() string {
	r := c.Record
	switch {
	case r.OK:
		return ""
	case !r.TCPConnect.Status.Success:
		f := deref(r.TCPConnect.Status.Failure)
		switch {
		case failure.IsLocal(f):
			return "TCP connect " + f + ": the probe's own guard or limits refused it (--allow-net, ulimit -n)"
		case f == failure.ConnectionRefused:
			return "TCP connect " + f + ": the endpoint is down (nothing listens there) or its address is blocked with a reset"
		case f == failure.ConnectionReset:
			// A reset right after the SYN-ACK can reach the connect
			// itself (Linux reports it from SO_ERROR).
			return "TCP connect " + f + ": the endpoint's address is blocked (reset right after the connect)"
		}
		return "TCP connect " + f + ": the endpoint is down or unreachable, or its address is blocked"
	case r.PinMatch != nil && !*r.PinMatch:
		msg := fmt.Sprintf("pin mismatch: it presented a certificate with the key %s, not the pinned %s: the endpoint's certificate changed, the pin is wrong, or the endpoint's address is intercepted for every name",
			cmp.Or(r.PresentedPin, "(unparsable)"), c.Pinned)
		if j := c.Judgement; j != nil && j.Interception != nil {
			msg += "; that chain leads to " + rootLabel(j.Interception) + ": the whole address is intercepted"
		}
		return msg
	case r.TLSHandshake != nil && r.TLSHandshake.Failure != nil:
		return "TLS handshake " + *r.TLSHandshake.Failure + ": the endpoint's address is blocked (even for a name nobody blocks) or the endpoint is not a TLS server"
	}
	return "no handshake"
}

// Run sweeps every name until inputs closes, ctx is cancelled, or the
// endpoint fails a control. It returns ctx's error when interrupted, an
// [*EndpointError] when the endpoint failed (the records of names in
// flight are written, with error verdicts where their confirming control
// failed), and the first output error, which stops it.
func (s *Sweeper) Run(ctx context.Context, inputs <-chan probe.Input) (Stats, error) {
	var (
		t        probe.Tally // its lock guards controls and epErr too
		controls int
		epErr    *EndpointError
	)
	stats := func() Stats { return Stats{Written: t.Written, Interrupted: t.Interrupted, Controls: controls} }
	control := func(t0 probe.Epoch) Control {
		c := s.control(ctx, t0)
		t.Lock()
		controls++
		t.Unlock()
		return c
	}
	// stop ends the dispatch; names in flight finish.
	dctx, stop := context.WithCancel(ctx)
	defer stop()
	endpointFailed := func(c Control) {
		t.Lock()
		if epErr == nil {
			epErr = &EndpointError{Endpoint: s.Endpoint.Addr.String(), ControlSNI: s.controlSNI(), Control: c, Written: t.Written}
		}
		t.Unlock()
		stop()
	}

	first := control(probe.NewEpoch(s.Now))
	if s.OnControl != nil {
		s.OnControl(first)
	}
	if !first.OK() {
		endpointFailed(first)
		return stats(), epErr
	}

	type job struct {
		in      probe.Input
		control bool
	}
	jobs := make(chan job)
	go func() {
		defer close(jobs)
		lim := s.limiter()
		n := 0
		for {
			var in probe.Input
			var ok bool
			select {
			case <-dctx.Done():
				return
			case in, ok = <-inputs:
				if !ok {
					return
				}
			}
			if lim.Wait(dctx) != nil {
				return
			}
			select {
			case jobs <- job{in: in}:
			case <-dctx.Done():
				return
			}
			if n++; n%s.controlEvery() == 0 {
				select {
				case jobs <- job{control: true}:
				case <-dctx.Done():
					return
				}
			}
		}
	}()

	var wg sync.WaitGroup
	for range s.parallel() {
		wg.Go(func() {
			for j := range jobs {
				if j.control {
					c := control(probe.NewEpoch(s.Now))
					t.Lock()
					if s.OnControl != nil {
						s.OnControl(c)
					}
					t.Unlock()
					if !c.OK() {
						endpointFailed(c)
					}
					continue
				}
				m, confirm := s.measure(ctx, j.in, control)
				if m == nil { // interrupted
					t.Interrupt()
					continue
				}
				if confirm != nil && !confirm.OK() {
					endpointFailed(*confirm)
				}
				if !t.Write(s.Writer, m, s.OnResult) {
					stop()
				}
			}
		})
	}
	wg.Wait()
	if epErr != nil {
		epErr.Written = t.Written // the names in flight are written too
	}
	switch {
	case t.Err != nil:
		return stats(), t.Err
	case ctx.Err() != nil:
		return stats(), ctx.Err()
	case epErr != nil:
		return stats(), epErr
	}
	return stats(), nil
}

// handshake connects to the endpoint and hand-shakes with sni; hs is nil
// when the connect failed.
func (s *Sweeper) handshake(ctx context.Context, sni string, t0 probe.Epoch) (measurement.TCPConnect, *measurement.TLSHandshake) {
	a := s.Endpoint.Addr
	conn, tc := s.connector().Connect(ctx, a.Addr(), int(a.Port()), t0)
	if conn == nil {
		return tc, nil
	}
	h := s.handshaker().Handshake(ctx, conn, sni, s.fingerprint(), t0)
	return tc, &h
}

// presented returns the pin of a handshake's leaf ("" when none came or
// it did not parse) and whether it is the endpoint's (nil when no
// certificate came).
func (s *Sweeper) presented(h *measurement.TLSHandshake) (string, *bool) {
	if h == nil || len(h.PeerCertificates) == 0 || h.PeerCertificates[0] == nil {
		return "", nil
	}
	p, err := chain.SPKIPin(h.PeerCertificates[0])
	match := err == nil && p == s.Endpoint.Pin
	if err != nil {
		return "", &match
	}
	return p.String(), &match
}

// control makes one control handshake, and a second after a pause when
// the first failed without a certificate (a lost packet is no dead
// endpoint); a pin mismatch is not retried. Its times are read on t0: the
// confirmed name's epoch, so that the record's times are one timeline.
func (s *Sweeper) control(ctx context.Context, t0 probe.Epoch) Control {
	var c Control
	for attempt := range 2 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return c
			case <-time.After(controlRetryDelay):
			}
		}
		tc, h := s.handshake(ctx, s.controlSNI(), t0)
		c = Control{Pinned: s.Endpoint.Pin, Record: measurement.SweepControl{TCPConnect: tc, TLSHandshake: h}}
		c.Record.PresentedPin, c.Record.PinMatch = s.presented(h)
		c.Record.OK = h != nil && h.Failure == nil && c.Record.PinMatch != nil && *c.Record.PinMatch
		if c.Record.OK {
			h.PeerCertificates = nil // the endpoint's own: known
			return c
		}
		if c.Record.PinMatch != nil && !*c.Record.PinMatch {
			c.Judgement = s.Analyzer.Judge(ders(h.PeerCertificates), s.controlSNI(), t0.Start())
			return c
		}
		if ctx.Err() != nil || failure.IsLocal(deref(tc.Status.Failure)) {
			return c
		}
	}
	return c
}

// measure hand-shakes for one name and decides its verdict, making a
// confirming control (returned) when the result is not clean. It returns
// nil when ctx was cancelled before the record was complete.
func (s *Sweeper) measure(ctx context.Context, in probe.Input, control func(probe.Epoch) Control) (*measurement.Measurement, *Control) {
	t0 := probe.NewEpoch(s.Now)
	start := t0.Start()
	m := s.newMeasurement(in, start)
	tk := &m.TestKeys
	tk.TCPConnect = []measurement.TCPConnect{}
	tk.Chains = []*chain.Judgement{}
	tk.TLSHandshakes = []measurement.TLSHandshake{}
	sw := tk.SNISweep
	try := func() (measurement.TCPConnect, *measurement.TLSHandshake) {
		tc, h := s.handshake(ctx, in.Domain, t0)
		tk.TCPConnect = append(tk.TCPConnect, tc)
		if h != nil {
			tk.TLSHandshakes = append(tk.TLSHandshakes, *h)
			var j *chain.Judgement
			if len(h.PeerCertificates) > 0 {
				j = s.Analyzer.Judge(ders(h.PeerCertificates), in.Domain, start)
			}
			tk.Chains = append(tk.Chains, j)
			tk.SetInterception(chain.Strongest(tk.Chains))
		}
		sw.PresentedPin, sw.PinMatch = s.presented(h)
		return tc, h
	}
	tc, h := try()
	if ctx.Err() != nil {
		return nil, nil
	}
	var confirm *Control
	if !clean(tc, h, sw) && !failure.IsLocal(deref(tc.Status.Failure)) {
		c := control(t0)
		if ctx.Err() != nil {
			return nil, nil
		}
		confirm = &c
		rec := c.Record
		sw.Control = &rec
		if c.OK() && noCertificate(h) {
			// A failure before any certificate is the weakest sign: a
			// lost packet, or an endpoint or a path under load, looks
			// the same (190 of a million clean names read sni_blocked
			// without this second try, bench --sweep at load 14). The
			// name gets a second try, now that the control has shown the
			// endpoint answers.
			if try(); ctx.Err() != nil {
				return nil, nil
			}
		}
	}
	sw.ReasonCode, tk.Verdict, tk.VerdictReason = decide(tk, s.controlSNI(), confirm)
	m.TestRuntime = t0.Since()
	return m, confirm
}

// noCertificate reports whether a handshake failed before any
// certificate came: a reset, an EOF, an alert or a timeout.
func noCertificate(h *measurement.TLSHandshake) bool {
	return h != nil && len(h.PeerCertificates) == 0 && h.Failure != nil
}

// clean reports whether the name got the endpoint's own certificate and a
// completed handshake.
func clean(tc measurement.TCPConnect, h *measurement.TLSHandshake, sw *measurement.SNISweep) bool {
	return tc.Status.Success && h != nil && h.Failure == nil && sw.PinMatch != nil && *sw.PinMatch
}

// decide is the verdict of a sweep record, from its handshake and the
// confirming control (nil when none was made); the rules are the
// package's documented table, in order.
func decide(tk *measurement.TestKeys, controlSNI string, confirm *Control) (code string, v measurement.Verdict, reason string) {
	sw := tk.SNISweep
	// The last try decides (a silent name gets a second one).
	tc := tk.TCPConnect[len(tk.TCPConnect)-1]
	var h *measurement.TLSHandshake
	if len(tk.TLSHandshakes) == len(tk.TCPConnect) {
		h = &tk.TLSHandshakes[len(tk.TLSHandshakes)-1]
	}
	retried := len(tk.TCPConnect) > 1
	if f := deref(tc.Status.Failure); failure.IsLocal(f) {
		return measurement.SweepProbeFault, measurement.VerdictError,
			"the probe's own failure, not the network's: TCP connect " + f + " (--allow-net, ulimit -n)"
	}
	if clean(tc, h, sw) {
		if retried {
			return measurement.SweepPinMatch, measurement.VerdictClean, "the endpoint's own certificate (pin match) at the second try; the first failed (" + deref(tk.TLSHandshakes[0].Failure) + ")"
		}
		return measurement.SweepPinMatch, measurement.VerdictClean, "the endpoint's own certificate (pin match)"
	}
	if confirm == nil || !confirm.OK() {
		what := "no control was made"
		if confirm != nil {
			what = confirm.Problem()
		}
		return measurement.SweepControlFailed, measurement.VerdictError,
			"this name's result (" + outcome(tc, h, sw) + ") says nothing: the control SNI " + controlSNI + " failed right after it too (" + what + ")"
	}
	if !tc.Status.Success {
		return measurement.SweepConnectFailed, measurement.VerdictError,
			"TCP connect " + deref(tc.Status.Failure) + " before any SNI was sent (the control SNI succeeded right after): not SNI blocking"
	}
	if sw.PinMatch != nil && !*sw.PinMatch {
		if in := tk.Interception; in != nil {
			r := "chain leads to " + rootLabel(in) + " (evidence: " + in.Evidence + "), not the endpoint's certificate"
			if in.BrowserErrorEvenWithRootInstalled {
				r += "; error even with the root installed: " + strings.Join(in.BrowserErrorReasons, ",")
			}
			if h.Failure != nil {
				r += "; then the handshake failed (" + *h.Failure + ")"
			}
			return measurement.SweepIntercepted, measurement.VerdictSNIInterceptedISCA, r + "; the control SNI got the endpoint's own"
		}
		r := "not the endpoint's certificate (" + issuerOf(tk) + "), not the ISCA PKI"
		if h.Failure != nil {
			r += "; then the handshake failed (" + *h.Failure + ")"
		}
		return measurement.SweepIntercepted, measurement.VerdictSNIInterceptedOther, r + "; the control SNI got the endpoint's own"
	}
	f := deref(h.Failure)
	if sw.PinMatch != nil {
		return measurement.SweepBlocked, measurement.VerdictSNIBlocked,
			"the endpoint's own certificate, then the handshake failed (" + f + ") for this SNI; the control SNI succeeded right after"
	}
	if retried {
		return measurement.SweepBlocked, measurement.VerdictSNIBlocked,
			"TLS handshake " + f + " for this SNI, twice; the control SNI succeeded between the two tries"
	}
	return measurement.SweepBlocked, measurement.VerdictSNIBlocked,
		"TLS handshake " + f + " for this SNI; the control SNI succeeded right after"
}

// outcome says in a few words what a name got, for an error's reason.
func outcome(tc measurement.TCPConnect, h *measurement.TLSHandshake, sw *measurement.SNISweep) string {
	switch {
	case !tc.Status.Success:
		return "TCP connect " + deref(tc.Status.Failure)
	case sw.PinMatch != nil && !*sw.PinMatch:
		return "another certificate than the endpoint's"
	case h != nil && h.Failure != nil:
		return "TLS handshake " + *h.Failure
	}
	return "no handshake"
}

// issuerOf names the issuer of the presented leaf, for a reason.
func issuerOf(tk *measurement.TestKeys) string {
	if len(tk.Chains) > 0 && tk.Chains[0] != nil && len(tk.Chains[0].Certificates) > 0 {
		if iss := tk.Chains[0].Certificates[0].Issuer; iss != "" {
			return "issuer " + iss
		}
	}
	return "issuer unknown"
}

// rootLabel names an interception root as kzprobe run's reasons do:
// "NAME [sha1 prefix]".
func rootLabel(in *chain.Interception) string {
	switch {
	case in.RootName != "" && in.RootSHA1 != "":
		return fmt.Sprintf("%s [%s]", in.RootName, chain.Short(in.RootSHA1))
	case in.RootName != "":
		return in.RootName
	case in.RootSHA1 != "":
		return chain.Short(in.RootSHA1)
	}
	return "an interception root"
}

// newMeasurement is a sweep record's envelope for in.
func (s *Sweeper) newMeasurement(in probe.Input, start time.Time) *measurement.Measurement {
	h := s.handshaker()
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = probe.DefaultHandshakeTimeout
	}
	env := s.Envelope.Record(measurement.SweepTestName, measurement.SweepTestVersion, start)
	env.Input = cmp.Or(in.Input, in.Domain)
	env.Options = []string{
		"sweep.endpoint=" + s.Endpoint.Addr.String(),
		"sweep.control_sni=" + s.controlSNI(),
		"sweep.control_every=" + strconv.Itoa(s.controlEvery()),
		"tls.fingerprints=" + s.fingerprint(),
		"tls.timeout=" + strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64) + "s",
	}
	env.TestHelpers = map[string]measurement.TestHelper{
		"sni_endpoint": {Address: s.Endpoint.Addr.String(), Type: "tls"},
	}
	env.Extensions = map[string]int64{"tcpconnect": 0, "tlshandshake": 0}
	m := &measurement.Measurement{Envelope: env}
	m.TestKeys.Domain, m.TestKeys.Port = in.Domain, int(s.Endpoint.Addr.Port())
	m.TestKeys.SNISweep = &measurement.SNISweep{
		Endpoint:    s.Endpoint.Addr.String(),
		EndpointPin: s.Endpoint.Pin.String(),
		PinSource:   s.Endpoint.PinSource,
		Hello:       s.fingerprint(),
		ControlSNI:  s.controlSNI(),
	}
	return m
}

// ders is a handshake's certificates as the analyzer takes them.
func ders(certs []measurement.BinaryData) [][]byte {
	out := make([][]byte, len(certs))
	for i, c := range certs {
		out[i] = c
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
