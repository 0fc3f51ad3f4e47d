package control

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/chain"
	"kzprobe/probe/failure"
	"kzprobe/probe/guard"
)

// Client defaults.
const (
	// DefaultClientTimeout bounds one request to a control server: its
	// deadline and some slack for the way there and back.
	DefaultClientTimeout = DefaultDeadline + 10*time.Second
	// DefaultMaxResponseBytes bounds an answer read: 8 endpoints and 8
	// more of the server's own, each with at most 64 KiB of chain.
	DefaultMaxResponseBytes = 8 << 20
	// maxRetryWait is the longest Retry-After the client waits for.
	maxRetryWait = 10 * time.Second
	// maxAttempts bounds the requests per check (a 429 or 503 is retried).
	maxAttempts = 3
)

// ErrInvalidServerURL is wrapped by NewClient's errors.
var ErrInvalidServerURL = errors.New("control: invalid control server URL")

// ClientOptions configures a control server client. The zero value is
// usable with an IP-literal https URL.
type ClientOptions struct {
	// Token is the bearer token; empty means none. It is never sent over
	// plain http except to a loopback address.
	Token string
	// RootCAs verifies the server's certificate. Nil means
	// chain.MozillaRoots(), the bundle compiled into the binary.
	RootCAs *x509.CertPool
	// ServerName is the TLS name verified. Zero means the URL's host.
	ServerName string
	// Dial makes the connections. Pass the network guard's dialer; nil
	// means a plain net.Dialer.
	Dial guard.DialFunc
	// Resolver resolves the URL's host when it is a name rather than an IP
	// literal; pass the control resolver, never the local one, which is
	// the thing under test (a lie would only make the TLS check fail, but
	// it could hide the control server). Nil means the host must be an IP
	// literal.
	Resolver *probe.DNSResolver
	// Timeout bounds one request. Zero means DefaultClientTimeout.
	Timeout time.Duration
	// MaxAddresses is the most addresses sent per request; the rest are
	// left out. Zero means DefaultMaxAddresses, the server's default limit.
	MaxAddresses int
	// MaxResponseBytes bounds an answer. Zero means DefaultMaxResponseBytes.
	MaxResponseBytes int64
}

// Client asks a control server (kzprobe control serve) about targets. It
// implements probe.ControlServer and is safe for concurrent use.
type Client struct {
	server   string // the URL as given, for the record
	endpoint string // the URL of POST /v1/check
	host     string // the URL's host, a name or an IP literal
	opts     ClientOptions
	http     *http.Client
}

var _ probe.ControlServer = (*Client)(nil)

// NewClient returns a client for the control server at serverURL:
// "https://HOST[:port][/prefix]" (the API is under prefix + /v1/check), or
// "http://..." for a server behind nothing at all, such as a test.
func NewClient(serverURL string, opts ClientOptions) (*Client, error) {
	bad := func(format string, a ...any) (*Client, error) {
		return nil, fmt.Errorf("%w %q: %s", ErrInvalidServerURL, serverURL, fmt.Sprintf(format, a...))
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return bad("%v", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return bad("want https://HOST[:port]")
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return bad("want https://HOST[:port][/prefix], without user info, query or fragment")
	}
	host := u.Hostname()
	ip, ipErr := netip.ParseAddr(host)
	if ipErr != nil && opts.Resolver == nil {
		return bad("the host must be an IP literal when no resolver is given")
	}
	if u.Scheme == "http" && opts.Token != "" && (ipErr != nil || !ip.IsLoopback()) {
		return bad("refusing to send the token over plain http; use https")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return bad("invalid port %q", p)
		}
	}
	c := &Client{server: serverURL, host: host, opts: opts}
	e := *u
	e.Path = strings.TrimSuffix(u.Path, "/") + CheckPath
	e.RawPath = ""
	c.endpoint = e.String()
	roots := opts.RootCAs
	if roots == nil {
		roots = chain.MozillaRoots()
	}
	c.http = &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil, // never an environment proxy: it would see the domains
			DialContext:            c.dial,
			TLSClientConfig:        &tls.Config{RootCAs: roots, ServerName: opts.ServerName, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:      true,
			TLSHandshakeTimeout:    10 * time.Second,
			ResponseHeaderTimeout:  c.timeout(),
			MaxResponseHeaderBytes: 64 << 10,
			MaxIdleConnsPerHost:    4,
			IdleConnTimeout:        90 * time.Second,
		},
		// The API never redirects; following one could leak the token.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// Server returns the control server's URL as given to NewClient: the
// record names it in test_helpers and test_keys.control.
func (c *Client) Server() string { return c.server }

func (c *Client) timeout() time.Duration {
	if c.opts.Timeout > 0 {
		return c.opts.Timeout
	}
	return DefaultClientTimeout
}

func (c *Client) maxAddresses() int {
	if c.opts.MaxAddresses > 0 {
		return c.opts.MaxAddresses
	}
	return DefaultMaxAddresses
}

func (c *Client) maxResponseBytes() int64 {
	if c.opts.MaxResponseBytes > 0 {
		return c.opts.MaxResponseBytes
	}
	return DefaultMaxResponseBytes
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// dial connects to the server: an IP literal through opts.Dial, a name
// (only the URL's own host) through opts.Resolver first.
func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	dial := c.opts.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return dial(ctx, network, addr)
	}
	if c.opts.Resolver == nil || !strings.EqualFold(host, c.host) {
		return nil, fmt.Errorf("control: will not resolve %q", host)
	}
	queries := probe.LookupAll(ctx, c.opts.Resolver, host, probe.NewEpoch(nil))
	addrs := probe.Addrs(queries)
	if len(addrs) == 0 {
		for _, q := range queries {
			if q.Failure != nil {
				return nil, &failure.Error{Failure: *q.Failure, Operation: "resolve", Err: fmt.Errorf("control: resolving %s: %s", host, *q.Failure)}
			}
		}
		return nil, &failure.Error{Failure: failure.DNSNoAnswer, Operation: "resolve", Err: fmt.Errorf("control: %s has no address", host)}
	}
	var errs []error
	for _, a := range addrs {
		conn, err := dial(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// Check asks the server about one target and returns the report: the
// server's answer, or the failure. It retries a 429 or 503 whose
// Retry-After fits the context's deadline, at most maxAttempts times.
//
// It submits only addresses the server can use: an IPv6 address that
// embeds an IPv4 one (NAT64, 6to4, Teredo, IPv4-compatible or -translated)
// names a gateway or relay of the probe's network, and the server refuses
// the whole request when what it embeds is special. Those, and the
// addresses beyond MaxAddresses, are recorded in the report's NotChecked
// with req.NotChecked, and the server still answers about the rest and
// its own answers. Special-purpose addresses are the caller's to leave out
// (the engine does, knowing which the user admitted).
func (c *Client) Check(ctx context.Context, req measurement.ControlRequest, t0 probe.Epoch) *measurement.ControlReport {
	rep := &measurement.ControlReport{Server: c.server, Addresses: []string{}, T0: t0.Since()}
	defer func() { rep.T = t0.Since() }()
	rep.NotChecked = append([]measurement.ControlNotChecked{}, req.NotChecked...)
	port := req.Port
	if port == 0 {
		port = 443
	}
	body := CheckRequest{Version: APIVersion, Domain: req.Domain, Port: port, Addresses: []string{}, Fingerprint: req.Fingerprint}
	for _, a := range req.Addresses {
		a = a.Unmap()
		reason := ""
		switch _, embeds := embeddedIPv4(a); {
		case embeds:
			reason = measurement.NotCheckedIPv6Transition
		case len(body.Addresses) == c.maxAddresses():
			reason = measurement.NotCheckedOverLimit
		}
		if reason != "" {
			rep.NotChecked = append(rep.NotChecked, measurement.ControlNotChecked{Address: a.String(), Reason: reason})
			continue
		}
		if s := a.String(); !slices.Contains(body.Addresses, s) {
			body.Addresses = append(body.Addresses, s)
		}
	}
	rep.Addresses = body.Addresses
	raw := encodeCheckRequest(body)
	for {
		rep.Attempts++
		status, retry, resp, code, err := c.do(ctx, raw)
		if err != nil {
			rep.Failure = failure.Ptr(failure.Classify(err))
			return rep
		}
		rep.StatusCode, rep.ErrorCode = status, code
		if status == http.StatusOK {
			if err := checkAnswer(resp, body); err != nil {
				rep.Failure = failure.Ptr(failure.UnknownPrefix + err.Error())
				return rep
			}
			rep.Response = resp
			return rep
		}
		what := fmt.Sprintf("control server answered HTTP %d", status)
		if code != "" {
			what += " (" + code + ")"
		}
		if (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) &&
			rep.Attempts < maxAttempts && retry > 0 && retry <= maxRetryWait && fits(ctx, retry) {
			t := time.NewTimer(retry)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
			}
		}
		rep.Failure = failure.Ptr(failure.UnknownPrefix + what)
		return rep
	}
}

// do sends one request. It returns the status, the Retry-After wait, the
// answer (200) or the error code (other statuses), or a transport error
// already classified.
func (c *Client) do(ctx context.Context, body []byte) (status int, retry time.Duration, resp *CheckResponse, code string, err error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	hreq, err := http.NewRequestWithContext(actx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, 0, nil, "", &failure.Error{Failure: failure.UnknownPrefix + "bad request", Operation: "control", Err: err}
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	if c.opts.Token != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	hresp, err := c.http.Do(hreq)
	if err != nil {
		return 0, 0, nil, "", requestError(ctx, actx, err)
	}
	defer discard(hresp.Body)
	if hresp.StatusCode != http.StatusOK {
		var e ErrorResponse
		if data, rerr := io.ReadAll(io.LimitReader(hresp.Body, 64<<10)); rerr == nil {
			json.Unmarshal(data, &e) // a proxy's HTML page leaves it empty
		}
		if s, perr := strconv.Atoi(hresp.Header.Get("Retry-After")); perr == nil && s > 0 {
			retry = time.Duration(s) * time.Second
		}
		return hresp.StatusCode, retry, nil, truncate(e.Error, 64), nil
	}
	limit := c.maxResponseBytes()
	data, err := io.ReadAll(io.LimitReader(hresp.Body, limit+1))
	if err != nil {
		return 0, 0, nil, "", requestError(ctx, actx, err)
	}
	if int64(len(data)) > limit {
		return 0, 0, nil, "", &failure.Error{Failure: failure.UnknownPrefix + fmt.Sprintf("control server answer larger than %d bytes", limit), Operation: "control"}
	}
	resp = new(CheckResponse)
	if err := json.Unmarshal(data, resp); err != nil {
		return 0, 0, nil, "", &failure.Error{Failure: failure.UnknownPrefix + "control server answer is not JSON", Operation: "control", Err: err}
	}
	return hresp.StatusCode, 0, resp, "", nil
}

// requestError classifies a transport error, looking at the contexts
// first: a cancelled parent is an interruption, an expired attempt a
// timeout.
func requestError(parent, attempt context.Context, err error) error {
	switch {
	case errors.Is(parent.Err(), context.Canceled):
		return &failure.Error{Failure: failure.Interrupted, Operation: "control", Err: err}
	case attempt.Err() != nil:
		return &failure.Error{Failure: failure.GenericTimeout, Operation: "control", Err: err}
	}
	return failure.New("control", err)
}

// checkAnswer refuses an answer that is not about the request.
func checkAnswer(resp *CheckResponse, req CheckRequest) error {
	switch {
	case resp.Version != APIVersion:
		return fmt.Errorf("control server answered in API version %d; want %d", resp.Version, APIVersion)
	case !strings.EqualFold(resp.Domain, req.Domain) || resp.Port != req.Port:
		return fmt.Errorf("control server answered about %s:%d, not %s:%d", truncate(resp.Domain, 64), resp.Port, req.Domain, req.Port)
	}
	return nil
}

// fits reports whether ctx leaves more than d.
func fits(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > d
}

// discard drains a little of a body, so the connection can be reused, and
// closes it.
func discard(body io.ReadCloser) {
	io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	body.Close()
}

// WhoAmI asks the server for the client's address as it sees it (GET
// /v1/whoami): the probe's public address, for the vantage. The error
// names the failure; it is never the address of anyone else.
func (c *Client) WhoAmI(ctx context.Context) (netip.Addr, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	u := strings.TrimSuffix(c.endpoint, CheckPath) + WhoAmIPath
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u, nil)
	if err != nil {
		return netip.Addr{}, err
	}
	req.Header.Set("Accept", "application/json")
	if c.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return netip.Addr{}, requestError(ctx, actx, err)
	}
	defer discard(resp.Body)
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return netip.Addr{}, requestError(ctx, actx, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorResponse
		json.Unmarshal(data, &e)
		return netip.Addr{}, fmt.Errorf("control: whoami: HTTP %d %s", resp.StatusCode, truncate(e.Error, 64))
	}
	var w WhoAmIResponse
	if err := json.Unmarshal(data, &w); err != nil || w.Version != APIVersion {
		return netip.Addr{}, fmt.Errorf("control: whoami: not a version %d answer", APIVersion)
	}
	a, err := netip.ParseAddr(w.ClientAddress)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("control: whoami: the server answered no address")
	}
	return a.Unmap(), nil
}

// SNIEndpoint asks the server where its neutral SNI endpoint listens and
// for its key pin (GET /v1/sni-endpoint), for `kzprobe sweep`. An answer
// without an address names the address this client reached the server
// at. The pin comes over the API's verified TLS (and with the token), so
// it is as trustworthy as the server.
func (c *Client) SNIEndpoint(ctx context.Context) (netip.AddrPort, chain.Pin, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	var remote netip.Addr
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if ap, err := netip.ParseAddrPort(info.Conn.RemoteAddr().String()); err == nil {
			remote = ap.Addr().Unmap()
		}
	}}
	u := strings.TrimSuffix(c.endpoint, CheckPath) + SNIEndpointPath
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(actx, trace), http.MethodGet, u, nil)
	if err != nil {
		return netip.AddrPort{}, chain.Pin{}, err
	}
	req.Header.Set("Accept", "application/json")
	if c.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return netip.AddrPort{}, chain.Pin{}, fmt.Errorf("control: %s: %w", SNIEndpointPath, requestError(ctx, actx, err))
	}
	defer discard(resp.Body)
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return netip.AddrPort{}, chain.Pin{}, fmt.Errorf("control: %s: %w", SNIEndpointPath, requestError(ctx, actx, err))
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorResponse
		json.Unmarshal(data, &e)
		return netip.AddrPort{}, chain.Pin{}, fmt.Errorf("control: %s: HTTP %d %s: %s", SNIEndpointPath, resp.StatusCode, truncate(e.Error, 64), truncate(e.Message, 200))
	}
	var e SNIEndpointResponse
	if err := json.Unmarshal(data, &e); err != nil || e.Version != APIVersion {
		return netip.AddrPort{}, chain.Pin{}, fmt.Errorf("control: %s: not a version %d answer", SNIEndpointPath, APIVersion)
	}
	pin, err := chain.ParsePin(e.Pin)
	if err != nil {
		return netip.AddrPort{}, chain.Pin{}, fmt.Errorf("control: %s: %w", SNIEndpointPath, err)
	}
	if e.Port <= 0 || e.Port > 65535 {
		return netip.AddrPort{}, chain.Pin{}, fmt.Errorf("control: %s: port %d out of range", SNIEndpointPath, e.Port)
	}
	addr := remote
	if e.Address != "" {
		if addr, err = netip.ParseAddr(e.Address); err != nil {
			return netip.AddrPort{}, chain.Pin{}, fmt.Errorf("control: %s: address %q is not an IP address", SNIEndpointPath, truncate(e.Address, 64))
		}
	}
	if !addr.IsValid() {
		return netip.AddrPort{}, chain.Pin{}, fmt.Errorf("control: %s: no address to dial", SNIEndpointPath)
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(e.Port)), pin, nil
}
