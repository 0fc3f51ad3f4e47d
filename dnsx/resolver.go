package dnsx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"kzprobe/probe/chain"
	"kzprobe/probe/guard"
)

// ErrInvalidSpec is wrapped by New for a spec it cannot use.
var ErrInvalidSpec = errors.New("dnsx: invalid resolver spec")

// Options configures a resolver made by [New]. The zero value is usable: the
// TLS name is the IP, the roots are the Mozilla bundle, the dialer is a
// plain net.Dialer and each exchange takes at most DefaultTimeout.
type Options struct {
	// ServerName is the TLS server name sent and verified (DoH, DoT), and
	// the HTTP Host of DoH requests. Zero means the IP literal of the
	// spec, which then must be in the certificate's IP SANs.
	ServerName string
	// RootCAs verifies the resolver's certificate. Nil means chain.MozillaRoots(),
	// the bundle compiled into the binary, so results do not depend on the
	// machine (a machine with the interception root installed would
	// otherwise trust an intercepted control). To add a CA (the lab's),
	// append to chain.MozillaRoots() and pass the result.
	RootCAs *x509.CertPool
	// Dial makes every connection. Nil means a zero net.Dialer, with no
	// guard: pass guard.Guard.Dialer's result.
	Dial guard.DialFunc
	// Timeout bounds each exchange, dialling and the TLS handshake
	// included, when the context allows longer. Zero means DefaultTimeout.
	Timeout time.Duration
	// Method is the DoH request method: "POST" or "GET" (RFC 8484 section
	// 4.1). Zero means POST.
	Method string
}

func (o Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return DefaultTimeout
	}
	return o.Timeout
}

func (o Options) dial() guard.DialFunc {
	if o.Dial == nil {
		return (&net.Dialer{}).DialContext
	}
	return o.Dial
}

// tlsConfig returns the client TLS configuration for a resolver at ip.
func (o Options) tlsConfig(ip netip.Addr, nextProtos ...string) *tls.Config {
	name := o.ServerName
	if name == "" {
		name = ip.String()
	}
	roots := o.RootCAs
	if roots == nil {
		roots = chain.MozillaRoots()
	}
	return &tls.Config{
		ServerName: name,
		RootCAs:    roots,
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
	}
}

// Spec names a control resolver and the TLS name to verify for it.
type Spec struct {
	// URL is a spec for New, e.g. "https://1.1.1.1/dns-query".
	URL string
	// ServerName overrides Options.ServerName for this resolver; zero
	// keeps it.
	ServerName string
}

// PublicResolver is a public DNS-over-HTTPS service that a volunteer can
// use as the control with nothing configured.
type PublicResolver struct {
	// ServerName is the TLS name its certificate is verified for.
	ServerName string
	// IPs are its addresses; its Spec is pinned to the first.
	IPs []netip.Addr
}

// Spec is the resolver's DoH spec, pinned to its first IP.
func (p PublicResolver) Spec() Spec {
	host := p.IPs[0].String()
	if p.IPs[0].Is6() {
		host = "[" + host + "]"
	}
	return Spec{URL: "https://" + host + "/dns-query", ServerName: p.ServerName}
}

// PublicResolvers returns the public resolvers kzprobe knows, in order of
// preference: the first is [DefaultControl], the others
// [DefaultFallbacks]. It is the one list of them: the command line's
// defaults and [KnownServerName] come from it. Tests never contact them.
func PublicResolvers() []PublicResolver {
	ips := func(s ...string) []netip.Addr {
		out := make([]netip.Addr, len(s))
		for i, a := range s {
			out[i] = netip.MustParseAddr(a)
		}
		return out
	}
	return []PublicResolver{
		{ServerName: "cloudflare-dns.com", IPs: ips("1.1.1.1", "1.0.0.1")},
		{ServerName: "dns.google", IPs: ips("8.8.8.8", "8.8.4.4")},
		{ServerName: "dns.quad9.net", IPs: ips("9.9.9.9", "149.112.112.112")},
	}
}

// DefaultControl is the control resolver used when none is configured:
// Cloudflare's DoH service, pinned to its IP so no local DNS is needed.
func DefaultControl() Spec { return PublicResolvers()[0].Spec() }

// DefaultFallbacks are tried in order after DefaultControl fails at the
// transport level (it may be blocked): Google's and Quad9's DoH services.
func DefaultFallbacks() []Spec {
	var out []Spec
	for _, p := range PublicResolvers()[1:] {
		out = append(out, p.Spec())
	}
	return out
}

// KnownServerName returns the TLS name of the public resolver whose IP is
// the host of rawURL (a spec for [New]), so that
// https://8.8.8.8/dns-query needs no server name; "" when the host is no
// known resolver's IP.
func KnownServerName(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	for _, p := range PublicResolvers() {
		for _, ip := range p.IPs {
			if ip.String() == u.Hostname() {
				return p.ServerName
			}
		}
	}
	return ""
}

// spec is a parsed resolver spec.
type spec struct {
	scheme string
	addr   netip.AddrPort
	url    *url.URL // https only
}

// parseSpec parses "https://IP[:port][/path]", "tls://IP[:port]",
// "udp://IP[:port]" or "tcp://IP[:port]". The host must be an IP literal.
func parseSpec(s string) (spec, error) {
	bad := func(format string, a ...any) (spec, error) {
		return spec{}, fmt.Errorf("%w %q: %s", ErrInvalidSpec, s, fmt.Sprintf(format, a...))
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("%v", err)
	}
	scheme := strings.ToLower(u.Scheme)
	defaultPort := map[string]uint16{"https": 443, "tls": 853, "udp": 53, "tcp": 53}[scheme]
	if defaultPort == 0 {
		return bad("want https://IP/dns-query (DoH), tls://IP:853 (DoT), udp://IP:53 or tcp://IP:53")
	}
	if u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return bad("user info, opaque part and fragment are not allowed")
	}
	host := u.Hostname()
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return bad("the host must be an IP literal (pinned, so reaching it needs no local DNS), not %q; set the TLS name with the server name option", host)
	}
	port := defaultPort
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return bad("invalid port %q", p)
		}
		port = uint16(n)
	}
	sp := spec{scheme: scheme, addr: netip.AddrPortFrom(ip.Unmap(), port)}
	if scheme == "https" {
		v := *u
		v.Scheme = "https"
		if v.Path == "" {
			v.Path = "/dns-query"
		}
		sp.url = &v
		return sp, nil
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return bad("a %s resolver takes no path or query", scheme)
	}
	return sp, nil
}

// New returns the control resolver named by s:
//
//	https://IP[:port][/path]  DoH (RFC 8484) over HTTP/2, path /dns-query by default
//	tls://IP[:port]           DoT (RFC 7858), port 853 by default
//	udp://IP[:port]           plain DNS, TCP on truncation ([NewDNSExchanger])
//	tcp://IP[:port]           plain DNS over TCP
//
// The host must be an IP literal; an error wrapping ErrInvalidSpec and
// naming s says so otherwise. No connection is made before the first
// exchange.
func New(s string, opts Options) (InfoExchanger, error) {
	sp, err := parseSpec(s)
	if err != nil {
		return nil, err
	}
	switch opts.Method {
	case "", "POST", "GET":
	default:
		return nil, fmt.Errorf("dnsx: DoH method %q: want POST or GET", opts.Method)
	}
	switch sp.scheme {
	case "https":
		return newDoH(sp, opts), nil
	case "tls":
		return newDoT(sp, opts), nil
	}
	if sp.scheme == "tcp" {
		return NewTCPDNSExchanger(sp.addr.String(), opts.Dial), nil
	}
	return NewDNSExchanger(sp.addr.String(), opts.Dial), nil
}

// NewWithFallbacks returns a control resolver that asks specs[0] and moves
// to the next spec when an exchange fails at the transport level (timeout,
// refused, TLS failure, malformed response). A DNS answer, NXDOMAIN and
// SERVFAIL included, ends the search: it is the control's view. The
// resolver that last answered is tried first next time, so a blocked
// default costs one timeout, not one per query; a timeout moves the
// preference on, so the caller's retry goes to the next resolver. Every
// resolver asked is reported in [ExchangeInfo.Tries] with its own outcome.
// With one spec it is that spec's resolver alone ([New]).
func NewWithFallbacks(specs []Spec, opts Options) (InfoExchanger, error) {
	if len(specs) == 0 {
		return nil, fmt.Errorf("%w: no control resolver given", ErrInvalidSpec)
	}
	f := &fallbackExchanger{}
	for _, s := range specs {
		o := opts
		if s.ServerName != "" {
			o.ServerName = s.ServerName
		}
		ex, err := New(s.URL, o)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.ex = append(f.ex, ex)
	}
	if len(f.ex) == 1 {
		return f.ex[0], nil
	}
	return f, nil
}

// fallbackExchanger tries its exchangers in turn.
type fallbackExchanger struct {
	ex   []InfoExchanger
	pref atomic.Int32 // index of the exchanger tried first
}

var _ InfoExchanger = (*fallbackExchanger)(nil)

func (f *fallbackExchanger) current() InfoExchanger { return f.ex[int(f.pref.Load())%len(f.ex)] }

// Engine is the preferred resolver's engine.
func (f *fallbackExchanger) Engine() string { return f.current().Engine() }

// Address is the preferred resolver's address.
func (f *fallbackExchanger) Address() string { return f.current().Address() }

func (f *fallbackExchanger) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, []byte, error) {
	resp, raw, _, err := f.ExchangeWithInfo(ctx, q)
	return resp, raw, err
}

func (f *fallbackExchanger) ExchangeWithInfo(ctx context.Context, q *dns.Msg) (*dns.Msg, []byte, ExchangeInfo, error) {
	n := len(f.ex)
	start := int(f.pref.Load()) % n
	var (
		resp     *dns.Msg
		raw      []byte
		info     ExchangeInfo
		err      error
		attempts int
	)
	var tries []Try
	now := clock(ctx)
	for i := range n {
		idx := (start + i) % n
		t0 := now()
		resp, raw, info, err = f.ex[idx].ExchangeWithInfo(ctx, q)
		tries = append(tries, Try{Engine: info.Engine, Address: info.Address, Start: t0, End: now(), Err: err})
		attempts += max(info.Attempts, 1)
		info.Attempts = attempts
		info.Tries = tries
		if err == nil {
			f.pref.Store(int32(idx))
			return resp, raw, info, nil
		}
		// Prefer the next resolver from now on, unless another
		// goroutine already moved the preference.
		f.pref.CompareAndSwap(int32(idx), int32((idx+1)%n))
		if ctx.Err() != nil {
			break
		}
	}
	return resp, raw, info, err
}

// Close closes every resolver.
func (f *fallbackExchanger) Close() error {
	var errs []error
	for _, ex := range f.ex {
		errs = append(errs, ex.Close())
	}
	return errors.Join(errs...)
}
