package probe

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	utls "github.com/refraction-networking/utls"

	"kzprobe/measurement"
	"kzprobe/probe/failure"
)

// tlsTestName is the SNI every test handshake sends (a reserved name).
const tlsTestName = "example.test"

// tlsTestPKI is a CA generated for the test: root, intermediate, and a leaf
// for tlsTestName, all ECDSA P-256.
type tlsTestPKI struct {
	root, inter, leaf []byte // DER
	interCert         *x509.Certificate
	interKey, leafKey *ecdsa.PrivateKey
}

var (
	tlsTestPKIOnce sync.Once
	tlsTestPKIVal  *tlsTestPKI
	tlsTestPKIErr  error
)

// newTLSTestPKI returns the test PKI, generated once per test binary (it is
// never modified, so sharing it keeps parallel tests fast).
func newTLSTestPKI(t testing.TB) *tlsTestPKI {
	t.Helper()
	tlsTestPKIOnce.Do(func() { tlsTestPKIVal, tlsTestPKIErr = generateTLSTestPKI() })
	if tlsTestPKIErr != nil {
		t.Fatal(tlsTestPKIErr)
	}
	return tlsTestPKIVal
}

func generateTLSTestPKI() (*tlsTestPKI, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	interKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	ca := func(serial int64, cn string) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
	}
	rootTmpl := ca(1, "kzprobe test root (not trusted)")
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	rootCert, _ := x509.ParseCertificate(rootDER)
	interDER, err := x509.CreateCertificate(rand.Reader, ca(2, "kzprobe test intermediate"), rootCert, &interKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	interCert, _ := x509.ParseCertificate(interDER)
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: tlsTestName},
		DNSNames: []string{tlsTestName}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, interCert, &leafKey.PublicKey, interKey)
	if err != nil {
		return nil, err
	}
	return &tlsTestPKI{root: rootDER, inter: interDER, leaf: leafDER, interCert: interCert, interKey: interKey, leafKey: leafKey}, nil
}

// chain is the usual served chain: leaf, intermediate.
func (p *tlsTestPKI) chain() [][]byte { return [][]byte{p.leaf, p.inter} }

// certificate serves chain (leaf first) with the leaf's key.
func (p *tlsTestPKI) certificate(chain [][]byte) tls.Certificate {
	return tls.Certificate{Certificate: chain, PrivateKey: p.leafKey}
}

// extraCert issues a certificate from the intermediate, padded with an
// opaque extension of pad bytes (to build long and heavy chains).
func (p *tlsTestPKI) extraCert(t testing.TB, serial int64, pad int) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "filler"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	if pad > 0 {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1}, Value: bytes.Repeat([]byte{0xAB}, pad)}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.interCert, &p.leafKey.PublicKey, p.interKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// startTLSTestServer runs a crypto/tls server on 127.0.0.1 until the test
// ends. It hands-shakes and then reads until the client goes away. The
// server names (SNI) it sees are sent on the returned channel, when there
// is room.
func startTLSTestServer(t testing.TB, cfg *tls.Config) (netip.AddrPort, <-chan string) {
	t.Helper()
	sni := make(chan string, 64)
	cfg = cfg.Clone()
	prev := cfg.GetConfigForClient
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		select {
		case sni <- hello.ServerName:
		default:
		}
		if prev != nil {
			return prev(hello)
		}
		return nil, nil
	}
	ap := startRawTestServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		s := tls.Server(c, cfg)
		if s.Handshake() == nil {
			io.Copy(io.Discard, s)
		}
	})
	return ap, sni
}

// startRawTestServer accepts connections on 127.0.0.1 until the test ends
// and runs handle on each (closing the conn afterwards).
func startRawTestServer(t testing.TB, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	return startRawTestServerOn(t, "127.0.0.1", handle, nil)
}

func startRawTestServerOn(t testing.TB, ip string, handle func(net.Conn), accepted *atomic.Int32) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if accepted != nil {
				accepted.Add(1)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				stop := context.AfterFunc(tlsTestDoneCtx(done), func() { c.Close() })
				defer stop()
				if handle != nil {
					handle(c)
				}
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// tlsTestDoneCtx is a context cancelled when done closes.
func tlsTestDoneCtx(done <-chan struct{}) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-done; cancel() }()
	return ctx
}

// readTLSRecord reads one TLS record (header and body) from c.
func readTLSRecord(c net.Conn) ([]byte, error) {
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return nil, err
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(c, body); err != nil {
		return nil, err
	}
	return append(hdr, body...), nil
}

// tlsTestHandshake connects to ap and hand-shakes with fp, as the probe does.
func tlsTestHandshake(t testing.TB, ctx context.Context, ap netip.AddrPort, fp string, h *Handshaker) measurement.TLSHandshake {
	t.Helper()
	t0 := NewEpoch(nil)
	conn, tc := (&Connector{Timeout: 5 * time.Second}).Connect(ctx, ap.Addr(), int(ap.Port()), t0)
	if !tc.Status.Success {
		t.Fatalf("connect %s: %v", ap, *tc.Status.Failure)
	}
	return h.Handshake(ctx, conn, tlsTestName, fp, t0)
}

func failureString(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// tlsTestFingerprints are the fingerprints the failure tests run with: one
// through utls and Go's own.
var tlsTestFingerprints = []string{"chrome", FingerprintGolang}

func TestHandshakeFailures(t *testing.T) {
	t.Parallel()
	pki := newTLSTestPKI(t)
	afterHello := func(reply func(net.Conn)) func(net.Conn) {
		return func(c net.Conn) {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := readTLSRecord(c); err != nil {
				return
			}
			reply(c)
		}
	}
	write := func(b []byte) func(net.Conn) {
		return afterHello(func(c net.Conn) { c.Write(b); io.Copy(io.Discard, c) })
	}
	tests := []struct {
		name    string
		server  func(t *testing.T) netip.AddrPort
		timeout time.Duration
		want    string
	}{
		{
			// Reproduce: read the ClientHello, SetLinger(0), Close.
			name: "reset after ClientHello",
			server: func(t *testing.T) netip.AddrPort {
				return startRawTestServer(t, afterHello(func(c net.Conn) {
					c.(*net.TCPConn).SetLinger(0)
				}))
			},
			want: failure.ConnectionReset,
		},
		{
			name:   "EOF after ClientHello",
			server: func(t *testing.T) netip.AddrPort { return startRawTestServer(t, afterHello(func(net.Conn) {})) },
			want:   failure.EOF,
		},
		{
			name: "blackhole",
			server: func(t *testing.T) netip.AddrPort {
				return startRawTestServer(t, afterHello(func(c net.Conn) { io.Copy(io.Discard, c) }))
			},
			timeout: 300 * time.Millisecond,
			want:    failure.GenericTimeout,
		},
		{
			name: "garbage instead of ServerHello",
			server: func(t *testing.T) netip.AddrPort {
				return startRawTestServer(t, write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")))
			},
			want: failure.SSLFailedHandshake,
		},
		{
			name: "random bytes instead of ServerHello",
			server: func(t *testing.T) netip.AddrPort {
				junk := make([]byte, 4096)
				rand.Read(junk)
				junk[0] = 0x99 // not a record type
				return startRawTestServer(t, write(junk))
			},
			want: failure.SSLFailedHandshake,
		},
		{
			name: "handshake record with a nonsense message",
			server: func(t *testing.T) netip.AddrPort {
				return startRawTestServer(t, write([]byte{22, 3, 3, 0, 6, 0xFE, 0, 0, 2, 0, 0}))
			},
			want: failure.SSLFailedHandshake,
		},
		{
			// Reproduce: answer the ClientHello with 15 03 03 00 02 02 70.
			name:   "raw alert unrecognized_name",
			server: func(t *testing.T) netip.AddrPort { return startRawTestServer(t, write([]byte{21, 3, 3, 0, 2, 2, 112})) },
			want:   "ssl_alert_unrecognized_name",
		},
		{
			name:   "raw alert handshake_failure",
			server: func(t *testing.T) netip.AddrPort { return startRawTestServer(t, write([]byte{21, 3, 3, 0, 2, 2, 40})) },
			want:   "ssl_alert_handshake_failure",
		},
		{
			name: "crypto/tls server without a certificate",
			server: func(t *testing.T) netip.AddrPort {
				ap, _ := startTLSTestServer(t, &tls.Config{})
				return ap
			},
			want: "ssl_alert_unrecognized_name",
		},
		{
			name: "crypto/tls server whose GetCertificate fails",
			server: func(t *testing.T) netip.AddrPort {
				ap, _ := startTLSTestServer(t, &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
					return nil, errors.New("no certificate for you")
				}})
				return ap
			},
			want: "ssl_alert_internal_error",
		},
		{
			name: "crypto/tls server speaking only TLS 1.1",
			server: func(t *testing.T) netip.AddrPort {
				ap, _ := startTLSTestServer(t, &tls.Config{Certificates: []tls.Certificate{pki.certificate(pki.chain())},
					MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
				return ap
			},
			want: "ssl_alert_protocol_version",
		},
		{
			name: "crypto/tls server with no shared cipher suite",
			server: func(t *testing.T) netip.AddrPort {
				ap, _ := startTLSTestServer(t, &tls.Config{Certificates: []tls.Certificate{pki.certificate(pki.chain())},
					MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}})
				return ap
			},
			want: "ssl_alert_handshake_failure",
		},
		{
			// Reproduce: drip a record header and body one byte per 100ms.
			name: "drip one byte per 100ms",
			server: func(t *testing.T) netip.AddrPort {
				return startRawTestServer(t, afterHello(func(c net.Conn) {
					drip := append([]byte{22, 3, 3, 0x40, 0}, make([]byte, 1<<14)...)
					for _, b := range drip {
						if _, err := c.Write([]byte{b}); err != nil {
							return
						}
						time.Sleep(100 * time.Millisecond)
					}
				}))
			},
			timeout: 700 * time.Millisecond,
			want:    failure.GenericTimeout,
		},
	}
	for _, tc := range tests {
		for _, fp := range tlsTestFingerprints {
			t.Run(tc.name+"/"+fp, func(t *testing.T) {
				t.Parallel()
				ap := tc.server(t)
				h := &Handshaker{Timeout: tc.timeout}
				if h.Timeout == 0 {
					h.Timeout = 5 * time.Second
				}
				start := time.Now()
				rec := tlsTestHandshake(t, context.Background(), ap, fp, h)
				elapsed := time.Since(start)
				if got := failureString(rec.Failure); got != tc.want {
					t.Errorf("failure = %q; want %q", got, tc.want)
				}
				if elapsed > h.Timeout+time.Second {
					t.Errorf("handshake took %v; want at most the timeout %v (+1s)", elapsed, h.Timeout)
				}
				if tc.want == failure.GenericTimeout && elapsed < h.Timeout-50*time.Millisecond {
					t.Errorf("timed out after %v; want about %v", elapsed, h.Timeout)
				}
				if rec.Fingerprint != fp || rec.ServerName != tlsTestName || !rec.NoTLSVerify || rec.Network != "tcp" || rec.Address != ap.String() {
					t.Errorf("record = %+v; want fingerprint %s, server_name %s, no_tls_verify, tcp, %s", rec, fp, tlsTestName, ap)
				}
				if rec.NegotiatedProtocol != "" || len(rec.PeerCertificates) != 0 {
					t.Errorf("failed handshake recorded alpn %q and %d certificates; want none", rec.NegotiatedProtocol, len(rec.PeerCertificates))
				}
			})
		}
	}
}

func TestHandshakeInterrupted(t *testing.T) {
	t.Parallel()
	for _, fp := range tlsTestFingerprints {
		t.Run(fp, func(t *testing.T) {
			t.Parallel()
			ap := startRawTestServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(150*time.Millisecond, cancel)
			start := time.Now()
			rec := tlsTestHandshake(t, ctx, ap, fp, &Handshaker{Timeout: 10 * time.Second})
			if got := failureString(rec.Failure); got != failure.Interrupted {
				t.Errorf("failure = %q; want %q", got, failure.Interrupted)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("cancelled handshake returned after %v; want promptly", d)
			}
		})
	}
}

func TestHandshakeUnknownFingerprint(t *testing.T) {
	t.Parallel()
	var accepted atomic.Int32
	closed := make(chan struct{})
	ap := startRawTestServerOn(t, "127.0.0.1", func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, io.EOF) {
			close(closed)
		}
	}, &accepted)
	rec := tlsTestHandshake(t, context.Background(), ap, "netscape", &Handshaker{})
	if got := failureString(rec.Failure); !strings.HasPrefix(got, failure.UnknownPrefix) || !strings.Contains(got, "netscape") {
		t.Errorf("failure = %q; want unknown_failure naming the fingerprint", got)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Errorf("conn not closed by Handshake")
	}
}

// TestHandshakeRecordsChain checks, for every fingerprint, that the
// recorded chain is the served one byte for byte, with version, cipher and
// ALPN, for a TLS 1.3 and a TLS 1.2 server.
func TestHandshakeRecordsChain(t *testing.T) {
	t.Parallel()
	pki := newTLSTestPKI(t)
	versions := []struct {
		name string
		max  uint16
	}{{"TLSv1.3", tls.VersionTLS13}, {"TLSv1.2", tls.VersionTLS12}}
	for _, v := range versions {
		for _, fp := range Fingerprints() {
			t.Run(v.name+"/"+fp, func(t *testing.T) {
				t.Parallel()
				ap, sni := startTLSTestServer(t, &tls.Config{
					Certificates: []tls.Certificate{pki.certificate(pki.chain())},
					NextProtos:   []string{"h2", "http/1.1"},
					MaxVersion:   v.max,
				})
				rec := tlsTestHandshake(t, context.Background(), ap, fp, &Handshaker{Timeout: 5 * time.Second})
				if rec.Failure != nil {
					t.Fatalf("failure = %q; want success", *rec.Failure)
				}
				if got := <-sni; got != tlsTestName {
					t.Errorf("server saw SNI %q; want %q", got, tlsTestName)
				}
				if len(rec.PeerCertificates) != 2 || !bytes.Equal(rec.PeerCertificates[0], pki.leaf) || !bytes.Equal(rec.PeerCertificates[1], pki.inter) {
					t.Errorf("peer_certificates differ from the served chain (%d certificates)", len(rec.PeerCertificates))
				}
				if rec.PeerCertificatesTruncated {
					t.Errorf("peer_certificates_truncated = true; want false")
				}
				// "randomized" may offer TLS 1.2 at most, and may omit ALPN.
				if rec.TLSVersion != v.name && !(fp == "randomized" && rec.TLSVersion == "TLSv1.2") {
					t.Errorf("tls_version = %q; want %q", rec.TLSVersion, v.name)
				}
				if !strings.HasPrefix(rec.CipherSuite, "TLS_") || strings.Contains(rec.CipherSuite, "UNKNOWN") {
					t.Errorf("cipher_suite = %q; want an IANA name", rec.CipherSuite)
				}
				if rec.NegotiatedProtocol != "h2" && !(fp == "randomized" && rec.NegotiatedProtocol == "") {
					t.Errorf("negotiated_protocol = %q; want h2", rec.NegotiatedProtocol)
				}
				if rec.T < rec.T0 || rec.T0 < 0 {
					t.Errorf("t0 = %v, t = %v; want 0 <= t0 <= t", rec.T0, rec.T)
				}
			})
		}
	}
}

func TestHandshakeNextProtos(t *testing.T) {
	t.Parallel()
	pki := newTLSTestPKI(t)
	for _, fp := range []string{"chrome", "firefox", FingerprintGolang} {
		t.Run(fp, func(t *testing.T) {
			t.Parallel()
			ap, _ := startTLSTestServer(t, &tls.Config{
				Certificates: []tls.Certificate{pki.certificate(pki.chain())},
				NextProtos:   []string{"h2", "http/1.1"},
			})
			rec := tlsTestHandshake(t, context.Background(), ap, fp, &Handshaker{NextProtos: []string{"http/1.1"}})
			if rec.Failure != nil {
				t.Fatalf("failure = %q; want success", *rec.Failure)
			}
			if rec.NegotiatedProtocol != "http/1.1" {
				t.Errorf("negotiated_protocol = %q; want http/1.1", rec.NegotiatedProtocol)
			}
		})
	}
}

// TestHandshakeHostileChains serves chains built to hurt: too many
// certificates, too many bytes, unparsable DER. Whatever happens, the
// handshake ends within its deadline and the record stays within bounds.
func TestHandshakeHostileChains(t *testing.T) {
	t.Parallel()
	pki := newTLSTestPKI(t)

	long := pki.chain()
	for i := range 198 {
		long = append(long, pki.extraCert(t, int64(100+i), 0))
	}
	heavy := pki.chain()
	for i := range 20 { // 20 x 100 KB: about 2 MB
		heavy = append(heavy, pki.extraCert(t, int64(1000+i), 100<<10))
	}
	malformed := slices.Clone(pki.inter)
	malformed[0] = 0x31 // SET instead of SEQUENCE
	truncatedDER := pki.inter[:len(pki.inter)-20]

	type want struct {
		failure   string
		certs     [][]byte // the recorded chain, byte for byte
		truncated bool
	}
	tests := []struct {
		name  string
		chain [][]byte
		h     Handshaker
		want  want
	}{
		{
			// 200 small certificates (about 100 KB) fit the TLS libraries'
			// 256 KiB cap: the handshake succeeds, the record keeps 32.
			name: "200 certificates", chain: long,
			want: want{failure: "", certs: long[:32], truncated: true},
		},
		{
			name: "200 certificates, MaxCerts 5", chain: long, h: Handshaker{MaxCerts: 5},
			want: want{failure: "", certs: long[:5], truncated: true},
		},
		{
			name: "200 certificates, MaxChainBytes 2000", chain: long, h: Handshaker{MaxChainBytes: 2000},
			want: want{failure: "", certs: chainPrefix(long, 2000), truncated: true},
		},
		{
			// A 2 MB Certificate message exceeds the libraries' 256 KiB cap:
			// the handshake fails at once, and the certificates that fit
			// MaxChainBytes are recovered from the wire.
			name: "2 MB chain", chain: heavy,
			want: want{failure: failure.SSLFailedHandshake, certs: chainPrefix(heavy, DefaultMaxChainBytes), truncated: true},
		},
		{
			// The TLS libraries refuse an unparsable certificate before the
			// callback; the chain is recovered from the wire.
			name: "malformed DER intermediate", chain: [][]byte{pki.leaf, malformed},
			want: want{failure: failure.SSLInvalidCert, certs: [][]byte{pki.leaf, malformed}},
		},
		{
			name: "truncated DER intermediate", chain: [][]byte{pki.leaf, truncatedDER},
			want: want{failure: failure.SSLInvalidCert, certs: [][]byte{pki.leaf, truncatedDER}},
		},
	}
	versions := []struct {
		name string
		max  uint16
	}{{"TLSv1.3", tls.VersionTLS13}, {"TLSv1.2", tls.VersionTLS12}}
	for _, tc := range tests {
		for _, v := range versions {
			for _, fp := range []string{"chrome", "firefox", FingerprintGolang} {
				t.Run(tc.name+"/"+v.name+"/"+fp, func(t *testing.T) {
					t.Parallel()
					ap, _ := startTLSTestServer(t, &tls.Config{
						Certificates: []tls.Certificate{pki.certificate(tc.chain)},
						MaxVersion:   v.max,
					})
					h := tc.h
					h.Timeout = 15 * time.Second // generous: a loaded CI machine under -race is slow; a hang still shows
					start := time.Now()
					rec := tlsTestHandshake(t, context.Background(), ap, fp, &h)
					if d := time.Since(start); d > h.Timeout {
						t.Errorf("handshake took %v; want less than %v", d, h.Timeout)
					}
					if got := failureString(rec.Failure); got != failureString(failure.Ptr(tc.want.failure)) {
						t.Errorf("failure = %q; want %q", got, failureString(failure.Ptr(tc.want.failure)))
					}
					if rec.PeerCertificatesTruncated != tc.want.truncated {
						t.Errorf("peer_certificates_truncated = %v; want %v", rec.PeerCertificatesTruncated, tc.want.truncated)
					}
					if len(rec.PeerCertificates) != len(tc.want.certs) {
						t.Fatalf("recorded %d certificates; want %d", len(rec.PeerCertificates), len(tc.want.certs))
					}
					total := 0
					for i := range rec.PeerCertificates {
						total += len(rec.PeerCertificates[i])
						if !bytes.Equal(rec.PeerCertificates[i], tc.want.certs[i]) {
							t.Errorf("certificate %d differs from the served one", i)
						}
					}
					if total > cmpOr(h.MaxChainBytes, DefaultMaxChainBytes) {
						t.Errorf("recorded %d bytes; want at most %d", total, cmpOr(h.MaxChainBytes, DefaultMaxChainBytes))
					}
				})
			}
		}
	}
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// chainPrefix is the longest prefix of chain that fits maxBytes.
func chainPrefix(chain [][]byte, maxBytes int) [][]byte {
	total := 0
	for i, c := range chain {
		if total+len(c) > maxBytes {
			return chain[:i]
		}
		total += len(c)
	}
	return chain
}

func TestLimitChain(t *testing.T) {
	t.Parallel()
	certs := [][]byte{make([]byte, 10), make([]byte, 20), make([]byte, 30)}
	tests := []struct {
		name      string
		maxCerts  int
		maxBytes  int
		wantN     int
		truncated bool
	}{
		{"all fit", 3, 60, 3, false},
		{"count", 2, 100, 2, true},
		{"bytes", 10, 59, 2, true},
		{"first too big", 10, 5, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, truncated := limitChain(certs, tc.maxCerts, tc.maxBytes)
			if len(out) != tc.wantN || truncated != tc.truncated {
				t.Errorf("limitChain = %d certs, truncated %v; want %d, %v", len(out), truncated, tc.wantN, tc.truncated)
			}
		})
	}
	out, _ := limitChain(certs, 3, 60)
	out[0][0] = 1
	if certs[0][0] != 0 {
		t.Errorf("limitChain shares memory with its input; want a copy")
	}
}

func TestHandshakeVersionAndCipherNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		got, want string
	}{
		{tlsVersionString(tls.VersionTLS13), "TLSv1.3"},
		{tlsVersionString(tls.VersionTLS12), "TLSv1.2"},
		{tlsVersionString(tls.VersionTLS10), "TLSv1"},
		{tlsVersionString(0x7f1c), "TLS_VERSION_UNKNOWN_32540"},
		{cipherSuiteString(tls.TLS_AES_128_GCM_SHA256), "TLS_AES_128_GCM_SHA256"},
		{cipherSuiteString(tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256), "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
		{cipherSuiteString(tls.TLS_RSA_WITH_RC4_128_SHA), "TLS_RSA_WITH_RC4_128_SHA"},
		{cipherSuiteString(0x0a0a), "TLS_CIPHER_SUITE_UNKNOWN_2570"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q; want %q", tc.got, tc.want)
		}
	}
}

func benchmarkHandshake(b *testing.B, fp string) {
	pki := newTLSTestPKI(b)
	ap, _ := startTLSTestServer(b, &tls.Config{
		Certificates: []tls.Certificate{pki.certificate(pki.chain())},
		NextProtos:   []string{"h2", "http/1.1"},
	})
	h := &Handshaker{Timeout: 5 * time.Second}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := tlsTestHandshake(b, ctx, ap, fp, h)
		if rec.Failure != nil {
			b.Fatalf("failure = %q", *rec.Failure)
		}
	}
}

// BenchmarkHandshakeUTLSChrome measures one connect and one utls Chrome
// handshake against a loopback crypto/tls server. The server runs in the
// same process, so ns/op and allocs/op include its side too; compare the
// two benchmarks with each other, not with a remote handshake.
func BenchmarkHandshakeUTLSChrome(b *testing.B) { benchmarkHandshake(b, "chrome") }

// BenchmarkHandshakeGo is the same with crypto/tls ("golang").
func BenchmarkHandshakeGo(b *testing.B) { benchmarkHandshake(b, FingerprintGolang) }

// TestHandshakeRandomizedReliable is the regression test for utls issue
// 366: a randomized ClientHello that offers X25519MLKEM768 without a key
// share for it fails against crypto/tls (about one handshake in six before
// newRandomizedUClient).
func TestHandshakeRandomizedReliable(t *testing.T) {
	t.Parallel()
	pki := newTLSTestPKI(t)
	ap, _ := startTLSTestServer(t, &tls.Config{Certificates: []tls.Certificate{pki.certificate(pki.chain())}})
	const n = 60
	failed := 0
	for range n {
		rec := tlsTestHandshake(t, context.Background(), ap, "randomized", &Handshaker{Timeout: 5 * time.Second})
		if rec.Failure != nil {
			failed++
			t.Logf("failure: %s", *rec.Failure)
		}
	}
	if failed != 0 {
		t.Errorf("%d of %d randomized handshakes failed; want 0", failed, n)
	}
}

func TestRandomizedKeySharesConsistent(t *testing.T) {
	t.Parallel()
	curves := func(c ...utls.CurveID) utls.TLSExtension { return &utls.SupportedCurvesExtension{Curves: c} }
	shares := func(c ...utls.CurveID) utls.TLSExtension {
		ks := &utls.KeyShareExtension{}
		for _, g := range c {
			ks.KeyShares = append(ks.KeyShares, utls.KeyShare{Group: g})
		}
		return ks
	}
	tests := []struct {
		name string
		exts []utls.TLSExtension
		want bool
	}{
		{"neither", []utls.TLSExtension{curves(utls.X25519), shares(utls.X25519)}, true},
		{"both", []utls.TLSExtension{curves(utls.X25519MLKEM768, utls.X25519), shares(utls.X25519MLKEM768, utls.X25519)}, true},
		{"offered without share", []utls.TLSExtension{curves(utls.X25519MLKEM768, utls.X25519), shares(utls.X25519)}, false},
		{"share without offer", []utls.TLSExtension{curves(utls.X25519), shares(utls.X25519MLKEM768)}, false},
		{"TLS 1.2 only", []utls.TLSExtension{curves(utls.X25519, utls.CurveP256)}, true},
	}
	for _, tc := range tests {
		if got := randomizedKeySharesConsistent(tc.exts); got != tc.want {
			t.Errorf("%s: got %v; want %v", tc.name, got, tc.want)
		}
	}
}

func TestHandshakeUTLSPanicRecovered(t *testing.T) {
	t.Parallel()
	err := recoverUTLSPanic(func() error { panic("uAssert failed") })
	if got, want := failure.Classify(err), "unknown_failure: utls panic: uAssert failed"; got != want {
		t.Errorf("failure = %q; want %q", got, want)
	}
	if err := recoverUTLSPanic(func() error { return nil }); err != nil {
		t.Errorf("no panic: err = %v; want nil", err)
	}
}

// TestHandshakeParentDeadline checks that a deadline set by the caller (a
// per-target bound) shorter than the handshake's own timeout is reported
// as a timeout, not as an interruption.
func TestHandshakeParentDeadline(t *testing.T) {
	t.Parallel()
	for _, fp := range tlsTestFingerprints {
		t.Run(fp, func(t *testing.T) {
			t.Parallel()
			ap := startRawTestServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			rec := tlsTestHandshake(t, ctx, ap, fp, &Handshaker{Timeout: 10 * time.Second})
			if got := failureString(rec.Failure); got != failure.GenericTimeout {
				t.Errorf("failure = %q; want %q", got, failure.GenericTimeout)
			}
		})
	}
}

func TestFingerprintParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr string
	}{
		{"empty means chrome", nil, []string{"chrome"}, ""},
		{"blanks mean chrome", []string{"", " , "}, []string{"chrome"}, ""},
		{"one", []string{"firefox"}, []string{"firefox"}, ""},
		{"comma list, case, spaces", []string{" Chrome,FIREFOX , golang"}, []string{"chrome", "firefox", "golang"}, ""},
		{"duplicates dropped, order kept", []string{"ios", "chrome", "ios"}, []string{"ios", "chrome"}, ""},
		{"all", Fingerprints(), Fingerprints(), ""},
		{"unknown", []string{"chrome", "netscape"}, nil, `"netscape"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFingerprints(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), strings.Join(Fingerprints(), ", ")) {
					t.Errorf("ParseFingerprints(%q) error = %v; want one naming %s and listing the valid names", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("ParseFingerprints(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
	for _, fp := range Fingerprints() {
		if fp != FingerprintGolang && fp != FingerprintSmall {
			if _, ok := clientHelloID(fp); !ok {
				t.Errorf("fingerprint %q has no utls ClientHelloID", fp)
			}
		}
	}
}

func TestParseFingerprint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"chrome", "chrome", true},
		{"Firefox", "firefox", true},
		{"SMALL", "small", true},
		{" chrome", "", false},
		{"chrome,firefox", "", false},
		{"", "", false},
		{"netscape", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseFingerprint(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("ParseFingerprint(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), strings.Join(Fingerprints(), ", ")) {
				t.Errorf("error %q does not list the valid names", err)
			}
		})
	}
}

// TestFingerprintsIsACopy checks that a caller changing the list it got
// changes nothing for the next caller nor for validation.
func TestFingerprintsIsACopy(t *testing.T) {
	t.Parallel()
	got := Fingerprints()
	want := slices.Clone(got)
	got[0] = "netscape"
	if again := Fingerprints(); !slices.Equal(again, want) {
		t.Errorf("Fingerprints() after changing a copy = %q; want %q", again, want)
	}
	if validFingerprint("netscape") || !validFingerprint(want[0]) {
		t.Errorf("validation followed a caller's change to its copy")
	}
}

// FuzzParseFingerprints checks that whatever a config or a flag holds,
// ParseFingerprints either refuses it or returns a non-empty list of known
// names without duplicates, which it returns unchanged when given again.
func FuzzParseFingerprints(f *testing.F) {
	for _, s := range []string{"", "chrome", " Chrome,FIREFOX , golang", "ios,chrome,ios", "netscape", ",,", "small,SMALL"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		list := strings.Split(s, ";") // several list elements, each a comma list
		got, err := ParseFingerprints(list)
		if err != nil {
			return
		}
		if len(got) == 0 {
			t.Fatalf("ParseFingerprints(%q) = empty; want at least the default", list)
		}
		for i, fp := range got {
			if !validFingerprint(fp) || slices.Contains(got[:i], fp) {
				t.Fatalf("ParseFingerprints(%q) = %q: %q unknown or repeated", list, got, fp)
			}
		}
		if again, err := ParseFingerprints(got); err != nil || !slices.Equal(again, got) {
			t.Fatalf("ParseFingerprints(%q) = %q, %v; want it unchanged", got, again, err)
		}
	})
}

// clientHello is what the test reads from a captured ClientHello.
type clientHello struct {
	ciphers    []uint16
	extensions []uint16 // in wire order
	sni        string
	alpn       []string
	size       int // bytes of the TLS record that carried it
}

// isGREASE reports whether v is an RFC 8701 GREASE value (0x?A?A).
func isGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// parseClientHello parses a TLS record holding a ClientHello: just enough
// to compare fingerprints.
func parseClientHello(rec []byte) (*clientHello, error) {
	bad := errors.New("malformed ClientHello")
	if len(rec) < 9 || rec[0] != 22 || rec[5] != 1 {
		return nil, bad
	}
	m := rec[9:] // record header (5) + handshake header (4)
	take := func(n int) ([]byte, error) {
		if len(m) < n {
			return nil, bad
		}
		b := m[:n]
		m = m[n:]
		return b, nil
	}
	vec := func(lenBytes int) ([]byte, error) {
		l, err := take(lenBytes)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, b := range l {
			n = n<<8 | int(b)
		}
		return take(n)
	}
	if _, err := take(2 + 32); err != nil { // legacy_version, random
		return nil, err
	}
	if _, err := vec(1); err != nil { // session id
		return nil, err
	}
	suites, err := vec(2)
	if err != nil {
		return nil, err
	}
	if _, err := vec(1); err != nil { // compression
		return nil, err
	}
	exts, err := vec(2)
	if err != nil {
		return nil, err
	}
	ch := &clientHello{}
	for i := 0; i+1 < len(suites); i += 2 {
		ch.ciphers = append(ch.ciphers, binary.BigEndian.Uint16(suites[i:]))
	}
	for len(exts) >= 4 {
		typ, l := binary.BigEndian.Uint16(exts), int(binary.BigEndian.Uint16(exts[2:]))
		if len(exts) < 4+l {
			return nil, bad
		}
		data := exts[4 : 4+l]
		ch.extensions = append(ch.extensions, typ)
		switch typ {
		case 0: // server_name: list len(2), type(1), name len(2), name
			if len(data) >= 5 {
				ch.sni = string(data[5:])
			}
		case 16: // ALPN: list len(2), then len(1)+proto
			for p := data[min(2, len(data)):]; len(p) > 0 && len(p) >= 1+int(p[0]); p = p[1+int(p[0]):] {
				ch.alpn = append(ch.alpn, string(p[1:1+int(p[0])]))
			}
		}
		exts = exts[4+l:]
	}
	return ch, nil
}

// captureClientHello hand-shakes with fp against a listener that keeps the
// first TLS record and hangs up.
func captureClientHello(t *testing.T, fp string) *clientHello {
	t.Helper()
	got := make(chan []byte, 1)
	ap := startRawTestServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		rec, err := readTLSRecord(c)
		if err == nil {
			got <- rec
		}
	})
	tlsTestHandshake(t, context.Background(), ap, fp, &Handshaker{Timeout: 5 * time.Second})
	select {
	case rec := <-got:
		ch, err := parseClientHello(rec)
		if err != nil {
			t.Fatalf("%s: %v", fp, err)
		}
		ch.size = len(rec)
		return ch
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no ClientHello captured", fp)
	}
	return nil
}

// TestFingerprintClientHelloDiffers captures the ClientHello of every
// fingerprint on a loopback listener and checks that they really differ.
func TestFingerprintClientHelloDiffers(t *testing.T) {
	t.Parallel()
	hellos := map[string]*clientHello{}
	for _, fp := range Fingerprints() {
		ch := captureClientHello(t, fp)
		hellos[fp] = ch
		grease := 0
		for _, v := range slices.Concat(ch.ciphers, ch.extensions) {
			if isGREASE(v) {
				grease++
			}
		}
		t.Logf("%-10s %2d ciphers %v\n%-10s %2d extensions %v (GREASE values: %d, ALPN %q)",
			fp, len(ch.ciphers), hex16(ch.ciphers), "", len(ch.extensions), ch.extensions, grease, ch.alpn)
		if ch.sni != tlsTestName {
			t.Errorf("%s: SNI = %q; want %q", fp, ch.sni, tlsTestName)
		}
	}
	pairs := [][2]string{{"chrome", "firefox"}, {"chrome", "golang"}, {"firefox", "golang"},
		{"chrome", "safari"}, {"chrome", "edge"}, {"firefox", "ios"}, {"safari", "golang"}}
	for _, p := range pairs {
		a, b := hellos[p[0]], hellos[p[1]]
		if slices.Equal(a.ciphers, b.ciphers) && slices.Equal(a.extensions, b.extensions) {
			t.Errorf("%s and %s sent the same cipher suites and extensions; want different ClientHellos", p[0], p[1])
		}
	}
	for _, p := range [][2]string{{"chrome", "firefox"}, {"chrome", "golang"}, {"firefox", "golang"}} {
		a, b := hellos[p[0]], hellos[p[1]]
		if slices.Equal(withoutGREASE(a.ciphers), withoutGREASE(b.ciphers)) {
			t.Errorf("%s and %s offer the same cipher suites %v; want different", p[0], p[1], hex16(withoutGREASE(a.ciphers)))
		}
	}
	hasGREASE := func(vs []uint16) bool { return slices.ContainsFunc(vs, isGREASE) }
	if ch := hellos["chrome"]; !hasGREASE(ch.ciphers) || !hasGREASE(ch.extensions) {
		t.Errorf("chrome: GREASE in ciphers %v, extensions %v; want both", hasGREASE(ch.ciphers), hasGREASE(ch.extensions))
	}
	for _, fp := range []string{"firefox", "golang"} {
		if ch := hellos[fp]; hasGREASE(ch.ciphers) || hasGREASE(ch.extensions) {
			t.Errorf("%s sent GREASE values; want none", fp)
		}
	}
	// The small-hello retry's premise: a 1 KiB peek (sslsplit's) misses the
	// name in the post-quantum hellos and reads it in the small one.
	for _, fp := range []string{"chrome", "golang"} {
		if hellos[fp].size <= 1024 {
			t.Errorf("%s: ClientHello of %d bytes; want more than 1 KiB (post-quantum key share)", fp, hellos[fp].size)
		}
	}
	if sz := hellos[FingerprintSmall].size; sz > 512 {
		t.Errorf("small: ClientHello of %d bytes; want at most 512", sz)
	}
	for _, fp := range []string{"chrome", "firefox", "safari", "edge", "ios", "golang", "small"} {
		if !slices.Equal(hellos[fp].alpn, []string{"h2", "http/1.1"}) {
			t.Errorf("%s: ALPN = %q; want [h2 http/1.1]", fp, hellos[fp].alpn)
		}
	}
}

func withoutGREASE(vs []uint16) []uint16 {
	return slices.DeleteFunc(slices.Clone(vs), isGREASE)
}

func hex16(vs []uint16) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprintf("%04x", v)
	}
	return strings.Join(s, " ")
}

func TestTLSVersionString(t *testing.T) {
	for _, tc := range []struct {
		v    uint16
		want string
	}{
		{0x0300, "SSLv3"},
		{tls.VersionTLS10, "TLSv1"},
		{tls.VersionTLS11, "TLSv1.1"},
		{tls.VersionTLS12, "TLSv1.2"},
		{tls.VersionTLS13, "TLSv1.3"},
		{0x7f1c, "TLS_VERSION_UNKNOWN_32540"},
	} {
		if got := tlsVersionString(tc.v); got != tc.want {
			t.Errorf("tlsVersionString(%#04x) = %q; want %q", tc.v, got, tc.want)
		}
	}
}
