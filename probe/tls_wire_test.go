package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	utls "github.com/refraction-networking/utls"

	"kzprobe/probe/failure"
)

// tls13OnlySpec is a minimal TLS 1.3 ClientHello offering one cipher suite,
// key-sharing P-256 only, so that the suite (and, against a server that
// wants X25519, a HelloRetryRequest) can be forced.
func tls13OnlySpec(suite uint16) *utls.ClientHelloSpec {
	return &utls.ClientHelloSpec{
		TLSVersMin: utls.VersionTLS13, TLSVersMax: utls.VersionTLS13,
		CipherSuites:       []uint16{suite},
		CompressionMethods: []byte{0},
		Extensions: []utls.TLSExtension{
			&utls.SNIExtension{},
			&utls.SupportedCurvesExtension{Curves: []utls.CurveID{utls.CurveP256, utls.X25519}},
			&utls.SignatureAlgorithmsExtension{SupportedSignatureAlgorithms: []utls.SignatureScheme{utls.ECDSAWithP256AndSHA256}},
			&utls.KeyShareExtension{KeyShares: []utls.KeyShare{{Group: utls.CurveP256}}},
			&utls.PSKKeyExchangeModesExtension{Modes: []uint8{utls.PskModeDHE}},
			&utls.SupportedVersionsExtension{Versions: []uint16{utls.VersionTLS13}},
		},
	}
}

// TestRecoverChainTLS13Suites recovers an unparsable chain from the wire
// for each TLS 1.3 cipher suite, and across a HelloRetryRequest.
func TestRecoverChainTLS13Suites(t *testing.T) {
	t.Parallel()
	pki := newTLSTestPKI(t)
	malformed := bytes.Clone(pki.inter)
	malformed[0] = 0x31
	served := [][]byte{pki.leaf, malformed}
	tests := []struct {
		name   string
		suite  uint16
		curves []tls.CurveID // server preference; X25519 alone forces an HRR
	}{
		{"TLS_AES_128_GCM_SHA256", tls.TLS_AES_128_GCM_SHA256, nil},
		{"TLS_AES_256_GCM_SHA384", tls.TLS_AES_256_GCM_SHA384, nil},
		{"TLS_CHACHA20_POLY1305_SHA256", tls.TLS_CHACHA20_POLY1305_SHA256, nil},
		{"HelloRetryRequest", tls.TLS_AES_128_GCM_SHA256, []tls.CurveID{tls.X25519}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ap, _ := startTLSTestServer(t, &tls.Config{
				Certificates:     []tls.Certificate{pki.certificate(served)},
				CurvePreferences: tc.curves,
			})
			conn, err := net.Dial("tcp", ap.String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			tap := &wireTap{Conn: conn, limit: 1 << 20}
			var keys keyLog
			uc := utls.UClient(tap, &utls.Config{ServerName: tlsTestName, InsecureSkipVerify: true, KeyLogWriter: &keys}, utls.HelloCustom)
			if err := uc.ApplyPreset(tls13OnlySpec(tc.suite)); err != nil {
				t.Fatal(err)
			}
			err = uc.Handshake()
			if got := failure.Classify(err); got != failure.SSLInvalidCert {
				t.Fatalf("handshake failure = %q (%v); want %q", got, err, failure.SSLInvalidCert)
			}
			if got := uc.ConnectionState().CipherSuite; got != tc.suite {
				t.Errorf("server chose %s; want %s", tls.CipherSuiteName(got), tls.CipherSuiteName(tc.suite))
			}
			certs, status := recoverChain(tap.buf, keys.serverHandshake)
			if status != recoveredComplete || len(certs) != 2 || !bytes.Equal(certs[0], served[0]) || !bytes.Equal(certs[1], served[1]) {
				t.Errorf("recoverChain = %d certificates, status %d; want the 2 served, complete", len(certs), status)
			}
			if _, status := recoverChain(tap.buf, make([]byte, len(keys.serverHandshake))); status != recoveredNone {
				t.Errorf("recoverChain with a wrong secret: status %d; want none", status)
			}
		})
	}
}

// tls12Flight builds a plaintext TLS 1.2 server flight: a ServerHello and a
// Certificate message holding certs, cut into records of at most 16 KiB.
// The announced length of the Certificate message is announce when not 0.
func tls12Flight(certs [][]byte, announce int) []byte {
	var sh []byte
	sh = append(sh, 3, 3)                      // version
	sh = append(sh, make([]byte, 32)...)       // random
	sh = append(sh, 0)                         // session id
	sh = append(sh, 0xc0, 0x2b)                // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
	sh = append(sh, 0)                         // compression
	sh = append(sh, 0, 5, 0xff, 0x01, 0, 1, 0) // renegotiation_info
	var list []byte
	for _, c := range certs {
		list = append(list, byte(len(c)>>16), byte(len(c)>>8), byte(len(c)))
		list = append(list, c...)
	}
	body := append([]byte{byte(len(list) >> 16), byte(len(list) >> 8), byte(len(list))}, list...)
	n := len(body)
	if announce != 0 {
		n = announce
	}
	hs := append([]byte{hsServerHello, 0, byte(len(sh) >> 8), byte(len(sh))}, sh...)
	hs = append(hs, hsCertificate, byte(n>>16), byte(n>>8), byte(n))
	hs = append(hs, body...)
	var out []byte
	for len(hs) > 0 {
		k := min(len(hs), 16<<10)
		out = append(out, recordHandshake, 3, 3, byte(k>>8), byte(k))
		out = append(out, hs[:k]...)
		hs = hs[k:]
	}
	return out
}

func TestRecoverChainTLS12(t *testing.T) {
	t.Parallel()
	certs := [][]byte{bytes.Repeat([]byte{1}, 300), bytes.Repeat([]byte{2}, 40000), {3}}
	wire := tls12Flight(certs, 0)
	tests := []struct {
		name   string
		wire   []byte
		want   int
		status recovered
	}{
		{"whole", wire, 3, recoveredComplete},
		{"cut in the second certificate", wire[:20000], 1, recoveredPartial},
		{"cut in a record header", wire[:16384+5+2], 1, recoveredPartial},
		{"cut before the certificate", wire[:40], 0, recoveredNone},
		{"alert instead", []byte{21, 3, 3, 0, 2, 2, 40}, 0, recoveredNone},
		{"garbage", []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), 0, recoveredNone},
		{"empty", nil, 0, recoveredNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, status := recoverChain(tc.wire, nil)
			if len(got) != tc.want || status != tc.status {
				t.Fatalf("recoverChain = %d certificates, status %d; want %d, %d", len(got), status, tc.want, tc.status)
			}
			for i := range got {
				if !bytes.Equal(got[i], certs[i]) {
					t.Errorf("certificate %d differs", i)
				}
			}
		})
	}
}

// TestHandshakeMemoryBound serves a TLS 1.2 Certificate message that
// announces and sends 2 MB, from bytes prepared beforehand, and measures
// what the client allocates: the libraries' 256 KiB cap and the tap's
// bound must hold. Not parallel, so that nothing else allocates meanwhile.
func TestHandshakeMemoryBound(t *testing.T) {
	var certs [][]byte
	for i := range 32 {
		certs = append(certs, bytes.Repeat([]byte{byte(i)}, 64<<10))
	}
	flight := tls12Flight(certs, 0) // 2 MB
	ap := startRawTestServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := readTLSRecord(c); err != nil {
			return
		}
		c.Write(flight)
		io.Copy(io.Discard, c)
	})
	for _, fp := range []string{"chrome", FingerprintGolang} {
		t.Run(fp, func(t *testing.T) {
			tlsTestHandshake(t, context.Background(), ap, fp, &Handshaker{}) // warm up
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			rec := tlsTestHandshake(t, context.Background(), ap, fp, &Handshaker{Timeout: 5 * time.Second})
			runtime.ReadMemStats(&after)
			if got := failureString(rec.Failure); got != failure.SSLFailedHandshake {
				t.Errorf("failure = %q; want %q", got, failure.SSLFailedHandshake)
			}
			if want := DefaultMaxChainBytes / (64 << 10); len(rec.PeerCertificates) != want || !rec.PeerCertificatesTruncated {
				t.Errorf("recorded %d certificates, truncated %v; want %d, true", len(rec.PeerCertificates), rec.PeerCertificatesTruncated, want)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s: client allocated %d KiB for a 2 MB chain", fp, alloc>>10)
			if alloc > 3<<20 {
				t.Errorf("client allocated %d bytes; want at most 3 MiB", alloc)
			}
		})
	}
}

func TestWireTapBound(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	go func() {
		b.Write(make([]byte, 100))
		b.Close()
	}()
	tap := &wireTap{Conn: a, limit: 60}
	io.Copy(io.Discard, tap)
	if len(tap.buf) != 60 || !tap.full {
		t.Errorf("tap kept %d bytes, full %v; want 60, true", len(tap.buf), tap.full)
	}
}

// FuzzRecoverChain feeds arbitrary server flights (and secrets) to the
// recovery parser: it must not panic, and never return more certificate
// bytes than it was given.
func FuzzRecoverChain(f *testing.F) {
	f.Add(tls12Flight([][]byte{{1, 2, 3}, {4}}, 0), []byte(nil))
	f.Add(tls12Flight([][]byte{{1, 2, 3}}, 1<<20), []byte(nil))
	f.Add([]byte{22, 3, 3, 0, 4, 2, 0, 0, 0}, make([]byte, 32))
	f.Add([]byte{22, 3, 3, 0, 46, 2, 0, 0, 42, 3, 3}, make([]byte, 48))
	f.Fuzz(func(t *testing.T, wire, secret []byte) {
		certs, status := recoverChain(wire, secret)
		total := 0
		for _, c := range certs {
			total += len(c)
		}
		if total > len(wire) {
			t.Errorf("recovered %d bytes from %d", total, len(wire))
		}
		if status == recoveredNone && len(certs) != 0 {
			t.Errorf("status none with %d certificates", len(certs))
		}
	})
}
