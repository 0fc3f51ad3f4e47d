package control_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/netutil"

	"kzprobe/control"
	"kzprobe/dnsx"
	"kzprobe/lab"
	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/chain"
	"kzprobe/probe/failure"
	"kzprobe/probe/guard"
)

// startLab starts a lab with the default scenario.
func startLab(t testing.TB) *lab.Lab {
	t.Helper()
	l, err := lab.Start(lab.Config{Scenario: lab.DefaultScenario()})
	if err != nil {
		t.Fatalf("starting the lab: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// labRoots is a pool holding the lab's public root.
func labRoots(l *lab.Lab) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(l.PKI.PublicRoot)
	return p
}

// labServerConfig is a control server placed in the lab as the lab's own
// is (outside dialer, the lab's DoH, its public root), with no special
// range admitted: tests that want the lab's /24 admit it.
func labServerConfig(t testing.TB, l *lab.Lab) control.ServerConfig {
	t.Helper()
	outside := guard.New(l.Net).Dialer(guard.DialFunc(l.OutsideDialer()))
	ex, err := dnsx.New(l.DoHURL, dnsx.Options{ServerName: l.ControlServerName, RootCAs: labRoots(l), Dial: outside, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return control.ServerConfig{
		// Generous bounds: a loaded CI machine runs many labs at once.
		Resolver: &probe.DNSResolver{Exchanger: ex, Timeout: 10 * time.Second, Retries: 1},
		Dial:     outside,
		Analyzer: chain.NewAnalyzer(labRoots(l), nil),
		Ports:    []int{l.Port},
		Deadline: 40 * time.Second,
	}
}

// testServer is a control server on https://127.0.0.1:port (HTTP/2).
type testServer struct {
	url string
	ts  *httptest.Server
}

func serve(t testing.TB, cfg control.ServerConfig) *testServer {
	t.Helper()
	s, err := control.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(s)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return &testServer{url: ts.URL, ts: ts}
}

// client returns an HTTP client of the test server that connects from
// source, a loopback address (each source is a different client to the
// rate limiter); invalid means the kernel's choice.
func (s *testServer) client(source netip.Addr) *http.Client {
	tr := s.ts.Client().Transport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: 2 * time.Second}
	if source.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: source.AsSlice()}
	}
	tr.DialContext = d.DialContext
	tr.ForceAttemptHTTP2 = true
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// answer is a decoded answer.
type answer struct {
	status int
	header http.Header
	proto  string
	check  *control.CheckResponse
	err    control.ErrorResponse
}

// post sends body to /v1/check; header entries are added ("Content-Type"
// is application/json unless set).
func post(t testing.TB, c *http.Client, url, body string, header ...string) answer {
	t.Helper()
	return send(t, c, http.MethodPost, url+control.CheckPath, strings.NewReader(body), header...)
}

func send(t testing.TB, c *http.Client, method, url string, body io.Reader, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, proto: resp.Proto}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q; want application/json (body %q)", ct, data)
	}
	if resp.StatusCode == http.StatusOK && method == http.MethodPost {
		a.check = new(control.CheckResponse)
		if err := json.Unmarshal(data, a.check); err != nil {
			t.Fatalf("200 answer is not a check response: %v: %s", err, data)
		}
		return a
	}
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(data, &a.err); err != nil || a.err.Error == "" || a.err.Version != control.APIVersion {
			t.Fatalf("HTTP %d answer is not a JSON error: %v: %s", resp.StatusCode, err, data)
		}
	}
	return a
}

func checkBody(domain string, port int, addrs ...netip.Addr) string {
	req := control.CheckRequest{Version: 1, Domain: domain, Port: port, Addresses: []string{}, Fingerprint: "chrome"}
	for _, a := range addrs {
		req.Addresses = append(req.Addresses, a.String())
	}
	b, _ := json.Marshal(req)
	return string(b)
}

func endpoint(t testing.TB, r *control.CheckResponse, a netip.Addr) *measurement.ControlEndpoint {
	t.Helper()
	for i := range r.Endpoints {
		if r.Endpoints[i].Address == a.String() {
			return &r.Endpoints[i]
		}
	}
	t.Fatalf("no endpoint for %s in %+v", a, r.Endpoints)
	return nil
}

// TestLabControlServer asks the lab's own control server, over HTTPS with
// HTTP/2, about an intercepted domain and a DNS-tampered one.
func TestLabControlServer(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	c := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: labRoots(l)},
		ForceAttemptHTTP2: true,
	}, Timeout: time.Minute}
	t.Cleanup(c.CloseIdleConnections)

	t.Run("intercepted domain: origin chain at the same address", func(t *testing.T) {
		site, _ := l.Site("rutracker.org")
		a := post(t, c, l.ControlServerURL, checkBody(site.Domain, l.Port, site.Addr))
		if a.status != http.StatusOK || a.proto != "HTTP/2.0" {
			t.Fatalf("status %d over %s; want 200 over HTTP/2.0", a.status, a.proto)
		}
		r := a.check
		if r.Version != 1 || r.Domain != site.Domain || r.Port != l.Port || r.Fingerprint != "chrome" {
			t.Errorf("response header %+v", r)
		}
		if !strings.HasPrefix(r.ClientAddress, "127.") {
			t.Errorf("client_address %q; want a loopback address", r.ClientAddress)
		}
		if got := probe.Addrs(r.Queries); len(got) != 1 || got[0] != site.Addr {
			t.Errorf("own DNS answers %v; want [%v]", got, site.Addr)
		}
		if len(r.Endpoints) != 1 {
			t.Fatalf("%d endpoints; want 1 (the submitted address is also the DNS answer)", len(r.Endpoints))
		}
		e := endpoint(t, r, site.Addr)
		if fmt.Sprint(e.Sources) != "[client dns]" {
			t.Errorf("sources %v; want [client dns]", e.Sources)
		}
		if e.Chain == nil || !e.Chain.Trusted || e.TLSHandshake == nil || e.TLSHandshake.Failure != nil {
			t.Fatalf("endpoint %+v; want a completed handshake with a trusted chain", e)
		}
		if e.TLSHandshake.ServerName != site.Domain {
			t.Errorf("SNI %q; want %q", e.TLSHandshake.ServerName, site.Domain)
		}
		certs := e.TLSHandshake.PeerCertificates
		if len(certs) != 2 || !bytes.Equal(certs[1], l.PKI.PublicIntermediate.Raw) {
			t.Errorf("chain of %d certificates; want the origin's leaf and the public intermediate", len(certs))
		}
		if e.Chain.Interception != nil {
			t.Errorf("interception %+v seen from outside", e.Chain.Interception)
		}
	})

	t.Run("DNS tampering: block page not valid for the domain", func(t *testing.T) {
		site, _ := l.Site("dns-blockpage.example")
		a := post(t, c, l.ControlServerURL, checkBody(site.Domain, l.Port, l.BlockpageAddr))
		if a.status != http.StatusOK {
			t.Fatalf("status %d (%+v)", a.status, a.err)
		}
		bp := endpoint(t, a.check, l.BlockpageAddr)
		if bp.Chain == nil || bp.Chain.Trusted || bp.Chain.TrustFailure == nil || *bp.Chain.TrustFailure != failure.SSLInvalidHostname {
			t.Errorf("block page endpoint chain %+v; want untrusted, %s", bp.Chain, failure.SSLInvalidHostname)
		}
		if fmt.Sprint(bp.Sources) != "[client]" {
			t.Errorf("block page sources %v; want [client]", bp.Sources)
		}
		own := endpoint(t, a.check, site.Addr)
		if !own.Trusted() || fmt.Sprint(own.Sources) != "[dns]" {
			t.Errorf("own answer endpoint %+v; want trusted, from dns", own)
		}
	})
}

// TestServerPinnedClock asks a server whose clock is set half an hour back
// about a site: every t0 and t of its answer, of its lookups, connects and
// handshakes, is read on that clock, so each lies within its test_runtime.
// Before they came from time.Since, and every t0 was 1800 s.
func TestServerPinnedClock(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	site, _ := l.Site("rutracker.org")
	cfg := labServerConfig(t, l)
	cfg.Admit = []netip.Prefix{l.Net}
	realStart := time.Now()
	base := realStart.Add(-30 * time.Minute)
	cfg.Now = func() time.Time { return base.Add(time.Since(realStart)) }
	s := serve(t, cfg)
	a := post(t, s.client(netip.Addr{}), s.url, checkBody(site.Domain, l.Port, site.Addr))
	if a.status != http.StatusOK {
		t.Fatalf("status %d (%+v)", a.status, a.err)
	}
	r := a.check
	if elapsed := time.Since(realStart).Seconds(); r.TestRuntime <= 0 || r.TestRuntime > elapsed {
		t.Fatalf("test_runtime %v; want in (0, %v]", r.TestRuntime, elapsed)
	}
	e := endpoint(t, r, site.Addr)
	if len(r.Queries) == 0 || e.TLSHandshake == nil {
		t.Fatalf("queries %d, endpoint %+v; want both steps recorded", len(r.Queries), e)
	}
	type span struct {
		what  string
		t0, t float64
	}
	spans := []span{{"tcp_connect", e.TCPConnect.T0, e.TCPConnect.T}, {"tls_handshake", e.TLSHandshake.T0, e.TLSHandshake.T}}
	for _, q := range r.Queries {
		spans = append(spans, span{"queries " + q.QueryType, q.T0, q.T})
	}
	for _, sp := range spans {
		if sp.t0 < 0 || sp.t0 > sp.t || sp.t > r.TestRuntime {
			t.Errorf("%s: t0 = %v, t = %v; want 0 <= t0 <= t <= test_runtime %v", sp.what, sp.t0, sp.t, r.TestRuntime)
		}
	}
}

// TestServerRefusesSpecialRanges checks that a server with the default
// policy refuses loopback, private and other special addresses, and that
// --allow-net (Admit) re-admits exactly the ranges it names.
func TestServerRefusesSpecialRanges(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	site, _ := l.Site("clean-1.example")
	def := serve(t, labServerConfig(t, l))
	cfg := labServerConfig(t, l)
	cfg.Admit = []netip.Prefix{l.Net}
	cfg.Rate = -1 // more requests than a burst; the rate limit has its own tests
	admitted := serve(t, cfg)

	refused := []string{"127.0.0.1", "::1", "10.10.34.34", "192.168.1.1", "172.16.0.1", "169.254.169.254",
		"100.64.0.1", "224.0.0.1", "0.0.0.0", "255.255.255.255", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
		"64:ff9b::7f00:1", "2002:7f00:1::1", "192.0.2.1", "::",
		// IPv4-compatible and IPv4-translated forms, even of an admitted
		// address (the IPv4-mapped form is that address).
		"::127.0.0.1", "::10.0.0.1", "::ffff:0:10.0.0.1", "::" + site.Addr.String(), "::ffff:0:" + site.Addr.String()}
	for _, s := range refused {
		t.Run(s, func(t *testing.T) {
			a := post(t, admitted.client(netip.Addr{}), admitted.url, checkBody(site.Domain, l.Port, netip.MustParseAddr(s)))
			if a.status != http.StatusForbidden || a.err.Error != control.ErrAddressNotAllowed {
				t.Errorf("got %d %q; want 403 %s", a.status, a.err.Error, control.ErrAddressNotAllowed)
			}
		})
	}
	t.Run("lab address by default", func(t *testing.T) {
		a := post(t, def.client(netip.Addr{}), def.url, checkBody(site.Domain, l.Port, site.Addr))
		if a.status != http.StatusForbidden || a.err.Error != control.ErrAddressNotAllowed {
			t.Errorf("got %d %q; want 403 %s", a.status, a.err.Error, control.ErrAddressNotAllowed)
		}
	})
	t.Run("own DNS answer in a special range is not dialled", func(t *testing.T) {
		// The lab's control resolver answers a loopback address, as a
		// hostile name could (DNS rebinding): the server records it and
		// refuses to connect.
		a := post(t, def.client(netip.Addr{}), def.url, checkBody(site.Domain, l.Port))
		if a.status != http.StatusOK {
			t.Fatalf("status %d (%+v)", a.status, a.err)
		}
		e := endpoint(t, a.check, site.Addr)
		if f := e.TCPConnect.Status.Failure; f == nil || *f != failure.BlockedByAllowNet || e.TLSHandshake != nil {
			t.Errorf("endpoint %+v; want the connect refused as %s", e, failure.BlockedByAllowNet)
		}
	})
	t.Run("lab address when admitted", func(t *testing.T) {
		a := post(t, admitted.client(netip.Addr{}), admitted.url, checkBody(site.Domain, l.Port, site.Addr))
		if a.status != http.StatusOK || !endpoint(t, a.check, site.Addr).Trusted() {
			t.Errorf("got %d %+v; want 200 with a trusted chain", a.status, a.check)
		}
	})
}

// TestServerOwnAnswersEmbeddingIPv4 gives the server a resolver whose AAAA
// answers are IPv4-compatible and IPv4-translated forms of loopback, a
// private and an admitted address: the server records each and dials none
// (the dialer under its policy, which records and sends nothing, is never
// asked).
func TestServerOwnAnswersEmbeddingIPv4(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	site, _ := l.Site("clean-1.example")
	hostile := []netip.Addr{
		netip.MustParseAddr("::127.0.0.1"),
		netip.MustParseAddr("::10.0.0.1"),
		netip.MustParseAddr("::ffff:0:10.0.0.1"),
		netip.MustParseAddr("::ffff:0:127.0.0.1"),
		netip.MustParseAddr("::" + site.Addr.String()),
		netip.MustParseAddr("::ffff:0:" + site.Addr.String()),
	}
	resolver := startDNS(t, func(q dns.Question) []dns.RR {
		if q.Qtype != dns.TypeAAAA {
			return nil
		}
		var rrs []dns.RR
		for _, a := range hostile {
			rrs = append(rrs, &dns.AAAA{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 60}, AAAA: a.AsSlice()})
		}
		return rrs
	})
	var (
		mu     sync.Mutex
		dialed []string
	)
	cfg := labServerConfig(t, l)
	cfg.Admit = []netip.Prefix{l.Net}
	cfg.MaxAddresses = len(hostile)
	cfg.Resolver = &probe.DNSResolver{Exchanger: dnsx.NewDNSExchanger(resolver, loopback), Timeout: 10 * time.Second, Retries: 1}
	cfg.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		// What the policy lets through is recorded, never sent: these
		// addresses are not the test's to reach.
		mu.Lock()
		dialed = append(dialed, address)
		mu.Unlock()
		return nil, fmt.Errorf("test: not dialling %s", address)
	}
	s := serve(t, cfg)
	a := post(t, s.client(netip.Addr{}), s.url, checkBody("embedded.example", l.Port))
	if a.status != http.StatusOK {
		t.Fatalf("status %d (%+v)", a.status, a.err)
	}
	if got := probe.Addrs(a.check.Queries); len(got) != len(hostile) {
		t.Fatalf("own answers %v; want the %d hostile ones", got, len(hostile))
	}
	for _, h := range hostile {
		e := endpoint(t, a.check, h)
		if f := e.TCPConnect.Status.Failure; f == nil || *f != failure.BlockedByAllowNet || e.TLSHandshake != nil {
			t.Errorf("endpoint %s: %+v; want the connect refused as %s", h, e.TCPConnect, failure.BlockedByAllowNet)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dialed) != 0 {
		t.Errorf("the server dialled %v", dialed)
	}
}

// startDNS runs a UDP DNS server on loopback that answers each question
// with answer's records (none: an empty answer) and returns its address.
func startDNS(t testing.TB, answer func(dns.Question) []dns.RR) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(r)
			for _, q := range r.Question {
				m.Answer = append(m.Answer, answer(q)...)
			}
			w.WriteMsg(m)
		})}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// TestServerAbuse sends each kind of bad request and checks the
// documented status and JSON error; after each one, another client is
// still served.
func TestServerAbuse(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	site, _ := l.Site("clean-1.example")
	cfg := labServerConfig(t, l)
	cfg.Admit = []netip.Prefix{l.Net}
	cfg.Token = "s3cret-token"
	cfg.MaxAddresses = 3
	cfg.MaxBodyBytes = 1024
	cfg.Rate, cfg.Burst = -1, 0 // the rate limit has its own test
	s := serve(t, cfg)
	auth := []string{"Authorization", "Bearer s3cret-token"}
	good := checkBody(site.Domain, l.Port, site.Addr)
	addrs := func(n int) string {
		var as []netip.Addr
		for i := range n {
			as = append(as, netip.AddrFrom4([4]byte{127, l.Net.Addr().As4()[1], l.Net.Addr().As4()[2], byte(10 + i)}))
		}
		return checkBody(site.Domain, l.Port, as...)
	}
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		header     []string
		wantStatus int
		wantError  string
	}{
		{"no token", "POST", control.CheckPath, good, nil, 401, control.ErrUnauthorized},
		{"wrong token", "POST", control.CheckPath, good, []string{"Authorization", "Bearer s3cret-tokeN"}, 401, control.ErrUnauthorized},
		{"token with another scheme", "POST", control.CheckPath, good, []string{"Authorization", "Basic s3cret-token"}, 401, control.ErrUnauthorized},
		{"oversize body", "POST", control.CheckPath, `{"domain":"` + strings.Repeat("a", 2000) + `.example"}`, auth, 413, control.ErrBodyTooLarge},
		{"too many addresses", "POST", control.CheckPath, addrs(4), auth, 400, control.ErrTooManyAddresses},
		{"bad JSON", "POST", control.CheckPath, `{"domain": "clean-1.example",`, auth, 400, control.ErrBadRequest},
		{"not an object", "POST", control.CheckPath, `["clean-1.example"]`, auth, 400, control.ErrBadRequest},
		{"empty body", "POST", control.CheckPath, ``, auth, 400, control.ErrBadRequest},
		{"two objects", "POST", control.CheckPath, good + good, auth, 400, control.ErrBadRequest},
		{"unknown field", "POST", control.CheckPath, `{"domain":"clean-1.example","adresses":[]}`, auth, 400, control.ErrBadRequest},
		{"wrong type", "POST", control.CheckPath, `{"domain":"clean-1.example","port":"443"}`, auth, 400, control.ErrBadRequest},
		{"IP literal as domain", "POST", control.CheckPath, `{"domain":"127.0.0.1"}`, auth, 400, control.ErrBadRequest},
		{"URL as domain", "POST", control.CheckPath, `{"domain":"https://clean-1.example/"}`, auth, 400, control.ErrBadRequest},
		{"single label", "POST", control.CheckPath, `{"domain":"localhost"}`, auth, 400, control.ErrBadRequest},
		{"bad address", "POST", control.CheckPath, fmt.Sprintf(`{"domain":"clean-1.example","port":%d,"addresses":["example.com"]}`, l.Port), auth, 400, control.ErrBadRequest},
		{"bad fingerprint", "POST", control.CheckPath, fmt.Sprintf(`{"domain":"clean-1.example","port":%d,"fingerprint":"netscape"}`, l.Port), auth, 400, control.ErrBadRequest},
		{"unsupported version", "POST", control.CheckPath, `{"version":2,"domain":"clean-1.example"}`, auth, 400, control.ErrUnsupportedVersion},
		{"port not allowed", "POST", control.CheckPath, `{"domain":"clean-1.example","port":22}`, auth, 403, control.ErrPortNotAllowed},
		{"private address", "POST", control.CheckPath, fmt.Sprintf(`{"domain":"clean-1.example","port":%d,"addresses":["10.0.0.1"]}`, l.Port), auth, 403, control.ErrAddressNotAllowed},
		{"not JSON content", "POST", control.CheckPath, good, append([]string{"Content-Type", "text/plain"}, auth...), 415, control.ErrUnsupportedMedia},
		{"GET", "GET", control.CheckPath, "", auth, 405, control.ErrMethodNotAllowed},
		{"unknown path", "POST", "/v1/chek", good, auth, 404, control.ErrNotFound},
		{"whoami without token", "GET", control.WhoAmIPath, "", nil, 401, control.ErrUnauthorized},
		{"POST whoami", "POST", control.WhoAmIPath, "", auth, 405, control.ErrMethodNotAllowed},
	}
	other := s.client(hostIn(l, 201))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := send(t, s.client(hostIn(l, 200)), tc.method, s.url+tc.path, strings.NewReader(tc.body), tc.header...)
			if a.status != tc.wantStatus || a.err.Error != tc.wantError {
				t.Errorf("got %d %q (%s); want %d %q", a.status, a.err.Error, a.err.Message, tc.wantStatus, tc.wantError)
			}
			if tc.wantStatus == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q; want a Bearer challenge", a.header.Get("WWW-Authenticate"))
			}
			if b := post(t, other, s.url, good, auth...); b.status != http.StatusOK {
				t.Errorf("another client then got %d (%+v); want 200", b.status, b.err)
			}
		})
	}
	t.Run("oversize body without Content-Length", func(t *testing.T) {
		body := io.MultiReader(strings.NewReader(`{"domain":"`), strings.NewReader(strings.Repeat("a", 5000)))
		a := send(t, s.client(hostIn(l, 200)), "POST", s.url+control.CheckPath, io.NopCloser(body), auth...)
		if a.status != 413 || a.err.Error != control.ErrBodyTooLarge {
			t.Errorf("got %d %q; want 413 %s", a.status, a.err.Error, control.ErrBodyTooLarge)
		}
	})
	t.Run("health needs no token", func(t *testing.T) {
		a := send(t, s.client(hostIn(l, 200)), "GET", s.url+control.HealthPath, nil)
		if a.status != 200 {
			t.Errorf("health: %d", a.status)
		}
	})
}

// hostIn is host h of the lab's /24, used as a client's source address.
func hostIn(l *lab.Lab, h byte) netip.Addr {
	a := l.Net.Addr().As4()
	a[3] = h
	return netip.AddrFrom4(a)
}

// TestServerRateLimit exhausts one client's bucket: it gets 429 with
// Retry-After, while a client at another address is served.
func TestServerRateLimit(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	site, _ := l.Site("clean-1.example")
	cfg := labServerConfig(t, l)
	cfg.Admit = []netip.Prefix{l.Net}
	cfg.Rate, cfg.Burst = 0.001, 3 // no token comes back during the test
	s := serve(t, cfg)
	body := checkBody(site.Domain, l.Port, site.Addr)
	a, b := s.client(hostIn(l, 210)), s.client(hostIn(l, 211))
	for i := range 3 {
		// Bad requests spend tokens too.
		if got := post(t, a, s.url, `{`); got.status != 400 {
			t.Fatalf("request %d: %d; want 400", i+1, got.status)
		}
	}
	got := post(t, a, s.url, body)
	if got.status != http.StatusTooManyRequests || got.err.Error != control.ErrRateLimited {
		t.Fatalf("4th request: %d %q; want 429 %s", got.status, got.err.Error, control.ErrRateLimited)
	}
	if ra := got.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q; want seconds", ra)
	}
	if got := post(t, b, s.url, body); got.status != http.StatusOK {
		t.Errorf("another client: %d (%+v); want 200", got.status, got.err)
	}
}

// TestServerRateLimitEveryRequest checks that health checks, unknown paths
// and wrong methods spend the client's tokens like checks do: a client
// cannot send them for free (they kept 1 024 connections of one address
// busy at no cost).
func TestServerRateLimitEveryRequest(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	cfg := labServerConfig(t, l)
	cfg.Rate, cfg.Burst = 0.001, 3 // no token comes back during the test
	s := serve(t, cfg)
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
	}{
		{"health", http.MethodGet, control.HealthPath, http.StatusOK},
		{"health HEAD", http.MethodHead, control.HealthPath, http.StatusOK},
		{"unknown path", http.MethodGet, "/v1/nothing", http.StatusNotFound},
		{"wrong method", http.MethodGet, control.CheckPath, http.StatusMethodNotAllowed},
		{"wrong method on health", http.MethodPost, control.HealthPath, http.StatusMethodNotAllowed},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := s.client(hostIn(l, byte(160+i))) // a client of its own
			for n := range 3 {
				if got := sendStatus(t, c, tc.method, s.url+tc.path); got.status != tc.wantStatus {
					t.Fatalf("request %d: %d; want %d", n+1, got.status, tc.wantStatus)
				}
			}
			got := sendStatus(t, c, tc.method, s.url+tc.path)
			if got.status != http.StatusTooManyRequests || got.header.Get("Retry-After") == "" {
				t.Fatalf("4th request: %d (Retry-After %q); want 429 with Retry-After", got.status, got.header.Get("Retry-After"))
			}
			// The same bucket: a check is refused too.
			if got := post(t, c, s.url, `{"domain":"clean-1.example"}`); got.status != http.StatusTooManyRequests || got.err.Error != control.ErrRateLimited {
				t.Errorf("a check after them: %d %q; want 429 %s", got.status, got.err.Error, control.ErrRateLimited)
			}
		})
	}
}

// sendStatus sends a bodiless request and returns its status and header
// (HEAD answers have no body to decode).
func sendStatus(t testing.TB, c *http.Client, method, url string) answer {
	t.Helper()
	if method != http.MethodHead {
		return send(t, c, method, url, nil)
	}
	resp, err := c.Head(url)
	if err != nil {
		t.Fatalf("HEAD %s: %v", url, err)
	}
	resp.Body.Close()
	return answer{status: resp.StatusCode, header: resp.Header, proto: resp.Proto}
}

// TestServerConcurrencyLimit holds the only slot with a check of a silent
// address and checks that a second check gets 503 meanwhile, that the
// first ends within the deadline, and that a third is served after it.
func TestServerConcurrencyLimit(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	cfg := labServerConfig(t, l)
	cfg.Admit = []netip.Prefix{l.Net}
	cfg.MaxConcurrent = 1
	cfg.Deadline = 2 * time.Second
	cfg.Rate = -1
	s := serve(t, cfg)
	site, _ := l.Site("clean-1.example")
	silent, accepted := silentListener(t, netip.AddrPortFrom(hostIn(l, 250), uint16(l.Port)))

	done := make(chan answer, 1)
	go func() { done <- post(t, s.client(hostIn(l, 220)), s.url, checkBody(site.Domain, l.Port, silent)) }()
	select {
	case <-accepted: // the first check holds the slot
	case <-time.After(5 * time.Second):
		t.Fatal("the first check never reached the silent address")
	}
	got := post(t, s.client(hostIn(l, 221)), s.url, checkBody(site.Domain, l.Port, site.Addr))
	if got.status != http.StatusServiceUnavailable || got.err.Error != control.ErrOverloaded || got.header.Get("Retry-After") == "" {
		t.Fatalf("second check: %d %q; want 503 %s with Retry-After", got.status, got.err.Error, control.ErrOverloaded)
	}
	first := <-done
	if first.status != http.StatusOK {
		t.Fatalf("held check: %d (%+v)", first.status, first.err)
	}
	e := endpoint(t, first.check, silent)
	if e.TLSHandshake == nil || e.TLSHandshake.Failure == nil || *e.TLSHandshake.Failure != failure.GenericTimeout {
		t.Errorf("silent endpoint %+v; want a handshake timeout", e)
	}
	if first.check.TestRuntime > 4 {
		t.Errorf("the check took %.1fs; the deadline is 2s", first.check.TestRuntime)
	}
	if got := post(t, s.client(hostIn(l, 221)), s.url, checkBody(site.Domain, l.Port, site.Addr)); got.status != http.StatusOK {
		t.Errorf("after the slot freed: %d; want 200", got.status)
	}
}

// TestServerFairShare is a starvation: one client fills the check pool with
// targets that never answer TLS, and another client's check is refused. With
// fair shares the first is refused (429) once it holds its share, and the
// second is served while the first's checks hang.
func TestServerFairShare(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	cfg := labServerConfig(t, l)
	cfg.Admit = []netip.Prefix{l.Net}
	cfg.MaxConcurrent = 4
	cfg.Rate = -1
	s := serve(t, cfg)
	site, _ := l.Site("clean-1.example")
	silent, accepted := silentListener(t, netip.AddrPortFrom(hostIn(l, 251), uint16(l.Port)))

	// The heavy client asks about the silent address, one check after
	// another, each hanging until the test ends, until one is refused.
	ctx, cancel := context.WithCancel(context.Background())
	var hanging sync.WaitGroup
	t.Cleanup(func() { cancel(); hanging.Wait() })
	heavy := s.client(hostIn(l, 222))
	held := 0
	var refused *http.Response
	for refused == nil && held < cfg.MaxConcurrent {
		done := make(chan *http.Response, 1)
		hanging.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url+control.CheckPath, strings.NewReader(checkBody(site.Domain, l.Port, silent)))
			req.Header.Set("Content-Type", "application/json")
			resp, err := heavy.Do(req)
			if err != nil {
				resp = nil // cancelled at the end of the test
			} else {
				resp.Body.Close()
			}
			done <- resp
		})
		select {
		case <-accepted:
			held++ // the check reached the silent address and hangs there
		case resp := <-done:
			if resp == nil {
				t.Fatal("a heavy check failed without an answer")
			}
			refused = resp
		case <-time.After(30 * time.Second):
			t.Fatalf("check %d neither reached the silent address nor was refused", held+1)
		}
	}
	if refused == nil || held >= cfg.MaxConcurrent {
		t.Errorf("the heavy client holds %d of %d slots; want fewer, then a refusal", held, cfg.MaxConcurrent)
	} else if refused.StatusCode != http.StatusTooManyRequests || refused.Header.Get("Retry-After") == "" {
		t.Errorf("the heavy client's check %d: %d (Retry-After %q); want 429 with Retry-After", held+1, refused.StatusCode, refused.Header.Get("Retry-After"))
	}

	// Another client, while the heavy client's checks hang.
	got := post(t, s.client(hostIn(l, 223)), s.url, checkBody(site.Domain, l.Port, site.Addr))
	if got.status != http.StatusOK {
		t.Fatalf("another client: %d %q (%s); want 200", got.status, got.err.Error, got.err.Message)
	}
	if !endpoint(t, got.check, site.Addr).Trusted() {
		t.Errorf("another client: endpoint %+v; want a trusted chain", endpoint(t, got.check, site.Addr))
	}
	// The refusal carries its own code.
	again := post(t, heavy, s.url, checkBody(site.Domain, l.Port, site.Addr))
	if again.status != http.StatusTooManyRequests || again.err.Error != control.ErrTooManyChecks {
		t.Errorf("the heavy client again: %d %q; want 429 %s", again.status, again.err.Error, control.ErrTooManyChecks)
	}
}

// silentListener accepts TCP connections at ap and never answers; the
// channel receives a value for each connection accepted.
func silentListener(t testing.TB, ap netip.AddrPort) (netip.Addr, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp4", ap.String())
	if err != nil {
		t.Fatalf("binding a silent listener: %v", err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
		ch    = make(chan struct{}, 16)
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	return ap.Addr(), ch
}

// TestServerLogsWithoutBodies checks that each request leaves one
// structured record with the status and error code, and nothing of the
// body.
func TestServerLogsWithoutBodies(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	site, _ := l.Site("clean-1.example")
	var buf syncBuffer
	cfg := labServerConfig(t, l)
	cfg.Admit = []netip.Prefix{l.Net}
	cfg.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	s := serve(t, cfg)
	c := s.client(netip.Addr{})
	post(t, c, s.url, checkBody(site.Domain, l.Port, site.Addr))
	post(t, c, s.url, fmt.Sprintf(`{"domain":"secret-name.example","port":%d,"addresses":["10.1.2.3"]}`, l.Port))
	var records []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if r["msg"] == "request" {
			records = append(records, r)
		}
	}
	if len(records) != 2 {
		t.Fatalf("%d request records; want 2:\n%s", len(records), buf.String())
	}
	if records[0]["status"] != float64(200) || records[0]["endpoints"] != float64(1) {
		t.Errorf("first record %v", records[0])
	}
	if records[1]["status"] != float64(403) || records[1]["error"] != control.ErrAddressNotAllowed {
		t.Errorf("second record %v", records[1])
	}
	for _, secret := range []string{site.Domain, "secret-name", "10.1.2.3"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("the log holds %q from a request body:\n%s", secret, buf.String())
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPlainHTTP serves the API without TLS, as behind a proxy.
func TestPlainHTTP(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	site, _ := l.Site("clean-1.example")
	cfg := labServerConfig(t, l)
	cfg.Admit = []netip.Prefix{l.Net}
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	srv, err := control.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := srv.HTTPServer(nil)
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	plain := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: time.Minute}
	a := post(t, plain, "http://"+ln.Addr().String(), checkBody(site.Domain, l.Port, site.Addr),
		"X-Forwarded-For", "198.51.100.9, 203.0.113.7")
	if a.status != 200 || !endpoint(t, a.check, site.Addr).Trusted() {
		t.Fatalf("got %d %+v", a.status, a.err)
	}
	if a.check.ClientAddress != "203.0.113.7" {
		t.Errorf("client_address %q; want the right-most forwarded address 203.0.113.7", a.check.ClientAddress)
	}
}

// TestClient drives the probe-side client against the lab's server and
// against servers that refuse.
func TestClient(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	site, _ := l.Site("rutracker.org")
	dial := guard.New(l.Net).Dialer(nil)
	req := measurement.ControlRequest{Domain: site.Domain, Port: l.Port, Addresses: []netip.Addr{site.Addr}}
	t0 := probe.NewEpoch(nil)

	t.Run("answer", func(t *testing.T) {
		c, err := control.NewClient(l.ControlServerURL, control.ClientOptions{RootCAs: labRoots(l), Dial: dial})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r := c.Check(context.Background(), req, t0)
		if r.Failure != nil || r.StatusCode != 200 || r.Response == nil || r.Attempts != 1 {
			t.Fatalf("report %+v", r)
		}
		if !r.Endpoint(site.Addr).Trusted() || fmt.Sprint(r.Addresses) != "["+site.Addr.String()+"]" {
			t.Errorf("report %+v", r)
		}
		if a, err := c.WhoAmI(context.Background()); err != nil || !a.IsLoopback() || a.String() != r.Response.ClientAddress {
			t.Errorf("WhoAmI = %v, %v; want the loopback address of the check, %s", a, err, r.Response.ClientAddress)
		}
	})
	t.Run("unknown authority", func(t *testing.T) {
		c, _ := control.NewClient(l.ControlServerURL, control.ClientOptions{Dial: dial}) // Mozilla roots
		r := c.Check(context.Background(), req, t0)
		if r.Failure == nil || *r.Failure != failure.SSLUnknownAuthority || r.Response != nil {
			t.Errorf("failure %v; want %s", r.Failure, failure.SSLUnknownAuthority)
		}
	})
	t.Run("guard", func(t *testing.T) {
		c, _ := control.NewClient(l.ControlServerURL, control.ClientOptions{RootCAs: labRoots(l),
			Dial: guard.New(netip.MustParsePrefix("127.0.0.1/32")).Dialer(nil)})
		r := c.Check(context.Background(), req, t0)
		if r.Failure == nil || *r.Failure != failure.BlockedByAllowNet {
			t.Errorf("failure %v; want %s", r.Failure, failure.BlockedByAllowNet)
		}
	})
	t.Run("refused with a JSON error", func(t *testing.T) {
		cfg := labServerConfig(t, l)
		cfg.Token = "t"
		s := serve(t, cfg)
		pool := x509.NewCertPool()
		pool.AddCert(s.ts.Certificate())
		c, _ := control.NewClient(s.url, control.ClientOptions{RootCAs: pool, Token: "wrong", Dial: loopback})
		r := c.Check(context.Background(), req, t0)
		if r.Failure == nil || !strings.Contains(*r.Failure, "HTTP 401") || r.StatusCode != 401 || r.ErrorCode != control.ErrUnauthorized {
			t.Errorf("report %+v; want a 401 unauthorized failure", r)
		}
	})
	t.Run("retry after 429", func(t *testing.T) {
		cfg := labServerConfig(t, l)
		cfg.Admit = []netip.Prefix{l.Net}
		cfg.Rate, cfg.Burst = 1, 1
		s := serve(t, cfg)
		pool := x509.NewCertPool()
		pool.AddCert(s.ts.Certificate())
		c, _ := control.NewClient(s.url, control.ClientOptions{RootCAs: pool, Dial: loopback})
		if r := c.Check(context.Background(), req, t0); r.Failure != nil {
			t.Fatalf("first check: %s", *r.Failure)
		}
		r := c.Check(context.Background(), req, t0)
		if r.Failure != nil || r.Attempts != 2 {
			t.Errorf("second check: failure %v after %d attempts; want success after 2", r.Failure, r.Attempts)
		}
	})
}

// TestClientSubmitsGlobalUnicastOnly gives the real client the answers of a
// DNS64 network in front of a block page (NAT64, and 6to4, Teredo,
// IPv4-compatible and -translated forms of private and loopback addresses)
// beside the site's own: the server refused the whole request for them
// (403) and the outside view was lost. The client submits the site's
// address only, the server answers, and the report names every address
// left out with its reason.
func TestClientSubmitsGlobalUnicastOnly(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	site, _ := l.Site("clean-1.example")
	other, _ := l.Site("wikipedia.org")
	cfg := labServerConfig(t, l)
	cfg.Admit = []netip.Prefix{l.Net}
	s := serve(t, cfg)
	pool := x509.NewCertPool()
	pool.AddCert(s.ts.Certificate())
	transition := []string{
		"64:ff9b::a0a:2222",                    // NAT64 of the block page 10.10.34.34
		"64:ff9b::5db8:d70e",                   // NAT64 of a public address: a gateway of the probe's network
		"2002:a0a:2222::1",                     // 6to4
		"2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo of 127.0.0.1
		"::127.0.0.1",                          // IPv4-compatible
		"::ffff:0:10.0.0.1",                    // IPv4-translated
	}
	req := measurement.ControlRequest{Domain: site.Domain, Port: l.Port, Addresses: []netip.Addr{site.Addr},
		// The engine leaves out special-purpose addresses itself.
		NotChecked: []measurement.ControlNotChecked{{Address: "10.10.34.34", Reason: measurement.NotCheckedSpecialPurpose}}}
	want := slices.Clone(req.NotChecked)
	for _, a := range transition {
		req.Addresses = append(req.Addresses, netip.MustParseAddr(a))
		want = append(want, measurement.ControlNotChecked{Address: netip.MustParseAddr(a).String(), Reason: measurement.NotCheckedIPv6Transition})
	}
	req.Addresses = append(req.Addresses, other.Addr)
	want = append(want, measurement.ControlNotChecked{Address: other.Addr.String(), Reason: measurement.NotCheckedOverLimit})

	c, err := control.NewClient(s.url, control.ClientOptions{RootCAs: pool, Dial: loopback, MaxAddresses: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := c.Check(context.Background(), req, probe.NewEpoch(nil))
	if r.Failure != nil || r.StatusCode != http.StatusOK || r.Response == nil {
		t.Fatalf("report: failure %v, HTTP %d %s; want an answer", str(r.Failure), r.StatusCode, r.ErrorCode)
	}
	if fmt.Sprint(r.Addresses) != "["+site.Addr.String()+"]" {
		t.Errorf("submitted %v; want [%s]", r.Addresses, site.Addr)
	}
	if !slices.Equal(r.NotChecked, want) {
		t.Errorf("not checked:\n got %v\nwant %v", r.NotChecked, want)
	}
	if !r.Endpoint(site.Addr).Trusted() {
		t.Errorf("endpoint %+v; want a trusted chain", r.Endpoint(site.Addr))
	}
	// The record says it in JSON.
	data, err := json.Marshal(r)
	if err != nil || !strings.Contains(string(data), `"not_checked":[{"address":"10.10.34.34","reason":"special_purpose"},{"address":"64:ff9b::a0a:2222","reason":"ipv6_transition"}`) {
		t.Errorf("JSON %s, %v; want not_checked with addresses and reasons", data, err)
	}
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

var loopback = guard.New(netip.MustParsePrefix("127.0.0.0/8")).Dialer(nil)

func TestNewClientRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, token string }{
		{"ftp://192.0.2.1", ""},
		{"https://helper.example", ""}, // a name without a resolver
		{"https://user@192.0.2.1", ""},
		{"https://192.0.2.1/?q=1", ""},
		{"http://192.0.2.1", "token"}, // a token in clear text
		{"https://192.0.2.1:0", ""},
	} {
		if _, err := control.NewClient(tc.url, control.ClientOptions{Token: tc.token}); err == nil {
			t.Errorf("NewClient(%q, token %q) succeeded; want an error", tc.url, tc.token)
		}
	}
	if _, err := control.NewClient("http://127.0.0.1:8080", control.ClientOptions{Token: "t"}); err != nil {
		t.Errorf("token over http to loopback: %v", err)
	}
}

// serveDeployed runs s as `kzprobe control serve` does: its own
// http.Server (HTTPServer, with the connection bounds), over TLS, behind a
// listener that accepts at most maxConns connections at once
// (netutil.LimitListener, --max-conns). It returns the server's address
// and the roots that verify it.
func serveDeployed(t testing.TB, cfg control.ServerConfig, maxConns int) (netip.AddrPort, *x509.CertPool) {
	t.Helper()
	addr, pool, _ := serveDeployedWatched(t, cfg, maxConns)
	return addr, pool
}

// serveDeployedWatched is serveDeployed with the server's side of each
// connection followed.
func serveDeployedWatched(t testing.TB, cfg control.ServerConfig, maxConns int) (netip.AddrPort, *x509.CertPool, *connStates) {
	t.Helper()
	s, err := control.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(s)
	ts.Listener = netutil.LimitListener(ts.Listener, maxConns)
	ts.Config = s.HTTPServer(nil) // TLS comes from the test server's listener
	states := &connStates{state: map[string]http.ConnState{}, changed: make(chan struct{})}
	serverHook := ts.Config.ConnState
	ts.Config.ConnState = func(c net.Conn, st http.ConnState) {
		serverHook(c, st) // the server's own bookkeeping first
		states.set(c.RemoteAddr().String(), st)
	}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return netip.MustParseAddrPort(ts.Listener.Addr().String()), pool, states
}

// connStates follows the server's side of each connection, by the
// client's address, through the http.Server's ConnState hook (called once
// the server's own has run), so that a test waits for what the server has
// seen rather than for a time.
type connStates struct {
	mu    sync.Mutex
	state map[string]http.ConnState
	// changed is closed, and replaced, at each change.
	changed chan struct{}
}

func (s *connStates) set(client string, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state[client] = st
	close(s.changed)
	s.changed = make(chan struct{})
}

// wait waits, up to within, until the server has moved the connection
// from client ("ip:port") to state st, and reports whether it did.
func (s *connStates) wait(client string, st http.ConnState, within time.Duration) bool {
	deadline := time.After(within)
	for {
		s.mu.Lock()
		cur, seen := s.state[client]
		changed := s.changed
		s.mu.Unlock()
		if seen && cur == st {
			return true
		}
		select {
		case <-changed:
		case <-deadline:
			return false
		}
	}
}

// rawConn is one HTTP/1.1 keep-alive connection over TLS, driven by hand
// so that the test decides when it is opened, used and left idle.
type rawConn struct {
	conn *tls.Conn
	br   *bufio.Reader
}

// dialRaw opens a TLS connection to server from source; the error is the
// connect's or the handshake's (a connection the server closed at once
// fails its handshake).
func dialRaw(server netip.AddrPort, source netip.Addr, roots *x509.CertPool) (*rawConn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: source.AsSlice()}}
	c, err := tls.DialWithDialer(d, "tcp", server.String(), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
	if err != nil {
		return nil, err
	}
	return &rawConn{conn: c, br: bufio.NewReader(c)}, nil
}

// get sends GET path on the connection and returns the answer's status.
func (c *rawConn) get(path string) (int, error) {
	c.conn.SetDeadline(time.Now().Add(20 * time.Second))
	defer c.conn.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(c.conn, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// closedByServer waits, up to within, for the server to close the idle
// connection, and reports whether it did (EOF rather than a timeout).
func (c *rawConn) closedByServer(within time.Duration) bool {
	c.conn.SetReadDeadline(time.Now().Add(within))
	defer c.conn.SetReadDeadline(time.Time{})
	_, err := c.br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestServerConnectionsPerClient is a lock-out: one address opens as many
// TLS connections as the listener accepts, each after one health check, and
// leaves them idle. The server keeps MaxConnsPerClient of them and closes
// the rest at once, so another client still gets in and is answered; the
// abuser's kept connections are still served.
func TestServerConnectionsPerClient(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	const maxConns, perClient = 48, 8
	cfg := labServerConfig(t, l)
	cfg.MaxConns, cfg.MaxConnsPerClient = maxConns, perClient
	server, roots := serveDeployed(t, cfg, maxConns)

	abuser := hostIn(l, 230)
	var kept []*rawConn
	refused := 0
	for i := range maxConns {
		c, err := dialRaw(server, abuser, roots)
		if err != nil {
			refused++ // closed before the handshake
			continue
		}
		defer c.conn.Close()
		// Answered, 200 or 429 (health counts against the rate), the
		// connection is kept; else it was closed.
		if status, err := c.get(control.HealthPath); err != nil {
			refused++
		} else if status != http.StatusOK && status != http.StatusTooManyRequests {
			t.Fatalf("connection %d: health %d; want 200 or 429", i+1, status)
		} else {
			kept = append(kept, c)
		}
	}
	if len(kept) != perClient || refused != maxConns-perClient {
		t.Errorf("the abuser kept %d connections and had %d closed; want %d kept, %d closed", len(kept), refused, perClient, maxConns-perClient)
	}

	// Another client, while the abuser holds its connections.
	other := hostIn(l, 231)
	c, err := dialRaw(server, other, roots)
	if err != nil {
		t.Fatalf("another client could not connect while one address held its connections: %v", err)
	}
	defer c.conn.Close()
	for _, path := range []string{control.HealthPath, control.WhoAmIPath} {
		if status, err := c.get(path); err != nil || status != http.StatusOK {
			t.Errorf("another client: GET %s: %d, %v; want 200", path, status, err)
		}
	}
	if len(kept) > 0 {
		if status, err := kept[0].get(control.HealthPath); err != nil || status != http.StatusOK {
			t.Errorf("the abuser's kept connection: %d, %v; want 200", status, err)
		}
	}
}

// TestServerConnectionsFromTrustedProxy checks that a trusted reverse
// proxy, whose connections carry many clients, is not held to
// MaxConnsPerClient.
func TestServerConnectionsFromTrustedProxy(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	const perClient = 2
	proxy := hostIn(l, 232)
	cfg := labServerConfig(t, l)
	cfg.MaxConnsPerClient = perClient
	cfg.TrustedProxies = []netip.Prefix{netip.PrefixFrom(proxy, 32)}
	server, roots := serveDeployed(t, cfg, control.DefaultMaxConns)
	for i := range 3 * perClient {
		c, err := dialRaw(server, proxy, roots)
		if err != nil {
			t.Fatalf("proxy connection %d: %v", i+1, err)
		}
		defer c.conn.Close()
		if status, err := c.get(control.HealthPath); err != nil || status != http.StatusOK {
			t.Fatalf("proxy connection %d: health %d, %v; want 200", i+1, status, err)
		}
	}
}

// TestServerIdleUnderLoad checks that idle connections live their idle
// timeout while fewer than half of MaxConns are open, and that from half
// on the longest idle is closed once idle for BusyIdleTimeout, as many as
// bring the count below half again.
func TestServerIdleUnderLoad(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	const maxConns = 8
	cfg := labServerConfig(t, l)
	cfg.MaxConns = maxConns
	cfg.BusyIdleTimeout = 100 * time.Millisecond // IdleTimeout stays 60 s
	server, roots, states := serveDeployedWatched(t, cfg, maxConns)

	var conns []*rawConn
	open := func() {
		t.Helper()
		source := hostIn(l, byte(240+len(conns)))
		c, err := dialRaw(server, source, roots)
		if err != nil {
			t.Fatalf("connecting from %v: %v", source, err)
		}
		t.Cleanup(func() { c.conn.Close() })
		if status, err := c.get(control.HealthPath); err != nil || status != http.StatusOK {
			t.Fatalf("health: %d, %v", status, err)
		}
		// The server's idle time starts when its goroutine for the
		// connection gets there, which under load can be after the
		// client read the answer, and after the next connection went
		// idle: the longest idle is the server's, so wait for it.
		if !states.wait(c.conn.LocalAddr().String(), http.StateIdle, 20*time.Second) {
			t.Fatalf("the server did not see connection %d go idle", len(conns))
		}
		conns = append(conns, c)
	}
	// want says which connections the server closed: the closed ones
	// within a generous wait, the others still open well past
	// BusyIdleTimeout.
	want := func(closed ...int) {
		t.Helper()
		for i, c := range conns {
			if c == nil {
				continue
			}
			if slices.Contains(closed, i) {
				if !c.closedByServer(20 * time.Second) {
					t.Errorf("with %d open, idle connection %d was not closed", len(conns), i)
				}
				conns[i] = nil
				continue
			}
			if c.closedByServer(5 * cfg.BusyIdleTimeout) {
				t.Errorf("with %d open, idle connection %d was closed", len(conns), i)
				conns[i] = nil
			}
		}
	}
	for range 3 {
		open()
	}
	want() // below half: kept
	open() // half of MaxConns: the longest idle goes
	want(0)
	open() // half again: the longest idle of those left goes
	want(1)
}
