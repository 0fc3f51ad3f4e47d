package trace

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/chain"
	"kzprobe/probe/failure"
	"kzprobe/probe/guard"
	"kzprobe/vantage"
)

// Defaults for Config's zero fields.
const (
	// DefaultMaxHops is the largest TTL tried: paths from Kazakhstan to
	// foreign servers are 10 to 20 hops long.
	DefaultMaxHops = 24
	// DefaultHopTimeout is how long one probe waits for its answer. A
	// time exceeded comes back within the round trip to the router; a
	// silent hop costs this much per attempt.
	DefaultHopTimeout = 2 * time.Second
	// DefaultMaxSilent ends a traceroute after this many silent TTLs in
	// a row: a destination that drops the probes would otherwise cost
	// MaxHops timeouts.
	DefaultMaxSilent = 5
	// DefaultAttempts is how many probes a TTL of a traceroute gets when
	// the first is not answered: routers rate-limit their ICMP errors
	// (Linux: one a second per destination, after a burst of six), and
	// a second try tells a rate limit from a silent router more often
	// than not.
	DefaultAttempts = 2
	// DefaultControlSNI is the control SNI when none is given: a name
	// no censor blocks.
	DefaultControlSNI = "example.com"
)

// ErrUnsupported is returned by Run where the socket error queue
// (IP_RECVERR) does not exist: every system but Linux. A trace without it
// could not see the routers, and would say something wrong.
var ErrUnsupported = errors.New("trace: tracing needs Linux's socket error queue (IP_RECVERR), which " + runtime.GOOS + " does not have")

// Supported reports whether this system has what Run needs (Linux's
// socket error queue): false means Run returns ErrUnsupported.
func Supported() bool { return supported }

// ErrNoAddress is returned by Run for a Config without an address.
var ErrNoAddress = errors.New("trace: no address to trace")

// Step is one probe done, for a progress display: which trace
// ("tcp", "udp", "target", "control"), the TTL, and the answer.
type Step struct {
	Trace  string
	TTL    int
	Answer string
}

// Config is one trace: an address, the SNIs, the bounds and the parts.
// Zero fields mean the documented defaults.
type Config struct {
	// Address is the traced server's address and port. Required.
	Address netip.AddrPort
	// Domain is recorded as the name traced (the target as given); ""
	// means SNI.
	Domain string
	// SNI is the target trace's server name. Required for the TLS traces;
	// "" skips both.
	SNI string
	// ControlSNI is the control trace's server name; "" means
	// DefaultControlSNI.
	ControlSNI string
	// MaxHops is the largest TTL tried, 1-255; zero means DefaultMaxHops.
	MaxHops int
	// HopTimeout bounds one probe and one TTL-limited handshake; zero
	// means DefaultHopTimeout.
	HopTimeout time.Duration
	// MaxSilent ends a traceroute after this many silent TTLs in a row;
	// zero means DefaultMaxSilent.
	MaxSilent int
	// Attempts is how many probes a silent TTL of a traceroute gets; zero
	// means DefaultAttempts.
	Attempts int
	// Fingerprint is the ClientHello fingerprint (probe.Fingerprints);
	// "" means probe.DefaultFingerprint.
	Fingerprint string
	// Handshaker performs the TLS handshakes; nil means a zero
	// probe.Handshaker. Its Timeout is replaced by HopTimeout.
	Handshaker *probe.Handshaker
	// Analyzer judges the chains; nil means chain.NewAnalyzer(nil, nil)
	// (the Mozilla bundle and the embedded knowledge).
	Analyzer *chain.Analyzer
	// Guard is the network guard (--allow-net); nil allows everything.
	// The traceroutes' own sockets are checked with it, and so is Dial.
	Guard *guard.Guard
	// Dial opens the TLS traces' connections at the normal TTL; nil
	// means a net.Dialer. It must return a connection with a socket
	// (*net.TCPConn). It is wrapped by Guard.
	Dial guard.DialFunc
	// Bind is the source address of every probe; invalid means the
	// system's choice.
	Bind netip.Addr
	// Lookup gives the network of a router's address (vantage.DB.Lookup);
	// nil means none is known.
	Lookup func(netip.Addr) vantage.Info
	// Own are the probe's own addresses (its public address, the bound
	// one): a router whose /24 (/48) holds one of them is the volunteer's
	// own network, recorded as measurement.HopVantage with no prefix.
	Own []netip.Addr
	// Progress, when set, is called after each probe.
	Progress func(Step)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c *Config) maxHops() int {
	if c.MaxHops > 0 {
		return min(c.MaxHops, 255)
	}
	return DefaultMaxHops
}

func (c *Config) hopTimeout() time.Duration { return cmp.Or(c.HopTimeout, DefaultHopTimeout) }
func (c *Config) maxSilent() int            { return cmp.Or(max(c.MaxSilent, 0), DefaultMaxSilent) }
func (c *Config) attempts() int             { return cmp.Or(max(c.Attempts, 0), DefaultAttempts) }
func (c *Config) controlSNI() string        { return cmp.Or(c.ControlSNI, DefaultControlSNI) }
func (c *Config) fingerprint() string       { return cmp.Or(c.Fingerprint, probe.DefaultFingerprint) }

func (c *Config) analyzer() *chain.Analyzer {
	if c.Analyzer != nil {
		return c.Analyzer
	}
	return chain.NewAnalyzer(nil, nil)
}

func (c *Config) dial() guard.DialFunc {
	d := c.Dial
	if d == nil {
		d = (&net.Dialer{}).DialContext
	}
	return c.Guard.Dialer(d)
}

func (c *Config) progress(trace string, ttl int, answer string) {
	if c.Progress != nil {
		c.Progress(Step{Trace: trace, TTL: ttl, Answer: answer})
	}
}

// Result is one trace's outcome: the record's test keys, and when it
// started and how long it took (for the envelope, [Result.Record]).
type Result struct {
	TestKeys measurement.TraceTestKeys
	// Start is when the trace started; Runtime its seconds.
	Start   time.Time
	Runtime float64
}

// sockResult is what one traceroute probe's socket saw.
type sockResult struct {
	// connected: a TCP connect completed, or a UDP reply came.
	connected bool
	// timedOut: nothing came back within the hop timeout.
	timedOut bool
	// icmp is the ICMP error from the error queue, nil when none.
	icmp *icmpError
	// err is the connect's or the read's error (for an ICMP error too).
	err error
}

// udpPayload is the UDP probes' datagram: says what sent it, to whoever
// captures it.
var udpPayload = [24]byte([]byte("kzprobe trace udp probe\n"))

// udpBasePort is the first UDP probe's port, traceroute(8)'s: high ports
// nothing listens on, one more per TTL.
const udpBasePort = 33434

// Run traces one address: the TCP traceroute to its port, the UDP
// traceroute to the address, then the iterative TLS traces for the
// target SNI and the control SNI, each bounded by MaxHops and by what the
// traceroutes found, and the finding (Interpret). Network failures are
// recorded, never returned: the error is for a Config without an
// address and for a system without the socket error queue
// (ErrUnsupported). An address outside Guard is recorded as
// blocked_by_allow_net with nothing sent. When ctx ends the result is
// incomplete and ctx's error is returned with it.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if !cfg.Address.IsValid() {
		return nil, ErrNoAddress
	}
	if !supported {
		return nil, ErrUnsupported
	}
	t0 := probe.NewEpoch(cfg.Now)
	dst := netip.AddrPortFrom(cfg.Address.Addr().Unmap(), cfg.Address.Port())
	res := &Result{Start: t0.Start()}
	tk := &res.TestKeys
	*tk = measurement.TraceTestKeys{
		Domain:        cmp.Or(cfg.Domain, cfg.SNI),
		Address:       dst.String(),
		SNI:           cfg.SNI,
		ControlSNI:    cfg.controlSNI(),
		Queries:       []measurement.DNSQuery{},
		MaxHops:       cfg.maxHops(),
		HopTimeout:    cfg.hopTimeout().Seconds(),
		TCPTraceroute: []measurement.TraceProbe{},
		UDPTraceroute: []measurement.TraceProbe{},
		TargetTrace:   []measurement.TLSIteration{},
		ControlTrace:  []measurement.TLSIteration{},
	}
	defer func() { res.Runtime = t0.Since() }()
	if err := cfg.Guard.Check(dst.String()); err != nil {
		tk.Failure = failure.Ptr(failure.BlockedByAllowNet)
		tk.Finding = Interpret(tk)
		return res, nil
	}
	tk.TCPTraceroute = traceroute(ctx, &cfg, "tcp", dst, t0, probeTCP)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	udpDst := netip.AddrPortFrom(dst.Addr(), udpBasePort)
	tk.UDPTraceroute = traceroute(ctx, &cfg, "udp", udpDst, t0, func(ctx context.Context, d netip.AddrPort, bind netip.Addr, ttl int, timeout time.Duration) sockResult {
		// One port per TTL, as traceroute(8): a late answer names its
		// probe.
		return probeUDP(ctx, netip.AddrPortFrom(d.Addr(), uint16(int(d.Port())+ttl-1)), bind, ttl, timeout)
	})
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if cfg.SNI != "" {
		limit := tlsLimit(tk, cfg.maxHops())
		tk.TargetTrace = tlsTrace(ctx, &cfg, "target", dst, cfg.SNI, limit, tk.TCPTraceroute, t0)
		if err := ctx.Err(); err != nil {
			return res, err
		}
		tk.ControlTrace = tlsTrace(ctx, &cfg, "control", dst, cfg.controlSNI(), limit, tk.TCPTraceroute, t0)
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
	tk.Finding = Interpret(tk)
	return res, nil
}

// probeFunc sends one probe with a TTL and says what came back.
type probeFunc func(ctx context.Context, dst netip.AddrPort, bind netip.Addr, ttl int, timeout time.Duration) sockResult

// traceroute probes dst with TTL 1, 2, 3 ... until the destination
// answers, an ICMP unreachable ends the path, MaxSilent TTLs in a row
// stay silent, or MaxHops is reached. A silent TTL is probed again, up
// to Attempts times.
func traceroute(ctx context.Context, cfg *Config, name string, dst netip.AddrPort, t0 probe.Epoch, send probeFunc) []measurement.TraceProbe {
	out := []measurement.TraceProbe{}
	silent := 0
	for ttl := 1; ttl <= cfg.maxHops(); ttl++ {
		p := measurement.TraceProbe{TTL: ttl, T0: t0.Since()}
		var r sockResult
		for p.Attempts < cfg.attempts() {
			p.Attempts++
			r = send(ctx, dst, cfg.Bind, ttl, cfg.hopTimeout())
			if !r.timedOut || ctx.Err() != nil {
				break
			}
		}
		p.T = t0.Since()
		if ctx.Err() != nil {
			return out
		}
		fillProbe(cfg, &p, r, dst.Addr())
		out = append(out, p)
		cfg.progress(name, ttl, p.Answer)
		switch p.Answer {
		case measurement.AnswerDestination, measurement.AnswerUnreachable:
			return out
		case measurement.AnswerSilent:
			if silent++; silent >= cfg.maxSilent() {
				return out
			}
		default:
			silent = 0
		}
	}
	return out
}

// fillProbe records what a probe's socket saw.
func fillProbe(cfg *Config, p *measurement.TraceProbe, r sockResult, dst netip.Addr) {
	switch {
	case r.timedOut:
		p.Answer = measurement.AnswerSilent
		p.Failure = failure.Ptr(failure.GenericTimeout)
		return
	case r.connected:
		p.Answer, p.Connected = measurement.AnswerDestination, true
		p.Hop = hopOf(cfg, dst, dst)
		return
	}
	p.Failure = failure.Ptr(failure.Classify(r.err))
	if e := r.icmp; e != nil {
		p.ICMP = &measurement.ICMPMessage{Type: int(e.Type), Code: int(e.Code), Version: e.Version}
		p.Hop = hopOf(cfg, e.From, dst)
		switch {
		case e.timeExceeded():
			p.Answer = measurement.AnswerRouter
		case e.portUnreachable() && e.From == dst:
			p.Answer = measurement.AnswerDestination
		default:
			p.Answer = measurement.AnswerUnreachable
		}
		return
	}
	if errors.Is(r.err, syscall.ECONNREFUSED) {
		// A reset: whatever holds the address's port answered.
		p.Answer = measurement.AnswerDestination
		p.Hop = hopOf(cfg, dst, dst)
		return
	}
	p.Answer = measurement.AnswerFailure
}

// tlsLimit is the largest TTL worth a ClientHello: the TCP connection
// ends where TCP was answered, so no hello travels further; without that,
// the UDP destination, else MaxHops.
func tlsLimit(tk *measurement.TraceTestKeys, maxHops int) int {
	for _, p := range tk.TCPTraceroute {
		if p.Answer == measurement.AnswerDestination {
			return p.TTL
		}
	}
	for _, p := range tk.UDPTraceroute {
		if p.Answer == measurement.AnswerDestination {
			return p.TTL
		}
	}
	return maxHops
}

// tlsTrace is one iterative TLS trace: for TTL 1, 2, 3 ... up to limit, a
// connection at the normal TTL, the TTL lowered, and a handshake with
// sni, until the hello is answered (a server flight, a reset, a close,
// an alert) or the connection cannot be made.
func tlsTrace(ctx context.Context, cfg *Config, name string, dst netip.AddrPort, sni string, limit int, tcp []measurement.TraceProbe, t0 probe.Epoch) []measurement.TLSIteration {
	out := []measurement.TLSIteration{}
	hs := probe.Handshaker{}
	if cfg.Handshaker != nil {
		hs = *cfg.Handshaker
	}
	hs.Timeout = cfg.hopTimeout()
	dial := cfg.dial()
	silent := 0
	for ttl := 1; ttl <= limit; ttl++ {
		it := iterate(ctx, cfg, &hs, dial, dst, sni, ttl, t0)
		if ctx.Err() != nil {
			return out
		}
		if it.Answer == measurement.AnswerRouter && it.Hop == nil {
			if r := routerAt(tcp, ttl); r != nil {
				it.Hop, it.HopFrom = r, "tcp_traceroute"
			}
		}
		out = append(out, it)
		cfg.progress(name, ttl, it.Answer)
		switch it.Answer {
		case measurement.AnswerRouter:
			silent = 0
		case measurement.AnswerSilent:
			if silent++; silent >= cfg.maxSilent() {
				return out
			}
		default:
			return out
		}
	}
	return out
}

// iterate is one TTL of a TLS trace.
func iterate(ctx context.Context, cfg *Config, hs *probe.Handshaker, dial guard.DialFunc, dst netip.AddrPort, sni string, ttl int, t0 probe.Epoch) measurement.TLSIteration {
	it := measurement.TLSIteration{TTL: ttl}
	it.Connect = measurement.TCPConnect{IP: dst.Addr().String(), Port: int(dst.Port()), T0: t0.Since()}
	dctx, cancel := context.WithTimeout(ctx, cfg.hopTimeout())
	conn, err := dial(dctx, "tcp", dst.String())
	cancel()
	it.Connect.T = t0.Since()
	if err != nil {
		it.Connect.Status.Failure = failure.Of(err)
		it.Answer = measurement.AnswerFailure
		return it
	}
	it.Connect.Status.Success = true
	lc, err := limitTTL(conn, ttl)
	if err != nil {
		conn.Close()
		it.Answer = measurement.AnswerFailure
		it.Handshake = &measurement.TLSHandshake{ServerName: sni, Failure: failure.Ptr(failure.UnknownPrefix + err.Error()), Tags: []string{}}
		return it
	}
	rec := hs.Handshake(ctx, lc, sni, cfg.fingerprint(), t0)
	it.Handshake = &rec
	if len(rec.PeerCertificates) > 0 {
		der := make([][]byte, len(rec.PeerCertificates))
		for i, c := range rec.PeerCertificates {
			der[i] = c
		}
		it.Chain = cfg.analyzer().Judge(der, sni, t0.Start())
	}
	it.Answer = answerOf(&rec)
	if e := lc.icmp(); e != nil && it.Answer == measurement.AnswerRouter {
		it.Hop, it.HopFrom = hopOf(cfg, e.From, dst.Addr()), "icmp"
	}
	return it
}

// answerOf reads a TTL-limited handshake's record: a server flight
// (certificates or a ServerHello, whatever failed after), or the failure
// that ended it.
func answerOf(rec *measurement.TLSHandshake) string {
	if rec.Failure == nil || len(rec.PeerCertificates) > 0 || rec.TLSVersion != "" {
		return measurement.AnswerServer
	}
	switch f := *rec.Failure; {
	case f == failure.HostUnreachable || f == failure.NetworkUnreachable:
		// The hello (or its retransmission) died on the way and the
		// router said so: Linux turns the ICMP error into the socket's
		// errno (EHOSTUNREACH for a time exceeded).
		return measurement.AnswerRouter
	case f == failure.GenericTimeout:
		return measurement.AnswerSilent
	case f == failure.ConnectionReset:
		return measurement.AnswerReset
	case f == failure.EOF:
		return measurement.AnswerEOF
	case strings.HasPrefix(f, failure.SSLAlertPrefix):
		return measurement.AnswerAlert
	}
	return measurement.AnswerFailure
}

// routerAt is the router the TCP traceroute met at ttl, nil when none.
func routerAt(tcp []measurement.TraceProbe, ttl int) *measurement.TraceHop {
	for _, p := range tcp {
		if p.TTL == ttl && p.Answer == measurement.AnswerRouter {
			return p.Hop
		}
	}
	return nil
}

// hopOf records a hop's address a: its class and, for a public address,
// its /24 or /48 prefix and network; never the address itself.
func hopOf(cfg *Config, a, dst netip.Addr) *measurement.TraceHop {
	if !a.IsValid() {
		return nil
	}
	a = a.Unmap()
	h := &measurement.TraceHop{Class: Classify(a), Destination: a == dst}
	if h.Class != measurement.HopPublic {
		return h
	}
	if p := PrefixOf(a); !slices.ContainsFunc(cfg.Own, func(o netip.Addr) bool { return p.Contains(o.Unmap()) }) {
		h.Prefix = p.String()
	} else {
		h.Class = measurement.HopVantage
	}
	if cfg.Lookup != nil {
		info := cfg.Lookup(a)
		h.ASN, h.CC, h.Network = info.ASN, info.CC, info.Network
	}
	return h
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Classify says which of the measurement.Hop* classes address a is in:
// private (RFC 1918, unique local), CGNAT, link-local, other (loopback,
// unspecified, multicast), or public.
func Classify(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case !a.IsValid() || a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() || a.IsInterfaceLocalMulticast():
		return measurement.HopOther
	case a.IsPrivate():
		return measurement.HopPrivate
	case cgnat.Contains(a):
		return measurement.HopCGNAT
	case a.IsLinkLocalUnicast():
		return measurement.HopLinkLocal
	}
	return measurement.HopPublic
}

// PrefixOf is the prefix a router is recorded as: its /24, or /48 for
// IPv6, as OONI records them.
func PrefixOf(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 24
	if a.Is6() {
		bits = 48
	}
	p, _ := a.Prefix(bits)
	return p
}

// Options is the record's options for cfg: the settings that shape what
// the trace could see, with the defaults filled in.
func Options(cfg *Config) []string {
	return []string{
		"trace.max_hops=" + fmt.Sprint(cfg.maxHops()),
		"trace.hop_timeout=" + fmt.Sprint(cfg.hopTimeout().Seconds()) + "s",
		"trace.max_silent=" + fmt.Sprint(cfg.maxSilent()),
		"trace.attempts=" + fmt.Sprint(cfg.attempts()),
		"trace.control_sni=" + cfg.controlSNI(),
		"tls.fingerprint=" + cfg.fingerprint(),
	}
}
