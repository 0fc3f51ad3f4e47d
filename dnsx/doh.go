package dnsx

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"kzprobe/probe/failure"
)

// dohExchanger is DNS-over-HTTPS (RFC 8484) to one pinned address.
//
// It uses net/http's Transport with HTTP/2 preferred (ALPN "h2", then
// "http/1.1" for servers that lack it) and a DialTLSContext that always
// dials the pinned ip:port through Options.Dial: the URL's host is never
// resolved, no proxy from the environment is used, redirects are not
// followed. One HTTP/2 connection carries every query; until a connection
// is known to work, requests go one at a time (the gate), because
// net/http dials one connection per waiting request when several start
// cold, and a burst of queries would otherwise cost a burst of handshakes.
type dohExchanger struct {
	url     string
	u       *url.URL
	host    string // HTTP Host, the TLS name
	method  string
	timeout time.Duration
	tr      *http.Transport
	client  *http.Client
	gate    chan struct{}
	up      atomic.Bool
}

var _ InfoExchanger = (*dohExchanger)(nil)

func newDoH(sp spec, opts Options) *dohExchanger {
	d := &dohExchanger{
		url:     sp.url.String(),
		u:       sp.url,
		host:    opts.ServerName,
		method:  opts.Method,
		timeout: opts.timeout(),
		gate:    make(chan struct{}, 1),
	}
	if d.method == "" {
		d.method = http.MethodPost
	}
	cfg := opts.tlsConfig(sp.addr.Addr(), "h2", "http/1.1")
	dial := opts.dial()
	addr := sp.addr.String()
	timeout := d.timeout
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	d.tr = &http.Transport{
		Proxy: nil,
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			// net/http detaches the dial from the request's deadline;
			// bound it here so a blackholed resolver frees the dial.
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			conn, err := dial(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(conn, cfg.Clone())
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			return tc, nil
		},
		ForceAttemptHTTP2:   true,
		Protocols:           &protocols,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		HTTP2: &http.HTTP2Config{
			// Notice a dead connection between queries.
			SendPingTimeout: 30 * time.Second,
			PingTimeout:     5 * time.Second,
		},
	}
	d.client = &http.Client{
		Transport: d.tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return d
}

func (d *dohExchanger) Engine() string  { return "doh" }
func (d *dohExchanger) Address() string { return d.url }

// Close closes the idle connections. In-flight exchanges finish.
func (d *dohExchanger) Close() error {
	d.tr.CloseIdleConnections()
	return nil
}

func (d *dohExchanger) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, []byte, error) {
	resp, raw, _, err := d.ExchangeWithInfo(ctx, q)
	return resp, raw, err
}

func (d *dohExchanger) ExchangeWithInfo(ctx context.Context, q *dns.Msg) (*dns.Msg, []byte, ExchangeInfo, error) {
	// RFC 8484 section 4.1: the ID should be 0 for HTTP caching; the
	// question is still checked on the response.
	info := ExchangeInfo{Engine: "doh", Address: d.url, ID: 0, Attempts: 1}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	packed, err := q.Pack()
	if err != nil {
		return nil, nil, info, fmt.Errorf("dnsx: packing DNS query: %w", err)
	}
	packed[0], packed[1] = 0, 0
	var body []byte
	for {
		req, err := d.request(ctx, packed)
		if err != nil {
			return nil, nil, info, err
		}
		body, err = d.roundTrip(ctx, req)
		if err == nil {
			break
		}
		// A connection the server closed between queries fails the
		// request that raced with the close (EOF, reset); net/http does
		// not resend a POST by itself. A DNS query is idempotent: send it
		// once more, on a new connection.
		if info.Attempts == 1 && body == nil && ctx.Err() == nil && staleConn(err) {
			info.Attempts++
			continue
		}
		return nil, body, info, err
	}
	resp, err := CheckResponse(q, 0, body)
	if err != nil {
		// Over HTTP there is no next message to wait for: a response that
		// does not answer the query is the server misbehaving.
		return nil, body, info, misbehaving(fmt.Errorf("dnsx: DoH %s: %w", d.url, err))
	}
	return resp, body, info, nil
}

func (d *dohExchanger) request(ctx context.Context, packed []byte) (*http.Request, error) {
	var req *http.Request
	var err error
	if d.method == http.MethodGet {
		u := *d.u
		v := u.Query()
		v.Set("dns", base64.RawURLEncoding.EncodeToString(packed))
		u.RawQuery = v.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(packed))
		if err == nil {
			req.Header.Set("Content-Type", "application/dns-message")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("dnsx: DoH request to %s: %w", d.url, err)
	}
	req.Header.Set("Accept", "application/dns-message")
	req.Header.Set("User-Agent", "") // say nothing about the probe
	if d.host != "" {
		req.Host = d.host
	}
	return req, nil
}

// down marks the connection as not known to work after a failed request,
// unless the request's own deadline or cancellation ended it: one query
// out of time says nothing about the connection, and closing the gate on
// it would make every query behind it wait its turn.
func (d *dohExchanger) down(ctx context.Context) {
	if ctx.Err() == nil {
		d.up.Store(false)
	}
}

// roundTrip sends req and returns the body of a 200 application/dns-message
// response, at most MaxDNSMessageSize bytes.
func (d *dohExchanger) roundTrip(ctx context.Context, req *http.Request) ([]byte, error) {
	if !d.up.Load() {
		select {
		case d.gate <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if d.up.Load() {
			// The request ahead of this one brought the connection up:
			// go on concurrently rather than one at a time.
			<-d.gate
		} else {
			defer func() { <-d.gate }()
		}
	}
	res, err := d.client.Do(req)
	if err != nil {
		d.down(ctx)
		return nil, ContextError(ctx, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, MaxDNSMessageSize+1))
	if err != nil {
		d.down(ctx)
		return nil, ContextError(ctx, err)
	}
	d.up.Store(true)
	if len(body) > MaxDNSMessageSize {
		return nil, misbehaving(fmt.Errorf("dnsx: DoH %s: response larger than %d bytes", d.url, MaxDNSMessageSize))
	}
	if res.StatusCode != http.StatusOK {
		return body, misbehaving(fmt.Errorf("dnsx: DoH %s: HTTP status %s", d.url, res.Status))
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "application/dns-message" {
		return body, misbehaving(fmt.Errorf("dnsx: DoH %s: content type %q, want application/dns-message", d.url, res.Header.Get("Content-Type")))
	}
	return body, nil
}

func misbehaving(err error) error {
	return &failure.Error{Failure: failure.DNSServerMisbehaving, Operation: "dns_round_trip", Err: err}
}
