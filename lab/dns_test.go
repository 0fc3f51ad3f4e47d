package lab

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dohClient returns an HTTP/2 client trusting the lab's public root.
func dohClient(t testing.TB, l *Lab) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: l.PKI.PublicRoots()}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// dohDo sends an RFC 8484 request and decodes the answer, checking that it
// came over HTTP/2.
func dohDo(t testing.TB, c *http.Client, req *http.Request) *dns.Msg {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("DoH %s: %v", req.Method, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 {
		t.Errorf("DoH %s over %s; want HTTP/2", req.Method, resp.Proto)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != dnsMessageType {
		t.Fatalf("DoH %s: %s %q %q", req.Method, resp.Status, resp.Header.Get("Content-Type"), body)
	}
	m := new(dns.Msg)
	if err := m.Unpack(body); err != nil {
		t.Fatalf("DoH %s: answer: %v", req.Method, err)
	}
	return m
}

func dohGet(t testing.TB, l *Lab, q *dns.Msg) *dns.Msg {
	t.Helper()
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, l.DoHURL+"?dns="+base64.RawURLEncoding.EncodeToString(wire), nil)
	req.Header.Set("Accept", dnsMessageType)
	return dohDo(t, dohClient(t, l), req)
}

func dohPost(t testing.TB, l *Lab, q *dns.Msg) *dns.Msg {
	t.Helper()
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, l.DoHURL, bytes.NewReader(wire))
	req.Header.Set("Content-Type", dnsMessageType)
	return dohDo(t, dohClient(t, l), req)
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Id = 0 // RFC 8484 4.1: DoH clients use ID 0
	return m
}

// answer is what a test expects from a resolver: an rcode and the A or
// AAAA address (invalid for none).
type answer struct {
	rcode int
	addr  netip.Addr
}

func gotAnswer(t testing.TB, m *dns.Msg) answer {
	t.Helper()
	a := answer{rcode: m.Rcode}
	for _, rr := range m.Answer {
		var ip net.IP
		switch rec := rr.(type) {
		case *dns.A:
			ip = rec.A.To4()
		case *dns.AAAA:
			ip = rec.AAAA
		default:
			continue
		}
		if a.addr.IsValid() {
			t.Errorf("more than one address record: %v", m.Answer)
		}
		a.addr, _ = netip.AddrFromSlice(ip)
	}
	return a
}

func (a answer) String() string {
	return dns.RcodeToString[a.rcode] + " " + a.addr.String()
}

// TestResolversFollowScenario asks every site of the default scenario from
// every transport and checks who lies where. The expectations are spelled
// out here from the behaviour names, not computed by the lab.
func TestResolversFollowScenario(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{})
	bogon := netip.MustParseAddr(BogonAddr)
	wantLocal := func(s SiteInfo) answer {
		switch s.DNS {
		case DNSTruthful, DNSControlServfail:
			return answer{dns.RcodeSuccess, s.Addr}
		case DNSBlockpage:
			return answer{dns.RcodeSuccess, l.BlockpageAddr}
		case DNSBogon:
			return answer{dns.RcodeSuccess, bogon}
		case DNSNXDOMAIN, DNSNonexistent:
			return answer{rcode: dns.RcodeNameError}
		}
		t.Fatalf("%s: unknown DNS behaviour %q", s.Domain, s.DNS)
		return answer{}
	}
	wantControl := func(s SiteInfo) answer {
		switch s.DNS {
		case DNSNonexistent:
			return answer{rcode: dns.RcodeNameError}
		case DNSControlServfail:
			return answer{rcode: dns.RcodeServerFailure}
		}
		return answer{dns.RcodeSuccess, s.Addr}
	}
	udp := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	tcp := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	dot := &dns.Client{Net: "tcp-tls", Timeout: 2 * time.Second,
		TLSConfig: &tls.Config{RootCAs: l.PKI.PublicRoots(), ServerName: l.ControlServerName}}
	exchange := func(t *testing.T, c *dns.Client, addr string, q *dns.Msg) *dns.Msg {
		t.Helper()
		m, _, err := c.Exchange(q, addr)
		if err != nil {
			t.Fatalf("%s query: %v", c.Net, err)
		}
		return m
	}
	for _, s := range l.Sites() {
		t.Run(s.Domain, func(t *testing.T) {
			q := query(s.Domain, dns.TypeA)
			local, control := wantLocal(s), wantControl(s)
			for _, tr := range []struct {
				name string
				m    *dns.Msg
				want answer
			}{
				{"local udp", exchange(t, udp, l.LocalDNS, q), local},
				{"local tcp", exchange(t, tcp, l.LocalDNS, q), local},
				{"control dot", exchange(t, dot, l.DoTAddr, q), control},
				{"control doh get", dohGet(t, l, q), control},
				{"control doh post", dohPost(t, l, q), control},
			} {
				if got := gotAnswer(t, tr.m); got != tr.want {
					t.Errorf("%s: got %v; want %v", tr.name, got, tr.want)
				}
				if tr.m.Id != q.Id || len(tr.m.Question) != 1 || tr.m.Question[0] != q.Question[0] {
					t.Errorf("%s: reply does not echo the query's ID and question", tr.name)
				}
			}
			// AAAA: ::1 for an IPv6 site where the A answer is the site's
			// own address, else none; the rcode still follows the name.
			q6 := query(s.Domain, dns.TypeAAAA)
			for _, tr := range []struct {
				name string
				m    *dns.Msg
				a    answer
			}{
				{"local udp", exchange(t, udp, l.LocalDNS, q6), local},
				{"control doh", dohGet(t, l, q6), control},
			} {
				want := answer{rcode: tr.a.rcode}
				if s.IPv6 && tr.a.addr == s.Addr {
					want.addr = netip.IPv6Loopback()
				}
				if got := gotAnswer(t, tr.m); got != want {
					t.Errorf("%s AAAA: got %v; want %v", tr.name, got, want)
				}
			}
		})
	}
	// Spot checks against the default table by name.
	for domain, want := range map[string]answer{
		"dns-bogon.example":     {dns.RcodeSuccess, bogon},
		"dns-blockpage.example": {dns.RcodeSuccess, l.BlockpageAddr},
		"dns-nxdomain.example":  {rcode: dns.RcodeNameError},
		"not-in-scenario.org":   {rcode: dns.RcodeNameError},
		ControlDNSName:          {dns.RcodeSuccess, netip.MustParseAddr(strings.Split(strings.TrimPrefix(l.DoHURL, "https://"), ":")[0])},
	} {
		if got := gotAnswer(t, exchange(t, udp, l.LocalDNS, query(domain, dns.TypeA))); got != want {
			t.Errorf("local %s: got %v; want %v", domain, got, want)
		}
	}
	if got := gotAnswer(t, dohGet(t, l, query("not-in-scenario.org", dns.TypeA))); got.rcode != dns.RcodeNameError {
		t.Errorf("control, name outside the scenario: got %v; want NXDOMAIN (never recurse)", got)
	}
}

func TestBlockpageServer(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{})
	c, err := handshake(t, l, l.BlockpageAddr, "dns-blockpage.example", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	chain := c.ConnectionState().PeerCertificates
	if err := verifyChain(chain, l.PKI.PublicRoots(), "dns-blockpage.example", time.Now()); err == nil {
		t.Errorf("block-page chain verifies for the blocked domain; want a hostname error")
	}
	if err := verifyChain(chain, l.PKI.PublicRoots(), BlockpageDNSName, time.Now()); err != nil {
		t.Errorf("block-page chain for its own name: %v", err)
	}
	resp, err := httpClient(t, l, l.BlockpageAddr).Get("https://" + BlockpageDNSName + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnavailableForLegalReasons {
		t.Errorf("status %d; want 451", resp.StatusCode)
	}
}

func TestDoHErrors(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{})
	c := dohClient(t, l)
	wire, _ := query("rutracker.org", dns.TypeA).Pack()
	reply := query("rutracker.org", dns.TypeA)
	reply.Response = true
	replyWire, _ := reply.Pack()
	base := strings.TrimSuffix(l.DoHURL, dohPath)
	tests := []struct {
		name, method, url, contentType string
		body                           []byte
		want                           int
	}{
		{"get without dns", http.MethodGet, l.DoHURL, "", nil, http.StatusBadRequest},
		{"get bad base64", http.MethodGet, l.DoHURL + "?dns=!!!", "", nil, http.StatusBadRequest},
		{"get garbage message", http.MethodGet, l.DoHURL + "?dns=AAAA", "", nil, http.StatusBadRequest},
		{"get padded base64", http.MethodGet, l.DoHURL + "?dns=" + base64.URLEncoding.EncodeToString(wire), "", nil, http.StatusOK},
		{"post wrong type", http.MethodPost, l.DoHURL, "text/plain", wire, http.StatusUnsupportedMediaType},
		{"post a response", http.MethodPost, l.DoHURL, dnsMessageType, replyWire, http.StatusBadRequest},
		{"post too large", http.MethodPost, l.DoHURL, dnsMessageType, make([]byte, 70000), http.StatusRequestEntityTooLarge},
		{"put", http.MethodPut, l.DoHURL, dnsMessageType, wire, http.StatusMethodNotAllowed},
		{"other path", http.MethodGet, base + "/resolve?name=x", "", nil, http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.url, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d; want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

func TestDoTCertificate(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{})
	// By IP as well as by name.
	for _, name := range []string{l.ControlServerName, strings.Split(l.DoTAddr, ":")[0]} {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp4", l.DoTAddr,
			&tls.Config{RootCAs: l.PKI.PublicRoots(), ServerName: name})
		if err != nil {
			t.Errorf("DoT handshake as %q: %v", name, err)
			continue
		}
		c.Close()
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	const latency = 150 * time.Millisecond
	l := startLab(t, Config{Scenario: Scenario{
		Latency: latency,
		Sites:   []Site{{Domain: "slow.example", TLS: InterceptISCA}, {Domain: "reset.example", TLS: Reset}},
	}})
	q := query("slow.example", dns.TypeA)
	for _, c := range []*dns.Client{{Net: "udp", Timeout: 2 * time.Second}, {Net: "tcp", Timeout: 2 * time.Second}} {
		_, rtt, err := c.Exchange(q, l.LocalDNS)
		if err != nil {
			t.Fatalf("%s: %v", c.Net, err)
		}
		if rtt < latency || rtt > latency+time.Second {
			t.Errorf("%s round trip %v; want at least %v and not much more", c.Net, rtt, latency)
		}
	}
	start := time.Now()
	m := dohGet(t, l, q)
	// A fresh DoH connection: the TLS flight, the HTTP/2 settings and the
	// answer each wait.
	if elapsed := time.Since(start); elapsed < 2*latency {
		t.Errorf("fresh DoH query took %v; want at least %v", elapsed, 2*latency)
	}
	if m.Rcode != dns.RcodeSuccess {
		t.Errorf("DoH rcode %s", dns.RcodeToString[m.Rcode])
	}
	for _, domain := range []string{"slow.example", "reset.example"} {
		s := mustSite(t, l, domain)
		start = time.Now()
		handshake(t, l, s.Addr, domain, 5*time.Second)
		if elapsed := time.Since(start); elapsed < latency {
			t.Errorf("%s: handshake took %v; want at least %v", domain, elapsed, latency)
		}
	}
}

func TestDNSDrop(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{Scenario: Scenario{DNSDrop: 1, Sites: []Site{{Domain: "a.example"}}}})
	q := query("a.example", dns.TypeA)
	_, _, err := (&dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}).Exchange(q, l.LocalDNS)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("UDP with dns_drop 1: err = %v; want a timeout", err)
	}
	if _, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(q, l.LocalDNS); err != nil {
		t.Errorf("TCP with dns_drop 1: %v; want an answer (only UDP drops)", err)
	}

	half := startLab(t, Config{Scenario: Scenario{DNSDrop: 0.5, Sites: []Site{{Domain: "a.example"}}}})
	var answered, dropped int
	for range 24 {
		if _, _, err := (&dns.Client{Net: "udp", Timeout: 100 * time.Millisecond}).Exchange(q, half.LocalDNS); err != nil {
			dropped++
		} else {
			answered++
		}
	}
	if answered == 0 || dropped == 0 {
		t.Errorf("dns_drop 0.5: %d answered, %d dropped; want some of each", answered, dropped)
	}
}
