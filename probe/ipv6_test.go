package probe_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"kzprobe/dnsx"
	"kzprobe/lab"
	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/guard"
)

// v6Net is a network whose sites have IPv6 addresses: a resolver on
// 127.0.0.1 that answers AAAA ::1 for its names (and A 127.0.0.1 for the
// dual-stack one), and a TLS server on [::1] and 127.0.0.1, one port, that
// presents, by SNI and address family, a leaf forged from the lab's ISCA
// PKI or one from its public CA. The lab's IPv6 sites (lab.Site.IPv6)
// behave alike on both families, by SNI; here one site is intercepted on
// IPv4 only, and others have no IPv4 address at all.
type v6Net struct {
	dns      string       // "127.0.0.1:port", UDP
	port     int          // the TLS server's port on ::1
	accepted atomic.Int32 // TCP connections the TLS server accepted on ::1
}

const (
	v6ISCA  = "isca6.example"  // AAAA only, intercepted
	v6Clean = "clean6.example" // AAAA only, trusted
	v6Dual  = "dual6.example"  // A and AAAA: intercepted on IPv4 only
)

func startV6Net(t *testing.T, l *lab.Lab) *v6Net {
	t.Helper()
	// One port on ::1 and on 127.0.0.1: the probe dials every address on
	// the same port.
	var ln6, ln4 net.Listener
	for range 10 {
		var err error
		if ln6, err = net.Listen("tcp6", "[::1]:0"); err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		port := ln6.Addr().(*net.TCPAddr).Port
		if ln4, err = net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			break
		}
		ln6.Close() // the port is taken on 127.0.0.1; try another
		ln6 = nil
	}
	if ln4 == nil {
		t.Fatal("no port free on both ::1 and 127.0.0.1")
	}
	t.Cleanup(func() { ln6.Close(); ln4.Close() })
	n := &v6Net{port: ln6.Addr().(*net.TCPAddr).Port}
	cfg := &tls.Config{GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		ipv4 := hello.Conn.LocalAddr().(*net.TCPAddr).IP.To4() != nil
		if hello.ServerName == v6ISCA || (hello.ServerName == v6Dual && ipv4) {
			return l.PKI.Forge(hello.ServerName, lab.InterceptISCA)
		}
		return l.PKI.IssuePublic([]string{hello.ServerName}, nil)
	}}
	for _, ln := range []net.Listener{ln6, ln4} {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				if ln == ln6 {
					n.accepted.Add(1)
				}
				go func() {
					defer c.Close()
					c.SetDeadline(time.Now().Add(5 * time.Second))
					tc := tls.Server(c, cfg)
					if tc.Handshake() == nil {
						tc.Close()
					}
				}()
			}
		}()
	}

	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 60}
		switch {
		case q.Qtype == dns.TypeAAAA && (q.Name == v6ISCA+"." || q.Name == v6Clean+"." || q.Name == v6Dual+"."):
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: net.IPv6loopback})
		case q.Qtype == dns.TypeA && q.Name == v6Dual+".":
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IPv4(127, 0, 0, 1)})
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	n.dns = pc.LocalAddr().String()
	return n
}

// v6Prober is labProber's prober (trust, knowledge, fingerprints) pointed
// at n, both resolvers on n's, dialling through a guard of allow.
func v6Prober(t *testing.T, l *lab.Lab, n *v6Net, allow ...netip.Prefix) *probe.Prober {
	p := labProber(t, l)
	g := guard.New(allow...)
	dial := g.Dialer(nil)
	p.Local = &probe.DNSResolver{Exchanger: dnsx.NewDNSExchanger(n.dns, dial), Timeout: 2 * time.Second, Retries: 1}
	p.Control = &probe.DNSResolver{Exchanger: dnsx.NewDNSExchanger(n.dns, dial), Timeout: 2 * time.Second, Retries: 1}
	p.Connector = &probe.Connector{Dial: dial, Timeout: 2 * time.Second}
	p.Port = n.port
	p.Consistency = probe.ConsistencyOptions{Exempt: g.Prefixes()}
	return p
}

// TestMeasureIPv6 measures sites that resolve to ::1 only: the AAAA answer
// is recorded and compared, the probe connects and hand-shakes over IPv6,
// and the verdict is the one the chain calls for. A guard that allows
// 127.0.0.0/8 only refuses ::1 before any packet.
func TestMeasureIPv6(t *testing.T) {
	t.Parallel()
	l, _ := startLab(t, lab.Scenario{Sites: []lab.Site{{Domain: "clean.example", TLS: lab.Pass}}})
	n := startV6Net(t, l)
	loopback4 := netip.MustParsePrefix("127.0.0.0/8")
	p := v6Prober(t, l, n, loopback4, netip.MustParsePrefix("::1/128"))
	wantAddr := net.JoinHostPort("::1", strconv.Itoa(n.port))

	for _, tc := range []struct {
		domain string
		want   measurement.Verdict
	}{
		{v6ISCA, measurement.VerdictMITMISCA},
		{v6Clean, measurement.VerdictOK},
	} {
		m := p.Measure(context.Background(), tc.domain, 0)
		tk := m.TestKeys
		if tk.Verdict != tc.want {
			t.Errorf("%s: verdict %s (%s); want %s", tc.domain, tk.Verdict, tk.VerdictReason, tc.want)
		}
		if c := tk.DNSConsistency; c == nil || c.Status != measurement.Consistent || len(c.LocalAddrs) != 1 || c.LocalAddrs[0] != "::1" {
			t.Errorf("%s: dns_consistency %+v; want consistent on [::1]", tc.domain, c)
		}
		aaaa := false
		for _, q := range tk.Queries {
			for _, a := range q.Answers {
				aaaa = aaaa || (q.QueryType == "AAAA" && a.AnswerType == "AAAA" && a.IPv6 == "::1")
			}
		}
		if !aaaa {
			t.Errorf("%s: no AAAA ::1 answer in the local queries %+v", tc.domain, tk.Queries)
		}
		if len(tk.TCPConnect) != 1 || tk.TCPConnect[0].IP != "::1" || !tk.TCPConnect[0].Status.Success {
			t.Errorf("%s: tcp_connect %+v; want one success to ::1", tc.domain, tk.TCPConnect)
		}
		if len(tk.TLSHandshakes) != 1 || tk.TLSHandshakes[0].Address != wantAddr || len(tk.TLSHandshakes[0].PeerCertificates) != 2 {
			t.Errorf("%s: tls_handshakes %+v; want one at %s with 2 certificates", tc.domain, tk.TLSHandshakes, wantAddr)
		}
	}
	if tk := p.Measure(context.Background(), v6ISCA, 0).TestKeys; tk.Interception == nil || tk.Interception.RootSHA1 != sha1Hex(l.PKI.ISCARoot.Raw) {
		t.Errorf("interception %+v; want the lab's ISCA root %s", tk.Interception, sha1Hex(l.PKI.ISCARoot.Raw))
	}

	t.Run("dual stack, intercepted on IPv4 only", func(t *testing.T) {
		tk := p.Measure(context.Background(), v6Dual, 0).TestKeys
		if tk.Verdict != measurement.VerdictMITMISCA || !strings.Contains(tk.VerdictReason, "; trusted chain at ::1") {
			t.Errorf("verdict %s (%s); want mitm_isca, trusted chain at ::1", tk.Verdict, tk.VerdictReason)
		}
		got := map[string]bool{}
		for i, h := range tk.TLSHandshakes {
			if h.Failure != nil || i >= len(tk.Chains) || tk.Chains[i] == nil {
				t.Fatalf("handshake %d at %s: failure %v, chains %d", i, h.Address, h.Failure, len(tk.Chains))
			}
			got[h.Address] = tk.Chains[i].Trusted
		}
		want := map[string]bool{wantAddr: true, net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)): false}
		if len(got) != len(want) {
			t.Fatalf("handshakes at %v; want %v", got, want)
		}
		for a, trusted := range want {
			if v, ok := got[a]; !ok || v != trusted {
				t.Errorf("handshake at %s: trusted %v (present %v); want %v", a, v, ok, trusted)
			}
		}
	})
	t.Run("::1 is a bogon without an exemption", func(t *testing.T) {
		// As on a real network: an AAAA answer of ::1 is tampering. The
		// address is still dialled, as a block page's would be, and the
		// chain found there is named in the reason.
		q := v6Prober(t, l, n, loopback4, netip.MustParsePrefix("::1/128"))
		q.Consistency.Exempt = nil
		tk := q.Measure(context.Background(), v6ISCA, 0).TestKeys
		if c := tk.DNSConsistency; tk.Verdict != measurement.VerdictDNSTampering || c == nil || len(c.Bogons) != 1 || c.Bogons[0] != "::1" {
			t.Errorf("verdict %s (%s), consistency %+v; want dns_tampering with bogon ::1", tk.Verdict, tk.VerdictReason, tk.DNSConsistency)
		}
		if !strings.Contains(tk.VerdictReason, "chain leads to") {
			t.Errorf("reason %q does not name the chain found at ::1", tk.VerdictReason)
		}
	})
	t.Run("guard without ::1", func(t *testing.T) {
		before := n.accepted.Load()
		q := v6Prober(t, l, n, loopback4)
		// ::1 still counts as a lab address, not a bogon: only the guard
		// stands between the probe and the server.
		q.Consistency.Exempt = append(q.Consistency.Exempt, netip.MustParsePrefix("::1/128"))
		tk := q.Measure(context.Background(), v6ISCA, 0).TestKeys
		if tk.Verdict != measurement.VerdictError || !strings.Contains(tk.VerdictReason, "outside --allow-net") {
			t.Errorf("verdict %s (%s); want error, outside --allow-net", tk.Verdict, tk.VerdictReason)
		}
		if got := n.accepted.Load() - before; got != 0 {
			t.Errorf("the server on ::1 accepted %d connections; want 0", got)
		}
	})
}
