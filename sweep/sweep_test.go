package sweep_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kzprobe/lab"
	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/chain"
	"kzprobe/probe/guard"
	"kzprobe/sweep"
)

// startLab starts the default lab and closes it at cleanup.
func startLab(t testing.TB) *lab.Lab {
	t.Helper()
	l, err := lab.Start(lab.Config{})
	if err != nil {
		t.Fatalf("starting the lab: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// newSweeper is a Sweeper wired to the lab: its guard, its roots, its ISCA
// root known, short timeouts, no rate limit.
func newSweeper(t testing.TB, l *lab.Lab, ep sweep.Endpoint, w *measurement.Writer) *sweep.Sweeper {
	t.Helper()
	trust := x509.NewCertPool()
	trust.AddCert(l.PKI.PublicRoot)
	kb, err := chain.Default()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kb.AddRootsPEM(l.PKI.ISCARootPEM(), "lab"); err != nil {
		t.Fatal(err)
	}
	dial := guard.New(l.Nets()...).Dialer(nil)
	return &sweep.Sweeper{
		Endpoint:     ep,
		Connector:    &probe.Connector{Dial: dial, Timeout: time.Second},
		Handshaker:   &probe.Handshaker{Timeout: time.Second},
		Analyzer:     chain.NewAnalyzer(trust, kb),
		ControlEvery: 5,
		Rate:         -1,
		Parallel:     8,
		Writer:       w,
	}
}

// feed sends names on a channel it closes.
func feed(names ...string) <-chan probe.Input {
	ch := make(chan probe.Input, len(names))
	for _, n := range names {
		ch <- probe.Input{Domain: n}
	}
	close(ch)
	return ch
}

// run sweeps names and returns the records by name, and Run's error.
func run(t *testing.T, s *sweep.Sweeper, buf *bytes.Buffer, names ...string) (map[string]*measurement.Measurement, sweep.Stats, error) {
	t.Helper()
	var mu sync.Mutex
	var order []string
	s.OnResult = func(m *measurement.Measurement) {
		mu.Lock()
		order = append(order, m.Input)
		mu.Unlock()
	}
	stats, err := s.Run(context.Background(), feed(names...))
	if err := s.Writer.Close(); err != nil {
		t.Fatal(err)
	}
	got := map[string]*measurement.Measurement{}
	if _, rerr := measurement.ReadJSONL(buf, func(m *measurement.Measurement) error {
		got[m.TestKeys.Domain] = m
		return nil
	}); rerr != nil {
		t.Fatal(rerr)
	}
	if len(got) != stats.Written || len(order) != stats.Written {
		t.Errorf("%d records read, %d results seen; Stats.Written %d", len(got), len(order), stats.Written)
	}
	return got, stats, err
}

// TestSweepLab sweeps every name of the default scenario through the
// lab's middlebox to its neutral endpoint, with a browser's hello and with
// the tls12 certificate-only hello: each name gets the verdict its TLS
// behaviour says (lab.ExpectedSweepVerdict; the small tls12 hello gets
// through the SNI-peeking middlebox, which intercepts it), and the records
// say why.
func TestSweepLab(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	for _, hello := range []struct {
		name  string
		small bool
	}{{"chrome", false}, {probe.HelloTLS12, true}} {
		t.Run(hello.name, func(t *testing.T) {
			t.Parallel()
			sweepLab(t, l, hello.name, hello.small)
		})
	}
}

func sweepLab(t *testing.T, l *lab.Lab, hello string, small bool) {
	var buf bytes.Buffer
	s := newSweeper(t, l, sweep.Endpoint{Addr: l.SNIEndpointAddr, Pin: l.SNIEndpointPin, PinSource: sweep.PinFromFlag}, measurement.NewWriter(&buf, -1))
	s.Fingerprint = hello
	want := map[string]string{}
	var names []string
	for _, site := range l.Sites() {
		if v := lab.ExpectedSweepVerdict(site.TLS, small); v != "" {
			want[site.Domain] = v
			names = append(names, site.Domain)
		}
	}
	got, stats, err := run(t, s, &buf, names...)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	seen := map[measurement.Verdict]bool{}
	for _, name := range names {
		m := got[name]
		if m == nil {
			t.Errorf("%s: no record", name)
			continue
		}
		tk := m.TestKeys
		seen[tk.Verdict] = true
		if string(tk.Verdict) != want[name] {
			t.Errorf("%s: verdict %s (%s); want %s", name, tk.Verdict, tk.VerdictReason, want[name])
		}
		if m.TestName != measurement.SweepTestName || tk.SNISweep == nil {
			t.Fatalf("%s: test_name %q, sni_sweep %v; want a sweep record", name, m.TestName, tk.SNISweep)
		}
		sw := tk.SNISweep
		if sw.EndpointPin != l.SNIEndpointPin.String() || sw.Endpoint != l.SNIEndpointAddr.String() {
			t.Errorf("%s: endpoint %s pin %s; want %s %s", name, sw.Endpoint, sw.EndpointPin, l.SNIEndpointAddr, l.SNIEndpointPin)
		}
		// A name that failed before any certificate gets a second try
		// once the control answered.
		tries := 1
		if want[name] == lab.SweepVerdictBlocked {
			tries = 2
		}
		if len(tk.TLSHandshakes) != tries || len(tk.TCPConnect) != tries || sw.Hello != hello {
			t.Errorf("%s: %d connects, %d handshakes, hello %q; want %d of each and the hello %s", name, len(tk.TCPConnect), len(tk.TLSHandshakes), sw.Hello, tries, hello)
		}
		for _, h := range tk.TLSHandshakes {
			if h.ServerName != name || h.Fingerprint != hello {
				t.Errorf("%s: a handshake with SNI %q and hello %q; want the name and %s", name, h.ServerName, h.Fingerprint, hello)
			}
		}
		switch tk.Verdict {
		case measurement.VerdictClean:
			if sw.Control != nil {
				t.Errorf("%s: a clean name got a confirming control", name)
			}
		case measurement.VerdictSNIInterceptedISCA:
			in := tk.Interception
			if in == nil || in.RootName != lab.ISCACommonName || len(in.Intermediates) == 0 {
				t.Errorf("%s: interception %+v; want the lab's ISCA root and its intermediate", name, in)
			}
			expired := site(l, name).TLS == lab.InterceptISCAExpired
			if in != nil && in.BrowserErrorEvenWithRootInstalled != expired {
				t.Errorf("%s: browser error even with the root installed %v; want %v", name, in.BrowserErrorEvenWithRootInstalled, expired)
			}
			fallthrough
		default:
			if sw.Control == nil || !sw.Control.OK {
				t.Errorf("%s: %s without a control that confirmed the endpoint after it: %+v", name, tk.Verdict, sw.Control)
			}
		}
	}
	for _, v := range []measurement.Verdict{measurement.VerdictClean, measurement.VerdictSNIInterceptedISCA, measurement.VerdictSNIInterceptedOther, measurement.VerdictSNIBlocked} {
		if !seen[v] {
			t.Errorf("no name got %s", v)
		}
	}
	if stats.Controls < 1+len(names)/5 {
		t.Errorf("%d controls for %d names, every 5; want at least %d", stats.Controls, len(names), 1+len(names)/5)
	}
}

func site(l *lab.Lab, name string) lab.SiteInfo {
	s, _ := l.Site(name)
	return s
}

// TestSweepEndpointFails: a dead endpoint, one whose address the network
// resets, and a pin that is not the endpoint's each stop the sweep before
// any name, with an error that says which, and never yield a finding.
func TestSweepEndpointFails(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	wrong := chain.Pin(sha256.Sum256([]byte("not the endpoint's key")))
	cases := []struct {
		name string
		ep   sweep.Endpoint
		want string
	}{
		{"dead endpoint", sweep.Endpoint{Addr: l.SNIDeadAddr, Pin: l.SNIEndpointPin}, "TCP connect connection_refused: the endpoint is down"},
		{"blocked endpoint", sweep.Endpoint{Addr: l.SNIBlockedAddr, Pin: l.SNIEndpointPin}, "connection_reset: the endpoint's address is blocked"},
		{"pin mismatch", sweep.Endpoint{Addr: l.SNIEndpointAddr, Pin: wrong}, "pin mismatch: it presented a certificate with the key " + l.SNIEndpointPin.String()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			s := newSweeper(t, l, tc.ep, measurement.NewWriter(&buf, -1))
			got, _, err := run(t, s, &buf, "rutracker.org", "clean-1.example", "corp-proxy.example", "tls-reset.example")
			var ee *sweep.EndpointError
			if !errors.As(err, &ee) || !errors.Is(err, sweep.ErrEndpoint) {
				t.Fatalf("Run: %v; want an *EndpointError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q; want it to say %q", err, tc.want)
			}
			if len(got) != 0 {
				t.Errorf("%d records; want none: the first control failed", len(got))
			}
		})
	}
}

// TestSweepWrongPinNeverIntercepts is the regression guard against a
// wrong pin read as interception: pinned to the key of the middlebox's
// forged leaf, every name the middlebox intercepts would "match" and every
// other name would look intercepted by the endpoint's own certificate.
// The control SNI gets the endpoint's own key, which is not the pin, so
// the sweep stops with ErrEndpoint and no record says intercepted or
// blocked.
func TestSweepWrongPinNeverIntercepts(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	// A pin equal to the key of the middlebox's forged leaves: every
	// forged chain "matches", the endpoint's own does not.
	forged, err := l.PKI.Forge("rutracker.org", lab.InterceptISCA)
	if err != nil {
		t.Fatal(err)
	}
	pin, err := chain.SPKIPin(forged.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	s := newSweeper(t, l, sweep.Endpoint{Addr: l.SNIEndpointAddr, Pin: pin}, measurement.NewWriter(&buf, -1))
	got, _, err := run(t, s, &buf, "rutracker.org", "clean-1.example", "tls-reset.example")
	if !errors.Is(err, sweep.ErrEndpoint) {
		t.Fatalf("Run: %v; want ErrEndpoint (the control got another key)", err)
	}
	for name, m := range got {
		switch m.TestKeys.Verdict {
		case measurement.VerdictSNIInterceptedISCA, measurement.VerdictSNIInterceptedOther, measurement.VerdictSNIBlocked:
			t.Errorf("%s: %s with a wrong pin (%s)", name, m.TestKeys.Verdict, m.TestKeys.VerdictReason)
		}
	}
}

// TestSweepEndpointChangesMidSweep: an endpoint whose certificate changes
// after the sweep has started (a renewal with a new key, or the endpoint's
// address intercepted from then on) presents another key for every name.
// Each such name's confirming control gets that key too, so the names are
// error, the sweep stops with a pin mismatch, and none is intercepted.
func TestSweepEndpointChangesMidSweep(t *testing.T) {
	t.Parallel()
	l := startLab(t) // for its PKI only
	before, err := l.PKI.IssuePublic([]string{"endpoint.example"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	after, err := l.PKI.IssuePublic([]string{"endpoint.example"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pin, err := chain.SPKIPin(before.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const switchAfter = 6 // connections: the first control and 5 names
	var conns atomic.Int64
	srv := tls.NewListener(ln, &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		if conns.Add(1) > switchAfter {
			return after, nil
		}
		return before, nil
	}})
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				c.SetDeadline(time.Now().Add(5 * time.Second))
				c.(*tls.Conn).Handshake()
				c.Close()
			})
		}
	})
	var names []string
	for i := range 40 {
		names = append(names, fmt.Sprintf("name-%02d.example", i))
	}
	var buf bytes.Buffer
	s := newSweeper(t, l, sweep.Endpoint{Addr: netip.MustParseAddrPort(ln.Addr().String()), Pin: pin}, measurement.NewWriter(&buf, -1))
	s.Connector.Dial = nil // 127.0.0.1 is outside the lab's /24
	s.Parallel, s.ControlEvery = 1, 1000
	got, _, err := run(t, s, &buf, names...)
	if !errors.Is(err, sweep.ErrEndpoint) || !strings.Contains(err.Error(), "pin mismatch") {
		t.Fatalf("Run: %v; want ErrEndpoint with a pin mismatch", err)
	}
	counts := map[measurement.Verdict]int{}
	for _, m := range got {
		counts[m.TestKeys.Verdict]++
	}
	if counts[measurement.VerdictClean] != switchAfter-1 || counts[measurement.VerdictError] != 1 || len(got) != switchAfter {
		t.Errorf("verdicts %v over %d records; want %d clean, then one error and a stop", counts, len(got), switchAfter-1)
	}
}

// TestSweepSilenceRetried: a name whose first handshake meets silence (a
// lost packet, a loaded endpoint) is tried again once the control has
// answered, and the second try decides: clean, not sni_blocked.
func TestSweepSilenceRetried(t *testing.T) {
	t.Parallel()
	l := startLab(t) // for its PKI only
	cert, err := l.PKI.IssuePublic([]string{"endpoint.example"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pin, err := chain.SPKIPin(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	var flaky atomic.Int64
	done := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*cert},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if hello.ServerName == "flaky.example" && flaky.Add(1) == 1 {
				select { // silent past the client's timeout, once
				case <-time.After(2 * time.Second):
				case <-done:
				}
			}
			return nil, nil
		}})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(done); ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				c.SetDeadline(time.Now().Add(5 * time.Second))
				c.(*tls.Conn).Handshake()
				c.Close()
			})
		}
	})
	var buf bytes.Buffer
	s := newSweeper(t, l, sweep.Endpoint{Addr: netip.MustParseAddrPort(ln.Addr().String()), Pin: pin}, measurement.NewWriter(&buf, -1))
	s.Connector.Dial = nil // 127.0.0.1 is outside the lab's /24
	s.Handshaker.Timeout = 300 * time.Millisecond
	got, _, err := run(t, s, &buf, "flaky.example", "steady.example")
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	m := got["flaky.example"]
	if m == nil {
		t.Fatal("no record for flaky.example")
	}
	tk := m.TestKeys
	if tk.Verdict != measurement.VerdictClean || len(tk.TLSHandshakes) != 2 || deref(tk.TLSHandshakes[0].Failure) != "generic_timeout_error" || !strings.Contains(tk.VerdictReason, "second try") {
		t.Errorf("flaky.example: %s (%s) after %d handshakes; want clean at the second, the first a timeout", tk.Verdict, tk.VerdictReason, len(tk.TLSHandshakes))
	}
	if tk.SNISweep.Control == nil || !tk.SNISweep.Control.OK {
		t.Errorf("flaky.example: control %+v; want the control between the tries", tk.SNISweep.Control)
	}
	if v := got["steady.example"].TestKeys.Verdict; v != measurement.VerdictClean {
		t.Errorf("steady.example: %s; want clean", v)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
