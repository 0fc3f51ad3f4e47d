package lab

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// startLab starts a lab for the test and closes it at cleanup.
func startLab(t testing.TB, cfg Config) *Lab {
	t.Helper()
	l, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// mustSite returns a site of the lab or fails the test.
func mustSite(t testing.TB, l *Lab, domain string) SiteInfo {
	t.Helper()
	s, ok := l.Site(domain)
	if !ok {
		t.Fatalf("lab has no site %q", domain)
	}
	return s
}

// handshake dials addr on the lab's port and hand-shakes with the given
// SNI, verification off (chains are checked by the tests). The conn is
// closed at cleanup.
func handshake(t testing.TB, l *Lab, addr netip.Addr, sni string, timeout time.Duration) (*tls.Conn, error) {
	t.Helper()
	d := net.Dialer{Timeout: timeout}
	raw, err := d.Dial("tcp", netip.AddrPortFrom(addr, uint16(l.Port)).String())
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
	c.SetDeadline(time.Now().Add(timeout))
	if err := c.Handshake(); err != nil {
		raw.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	t.Cleanup(func() { c.Close() })
	return c, nil
}

// httpClient returns a client that sends every request to addr on the
// lab's port, trusting only the lab's public root; it never resolves.
func httpClient(t testing.TB, l *Lab, addr netip.Addr) *http.Client {
	t.Helper()
	target := netip.AddrPortFrom(addr, uint16(l.Port)).String()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp4", target)
		},
		TLSClientConfig:   &tls.Config{RootCAs: l.PKI.PublicRoots()},
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func TestStartAddresses(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{})
	if !l.Net.Addr().Is4() || l.Net.Bits() != 24 || !netip.MustParsePrefix("127.0.0.0/8").Contains(l.Net.Addr()) {
		t.Fatalf("Net = %v; want a loopback /24", l.Net)
	}
	if netip.MustParsePrefix("127.0.0.0/16").Contains(l.Net.Addr()) {
		t.Errorf("Net = %v; want outside 127.0.0.0/16", l.Net)
	}
	for _, a := range []string{l.LocalDNS, l.DoTAddr, strings.TrimSuffix(strings.TrimPrefix(l.DoHURL, "https://"), dohPath)} {
		ap, err := netip.ParseAddrPort(a)
		if err != nil || !l.Net.Contains(ap.Addr()) {
			t.Errorf("address %q not in %v (err %v)", a, l.Net, err)
		}
	}
	if got, want := len(l.Sites()), len(DefaultScenario().Sites); got != want {
		t.Errorf("len(Sites()) = %d; want %d (empty scenario means the default)", got, want)
	}
	seen := map[netip.Addr]string{}
	for _, s := range l.Sites() {
		if s.DNS == DNSNonexistent {
			if s.Addr.IsValid() || s.OriginAddr.IsValid() {
				t.Errorf("%s: nonexistent site has addresses %v, %v", s.Domain, s.Addr, s.OriginAddr)
			}
			continue
		}
		for _, a := range []netip.Addr{s.Addr, s.OriginAddr} {
			if !l.Net.Contains(a) {
				t.Errorf("%s: address %v outside %v", s.Domain, a, l.Net)
			}
			if other, dup := seen[a]; dup {
				t.Errorf("%s and %s share %v", s.Domain, other, a)
			}
			seen[a] = s.Domain
		}
	}
	if _, ok := l.Site("RUTRACKER.ORG."); !ok {
		t.Errorf("Site is not case-insensitive or does not ignore the trailing dot")
	}
}

func TestTwoLabsInParallel(t *testing.T) {
	t.Parallel()
	a := startLab(t, Config{})
	b := startLab(t, Config{})
	if a.Net == b.Net {
		t.Fatalf("both labs own %v", a.Net)
	}
	for _, l := range []*Lab{a, b} {
		s := mustSite(t, l, "rutracker.org")
		c, err := handshake(t, l, s.Addr, s.Domain, 5*time.Second)
		if err != nil {
			t.Fatalf("lab %v: handshake: %v", l.Net, err)
		}
		if got, want := c.ConnectionState().PeerCertificates[1].Raw, l.PKI.ISCAIntermediate.Raw; !bytes.Equal(got, want) {
			t.Errorf("lab %v: served another lab's intermediate", l.Net)
		}
		// ::1 is shared: each lab's IPv6 sites are on its own port there.
		s6 := mustSite(t, l, "stanradar.com")
		c, err = handshake(t, l, s6.Addr6, s6.Domain, 5*time.Second)
		if err != nil {
			t.Fatalf("lab %v: handshake on [::1]:%d: %v", l.Net, l.Port, err)
		}
		if got, want := c.ConnectionState().PeerCertificates[1].Raw, l.PKI.ISCAIntermediate.Raw; !bytes.Equal(got, want) {
			t.Errorf("lab %v: served another lab's intermediate on ::1", l.Net)
		}
	}
	if a.Port == b.Port {
		t.Errorf("both labs on port %d; ::1 cannot be shared", a.Port)
	}
}

func TestPortFallback(t *testing.T) {
	t.Parallel()
	// Occupy the preferred ports on the first TCP host and on the DNS
	// host of a /24, then start a lab there preferring them.
	prefix := randomPrefix()
	busyTCP, err := net.Listen("tcp4", netip.AddrPortFrom(hostAddr(prefix, hostDoH), 0).String())
	if err != nil {
		t.Skipf("cannot bind %v: %v", prefix, err)
	}
	defer busyTCP.Close()
	busyDNS, err := net.Listen("tcp4", netip.AddrPortFrom(hostAddr(prefix, hostLocalDNS), 0).String())
	if err != nil {
		t.Skipf("cannot bind %v: %v", prefix, err)
	}
	defer busyDNS.Close()
	tcpPort := busyTCP.Addr().(*net.TCPAddr).Port
	dnsPort := busyDNS.Addr().(*net.TCPAddr).Port

	sc := Scenario{Sites: []Site{{Domain: "a.example"}, {Domain: "b.example", TLS: InterceptISCA}}}.normalized()
	pki, err := NewPKI(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certs := make([]*tls.Certificate, len(sc.Sites))
	for i, s := range sc.Sites {
		if certs[i], err = pki.IssuePublic([]string{s.Domain}, nil); err != nil {
			t.Fatal(err)
		}
	}
	l, err := start(Config{}, sc, pki, certs, prefix, tcpPort, dnsPort)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer l.Close()
	if l.Port == tcpPort || l.DNSPort == dnsPort {
		t.Fatalf("Port, DNSPort = %d, %d; want other than the busy %d, %d", l.Port, l.DNSPort, tcpPort, dnsPort)
	}
	s := mustSite(t, l, "b.example")
	if _, err := handshake(t, l, s.Addr, s.Domain, 5*time.Second); err != nil {
		t.Errorf("handshake on fallback port %d: %v", l.Port, err)
	}
	m := new(dns.Msg)
	m.SetQuestion("a.example.", dns.TypeA)
	if _, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, l.LocalDNS); err != nil {
		t.Errorf("query on fallback DNS port %d: %v", l.DNSPort, err)
	}

	// A fixed port that is busy is an error, not a silent change.
	if _, err := start(Config{Port: tcpPort}, sc, pki, certs, prefix, tcpPort, dnsPort); !errors.Is(err, errBind) {
		t.Errorf("start with busy fixed port: err = %v; want errBind", err)
	}
}

func TestOutsideDialer(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{})
	dial := l.OutsideDialer()
	ctx := context.Background()
	roots := l.PKI.PublicRoots()

	// From outside, an intercepted and an unreachable site both show the
	// origin's valid chain at their public address, and an intercepted
	// IPv6 site at ::1 too.
	for _, tc := range []struct {
		domain string
		ipv6   bool
	}{
		{"rutracker.org", false},
		{"tcp-unreachable.example", false},
		{"tls-reset.example", false},
		{"stanradar.com", true},
	} {
		domain, s := tc.domain, mustSite(t, l, tc.domain)
		addr := s.Addr
		if tc.ipv6 {
			addr = s.Addr6
		}
		raw, err := dial(ctx, "tcp", netip.AddrPortFrom(addr, uint16(l.Port)).String())
		if err != nil {
			t.Fatalf("%s: outside dial to %v: %v", domain, addr, err)
		}
		c := tls.Client(raw, &tls.Config{ServerName: domain, RootCAs: roots})
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := c.Handshake(); err != nil {
			t.Errorf("%s: outside handshake: %v; want the origin's valid chain", domain, err)
		}
		c.Close()
	}
	for _, addr := range []string{
		BogonAddr + ":443",         // bogon: data only
		"127.0.0.1:443",            // loopback, but not the lab's
		"rutracker.org:443",        // a name: never resolved
		l.Net.Addr().String() + "", // no port
	} {
		if c, err := dial(ctx, "tcp", addr); err == nil {
			c.Close()
			t.Errorf("outside dial %q succeeded; want refused", addr)
		}
	}
	// ::1 is not the lab's when it has no IPv6 site.
	v4 := startLab(t, Config{Scenario: Scenario{Sites: []Site{{Domain: "a.example"}}}})
	addr := netip.AddrPortFrom(netip.IPv6Loopback(), uint16(v4.Port)).String()
	if c, err := v4.OutsideDialer()(ctx, "tcp", addr); err == nil {
		c.Close()
		t.Errorf("outside dial %q of an IPv4-only lab succeeded; want refused", addr)
	}
}

func TestWriteFiles(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{})
	f, err := l.WriteFiles(filepath.Join(t.TempDir(), "lab"))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]*x509.Certificate{
		f.PublicRoot:              l.PKI.PublicRoot,
		f.PublicIntermediate:      l.PKI.PublicIntermediate,
		f.ISCARoot:                l.PKI.ISCARoot,
		f.ISCAIntermediate:        l.PKI.ISCAIntermediate,
		f.ISCAExpiredIntermediate: l.PKI.ISCAExpiredIntermediate,
		f.CorporateRoot:           l.PKI.CorporateRoot,
	} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			t.Errorf("%s: no certificate", path)
			continue
		}
		if !bytes.Equal(data, certPEM(want)) {
			t.Errorf("%s: does not hold %s", path, want.Subject)
		}
	}
	resolv, err := os.ReadFile(f.ResolvConf)
	if err != nil {
		t.Fatal(err)
	}
	if want := "nameserver " + hostAddr(l.Net, hostLocalDNS).String() + "\n"; !strings.Contains(string(resolv), want) {
		t.Errorf("resolv.conf = %q; want a line %q", resolv, want)
	}
	sc, err := LoadScenario(f.Scenario)
	if err != nil {
		t.Fatalf("LoadScenario(written scenario): %v", err)
	}
	if len(sc.Sites) != len(l.Scenario.Sites) || sc.Name != l.Scenario.Name {
		t.Fatalf("round trip: got %d sites %q; want %d %q", len(sc.Sites), sc.Name, len(l.Scenario.Sites), l.Scenario.Name)
	}
	for i := range sc.Sites {
		if got, want := sc.Sites[i], l.Scenario.Sites[i]; got != want {
			t.Errorf("round trip sites[%d] = %+v; want %+v", i, got, want)
		}
	}
}

// TestCloseLeavesNoGoroutines is not parallel: it counts the process's
// goroutines, which other tests would change.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	l, err := Start(Config{Scenario: Scenario{Latency: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	// Use every server, and leave connections open in each state.
	for _, domain := range []string{"rutracker.org", "knews.kg", "corp-proxy.example", "clean-1.example"} {
		s := mustSite(t, l, domain)
		resp, err := httpClient(t, l, s.Addr).Get("https://" + domain + "/")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	for _, domain := range []string{"tls-reset.example", "tls-eof.example"} {
		handshake(t, l, mustSite(t, l, domain).Addr, domain, time.Second)
	}
	bh := mustSite(t, l, "tls-blackhole.example")
	bhConn, err := net.Dial("tcp4", netip.AddrPortFrom(bh.Addr, uint16(l.Port)).String())
	if err != nil {
		t.Fatal(err)
	}
	defer bhConn.Close()
	go tls.Client(bhConn, &tls.Config{ServerName: bh.Domain, InsecureSkipVerify: true}).Handshake()
	// An idle spliced connection, left open.
	if _, err := handshake(t, l, mustSite(t, l, "clean-1.example").Addr, "clean-1.example", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	m.SetQuestion("rutracker.org.", dns.TypeA)
	for _, net := range []string{"udp", "tcp"} {
		if _, _, err := (&dns.Client{Net: net, Timeout: 2 * time.Second}).Exchange(m, l.LocalDNS); err != nil {
			t.Errorf("%s query: %v", net, err)
		}
	}
	dot := &dns.Client{Net: "tcp-tls", Timeout: 2 * time.Second, TLSConfig: &tls.Config{RootCAs: l.PKI.PublicRoots(), ServerName: l.ControlServerName}}
	if _, _, err := dot.Exchange(m, l.DoTAddr); err != nil {
		t.Errorf("DoT query: %v", err)
	}
	dohGet(t, l, m)
	time.Sleep(50 * time.Millisecond) // let the blackholed hello arrive

	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	bhConn.Close()
	// Client-side goroutines (transports, the blackholed handshake) end
	// once the lab's side is gone; give them a moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		n := runtime.NumGoroutine()
		if n <= before {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines after Close; %d before:\n%s", n, before, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// isConnReset reports whether err is a TCP reset.
func isConnReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// syncBuffer is a bytes.Buffer safe for the lab's concurrent servers.
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

// TestRequestLog: with Config.RequestLog the lab logs a line per DNS
// query with its answer and per connection with the SNI and what the
// middlebox did.
func TestRequestLog(t *testing.T) {
	var buf syncBuffer
	sc := Scenario{Sites: []Site{
		{Domain: "isca.example", TLS: InterceptISCA},
		{Domain: "bogon.example", DNS: DNSBogon},
	}}
	l := startLab(t, Config{Scenario: sc, RequestLog: log.New(&buf, "", 0)})
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	for _, name := range []string{"isca.example", "bogon.example", "missing.example"} {
		if _, _, err := c.Exchange(query(name, dns.TypeA), l.LocalDNS); err != nil {
			t.Fatal(err)
		}
	}
	s := mustSite(t, l, "isca.example")
	conn, err := tls.Dial("tcp", netip.AddrPortFrom(s.Addr, uint16(l.Port)).String(), &tls.Config{ServerName: "isca.example", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	want := []string{
		"local resolver (UDP) 127.0.0.1:",
		": A isca.example -> " + s.Addr.String() + "\n",
		": A bogon.example -> " + BogonAddr + "\n",
		": A missing.example -> NXDOMAIN\n",
		fmt.Sprintf("-> %s:%d: sni \"isca.example\": intercept_isca\n", s.Addr, l.Port),
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, w := range want {
		for !strings.Contains(buf.String(), w) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // the TLS line is written when the connection ends
		}
		if !strings.Contains(buf.String(), w) {
			t.Errorf("no %q in the request log:\n%s", w, buf.String())
		}
	}
}
