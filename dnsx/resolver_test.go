package dnsx_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"kzprobe/dnsx"
	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/failure"
	"kzprobe/probe/guard"
)

// loopbackOnly is the guard every test dials through.
var loopbackOnly = guard.New(netip.MustParsePrefix("127.0.0.0/8")).Dialer(nil)

// testPKI is a CA generated for the test and a server certificate for
// 127.0.0.1 and resolver.example.test.
type testPKI struct {
	pool *x509.CertPool
	cert tls.Certificate
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kzprobe control test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "resolver.example.test"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"resolver.example.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{pool: pool, cert: tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: key}}
}

// serverTLS returns a server config that counts handshakes (ClientHellos).
func (p *testPKI) serverTLS(handshakes *atomic.Int32) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{p.cert},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			handshakes.Add(1)
			return nil, nil
		},
	}
}

// answerer answers a query; nil means no reply.
type answerer func(q *dns.Msg) *dns.Msg

// fixedA answers every A query with ip, everything else with NOERROR and
// no records.
func fixedA(ip string) answerer {
	return func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg).SetReply(q)
		if q.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A " + ip)
			m.Answer = append(m.Answer, rr)
		}
		return m
	}
}

func rcode(code int) answerer {
	return func(q *dns.Msg) *dns.Msg { return new(dns.Msg).SetRcode(q, code) }
}

func handler(a answerer) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		if m := a(r); m != nil {
			w.WriteMsg(m)
		}
	}
}

// startUDP runs a miekg/dns UDP server on 127.0.0.1 and returns its
// address and a query counter.
func startUDP(t testing.TB, a answerer) (string, *atomic.Int32) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		n.Add(1)
		handler(a)(w, r)
	})}
	start(t, srv)
	return pc.LocalAddr().String(), &n
}

func start(t testing.TB, srv *dns.Server) {
	t.Helper()
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
}

func lookup(t testing.TB, ex dnsx.Exchanger, host string, qtype uint16) measurement.DNSQuery {
	t.Helper()
	// Generous: the machine may be loaded and the race detector is slow;
	// tests of timeouts set a short Options.Timeout instead.
	r := &probe.DNSResolver{Exchanger: ex, Timeout: 15 * time.Second, Retries: -1}
	return r.Lookup(context.Background(), host, qtype, probe.NewEpoch(nil))
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func expectAnswer(t testing.TB, q measurement.DNSQuery, ip string) {
	t.Helper()
	if q.Failure != nil {
		t.Fatalf("failure %s; want success", *q.Failure)
	}
	if len(q.Answers) != 1 || q.Answers[0].IPv4 != ip {
		t.Fatalf("answers %v; want A %s", q.Answers, ip)
	}
}

func newExchanger(t testing.TB, spec string, opts dnsx.Options) dnsx.Exchanger {
	t.Helper()
	if opts.Dial == nil {
		opts.Dial = loopbackOnly
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	ex, err := dnsx.New(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

func TestResolverSpec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec, engine, address, err string
	}{
		{"https://1.1.1.1/dns-query", "doh", "https://1.1.1.1/dns-query", ""},
		{"https://1.1.1.1", "doh", "https://1.1.1.1/dns-query", ""},
		{"HTTPS://127.0.0.1:8443/resolve?ct=x", "doh", "https://127.0.0.1:8443/resolve?ct=x", ""},
		{"https://[2606:4700:4700::1111]/dns-query", "doh", "https://[2606:4700:4700::1111]/dns-query", ""},
		{"tls://9.9.9.9", "dot", "9.9.9.9:853", ""},
		{"tls://[::1]:8853", "dot", "[::1]:8853", ""},
		{"udp://127.0.0.1", "udp", "127.0.0.1:53", ""},
		{"udp://127.0.0.1:5353", "udp", "127.0.0.1:5353", ""},
		{"tcp://127.0.0.1:5353", "tcp", "127.0.0.1:5353", ""},
		{"https://dns.google/dns-query", "", "", "must be an IP literal"},
		{"tls://one.one.one.one:853", "", "", "must be an IP literal"},
		{"udp://localhost:53", "", "", "must be an IP literal"},
		{"https://[fe80::1%25eth0]/dns-query", "", "", "must be an IP literal"},
		{"http://1.1.1.1/dns-query", "", "", "want https://IP/dns-query"},
		{"1.1.1.1", "", "", "want https://IP/dns-query"},
		{"udp://127.0.0.1:0", "", "", "invalid port"},
		{"udp://127.0.0.1:99999", "", "", "invalid port"},
		{"tls://1.1.1.1:853/path", "", "", "no path"},
		{"https://user:pw@1.1.1.1/dns-query", "", "", "user info"},
		{"", "", "", "want https://IP/dns-query"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			ex, err := dnsx.New(tc.spec, dnsx.Options{Dial: loopbackOnly})
			if tc.err != "" {
				if err == nil || !errors.Is(err, dnsx.ErrInvalidSpec) || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.spec) {
					t.Errorf("New(%q) error = %v; want %q naming the spec", tc.spec, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q): %v", tc.spec, err)
			}
			defer ex.Close()
			if ex.Engine() != tc.engine || ex.Address() != tc.address {
				t.Errorf("engine %q address %q; want %q %q", ex.Engine(), ex.Address(), tc.engine, tc.address)
			}
		})
	}
	if _, err := dnsx.New("https://127.0.0.1/dns-query", dnsx.Options{Method: "PUT"}); err == nil {
		t.Error("method PUT accepted; want an error")
	}
}

func TestResolverUDP(t *testing.T) {
	t.Parallel()
	addr, _ := startUDP(t, fixedA("192.0.2.53"))
	ex := newExchanger(t, "udp://"+addr, dnsx.Options{})
	q := lookup(t, ex, "plain.example.test", dns.TypeA)
	expectAnswer(t, q, "192.0.2.53")
	if q.Engine != "udp" || q.ResolverAddress != addr {
		t.Errorf("engine %q address %q; want udp %s", q.Engine, q.ResolverAddress, addr)
	}
}

func TestResolverFallbacks(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	var dohQueries atomic.Int32
	doh := startDoH(t, pki, func(q *dns.Msg) *dns.Msg { dohQueries.Add(1); return fixedA("192.0.2.44")(q) })

	// A port with nothing behind it: refused at once, so the fallback is
	// tried within the same exchange.
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	closed := pc.LocalAddr().String()
	pc.Close()

	ex, err := dnsx.NewWithFallbacks([]dnsx.Spec{{URL: "udp://" + closed}, {URL: doh.url, ServerName: "resolver.example.test"}},
		dnsx.Options{RootCAs: pki.pool, Dial: loopbackOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	q := lookup(t, ex, "fb.example.test", dns.TypeA)
	expectAnswer(t, q, "192.0.2.44")
	if q.Engine != "doh" || q.ResolverAddress != doh.url || q.Attempts != 2 {
		t.Errorf("engine %q address %q attempts %d; want doh %s 2", q.Engine, q.ResolverAddress, q.Attempts, doh.url)
	}
	// The resolver that answered is now tried first.
	q = lookup(t, ex, "fb2.example.test", dns.TypeA)
	expectAnswer(t, q, "192.0.2.44")
	if q.Attempts != 1 {
		t.Errorf("second query attempts %d; want 1 (sticky preference)", q.Attempts)
	}

	t.Run("nxdomain does not fall back", func(t *testing.T) {
		nx, _ := startUDP(t, rcode(dns.RcodeNameError))
		before := dohQueries.Load()
		ex, err := dnsx.NewWithFallbacks([]dnsx.Spec{{URL: "udp://" + nx}, {URL: doh.url, ServerName: "resolver.example.test"}},
			dnsx.Options{RootCAs: pki.pool, Dial: loopbackOnly})
		if err != nil {
			t.Fatal(err)
		}
		defer ex.Close()
		q := lookup(t, ex, "gone.example.test", dns.TypeA)
		if str(q.Failure) != failure.DNSNXDOMAIN || q.Rcode == nil || *q.Rcode != dns.RcodeNameError {
			t.Errorf("failure %s rcode %v; want %s, 3", str(q.Failure), q.Rcode, failure.DNSNXDOMAIN)
		}
		if dohQueries.Load() != before {
			t.Error("NXDOMAIN fell back to the next resolver")
		}
	})

	t.Run("all fail", func(t *testing.T) {
		ex, err := dnsx.NewWithFallbacks([]dnsx.Spec{{URL: "udp://" + closed}, {URL: "tcp://" + closed}}, dnsx.Options{Dial: loopbackOnly})
		if err != nil {
			t.Fatal(err)
		}
		defer ex.Close()
		q := lookup(t, ex, "x.example.test", dns.TypeA)
		if str(q.Failure) != failure.ConnectionRefused || q.Attempts != 2 {
			t.Errorf("failure %s attempts %d; want %s, 2", str(q.Failure), q.Attempts, failure.ConnectionRefused)
		}
	})

	if _, err := dnsx.NewWithFallbacks([]dnsx.Spec{{URL: doh.url}, {URL: "https://dns.google/dns-query"}}, dnsx.Options{}); err == nil || !strings.Contains(err.Error(), "dns.google") {
		t.Errorf("a hostname among the fallbacks: err %v; want one naming it", err)
	}
	if _, err := dnsx.NewWithFallbacks(nil, dnsx.Options{}); !errors.Is(err, dnsx.ErrInvalidSpec) {
		t.Errorf("no specs: err %v; want ErrInvalidSpec", err)
	}
}

// TestResolverGuard shows that a refused destination gets no packet: the
// DoH server outside the allowed /32 sees no handshake.
func TestResolverGuard(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	doh := startDoH(t, pki, fixedA("192.0.2.1"))
	only2 := guard.New(netip.MustParsePrefix("127.0.0.2/32")).Dialer(nil)
	for _, spec := range []string{doh.url, "tls://" + doh.addr, "udp://" + doh.addr} {
		ex := newExchanger(t, spec, dnsx.Options{RootCAs: pki.pool, Dial: only2})
		q := lookup(t, ex, "g.example.test", dns.TypeA)
		if str(q.Failure) != failure.BlockedByAllowNet {
			t.Errorf("%s: failure %s; want %s", spec, str(q.Failure), failure.BlockedByAllowNet)
		}
	}
	if n := doh.handshakes.Load(); n != 0 {
		t.Errorf("server saw %d handshakes; want 0", n)
	}
}

// concurrently runs n lookups at once and fails on any failure.
func concurrently(t testing.TB, n int, ex dnsx.Exchanger, ip string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			q := lookup(t, ex, "c"+string(rune('a'+i%26))+".example.test", dns.TypeA)
			if q.Failure != nil {
				errs <- *q.Failure
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent lookup failed: %s", e)
	}
}

// TestResolverFallbackTries checks that every resolver asked is recorded
// with its own failure: before, the record kept only the last resolver's
// failure, and a refused or untrusted control was invisible once a
// fallback had been asked.
func TestResolverFallbackTries(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	doh := startDoH(t, pki, fixedA("192.0.2.44"))
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	closed := pc.LocalAddr().String()
	pc.Close()

	type try struct{ engine, address, failure string }
	cases := []struct {
		name  string
		specs []dnsx.Spec
		// roots verifies the DoH server's certificate; nil leaves it
		// untrusted (the Mozilla bundle).
		roots       bool
		wantFailure string
		wantTries   []try
	}{
		{"refused then answered", []dnsx.Spec{{URL: "udp://" + closed}, {URL: doh.url, ServerName: "resolver.example.test"}}, true,
			"<nil>", []try{{"udp", closed, failure.ConnectionRefused}, {"doh", doh.url, "<nil>"}}},
		{"untrusted then refused", []dnsx.Spec{{URL: doh.url, ServerName: "resolver.example.test"}, {URL: "tcp://" + closed}}, false,
			failure.ConnectionRefused, []try{{"doh", doh.url, failure.SSLUnknownAuthority}, {"tcp", closed, failure.ConnectionRefused}}},
		{"one resolver", []dnsx.Spec{{URL: "udp://" + closed}}, false,
			failure.ConnectionRefused, []try{{"udp", closed, failure.ConnectionRefused}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := dnsx.Options{Dial: loopbackOnly}
			if c.roots {
				opts.RootCAs = pki.pool
			}
			ex, err := dnsx.NewWithFallbacks(c.specs, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer ex.Close()
			q := lookup(t, ex, "tries.example.test", dns.TypeA)
			if str(q.Failure) != c.wantFailure {
				t.Errorf("failure %s; want %s", str(q.Failure), c.wantFailure)
			}
			var got []try
			for _, tr := range q.Tries {
				got = append(got, try{tr.Engine, tr.ResolverAddress, str(tr.Failure)})
				if tr.T < tr.T0 || tr.T0 < q.T0 || tr.T > q.T {
					t.Errorf("try %+v: times %.6f-%.6f outside the query's %.6f-%.6f", tr, tr.T0, tr.T, q.T0, q.T)
				}
			}
			if !slices.Equal(got, c.wantTries) {
				t.Errorf("tries:\n got %+v\nwant %+v", got, c.wantTries)
			}
			if q.Attempts != len(c.wantTries) {
				t.Errorf("attempts %d; want %d", q.Attempts, len(c.wantTries))
			}
		})
	}
}

// TestFallbackTriesClock checks that an exchange with fallbacks times its
// tries on the clock its context carries: with a clock that steps one
// second per reading, the refused try and the answered one are [1 s, 2 s]
// and [3 s, 4 s] after its start; without one, on time.Now.
func TestFallbackTriesClock(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	doh := startDoH(t, pki, fixedA("192.0.2.44"))
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	closed := pc.LocalAddr().String()
	pc.Close()
	ex, err := dnsx.NewWithFallbacks([]dnsx.Spec{{URL: "udp://" + closed}, {URL: doh.url, ServerName: "resolver.example.test"}},
		dnsx.Options{Dial: loopbackOnly, RootCAs: pki.pool})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()

	base := time.Date(2021, 6, 18, 12, 54, 34, 0, time.UTC)
	var n int
	stepping := func() time.Time { n++; return base.Add(time.Duration(n) * time.Second) }
	_, _, info, err := ex.ExchangeWithInfo(dnsx.WithClock(context.Background(), stepping), probe.NewQuery("clock.example.test", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tr := range info.Tries {
		got = append(got, fmt.Sprintf("%s %v-%v", tr.Engine, tr.Start.Sub(base), tr.End.Sub(base)))
	}
	if want := []string{"udp 1s-2s", "doh 3s-4s"}; !slices.Equal(got, want) {
		t.Errorf("tries %q; want %q", got, want)
	}

	// The preference moved to the DoH resolver: one try, on time.Now.
	before := time.Now()
	_, _, info, err = ex.ExchangeWithInfo(context.Background(), probe.NewQuery("clock.example.test", dns.TypeA))
	if err != nil || len(info.Tries) != 1 {
		t.Fatalf("tries %+v, %v; want one answered", info.Tries, err)
	}
	if tr := info.Tries[0]; tr.Start.Before(before) || tr.End.After(time.Now()) || tr.End.Before(tr.Start) {
		t.Errorf("try %v-%v; want within the exchange, on time.Now", tr.Start, tr.End)
	}
}
