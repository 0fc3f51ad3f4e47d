package probe_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"kzprobe/control"
	"kzprobe/dnsx"
	"kzprobe/lab"
	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/chain"
	"kzprobe/probe/failure"
	"kzprobe/probe/guard"
)

// startLab starts a lab with sc and returns it with a Prober wired to it the
// way `kzprobe lab` wires one: the lab's resolver, its DoH control, its
// public root as the trust store, its ISCA root as an extra interception
// root, and a guard confined to the lab's /24.
func startLab(t testing.TB, sc lab.Scenario) (*lab.Lab, *probe.Prober) {
	t.Helper()
	l, err := lab.Start(lab.Config{Scenario: sc})
	if err != nil {
		t.Fatalf("starting the lab: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l, labProber(t, l)
}

// labProber is a Prober wired to a running lab, without a control server.
func labProber(t testing.TB, l *lab.Lab) *probe.Prober {
	t.Helper()
	g := guard.New(l.Nets()...)
	dial := g.Dialer(nil)

	trust := x509.NewCertPool()
	trust.AddCert(l.PKI.PublicRoot)
	kb, err := chain.Default()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kb.AddRootsPEM(l.PKI.ISCARootPEM(), "lab"); err != nil {
		t.Fatal(err)
	}
	ctl, err := dnsx.New(l.DoHURL, dnsx.Options{ServerName: l.ControlServerName, RootCAs: trust, Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	p := &probe.Prober{
		Local:      &probe.DNSResolver{Exchanger: dnsx.NewDNSExchanger(l.LocalDNS, dial), Timeout: 2 * time.Second, Retries: 1},
		Control:    &probe.DNSResolver{Exchanger: ctl, Timeout: 2 * time.Second, Retries: 1},
		Connector:  &probe.Connector{Dial: dial, Timeout: 2 * time.Second},
		Handshaker: &probe.Handshaker{Timeout: 2 * time.Second},
		Analyzer:   chain.NewAnalyzer(trust, kb),
		Port:       l.Port,
		// As kzprobe run by default.
		SmallHelloRetry: true,
		Consistency:     probe.ConsistencyOptions{Exempt: g.Prefixes()},
		Timeout:         20 * time.Second,
	}
	return p
}

// withControlServer returns a copy of p that also asks the lab's control
// server, as `kzprobe lab` does.
func withControlServer(t testing.TB, l *lab.Lab, p *probe.Prober) *probe.Prober {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(l.PKI.PublicRoot)
	c, err := control.NewClient(l.ControlServerURL, control.ClientOptions{RootCAs: roots, Dial: guard.New(l.Nets()...).Dialer(nil), Timeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	q := *p
	q.ControlServer = c
	return &q
}

func sha1Hex(der []byte) string {
	s := sha1.Sum(der)
	return hex.EncodeToString(s[:])
}

// TestMeasureEveryLabScenario measures every site of the default scenario
// with the real engine and checks the verdict and the evidence behind it.
func TestMeasureEveryLabScenario(t *testing.T) {
	t.Parallel()
	l, plain := startLab(t, lab.DefaultScenario())
	iscaRoot := sha1Hex(l.PKI.ISCARoot.Raw)
	withControl := withControlServer(t, l, plain)
	for _, site := range l.Scenario.Sites {
		for _, mode := range []string{"no control server", "control server"} {
			p := plain
			if mode == "control server" {
				p = withControl
			}
			t.Run(site.Domain+"/"+mode, func(t *testing.T) {
				t.Parallel()
				measureLabSite(t, l, p, site, iscaRoot)
			})
		}
	}
}

// measureLabSite measures one site and checks the verdict the scenario
// expects and the evidence behind it.
func measureLabSite(t *testing.T, l *lab.Lab, p *probe.Prober, site lab.Site, iscaRoot string) {
	m := p.Measure(context.Background(), site.Domain, 0)
	tk := m.TestKeys
	if string(tk.Verdict) != site.Expect {
		t.Fatalf("verdict = %s (%s); want %s", tk.Verdict, tk.VerdictReason, site.Expect)
	}
	if (tk.Control != nil) != (p.ControlServer != nil) {
		t.Errorf("test_keys.control = %+v with control server %v", tk.Control, p.ControlServer != nil)
	}
	if tk.Control != nil && tk.Control.Failure != nil {
		t.Errorf("control server failed: %s", *tk.Control.Failure)
	}
	if len(tk.Queries) != 2 || len(tk.ControlQueries) != 2 {
		t.Errorf("got %d local and %d control queries; want A and AAAA each", len(tk.Queries), len(tk.ControlQueries))
	}
	switch site.TLS {
	case lab.InterceptISCA, lab.InterceptISCAExpired:
		if site.DNS != lab.DNSTruthful {
			break
		}
		in := tk.Interception
		if in == nil {
			t.Fatal("interception = null; want the lab ISCA root")
		}
		if in.RootSHA1 != iscaRoot || in.Evidence != chain.EvidenceSignature {
			t.Errorf("root %s evidence %s; want %s signature", in.RootSHA1, in.Evidence, iscaRoot)
		}
		wantIM := l.PKI.ISCAIntermediate
		if site.TLS == lab.InterceptISCAExpired {
			wantIM = l.PKI.ISCAExpiredIntermediate
		}
		if len(in.Intermediates) != 1 || in.Intermediates[0].SHA1 != sha1Hex(wantIM.Raw) {
			t.Errorf("intermediates %+v; want one, SHA-1 %s", in.Intermediates, sha1Hex(wantIM.Raw))
		} else if in.Intermediates[0].SignerRootSHA1 != iscaRoot {
			t.Errorf("intermediate signer %s; want %s", in.Intermediates[0].SignerRootSHA1, iscaRoot)
		}
		expired := site.TLS == lab.InterceptISCAExpired
		if in.BrowserErrorEvenWithRootInstalled != expired {
			t.Errorf("browser_error_even_with_root_installed = %v; want %v (%v)", in.BrowserErrorEvenWithRootInstalled, expired, in.BrowserErrorReasons)
		}
		// The recorded chain is exactly what the middlebox serves:
		// compare with a plain crypto/tls client at the same address.
		info, _ := l.Site(site.Domain)
		want := servedChain(t, netip.AddrPortFrom(info.Addr, uint16(l.Port)).String(), site.Domain)
		got := tk.TLSHandshakes[0].PeerCertificates
		if len(got) != len(want) {
			t.Fatalf("recorded %d certificates; the middlebox serves %d", len(got), len(want))
		}
		for i := range want {
			if string(got[i]) != string(want[i]) {
				t.Errorf("certificate %d differs from the one served", i)
			}
		}
	case lab.Pass:
		if site.DNS == lab.DNSTruthful && tk.Interception != nil {
			t.Errorf("interception %+v on a clean site", tk.Interception)
		}
	}
	if site.IPv6 && site.DNS == lab.DNSTruthful {
		// Dual-stack: both addresses dialled, the same behaviour at each.
		var on6 *measurement.TLSHandshake
		for i, h := range tk.TLSHandshakes {
			if strings.HasPrefix(h.Address, "[::1]:") {
				on6 = &tk.TLSHandshakes[i]
			}
		}
		switch {
		case len(tk.TCPConnect) != 2 || on6 == nil:
			t.Errorf("connects %+v, handshakes %+v; want one on 127.x and one on [::1]", tk.TCPConnect, tk.TLSHandshakes)
		case on6.Failure != nil || len(on6.PeerCertificates) != len(tk.TLSHandshakes[0].PeerCertificates):
			t.Errorf("handshake on ::1: failure %v, %d certificates; want the %d of the IPv4 one", on6.Failure, len(on6.PeerCertificates), len(tk.TLSHandshakes[0].PeerCertificates))
		}
		// From outside, ::1 shows the origin's chain too.
		if tk.Control != nil {
			if e := tk.Control.Endpoint(netip.IPv6Loopback()); !e.Trusted() {
				t.Errorf("control endpoint at ::1: %+v; want the origin's trusted chain", e)
			}
		}
	}
	if site.DNS == lab.DNSBogon && (tk.DNSConsistency == nil || tk.DNSConsistency.Reason != measurement.ReasonBogon) {
		t.Errorf("dns_consistency = %+v; want reason bogon", tk.DNSConsistency)
	}
}

// servedChain hand-shakes with crypto/tls and returns the raw chain.
func servedChain(t *testing.T, addr, sni string) [][]byte {
	t.Helper()
	d := &net.Dialer{Timeout: 2 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("crypto/tls to %s: %v", addr, err)
	}
	defer c.Close()
	var out [][]byte
	for _, cert := range c.ConnectionState().PeerCertificates {
		out = append(out, cert.Raw)
	}
	return out
}

// TestRunnerWritesEveryTarget streams targets through a Runner and reads
// the JSONL back.
func TestRunnerWritesEveryTarget(t *testing.T) {
	t.Parallel()
	l, p := startLab(t, lab.DefaultScenario())
	var buf safeBuffer
	w := measurement.NewWriter(&buf, -1)
	in := make(chan probe.Input)
	go func() {
		defer close(in)
		for _, s := range l.Scenario.Sites {
			in <- probe.Input{Domain: s.Domain}
		}
	}()
	r := &probe.Runner{Prober: p, Parallel: 4, Writer: w}
	st, err := r.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if st.Written != len(l.Scenario.Sites) {
		t.Errorf("written %d; want %d", st.Written, len(l.Scenario.Sites))
	}
	got := map[string]string{}
	if _, err := measurement.ReadJSONL(&buf, func(m *measurement.Measurement) error {
		got[m.Input] = string(m.TestKeys.Verdict)
		if m.TestName != measurement.TestName || m.ProbeASN != "AS0" || m.ProbeCC != "ZZ" {
			t.Errorf("%s: envelope %s %s %s", m.Input, m.TestName, m.ProbeASN, m.ProbeCC)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Scenario.Sites {
		input := s.Domain
		if l.Port != 443 {
			input = net.JoinHostPort(s.Domain, strconv.Itoa(l.Port))
		}
		if got[input] != s.Expect {
			t.Errorf("%s: verdict %q; want %q", input, got[input], s.Expect)
		}
	}
}

// TestRunnerStopsOnCancel cancels a run whose targets all blackhole and
// checks it returns promptly without writing incomplete records.
func TestRunnerStopsOnCancel(t *testing.T) {
	t.Parallel()
	sc := lab.Scenario{Name: "blackholes"}
	for i := range 20 {
		sc.Sites = append(sc.Sites, lab.Site{Domain: "bh-" + strconv.Itoa(i) + ".example", TLS: lab.Blackhole})
	}
	l, p := startLab(t, sc)
	p.Handshaker = &probe.Handshaker{Timeout: time.Minute}
	var buf safeBuffer
	in := make(chan probe.Input, len(sc.Sites))
	for _, s := range l.Scenario.Sites {
		in <- probe.Input{Domain: s.Domain}
	}
	close(in)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	done := make(chan struct{})
	var st probe.Stats
	var err error
	go func() {
		st, err = (&probe.Runner{Prober: p, Parallel: 4, Writer: measurement.NewWriter(&buf, -1)}).Run(ctx, in)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of the cancel")
	}
	if err != context.Canceled {
		t.Errorf("Run error = %v; want context.Canceled", err)
	}
	if st.Written != 0 || buf.Len() != 0 || st.Interrupted != 4 {
		t.Errorf("stats %+v, %d bytes written; want nothing written and 4 interrupted", st, buf.Len())
	}
}

// TestControlServerConfirmsInterception measures an intercepted domain with
// the lab's control server: from outside the middlebox the server is
// served the origin's valid chain at the very address where the probe is
// served an ISCA chain, and the verdict says both.
func TestControlServerConfirmsInterception(t *testing.T) {
	t.Parallel()
	l, p := startLab(t, lab.DefaultScenario())
	p = withControlServer(t, l, p)
	site, _ := l.Site("rutracker.org")
	m := p.Measure(context.Background(), site.Domain, 0)
	tk := m.TestKeys
	if tk.Verdict != measurement.VerdictMITMISCA {
		t.Fatalf("verdict %s (%s); want %s", tk.Verdict, tk.VerdictReason, measurement.VerdictMITMISCA)
	}
	for _, want := range []string{"chain leads to " + lab.ISCACommonName, "control saw a trusted chain at the same address"} {
		if !strings.Contains(tk.VerdictReason, want) {
			t.Errorf("reason %q does not say %q", tk.VerdictReason, want)
		}
	}
	// The probe's view: the ISCA chain.
	if tk.Interception == nil || tk.Interception.RootSHA1 != sha1Hex(l.PKI.ISCARoot.Raw) {
		t.Fatalf("interception %+v; want the lab ISCA root", tk.Interception)
	}
	// The control's view, at the same address: the origin's chain, trusted.
	c := tk.Control
	if c == nil || c.Failure != nil || c.Response == nil {
		t.Fatalf("test_keys.control = %+v; want a response", c)
	}
	if c.Server != l.ControlServerURL || fmt.Sprint(c.Addresses) != "["+site.Addr.String()+"]" {
		t.Errorf("asked %s about %v; want %s about [%s]", c.Server, c.Addresses, l.ControlServerURL, site.Addr)
	}
	e := c.Endpoint(site.Addr)
	if !e.Trusted() || e.Chain.Interception != nil {
		t.Fatalf("control endpoint %+v; want a trusted chain without interception", e)
	}
	got := e.TLSHandshake.PeerCertificates
	if len(got) != 2 || !bytes.Equal(got[1], l.PKI.PublicIntermediate.Raw) {
		t.Errorf("control chain of %d certificates; want the origin's leaf and the public intermediate", len(got))
	}
	if bytes.Equal(got[0], tk.TLSHandshakes[0].PeerCertificates[0]) {
		t.Error("the control was served the probe's (forged) leaf")
	}
	if !slices.Contains(e.Sources, measurement.ControlSourceClient) || !slices.Contains(e.Sources, measurement.ControlSourceDNS) {
		t.Errorf("sources %v; want client and dns", e.Sources)
	}
	// The address the server saw is the probe's: not written unless the
	// user opted in.
	if c.Response.ClientAddress != "" {
		t.Errorf("client_address %q recorded without opt-in", c.Response.ClientAddress)
	}
	optIn := *p
	optIn.Envelope.ProbeIP = "127.0.0.1"
	if r := optIn.Measure(context.Background(), site.Domain, 0).TestKeys.Control; r == nil || r.Response == nil || !strings.HasPrefix(r.Response.ClientAddress, "127.") {
		t.Errorf("with opt-in, test_keys.control = %+v; want the client address", r)
	}
	// test_keys.control survives the JSONL round trip.
	var buf safeBuffer
	w := measurement.NewWriter(&buf, -1)
	if err := w.Write(m); err != nil {
		t.Fatal(err)
	}
	w.Close()
	st, err := measurement.ReadJSONL(&buf, func(back *measurement.Measurement) error {
		if back.TestKeys.Control == nil || !back.TestKeys.Control.Endpoint(site.Addr).Trusted() {
			t.Errorf("read back test_keys.control = %+v", back.TestKeys.Control)
		}
		if v, _ := probe.Classify(back); v != measurement.VerdictMITMISCA {
			t.Errorf("reclassified %s", v)
		}
		return nil
	})
	if err != nil || st.Lines != 1 || st.Bad != 0 {
		t.Fatalf("read %+v: %v", st, err)
	}
}

// TestControlServerGetsGlobalUnicastOnly measures a site through a local
// resolver of a DNS64 network that also answers the block page: its A
// answers are the site's address and 10.10.34.34, its AAAA answers the
// NAT64 and 6to4 forms of 10.10.34.34. The control server refused the
// whole request for them (403) and the outside view was lost; now only the
// site's address is submitted, the server answers, and the record names
// the others with their reasons.
func TestControlServerGetsGlobalUnicastOnly(t *testing.T) {
	t.Parallel()
	l, p := startLab(t, lab.DefaultScenario())
	p = withControlServer(t, l, p)
	site, _ := l.Site("clean-1.example")
	bogon := netip.MustParseAddr(lab.BogonAddr)
	transition := []netip.Addr{netip.MustParseAddr("64:ff9b::a0a:2222"), netip.MustParseAddr("2002:a0a:2222::1")}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 60}
		switch q.Qtype {
		case dns.TypeA:
			for _, a := range []netip.Addr{site.Addr, bogon} {
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
			}
		case dns.TypeAAAA:
			for _, a := range transition {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
			}
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	// The guard of the connects stays the lab's: the probe's own connects
	// to the bogon and the transition addresses are refused before any
	// packet.
	q := *p
	dnsAddr := netip.MustParseAddrPort(pc.LocalAddr().String())
	q.Local = &probe.DNSResolver{Exchanger: dnsx.NewDNSExchanger(dnsAddr.String(), guard.New(netip.PrefixFrom(dnsAddr.Addr(), 32)).Dialer(nil)), Timeout: 2 * time.Second, Retries: 1}

	tk := q.Measure(context.Background(), site.Domain, 0).TestKeys
	c := tk.Control
	if c == nil || c.Failure != nil || c.StatusCode != 200 || c.Response == nil {
		t.Fatalf("test_keys.control = %+v; want an answer", c)
	}
	if fmt.Sprint(c.Addresses) != "["+site.Addr.String()+"]" {
		t.Errorf("submitted %v; want [%s]", c.Addresses, site.Addr)
	}
	want := []measurement.ControlNotChecked{
		{Address: bogon.String(), Reason: measurement.NotCheckedSpecialPurpose},
		{Address: transition[0].String(), Reason: measurement.NotCheckedIPv6Transition},
		{Address: transition[1].String(), Reason: measurement.NotCheckedIPv6Transition},
	}
	if !slices.Equal(c.NotChecked, want) {
		t.Errorf("not checked %v; want %v", c.NotChecked, want)
	}
	if !c.Endpoint(site.Addr).Trusted() {
		t.Errorf("control endpoint %+v; want a trusted chain", c.Endpoint(site.Addr))
	}
}

// TestControlServerShowsBlockpage measures a domain whose local answer is
// the block page: the control server, asked about that address, is served
// a chain that is not valid for the domain.
func TestControlServerShowsBlockpage(t *testing.T) {
	t.Parallel()
	l, p := startLab(t, lab.DefaultScenario())
	p = withControlServer(t, l, p)
	m := p.Measure(context.Background(), "dns-blockpage.example", 0)
	tk := m.TestKeys
	if tk.Verdict != measurement.VerdictDNSTampering {
		t.Fatalf("verdict %s (%s); want %s", tk.Verdict, tk.VerdictReason, measurement.VerdictDNSTampering)
	}
	if c := tk.DNSConsistency; c.Status != measurement.Inconsistent || c.Reason != measurement.ReasonNoIntersection {
		t.Errorf("dns_consistency %s %s; want inconsistent, no_intersection (not %s)", c.Status, c.Reason, measurement.ReasonIPValidFromControl)
	}
	e := tk.Control.Endpoint(l.BlockpageAddr)
	if e == nil || e.Chain == nil || e.Chain.Trusted || e.Chain.TrustFailure == nil || *e.Chain.TrustFailure != failure.SSLInvalidHostname {
		t.Fatalf("control endpoint at the block page %+v; want an untrusted chain, %s", e, failure.SSLInvalidHostname)
	}
	if !strings.Contains(tk.VerdictReason, "untrusted chain at the local address "+l.BlockpageAddr.String()+" ("+failure.SSLInvalidHostname+")") {
		t.Errorf("reason %q does not cite the control's view of the block page", tk.VerdictReason)
	}
}

// TestRepeatedChainJudgedOnce hand-shakes with one intercepted and one
// clean site with three fingerprints each: every handshake of a site gets
// the same chain, which is judged once and recorded for each, and the
// judgement is the one a fresh analysis gives.
func TestRepeatedChainJudgedOnce(t *testing.T) {
	t.Parallel()
	sc := lab.Scenario{Sites: []lab.Site{
		{Domain: "isca.example", TLS: lab.InterceptISCA, Expect: "mitm_isca"},
		{Domain: "clean.example", TLS: lab.Pass, Expect: "ok"},
	}}
	_, p := startLab(t, sc)
	p.Fingerprints = []string{"chrome", "firefox", probe.FingerprintGolang}
	for _, site := range sc.Sites {
		m := p.Measure(context.Background(), site.Domain, 0)
		tk := m.TestKeys
		if string(tk.Verdict) != site.Expect {
			t.Fatalf("%s: verdict %s (%s); want %s", site.Domain, tk.Verdict, tk.VerdictReason, site.Expect)
		}
		if len(tk.Chains) != 3 || len(tk.TLSHandshakes) != 3 {
			t.Fatalf("%s: %d chains for %d handshakes; want 3", site.Domain, len(tk.Chains), len(tk.TLSHandshakes))
		}
		der := make([][]byte, len(tk.TLSHandshakes[0].PeerCertificates))
		for i, c := range tk.TLSHandshakes[0].PeerCertificates {
			der[i] = c
		}
		fresh, _ := json.Marshal(p.Analyzer.Judge(der, site.Domain, time.Now()))
		for i, j := range tk.Chains {
			if j != tk.Chains[0] {
				t.Errorf("%s: chains[%d] was judged again", site.Domain, i)
			}
			if got, _ := json.Marshal(j); !bytes.Equal(got, fresh) {
				t.Errorf("%s: chains[%d] = %s\nwant %s", site.Domain, i, got, fresh)
			}
		}
	}
}

// TestRunnerLeavesNoGoroutines runs the default scenario once to open the
// connections that are kept (the DoH control's), then three times more,
// and checks that every goroutine started during those three runs ends:
// none stays behind per target, in the probe or in the lab it talks to.
// The goroutines are told apart by ID, so no sleep has to guess when the
// first run's connections are closed: whatever existed after it is left
// alone, and the test waits (10 s at most) for the new ones to end. It is
// not parallel: another test's goroutines would count as new.
func TestRunnerLeavesNoGoroutines(t *testing.T) {
	l, p := startLab(t, lab.DefaultScenario())
	run := func(rounds int) {
		in := make(chan probe.Input)
		go func() {
			defer close(in)
			for range rounds {
				for _, s := range l.Scenario.Sites {
					in <- probe.Input{Domain: s.Domain}
				}
			}
		}()
		r := &probe.Runner{Prober: p, Parallel: 8, Writer: measurement.NewWriter(io.Discard, -1)}
		st, err := r.Run(context.Background(), in)
		if err != nil || st.Written != rounds*len(l.Scenario.Sites) {
			t.Fatalf("run: %d written, %v", st.Written, err)
		}
	}
	run(1)
	kept := goroutines()
	run(3)
	var left map[int]string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left = goroutines()
		for id := range kept {
			delete(left, id)
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) > 0 {
		var stacks []string
		for _, s := range left {
			stacks = append(stacks, s)
		}
		t.Fatalf("%d goroutines started during %d targets are still running after 10 s:\n%s",
			len(left), 3*len(l.Scenario.Sites), strings.Join(stacks, "\n\n"))
	}
}

// goroutines returns the stack of every goroutine of the process, by ID.
func goroutines() map[int]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[int]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		// "goroutine 123 [running]:\n..."
		f := strings.Fields(g)
		if len(f) < 2 || f[0] != "goroutine" {
			continue
		}
		if id, err := strconv.Atoi(f[1]); err == nil {
			out[id] = g
		}
	}
	return out
}

// TestSmallHelloRetry measures, on the lab, a middlebox that reads the
// name from the first KiB of a hello only, a reset, and a blackhole: the
// retry finds the interception behind the first, is recorded and fails on
// the second, is not tried on the third (a timeout), and is not made when
// turned off or when the small fingerprint is configured anyway.
func TestSmallHelloRetry(t *testing.T) {
	t.Parallel()
	sc := lab.Scenario{Sites: []lab.Site{
		{Domain: "peek.example", TLS: lab.InterceptISCASNIPeek},
		{Domain: "reset.example", TLS: lab.Reset},
		{Domain: "blackhole.example", TLS: lab.Blackhole},
	}}
	l, p := startLab(t, sc)
	iscaRoot := sha1Hex(l.PKI.ISCARoot.Raw)
	off := *p
	off.SmallHelloRetry = false
	both := *p
	both.Fingerprints = []string{"chrome", probe.FingerprintSmall}
	for _, tc := range []struct {
		name, domain string
		p            *probe.Prober
		want         measurement.Verdict
		fps          []string // fingerprints of the handshakes, in order
		retried      bool     // the last handshake is the retry
	}{
		{"peek", "peek.example", p, measurement.VerdictMITMISCA, []string{"chrome", "small"}, true},
		{"peek, retry off", "peek.example", &off, measurement.VerdictTLSBlocking, []string{"chrome"}, false},
		{"peek, small configured", "peek.example", &both, measurement.VerdictMITMISCA, []string{"chrome", "small"}, false},
		{"reset", "reset.example", p, measurement.VerdictTLSBlocking, []string{"chrome", "small"}, true},
		{"blackhole", "blackhole.example", p, measurement.VerdictTLSBlocking, []string{"chrome"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := tc.p.Measure(context.Background(), tc.domain, 0)
			tk := m.TestKeys
			if tk.Verdict != tc.want {
				t.Errorf("verdict %s (%s); want %s", tk.Verdict, tk.VerdictReason, tc.want)
			}
			var fps []string
			for i, h := range tk.TLSHandshakes {
				fps = append(fps, h.Fingerprint)
				if last := i == len(tk.TLSHandshakes)-1; h.SmallHelloRetry != (last && tc.retried) {
					t.Errorf("handshake %d (%s): small_hello_retry %v", i, h.Fingerprint, h.SmallHelloRetry)
				}
			}
			if !slices.Equal(fps, tc.fps) || len(tk.TCPConnect) != len(tc.fps) || len(tk.Chains) != len(tc.fps) {
				t.Fatalf("handshakes %v, %d connects, %d chains; want %v", fps, len(tk.TCPConnect), len(tk.Chains), tc.fps)
			}
			if tc.want == measurement.VerdictMITMISCA {
				if tk.Interception == nil || tk.Interception.RootSHA1 != iscaRoot {
					t.Errorf("interception %+v; want the lab ISCA root %s", tk.Interception, iscaRoot)
				}
				last := tk.TLSHandshakes[len(tk.TLSHandshakes)-1]
				if last.Failure != nil || len(last.PeerCertificates) != 2 {
					t.Errorf("small hello: failure %v, %d certificates; want the forged chain", failureOf(last.Failure), len(last.PeerCertificates))
				}
			}
			if tc.retried && tc.want == measurement.VerdictMITMISCA && !strings.Contains(tk.VerdictReason, "small ClientHello") {
				t.Errorf("reason %q does not say the small hello found it", tk.VerdictReason)
			}
		})
	}
}

// BenchmarkMeasure measures whole targets against the lab in this process:
// local and DoH control DNS, TCP, a uTLS Chrome handshake with an ISCA
// interception, chain analysis and the verdict. The time and allocations
// include the lab's side (its DNS answers and its forging handshake).
func BenchmarkMeasure(b *testing.B) {
	sc := lab.Scenario{Sites: []lab.Site{{Domain: "isca.example", TLS: lab.InterceptISCA}}}
	_, p := startLab(b, sc)
	if m := p.Measure(context.Background(), "isca.example", 0); m.TestKeys.Verdict != measurement.VerdictMITMISCA {
		b.Fatalf("verdict %s (%s)", m.TestKeys.Verdict, m.TestKeys.VerdictReason)
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Measure(context.Background(), "isca.example", 0)
	}
}

// withRefusedFirstControl makes p's control resolver ask one the guard
// refuses first (udp://127.0.0.1:9, outside the lab's networks), then the
// lab's DoH: two tries, timed by the fallback exchanger.
func withRefusedFirstControl(t *testing.T, l *lab.Lab, p *probe.Prober) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(l.PKI.PublicRoot)
	ctl, err := dnsx.NewWithFallbacks([]dnsx.Spec{{URL: "udp://127.0.0.1:9"}, {URL: l.DoHURL, ServerName: l.ControlServerName}},
		dnsx.Options{RootCAs: roots, Dial: guard.New(l.Nets()...).Dialer(nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	p.Control = &probe.DNSResolver{Exchanger: ctl, Timeout: 2 * time.Second, Retries: 1}
}

// TestPinnedClock measures a site of the lab, with its control server and
// a control resolver with a fallback, on a clock set half an hour back:
// measurement_start_time is that clock's, and every t0 and t, of the
// lookups and each resolver they asked, the connects, the handshakes and
// the control report, is read on it too, so each lies within test_runtime.
// Before the records' times came from time.Since, every t0 was the half
// hour between the clocks (1800 s) and more than test_runtime.
func TestPinnedClock(t *testing.T) {
	t.Parallel()
	l, p := startLab(t, lab.DefaultScenario())
	p = withControlServer(t, l, p)
	withRefusedFirstControl(t, l, p)
	realStart := time.Now()
	base := realStart.Add(-30 * time.Minute).Truncate(time.Second)
	p.Now = func() time.Time { return base.Add(time.Since(realStart)) }
	site, _ := l.Site("rutracker.org")

	m := p.Measure(context.Background(), site.Domain, 0)
	elapsed := time.Since(realStart).Seconds()
	if want := measurement.FormatTime(base); m.MeasurementStartTime != want {
		t.Errorf("measurement_start_time %s; want the pinned clock's %s", m.MeasurementStartTime, want)
	}
	if m.TestRuntime <= 0 || m.TestRuntime > elapsed {
		t.Fatalf("test_runtime %v; want in (0, %v]", m.TestRuntime, elapsed)
	}
	tk := m.TestKeys
	if tk.Verdict != measurement.VerdictMITMISCA {
		t.Errorf("verdict %s (%s); want %s", tk.Verdict, tk.VerdictReason, measurement.VerdictMITMISCA)
	}
	type span struct {
		what  string
		t0, t float64
	}
	var spans []span
	addQueries := func(what string, qs []measurement.DNSQuery) {
		for _, q := range qs {
			spans = append(spans, span{what + " " + q.QueryType, q.T0, q.T})
			for _, tr := range q.Tries {
				spans = append(spans, span{what + " " + q.QueryType + " try " + tr.ResolverAddress, tr.T0, tr.T})
			}
		}
	}
	addQueries("queries", tk.Queries)
	addQueries("control_queries", tk.ControlQueries)
	for _, c := range tk.TCPConnect {
		spans = append(spans, span{"tcp_connect " + c.IP, c.T0, c.T})
	}
	for _, h := range tk.TLSHandshakes {
		spans = append(spans, span{"tls_handshakes " + h.Fingerprint, h.T0, h.T})
	}
	if c := tk.Control; c != nil {
		spans = append(spans, span{"control", c.T0, c.T})
	}
	fellBack := slices.ContainsFunc(tk.ControlQueries, func(q measurement.DNSQuery) bool { return len(q.Tries) == 2 })
	if len(tk.Queries) == 0 || !fellBack || len(tk.TCPConnect) == 0 || len(tk.TLSHandshakes) == 0 || tk.Control == nil {
		t.Fatalf("want every step recorded; got %d queries, control queries %+v, %d connects, %d handshakes, control %v",
			len(tk.Queries), tk.ControlQueries, len(tk.TCPConnect), len(tk.TLSHandshakes), tk.Control)
	}
	for _, s := range spans {
		if s.t0 < 0 || s.t0 > s.t || s.t > m.TestRuntime {
			t.Errorf("%s: t0 = %v, t = %v; want 0 <= t0 <= t <= test_runtime %v", s.what, s.t0, s.t, m.TestRuntime)
		}
	}
}

// TestOnStep measures a site behind an SNI-peeking middlebox (a refused
// hello, then the small-hello retry), with the lab's control server and a
// control resolver with a fallback, and checks what OnStep was told: each
// network step started before it ended, every record of the measurement
// was told once as it ended (each query, each resolver of the fallback,
// each connect and handshake, the control server's report, the
// consistency, each chain) and the verdict rule, all within the
// measurement's time.
func TestOnStep(t *testing.T) {
	t.Parallel()
	sc := lab.Scenario{Sites: []lab.Site{{Domain: "peek.example", TLS: lab.InterceptISCASNIPeek}}}
	l, p := startLab(t, sc)
	p = withControlServer(t, l, p)
	withRefusedFirstControl(t, l, p)
	var (
		mu    sync.Mutex
		steps []probe.Step
	)
	p.OnStep = func(s probe.Step) {
		mu.Lock()
		steps = append(steps, s)
		mu.Unlock()
	}
	m := p.Measure(context.Background(), "peek.example", 0)
	tk := m.TestKeys
	if tk.Verdict != measurement.VerdictMITMISCA || len(tk.TLSHandshakes) != 2 {
		t.Fatalf("verdict %s (%s), %d handshakes; want mitm_isca after the small-hello retry", tk.Verdict, tk.VerdictReason, len(tk.TLSHandshakes))
	}

	// key names a step's subject, so that its start and end pair up.
	key := func(s probe.Step) string {
		switch {
		case s.Query != nil && s.Try != nil:
			return s.Side + " " + s.Query.QueryType + " try " + s.Try.ResolverAddress
		case s.Query != nil:
			return s.Side + " " + s.Query.QueryType
		case s.Connect != nil:
			return fmt.Sprintf("%s:%d", s.Connect.IP, s.Connect.Port)
		case s.Handshake != nil:
			return s.Handshake.Address + " " + s.Handshake.Fingerprint
		}
		return ""
	}
	started := map[string]int{}
	done := map[probe.StepKind][]probe.Step{}
	for _, s := range steps {
		if s.Target != m.Input {
			t.Errorf("%s step of target %q; want %q", s.Kind, s.Target, m.Input)
		}
		if s.T < 0 || s.T > m.TestRuntime {
			t.Errorf("%s step %q at %v; want within [0, test_runtime %v]", s.Kind, key(s), s.T, m.TestRuntime)
		}
		k := string(s.Kind) + " " + key(s)
		if !s.Done {
			started[k]++
			continue
		}
		switch s.Kind {
		case probe.StepDNS, probe.StepConnect, probe.StepHandshake, probe.StepControlServer:
			if started[k] == 0 {
				t.Errorf("%s ended before it started", k)
			}
			started[k]--
		}
		done[s.Kind] = append(done[s.Kind], s)
	}
	for k, n := range started {
		if n != 0 {
			t.Errorf("%s: %d starts without an end", k, n)
		}
	}

	var tries int
	for _, q := range append(append([]measurement.DNSQuery{}, tk.Queries...), tk.ControlQueries...) {
		if len(q.Tries) > 1 {
			tries += len(q.Tries)
		}
	}
	if tries == 0 {
		t.Fatalf("no query asked more than one resolver; want the control's fallback: %+v", tk.ControlQueries)
	}
	chains := 0
	for _, j := range tk.Chains {
		if j != nil {
			chains++
		}
	}
	for _, c := range []struct {
		kind probe.StepKind
		want int
	}{
		{probe.StepDNS, len(tk.Queries) + len(tk.ControlQueries)},
		{probe.StepDNSTry, tries},
		{probe.StepConnect, len(tk.TCPConnect)},
		{probe.StepHandshake, len(tk.TLSHandshakes)},
		{probe.StepControlServer, 1},
		{probe.StepConsistency, 1},
		{probe.StepChain, chains},
		{probe.StepVerdict, 1},
	} {
		if got := len(done[c.kind]); got != c.want {
			t.Errorf("%d %s steps ended; want %d", got, c.kind, c.want)
		}
	}
	for _, s := range done[probe.StepHandshake] {
		i := slices.IndexFunc(tk.TLSHandshakes, func(h measurement.TLSHandshake) bool { return h.Fingerprint == s.Handshake.Fingerprint })
		if i < 0 || s.Handshake.T != tk.TLSHandshakes[i].T || s.Handshake.SmallHelloRetry != tk.TLSHandshakes[i].SmallHelloRetry {
			t.Errorf("handshake step %+v; not as recorded", s.Handshake)
		}
	}
	if v := done[probe.StepVerdict]; len(v) == 1 && (v[0].Decision.Verdict != tk.Verdict || v[0].Decision.Reason != tk.VerdictReason) {
		t.Errorf("verdict step %+v; want %s (%s)", v[0].Decision, tk.Verdict, tk.VerdictReason)
	}
	if c := done[probe.StepControlServer]; len(c) == 1 && (c[0].Control == nil || c[0].Control.T != tk.Control.T) {
		t.Errorf("control server step %+v; want the recorded report", c[0].Control)
	}
}
