package control

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/chain"
	"kzprobe/probe/guard"
	"kzprobe/ratelimit"
)

// Server defaults, used when the matching ServerConfig field is zero.
const (
	// DefaultMaxAddresses is the most addresses a request may submit; the
	// server also tries at most this many of its own DNS answers.
	DefaultMaxAddresses = 8
	// DefaultMaxBodyBytes bounds a request body: 8 addresses and a domain
	// take well under 1 KiB.
	DefaultMaxBodyBytes = 8 << 10
	// DefaultRate is the requests per second one client may sustain.
	DefaultRate = 5
	// DefaultBurst is how many requests one client may send at once.
	DefaultBurst = 20
	// DefaultMaxClients bounds the clients whose rate is tracked at once.
	DefaultMaxClients = 65536
	// DefaultMaxConcurrent bounds the checks in progress at once, over
	// all clients.
	DefaultMaxConcurrent = 64
	// DefaultDeadline bounds one check, from the request to the answer.
	DefaultDeadline = 20 * time.Second
	// DefaultMaxConns bounds the open connections, over all clients (the
	// default of kzprobe control serve --max-conns).
	DefaultMaxConns = 1024
	// DefaultMaxConnsPerClient bounds the open connections of one client.
	// A probe needs one (HTTP/2) or a few (HTTP/1.1, one per check in
	// flight).
	DefaultMaxConnsPerClient = 32
	// DefaultIdleTimeout is how long an idle connection is kept.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultBusyIdleTimeout is how long an idle connection is kept under
	// load (from half of MaxConns open).
	DefaultBusyIdleTimeout = 5 * time.Second
)

// Bounds of what one handshake may put in an answer: real chains have 2
// to 5 certificates of 1-2 KiB each.
const (
	serverMaxCerts      = 16
	serverMaxChainBytes = 64 << 10
)

// ServerConfig configures a control server. Zero values mean the
// documented defaults; Resolver and Analyzer are required.
type ServerConfig struct {
	// Resolver is the server's own DNS, the control view of the name
	// (typically a control resolver from dnsx.New, over DoH). Required.
	Resolver *probe.DNSResolver
	// Dial makes every TCP connection to a site. Pass the network guard's
	// dialer (guard.Guard.Dialer); the server wraps it with its own
	// special-range and port policy. Nil means a plain net.Dialer under
	// that policy.
	Dial guard.DialFunc
	// Analyzer judges the chains presented, with the server's trust
	// store, at the server's clock. Required.
	Analyzer *chain.Analyzer
	// Admit lists special-purpose ranges (probe.DefaultBogons: loopback,
	// private, link-local, multicast, CGNAT, documentation, ...) that the
	// server may connect to after all (--allow-net). Nil means none: such
	// addresses are refused when submitted and skipped when resolved.
	Admit []netip.Prefix
	// Ports are the TLS ports a request may name. Empty means {443}.
	Ports []int
	// MaxAddresses is the most addresses per request. Zero means
	// DefaultMaxAddresses.
	MaxAddresses int
	// MaxBodyBytes bounds a request body. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Rate is the requests per second one client (an IPv4 address or an
	// IPv6 /64) may sustain, Burst how many it may send at once. Zero
	// means DefaultRate and DefaultBurst; a negative Rate means no limit.
	Rate  float64
	Burst int
	// MaxClients bounds the clients whose rate is tracked; a new client
	// beyond it is refused (503) until idle ones are forgotten. Zero
	// means DefaultMaxClients.
	MaxClients int
	// MaxConcurrent bounds the checks in progress; a request beyond it is
	// refused (503). One client may hold a fair share of them: half when
	// it is alone, MaxConcurrent/(n+1) among n clients with checks in
	// progress; a request beyond its share is refused (429,
	// too_many_checks). Zero means DefaultMaxConcurrent.
	MaxConcurrent int
	// MaxConns bounds the open client connections, over all clients: one
	// beyond it is closed as soon as it is accepted. From half of it on,
	// the server is under load, and a connection idle for BusyIdleTimeout
	// is closed. Give the listener's own bound here (--max-conns,
	// netutil.LimitListener). Zero means DefaultMaxConns.
	MaxConns int
	// MaxConnsPerClient bounds the open connections of one client (an
	// IPv4 address or an IPv6 /64): one beyond it is closed as soon as it
	// is accepted, before its TLS handshake. A trusted proxy's connections
	// are not bounded per client. Zero means DefaultMaxConnsPerClient.
	MaxConnsPerClient int
	// IdleTimeout is how long an idle keep-alive connection is kept, and
	// BusyIdleTimeout how long under load. Zero means DefaultIdleTimeout
	// and DefaultBusyIdleTimeout.
	//
	// The connection bounds and idle times are kept by the http.Server
	// that HTTPServer returns (its ConnState hook); a Server used as a
	// bare http.Handler has none of them.
	IdleTimeout     time.Duration
	BusyIdleTimeout time.Duration
	// Deadline bounds one check: its DNS, connects and handshakes are cut
	// so that the answer leaves within it. Zero means DefaultDeadline.
	Deadline time.Duration
	// Token, when set, is the bearer token every check must carry
	// ("Authorization: Bearer <token>"). Empty means none.
	Token string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For header
	// names the client. Empty means none: the client is the TCP peer.
	TrustedProxies []netip.Prefix
	// Logger receives one structured record per request (client, status,
	// error code, counts, duration; never the body nor the domain). Nil
	// means no logs.
	Logger *slog.Logger
	// SNIEndpoint, when set, is the neutral SNI endpoint this server runs
	// beside the API (kzprobe control serve --sni-endpoint): GET
	// /v1/sni-endpoint returns it. Nil means none (404).
	SNIEndpoint *SNIEndpointResponse
	// Now is the clock: a check's test_runtime, the time chains are
	// verified at, every record's t0 and t (see probe.Epoch), and the
	// durations logged are read on it. Nil means time.Now.
	Now func() time.Time
}

// ErrServerConfig is wrapped by NewServer's errors.
var ErrServerConfig = errors.New("control: invalid server configuration")

// Server is the control server (OONI's "test helper"): a
// vantage outside the censored network that, for a domain and the
// addresses a probe resolved, reports its own DNS answers and the chain it
// is served at each address with SNI = the domain. It is an http.Handler
// for POST /v1/check (control/API.md); [Server.HTTPServer] wraps it with
// the timeouts and HTTP/2 settings it is meant to run with.
//
// It connects where strangers ask, so it refuses what could turn it into
// a weapon: ports other than the configured ones, special-purpose
// addresses (unless admitted), more than MaxAddresses addresses, large
// bodies, more than Rate requests per second per client (every request
// counts), more than MaxConcurrent checks at once or more than a client's
// fair share of them, more than MaxConnsPerClient connections of one
// client, and, with a Token, anyone without it.
// Every refusal is a JSON [ErrorResponse] with a documented status.
type Server struct {
	cfg        ServerConfig
	policy     *addressPolicy
	limits     checkLimits
	connector  *probe.Connector
	handshaker *probe.Handshaker
	limiter    *ratelimit.PerClient
	pool       *checkPool
	conns      *connTracker
	tokenHash  [32]byte
	log        *slog.Logger
}

// NewServer checks cfg and returns a server.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Resolver == nil || cfg.Resolver.Exchanger == nil {
		return nil, fmt.Errorf("%w: a resolver is required", ErrServerConfig)
	}
	if cfg.Analyzer == nil {
		return nil, fmt.Errorf("%w: a chain analyzer is required", ErrServerConfig)
	}
	if len(cfg.Ports) == 0 {
		cfg.Ports = []int{443}
	}
	for _, p := range cfg.Ports {
		if p <= 0 || p > 65535 {
			return nil, fmt.Errorf("%w: port %d is not 1-65535", ErrServerConfig, p)
		}
	}
	if cfg.MaxAddresses <= 0 {
		cfg.MaxAddresses = DefaultMaxAddresses
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = DefaultDeadline
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxConnsPerClient <= 0 {
		cfg.MaxConnsPerClient = DefaultMaxConnsPerClient
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.BusyIdleTimeout <= 0 {
		cfg.BusyIdleTimeout = DefaultBusyIdleTimeout
	}
	if cfg.Dial == nil {
		cfg.Dial = guard.New().Dialer(nil)
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.policy = newAddressPolicy(cfg.Admit, cfg.Ports)
	s.limits = checkLimits{maxAddresses: cfg.MaxAddresses, ports: cfg.Ports, policy: s.policy}
	// Each step gets a quarter of the deadline: DNS, then connect and
	// handshake to an address the DNS gave, leave a quarter for slack.
	step := cfg.Deadline / 4
	s.connector = &probe.Connector{Dial: s.policy.dialer(cfg.Dial), Timeout: step}
	s.handshaker = &probe.Handshaker{Timeout: step, MaxCerts: serverMaxCerts, MaxChainBytes: serverMaxChainBytes}
	if cfg.Rate > 0 {
		s.limiter = ratelimit.New(cfg.Rate, cfg.Burst, cfg.MaxClients)
	}
	s.pool = newCheckPool(cfg.MaxConcurrent)
	s.conns = newConnTracker(cfg.MaxConns, cfg.MaxConnsPerClient, cfg.BusyIdleTimeout, cfg.TrustedProxies)
	if cfg.Token != "" {
		s.tokenHash = sha256.Sum256([]byte(cfg.Token))
	}
	return s, nil
}

func (s *Server) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

// HTTPServer returns an http.Server for s with bounded header, read, write
// and idle times, and with the connection bounds of ServerConfig (MaxConns,
// MaxConnsPerClient) kept by its ConnState hook. With tlsConfig it speaks HTTP/2 and HTTP/1.1 over TLS (run
// it with ServeTLS); with nil, plain HTTP/1.1 and HTTP/2 with prior
// knowledge, for a deployment behind a TLS-terminating proxy.
func (s *Server) HTTPServer(tlsConfig *tls.Config) *http.Server {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	if tlsConfig != nil {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Server{
		Handler:           s,
		TLSConfig:         tlsConfig,
		Protocols:         protocols,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 32},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      s.cfg.Deadline + 10*time.Second,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ConnState:         s.conns.connState,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// requestLog collects what one request's log record says.
type requestLog struct {
	status    int
	code      string
	addresses int
	endpoints int
}

// ServeHTTP answers one request. It never panics on input: every refusal
// is a JSON ErrorResponse.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	client := s.clientAddr(r)
	rl := &requestLog{}
	defer func() {
		if v := recover(); v != nil {
			// A bug, not the client's fault: log it, answer 500, keep serving.
			s.log.Error("panic serving a request", "client", client.String(), "panic", fmt.Sprint(v))
			s.writeError(w, rl, &apiError{status: http.StatusInternalServerError, code: ErrInternal, message: "internal error"})
		}
		level := slog.LevelInfo
		if rl.status >= 500 {
			level = slog.LevelWarn
		}
		s.log.LogAttrs(r.Context(), level, "request",
			slog.String("client", client.String()),
			slog.String("method", r.Method),
			slog.String("path", truncate(r.URL.Path, 64)),
			slog.String("proto", r.Proto),
			slog.Int("status", rl.status),
			slog.String("error", rl.code),
			slog.Int("addresses", rl.addresses),
			slog.Int("endpoints", rl.endpoints),
			slog.Duration("duration", s.now().Sub(start)),
		)
	}()

	// Rate first, for every request: neither bad tokens nor bad bodies nor
	// a health check nor a wrong path come for free.
	if ok, retry, full := s.limiter.Allow(ratelimit.Key(client), start); !ok {
		w.Header().Set("Retry-After", ratelimit.RetryAfter(retry))
		if full {
			s.writeError(w, rl, &apiError{http.StatusServiceUnavailable, ErrOverloaded, "too many clients at once; retry later"})
			return
		}
		s.writeError(w, rl, &apiError{http.StatusTooManyRequests, ErrRateLimited,
			fmt.Sprintf("more than %g requests per second (burst %d) from %s", s.cfg.Rate, s.cfg.Burst, client)})
		return
	}
	switch r.URL.Path {
	case HealthPath:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			s.writeError(w, rl, &apiError{http.StatusMethodNotAllowed, ErrMethodNotAllowed, "use GET"})
			return
		}
		s.writeJSON(w, rl, http.StatusOK, map[string]any{"version": APIVersion, "status": "ok"})
		return
	case CheckPath, WhoAmIPath, SNIEndpointPath:
	default:
		s.writeError(w, rl, &apiError{http.StatusNotFound, ErrNotFound, "the API is POST " + CheckPath})
		return
	}
	method := http.MethodPost
	if r.URL.Path == WhoAmIPath || r.URL.Path == SNIEndpointPath {
		method = http.MethodGet
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		s.writeError(w, rl, &apiError{http.StatusMethodNotAllowed, ErrMethodNotAllowed, "use " + method})
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kzprobe-control"`)
		s.writeError(w, rl, &apiError{http.StatusUnauthorized, ErrUnauthorized, "a valid bearer token is required"})
		return
	}
	if r.URL.Path == WhoAmIPath {
		s.writeJSON(w, rl, http.StatusOK, WhoAmIResponse{Version: APIVersion, ClientAddress: client.String()})
		return
	}
	if r.URL.Path == SNIEndpointPath {
		if s.cfg.SNIEndpoint == nil {
			s.writeError(w, rl, &apiError{http.StatusNotFound, ErrNotFound, "this server runs no SNI endpoint (kzprobe control serve --sni-endpoint)"})
			return
		}
		e := *s.cfg.SNIEndpoint
		e.Version = APIVersion
		s.writeJSON(w, rl, http.StatusOK, e)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		s.writeError(w, rl, &apiError{http.StatusUnsupportedMediaType, ErrUnsupportedMedia, "Content-Type must be application/json"})
		return
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.writeError(w, rl, &apiError{http.StatusRequestEntityTooLarge, ErrBodyTooLarge,
			fmt.Sprintf("request body larger than %d bytes", s.cfg.MaxBodyBytes)})
		return
	}
	q, aerr := parseCheckRequest(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), s.limits)
	if aerr != nil {
		s.writeError(w, rl, aerr)
		return
	}
	rl.addresses = len(q.addresses)
	key := ratelimit.Key(client)
	if ok, full := s.pool.acquire(key); !ok {
		w.Header().Set("Retry-After", "1")
		if full {
			s.writeError(w, rl, &apiError{http.StatusServiceUnavailable, ErrOverloaded, "too many checks in progress; retry later"})
			return
		}
		s.writeError(w, rl, &apiError{http.StatusTooManyRequests, ErrTooManyChecks,
			fmt.Sprintf("%s has its share of the %d checks this server runs at once in progress; retry when one is done", client, s.cfg.MaxConcurrent)})
		return
	}
	defer s.pool.release(key)
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Deadline)
	defer cancel()
	resp := s.check(ctx, q, client)
	rl.endpoints = len(resp.Endpoints)
	s.writeJSON(w, rl, http.StatusOK, resp)
}

// check measures q: the server's own DNS, and a connect and a handshake to
// every submitted address and to its own answers.
func (s *Server) check(ctx context.Context, q checkQuery, client netip.Addr) *CheckResponse {
	t0 := probe.NewEpoch(s.cfg.Now)
	resp := &CheckResponse{
		Version:       APIVersion,
		Domain:        q.domain,
		Port:          q.port,
		Fingerprint:   q.fingerprint,
		ClientAddress: client.String(),
	}
	var (
		wg      sync.WaitGroup
		eps     []*measurement.ControlEndpoint
		addrs   []netip.Addr
		sources [][]string
	)
	try := func(a netip.Addr, source string) {
		e := &measurement.ControlEndpoint{Address: a.String()}
		eps, addrs, sources = append(eps, e), append(addrs, a), append(sources, []string{source})
		wg.Go(func() { s.tryEndpoint(ctx, e, a, q, t0) })
	}
	// The submitted addresses go at once; the server's own answers follow
	// its DNS.
	for _, a := range q.addresses {
		try(a, measurement.ControlSourceClient)
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.Deadline/4)
	resp.Queries = probe.LookupAll(dctx, s.cfg.Resolver, q.domain, t0)
	cancel()
	own := 0
	for _, a := range probe.Addrs(resp.Queries) {
		a = a.Unmap()
		if i := slices.Index(addrs, a); i >= 0 {
			sources[i] = append(sources[i], measurement.ControlSourceDNS)
			continue
		}
		if own == s.cfg.MaxAddresses {
			break
		}
		own++
		try(a, measurement.ControlSourceDNS)
	}
	wg.Wait()
	resp.Endpoints = make([]measurement.ControlEndpoint, len(eps))
	for i, e := range eps {
		e.Sources = sources[i]
		resp.Endpoints[i] = *e
	}
	resp.TestRuntime = t0.Since()
	return resp
}

// tryEndpoint connects to a, hand-shakes with SNI = the domain and judges
// the chain presented.
func (s *Server) tryEndpoint(ctx context.Context, e *measurement.ControlEndpoint, a netip.Addr, q checkQuery, t0 probe.Epoch) {
	conn, tc := s.connector.Connect(ctx, a, q.port, t0)
	e.TCPConnect = tc
	if conn == nil {
		return
	}
	h := s.handshaker.Handshake(ctx, conn, q.domain, q.fingerprint, t0)
	e.TLSHandshake = &h
	if len(h.PeerCertificates) == 0 {
		return
	}
	der := make([][]byte, len(h.PeerCertificates))
	for i, c := range h.PeerCertificates {
		der[i] = c
	}
	e.Chain = s.cfg.Analyzer.Judge(der, q.domain, t0.Start())
}

// authorized reports whether r carries the token, when one is configured.
// The comparison is of SHA-256 digests in constant time, so neither the
// token's bytes nor its length leak through timing.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Token == "" {
		return true
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
}

// clientAddr is the client's address: the TCP peer, or, when the peer is
// a trusted proxy, the right-most X-Forwarded-For entry that is not one.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	peer := ap.Addr().Unmap()
	if len(s.cfg.TrustedProxies) == 0 || !probe.IsBogon(peer, s.cfg.TrustedProxies) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a garbled entry: trust nothing to its left
		}
		a = a.Unmap()
		if !probe.IsBogon(a, s.cfg.TrustedProxies) {
			return a
		}
	}
	return peer
}

func (s *Server) writeError(w http.ResponseWriter, rl *requestLog, e *apiError) {
	rl.code = e.code
	s.writeJSON(w, rl, e.status, ErrorResponse{Version: APIVersion, Error: e.code, Message: e.message})
}

func (s *Server) writeJSON(w http.ResponseWriter, rl *requestLog, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, rl.code = http.StatusInternalServerError, ErrInternal
		body, _ = json.Marshal(ErrorResponse{Version: APIVersion, Error: ErrInternal, Message: "cannot encode the answer"})
	}
	rl.status = status
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
