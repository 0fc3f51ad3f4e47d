package lab

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/miekg/dns"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

func TestHostileScenario(t *testing.T) {
	t.Parallel()
	s := HostileScenario()
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	seen := map[string]bool{}
	for _, site := range s.Sites {
		seen[site.TLS], seen[site.DNS] = true, true
		if site.Expect == "" || site.Expect != ExpectedVerdict(site.TLS, site.DNS) {
			t.Errorf("%s: expect %q; want ExpectedVerdict's %q", site.Domain, site.Expect, ExpectedVerdict(site.TLS, site.DNS))
		}
	}
	for _, b := range append(HostileTLSBehaviours(), HostileDNSBehaviours()...) {
		if !seen[b] {
			t.Errorf("no site has hostile behaviour %q", b)
		}
		if !oneOf(b, TLSBehaviours()) && !oneOf(b, DNSBehaviours()) {
			t.Errorf("hostile behaviour %q is not a valid Site value", b)
		}
	}
}

func TestExpectedVerdictHostile(t *testing.T) {
	t.Parallel()
	tests := []struct{ tls, dns, want string }{
		{Drip, DNSTruthful, VerdictTLSBlocking},
		{Garbage, DNSTruthful, VerdictTLSBlocking},
		{ChainLong, DNSTruthful, VerdictMITMISCA},
		{ChainHeavy, DNSTruthful, VerdictTLSBlocking},
		{ChainMalformed, DNSTruthful, VerdictTLSBlocking},
		{CertAbsurd, DNSTruthful, VerdictMITMISCA},
		{CertInvalidFields, DNSTruthful, VerdictTLSBlocking},
		{AlertMidHandshake, DNSTruthful, VerdictTLSBlocking},
		{Pass, DNSTruncated, VerdictOK},
		{InterceptISCA, DNSWrongID, VerdictMITMISCA},
		{InterceptCorporate, DNSWrongQuestion, VerdictMITMOther},
		{Pass, DNSCompressionLoop, VerdictDNSTampering},
		{Reset, DNSManyAnswers, VerdictTLSBlocking},
		{Unreachable, DNSDuplicate, VerdictTCPBlocking},
		{InterceptISCA, DNSSilent, VerdictDNSTampering},
		{Drip, DNSControlServfail, VerdictError},
		{ChainLong, DNSControlServfail, ""},
	}
	for _, tc := range tests {
		if got := ExpectedVerdict(tc.tls, tc.dns); got != tc.want {
			t.Errorf("ExpectedVerdict(%q, %q) = %q; want %q", tc.tls, tc.dns, got, tc.want)
		}
	}
}

func TestLoadHostileScenario(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "hostile.yaml")
	os.WriteFile(good, []byte("drip_interval: 200ms\nsites:\n  - domain: d.example\n    tls: drip\n  - domain: s.example\n    dns: silent\n"), 0o644)
	s, err := LoadScenario(good)
	if err != nil {
		t.Fatalf("LoadScenario: %v", err)
	}
	if s.DripInterval != 200*time.Millisecond || s.Sites[0].Expect != VerdictTLSBlocking || s.Sites[1].Expect != VerdictDNSTampering {
		t.Errorf("got %+v", s)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("sites:\n  - domain: d.example\ndrip_interval: 2h\n"), 0o644)
	_, err = LoadScenario(bad)
	if err == nil || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "drip_interval") {
		t.Errorf("LoadScenario(drip_interval: 2h) = %v; want an error naming line 3 and drip_interval", err)
	}
}

// hostileLab starts the hostile scenario with a fast drip.
func hostileLab(t *testing.T, drip time.Duration) *Lab {
	t.Helper()
	s := HostileScenario()
	s.DripInterval = drip
	return startLab(t, Config{Scenario: s})
}

// siteWith returns the running site with a hostile behaviour.
func siteWith(t testing.TB, l *Lab, behaviour string) SiteInfo {
	t.Helper()
	for _, s := range l.Sites() {
		if s.TLS == behaviour || s.DNS == behaviour {
			return s
		}
	}
	t.Fatalf("no site with %q", behaviour)
	return SiteInfo{}
}

// countingConn counts the bytes read through it.
type countingConn struct {
	net.Conn
	mu sync.Mutex
	n  int
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	c.n += n
	c.mu.Unlock()
	return n, err
}

// hostileHandshake hand-shakes with crypto/tls (verification off) with the
// site's SNI, and returns the chain the server presented (nil when the
// library refused it before the callback), the state and the error.
func hostileHandshake(t *testing.T, l *Lab, s SiteInfo, timeout time.Duration, wrap func(net.Conn) net.Conn) ([][]byte, tls.ConnectionState, error) {
	t.Helper()
	raw, err := net.DialTimeout("tcp4", netip.AddrPortFrom(s.Addr, uint16(l.Port)).String(), timeout)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var conn net.Conn = raw
	if wrap != nil {
		conn = wrap(raw)
	}
	var chain [][]byte
	c := tls.Client(conn, &tls.Config{ServerName: s.Domain, InsecureSkipVerify: true,
		VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
			chain = rawCerts
			return nil
		}})
	c.SetDeadline(time.Now().Add(timeout))
	err = c.Handshake()
	return chain, c.ConnectionState(), err
}

func TestHostileTLS(t *testing.T) {
	t.Parallel()
	const drip = 50 * time.Millisecond
	l := hostileLab(t, drip)
	p := l.PKI
	issuedByISCA := func(t *testing.T, der []byte) *x509.Certificate {
		t.Helper()
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("certificate does not parse: %v", err)
		}
		if err := c.CheckSignatureFrom(p.ISCAIntermediate); err != nil {
			t.Errorf("certificate %q not signed by the ISCA intermediate: %v", c.Subject, err)
		}
		return c
	}

	t.Run(Drip, func(t *testing.T) {
		t.Parallel()
		var cc *countingConn
		const window = 600 * time.Millisecond
		_, _, err := hostileHandshake(t, l, siteWith(t, l, Drip), window, func(c net.Conn) net.Conn {
			cc = &countingConn{Conn: c}
			return cc
		})
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("handshake err = %v; want a timeout", err)
		}
		// One byte per 50ms: about 12 in 600ms; a loaded machine sends fewer.
		if cc.n < 2 || cc.n > int(window/drip)+2 {
			t.Errorf("read %d bytes in %v; want at most one per %v", cc.n, window, drip)
		}
	})
	t.Run(Garbage, func(t *testing.T) {
		t.Parallel()
		_, _, err := hostileHandshake(t, l, siteWith(t, l, Garbage), 5*time.Second, nil)
		var rhe tls.RecordHeaderError
		if !errors.As(err, &rhe) {
			t.Errorf("handshake err = %v; want a tls.RecordHeaderError", err)
		}
	})
	t.Run(ChainLong, func(t *testing.T) {
		t.Parallel()
		s := siteWith(t, l, ChainLong)
		chain, _, err := hostileHandshake(t, l, s, 10*time.Second, nil)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		forged, _ := p.Forge(s.Domain, InterceptISCA)
		if len(chain) != ChainLongCerts || !bytes.Equal(chain[0], forged.Certificate[0]) || !bytes.Equal(chain[1], p.ISCAIntermediate.Raw) {
			t.Fatalf("chain of %d certificates; want %d starting with the forged leaf and the ISCA intermediate", len(chain), ChainLongCerts)
		}
		for _, der := range chain[2:] {
			issuedByISCA(t, der)
		}
	})
	t.Run(ChainHeavy, func(t *testing.T) {
		t.Parallel()
		s := siteWith(t, l, ChainHeavy)
		_, _, err := hostileHandshake(t, l, s, 10*time.Second, nil)
		if err == nil || !strings.Contains(err.Error(), "exceeds maximum") {
			t.Errorf("crypto/tls: %v; want the Certificate message refused as too large", err)
		}
		// Read the whole flight by hand: it must be about 2 MB.
		c, err := net.Dial("tcp4", netip.AddrPortFrom(s.Addr, uint16(l.Port)).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(captureHello(t, &tls.Config{ServerName: s.Domain}))
		n, _ := io.CopyN(io.Discard, c, ChainHeavyPadded*ChainHeavyPad)
		if n != ChainHeavyPadded*ChainHeavyPad {
			t.Errorf("read %d bytes; want at least %d", n, ChainHeavyPadded*ChainHeavyPad)
		}
	})
	t.Run(ChainMalformed, func(t *testing.T) {
		t.Parallel()
		_, _, err := hostileHandshake(t, l, siteWith(t, l, ChainMalformed), 5*time.Second, nil)
		if err == nil || !strings.Contains(err.Error(), "failed to parse certificate") {
			t.Errorf("handshake err = %v; want a certificate parse error", err)
		}
	})
	t.Run(CertAbsurd, func(t *testing.T) {
		t.Parallel()
		s := siteWith(t, l, CertAbsurd)
		chain, _, err := hostileHandshake(t, l, s, 10*time.Second, nil)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		if len(chain) != 2 || !bytes.Equal(chain[1], p.ISCAIntermediate.Raw) {
			t.Fatalf("chain of %d certificates; want the absurd leaf and the ISCA intermediate", len(chain))
		}
		leaf := issuedByISCA(t, chain[0])
		if len(leaf.DNSNames) != CertAbsurdSANs || leaf.DNSNames[0] != s.Domain || !leaf.NotAfter.Equal(CertAbsurdNotAfter) {
			t.Errorf("leaf: %d names, first %q, notAfter %v; want %d, %q, %v", len(leaf.DNSNames), leaf.DNSNames[0], leaf.NotAfter, CertAbsurdSANs, s.Domain, CertAbsurdNotAfter)
		}
		// Absurd, yet a valid ISCA chain for the domain.
		if err := verifyChain([]*x509.Certificate{leaf, p.ISCAIntermediate}, pool(p.ISCARoot), s.Domain, p.Now); err != nil {
			t.Errorf("verify: %v", err)
		}
	})
	t.Run(CertInvalidFields, func(t *testing.T) {
		t.Parallel()
		_, _, err := hostileHandshake(t, l, siteWith(t, l, CertInvalidFields), 5*time.Second, nil)
		if err == nil || !strings.Contains(err.Error(), "failed to parse certificate") {
			t.Errorf("handshake err = %v; want a certificate parse error", err)
		}
	})
	t.Run(AlertMidHandshake, func(t *testing.T) {
		t.Parallel()
		s := siteWith(t, l, AlertMidHandshake)
		var rc *readRecorder
		_, state, err := hostileHandshake(t, l, s, 5*time.Second, func(c net.Conn) net.Conn {
			rc = &readRecorder{Conn: c}
			return rc
		})
		if err == nil || !strings.Contains(err.Error(), "remote error: tls: handshake failure") {
			t.Errorf("handshake err = %v; want the peer's handshake_failure alert", err)
		}
		if state.Version != tls.VersionTLS12 {
			t.Errorf("version %x; want TLS 1.2", state.Version)
		}
		// crypto/tls reads the message after the Certificate before it
		// verifies (or calls back), so read the chain off the wire.
		types, chain := tls12Flight(rc.buf.Bytes())
		forged, _ := p.Forge(s.Domain, InterceptISCA)
		if len(chain) != 2 || !bytes.Equal(chain[0], forged.Certificate[0]) || !bytes.Equal(chain[1], p.ISCAIntermediate.Raw) {
			t.Errorf("chain of %d certificates before the alert; want the forged leaf and the ISCA intermediate", len(chain))
		}
		if want := []byte{22, 22, 21}; !bytes.Equal(types[len(types)-3:], want) {
			t.Errorf("record types %v; want the last three to be ServerHello, Certificate, alert", types)
		}
	})
}

// readRecorder is a net.Conn that keeps what is read from it.
type readRecorder struct {
	net.Conn
	buf bytes.Buffer
}

func (c *readRecorder) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.buf.Write(b[:n])
	return n, err
}

// tls12Flight returns the record types of a plaintext TLS 1.2 server
// flight and the certificates of its Certificate message.
func tls12Flight(wire []byte) (types []byte, certs [][]byte) {
	var hs []byte
	for len(wire) >= 5 {
		n := int(binary.BigEndian.Uint16(wire[3:5]))
		if len(wire) < 5+n {
			break
		}
		types = append(types, wire[0])
		if wire[0] == 22 {
			hs = append(hs, wire[5:5+n]...)
		}
		wire = wire[5+n:]
	}
	for len(hs) >= 4 {
		n := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
		if len(hs) < 4+n {
			break
		}
		if hs[0] == 11 && n >= 3 {
			list := hs[7 : 4+n]
			for len(list) >= 3 {
				l := int(list[0])<<16 | int(list[1])<<8 | int(list[2])
				if len(list) < 3+l {
					break
				}
				certs = append(certs, list[3:3+l])
				list = list[3+l:]
			}
		}
		hs = hs[4+n:]
	}
	return types, certs
}

// TestInvalidFieldsLeaf checks the certificate CertInvalidFields presents:
// a negative serial, an invalid UTF-8 subject, and a valid signature.
func TestInvalidFieldsLeaf(t *testing.T) {
	t.Parallel()
	p, err := NewPKI(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	der, _, err := p.invalidFieldsLeaf("bad.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParseCertificate(der); err == nil {
		t.Error("crypto/x509 parses the leaf; want it refused")
	}
	in := cryptobyte.String(der)
	var cert, tbs, sigAlg, body cryptobyte.String
	var sig asn1.BitString
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !cert.ReadASN1Element(&tbs, cbasn1.SEQUENCE) ||
		!cert.ReadASN1(&sigAlg, cbasn1.SEQUENCE) || !cert.ReadASN1BitString(&sig) {
		t.Fatal("not a certificate")
	}
	body = tbs
	var version, issuer, validity, subject cryptobyte.String
	serial := new(big.Int)
	if !body.ReadASN1(&body, cbasn1.SEQUENCE) ||
		!body.ReadASN1(&version, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!body.ReadASN1Integer(serial) ||
		!body.SkipASN1(cbasn1.SEQUENCE) || // signature algorithm
		!body.ReadASN1(&issuer, cbasn1.SEQUENCE) ||
		!body.ReadASN1(&validity, cbasn1.SEQUENCE) ||
		!body.ReadASN1Element(&subject, cbasn1.SEQUENCE) {
		t.Fatal("TBSCertificate does not parse")
	}
	if serial.Sign() >= 0 {
		t.Errorf("serial %v; want negative", serial)
	}
	if bytes.Contains(subject, []byte{0x0c}) && utf8.Valid(subject) {
		t.Errorf("subject % x is valid UTF-8; want invalid", []byte(subject))
	}
	digest := sha256.Sum256(tbs)
	if !ecdsa.VerifyASN1(p.ISCAIntermediate.PublicKey.(*ecdsa.PublicKey), digest[:], sig.RightAlign()) {
		t.Error("signature does not verify with the ISCA intermediate's key")
	}
}

// recordingConn is a net.Conn that keeps what is written to it.
type recordingConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *recordingConn) Write(b []byte) (int, error) { return c.buf.Write(b) }

// TestAlertConnSplits feeds alertConn a server flight in pieces of every
// size and checks it passes exactly the records up to the Certificate
// message, then the alert.
func TestAlertConnSplits(t *testing.T) {
	t.Parallel()
	rec := func(typ byte, body []byte) []byte {
		return append([]byte{typ, 3, 3, byte(len(body) >> 8), byte(len(body))}, body...)
	}
	msg := func(typ byte, n int) []byte {
		return append([]byte{typ, byte(n >> 16), byte(n >> 8), byte(n)}, bytes.Repeat([]byte{typ}, n)...)
	}
	cert := msg(11, 300)
	// ServerHello in one record, the Certificate split over two records,
	// then ServerKeyExchange and ServerHelloDone.
	head := append(rec(22, msg(2, 70)), rec(22, cert[:100])...)
	head = append(head, rec(22, cert[100:])...)
	flight := append(bytes.Clone(head), rec(22, msg(12, 100))...)
	flight = append(flight, rec(22, msg(14, 0))...)
	want := append(bytes.Clone(head), alertHandshakeFailure...)
	for _, piece := range []int{1, 2, 5, 7, 64, len(flight)} {
		c := &alertConn{Conn: &recordingConn{}}
		w := c.Conn.(*recordingConn)
		var err error
		for i := 0; i < len(flight) && err == nil; i += piece {
			_, err = c.Write(flight[i:min(i+piece, len(flight))])
		}
		if !errors.Is(err, errAlerted) {
			t.Errorf("pieces of %d: err = %v; want errAlerted", piece, err)
		}
		if !bytes.Equal(w.buf.Bytes(), want) {
			t.Errorf("pieces of %d: wrote %d bytes; want the %d up to the Certificate and the alert", piece, w.buf.Len(), len(want))
		}
	}
}

// dnsExchangeAll sends q to addr over network ("udp" or "tcp") and returns
// every message that arrives within window.
func dnsExchangeAll(t *testing.T, network, addr string, q *dns.Msg, window time.Duration) [][]byte {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(window))
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	if network == "udp" {
		c.Write(wire)
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return out
			}
			out = append(out, bytes.Clone(buf[:n]))
		}
	}
	c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(wire))))
	c.Write(wire)
	for {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return out
		}
		m := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, m); err != nil {
			return out
		}
		out = append(out, m)
	}
}

func unpack(t *testing.T, raw []byte) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	return m
}

func TestHostileDNS(t *testing.T) {
	t.Parallel()
	l := hostileLab(t, time.Second)
	bogon := netip.MustParseAddr(BogonAddr)
	// window is how long every message is waited for: the lab answers at
	// once, so it bounds a silent resolver's test.
	const window = 400 * time.Millisecond
	for _, b := range HostileDNSBehaviours() {
		s := siteWith(t, l, b)
		for _, network := range []string{"udp", "tcp"} {
			t.Run(b+"/"+network, func(t *testing.T) {
				t.Parallel()
				q := new(dns.Msg).SetQuestion(dns.Fqdn(s.Domain), dns.TypeA)
				q.Id = 0x4242
				q.SetEdns0(1232, false)
				got := dnsExchangeAll(t, network, l.LocalDNS, q, window)
				genuine := func(t *testing.T, raw []byte) *dns.Msg {
					t.Helper()
					m := unpack(t, raw)
					if m.Id != q.Id || m.Question[0].Name != q.Question[0].Name {
						t.Errorf("id %d question %s; want %d %s", m.Id, m.Question[0].Name, q.Id, q.Question[0].Name)
					}
					if a := gotAnswer(t, m); a.addr != s.Addr {
						t.Errorf("answer %v; want %v", a, s.Addr)
					}
					return m
				}
				decoy := func(t *testing.T, raw []byte) *dns.Msg {
					t.Helper()
					m := unpack(t, raw)
					if a := gotAnswer(t, m); a.addr != bogon {
						t.Errorf("decoy answer %v; want the bogon %v", a, bogon)
					}
					return m
				}
				switch b {
				case DNSTruncated:
					if len(got) != 1 {
						t.Fatalf("%d messages; want 1", len(got))
					}
					if network == "udp" {
						m := unpack(t, got[0])
						if !m.Truncated || len(m.Answer) != 0 || m.Id != q.Id {
							t.Errorf("TC %v, %d answers, id %d; want TC, none, %d", m.Truncated, len(m.Answer), m.Id, q.Id)
						}
					} else if m := genuine(t, got[0]); m.Truncated {
						t.Error("TC over TCP")
					}
				case DNSWrongID, DNSWrongQuestion:
					if len(got) != 2 {
						t.Fatalf("%d messages; want a decoy, then the genuine answer", len(got))
					}
					d := decoy(t, got[0])
					if b == DNSWrongID && d.Id != q.Id+1 {
						t.Errorf("decoy id %d; want %d", d.Id, q.Id+1)
					}
					if b == DNSWrongQuestion && (d.Id != q.Id || d.Question[0].Name != dns.Fqdn(WrongQuestionName)) {
						t.Errorf("decoy id %d question %s; want %d %s", d.Id, d.Question[0].Name, q.Id, WrongQuestionName)
					}
					genuine(t, got[1])
				case DNSCompressionLoop:
					if len(got) != 1 {
						t.Fatalf("%d messages; want 1", len(got))
					}
					if binary.BigEndian.Uint16(got[0]) != q.Id {
						t.Errorf("id %d; want %d", binary.BigEndian.Uint16(got[0]), q.Id)
					}
					if err := new(dns.Msg).Unpack(got[0]); err == nil {
						t.Errorf("% x unpacks; want a compression pointer loop", got[0])
					}
				case DNSManyAnswers:
					if len(got) != 1 {
						t.Fatalf("%d messages; want 1", len(got))
					}
					m := unpack(t, got[0])
					if network == "udp" {
						if !m.Truncated || len(m.Answer) >= 500 {
							t.Errorf("UDP: TC %v with %d answers; want TC and fewer than 500", m.Truncated, len(m.Answer))
						}
						return
					}
					ttls := map[uint32]bool{}
					for _, rr := range m.Answer {
						if a, ok := rr.(*dns.A); !ok || !a.A.Equal(net.IP(s.Addr.AsSlice())) {
							t.Fatalf("answer %v; want A %v", rr, s.Addr)
						}
						ttls[rr.Header().Ttl] = true
					}
					if len(m.Answer) != 500 || len(ttls) != 500 || m.Truncated {
						t.Errorf("TCP: %d answers, %d distinct TTLs, TC %v; want 500, 500, false", len(m.Answer), len(ttls), m.Truncated)
					}
				case DNSDuplicate:
					if len(got) != 2 || !bytes.Equal(got[0], got[1]) {
						t.Fatalf("%d messages; want the same one twice", len(got))
					}
					genuine(t, got[0])
				case DNSSilent:
					if len(got) != 0 {
						t.Errorf("%d messages; want none", len(got))
					}
				default:
					t.Fatalf("behaviour %q not tested", b)
				}
			})
		}
		t.Run(b+"/control", func(t *testing.T) {
			t.Parallel()
			if a := gotAnswer(t, dohGet(t, l, query(s.Domain, dns.TypeA))); a.rcode != dns.RcodeSuccess || a.addr != s.Addr {
				t.Errorf("control answers %v; want NOERROR %v", a, s.Addr)
			}
		})
	}
}
