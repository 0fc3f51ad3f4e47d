package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestHandshakeTLS12CertificateOnly: the tls12 hello records the served
// chain whole, as TLS 1.2, and ends the handshake after the Certificate
// message: the server's handshake fails (the client never finished), the
// record's failure is null. A server that speaks TLS 1.3 only refuses it.
func TestHandshakeTLS12CertificateOnly(t *testing.T) {
	t.Parallel()
	pki := newTLSTestPKI(t)
	serverErr := make(chan error, 4)
	cfg := &tls.Config{Certificates: []tls.Certificate{pki.certificate(pki.chain())}}
	for _, tc := range []struct {
		name      string
		tls13Only bool
	}{{"TLS 1.2 and 1.3 server", false}, {"TLS 1.3 only server", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg.Clone()
			if tc.tls13Only {
				c.MinVersion = tls.VersionTLS13
			}
			ap, sni := startTLSTestServerErr(t, c, serverErr)
			rec := tlsTestHandshake(t, context.Background(), ap, HelloTLS12, &Handshaker{Timeout: 5 * time.Second})
			if tc.tls13Only {
				if rec.Failure == nil || len(rec.PeerCertificates) > 0 {
					t.Fatalf("failure %v with %d certificates; want a failure and none", failureString(rec.Failure), len(rec.PeerCertificates))
				}
				return
			}
			if rec.Failure != nil {
				t.Fatalf("failure = %q; want null (the certificate came)", *rec.Failure)
			}
			if got := <-sni; got != tlsTestName {
				t.Errorf("server saw SNI %q; want %q", got, tlsTestName)
			}
			if len(rec.PeerCertificates) != 2 || !bytes.Equal(rec.PeerCertificates[0], pki.leaf) || !bytes.Equal(rec.PeerCertificates[1], pki.inter) {
				t.Errorf("peer_certificates differ from the served chain (%d certificates)", len(rec.PeerCertificates))
			}
			if rec.TLSVersion != "TLSv1.2" || rec.Fingerprint != HelloTLS12 || rec.NegotiatedProtocol != "" {
				t.Errorf("tls_version %q, fingerprint %q, ALPN %q; want TLSv1.2, tls12 and none", rec.TLSVersion, rec.Fingerprint, rec.NegotiatedProtocol)
			}
			select {
			case err := <-serverErr:
				if err == nil {
					t.Error("the server completed its handshake; want it cut after the certificate")
				}
			case <-time.After(5 * time.Second):
				t.Error("the server's handshake did not end")
			}
		})
	}
}

// startTLSTestServerErr is startTLSTestServer that also sends the result
// of each server handshake on errs.
func startTLSTestServerErr(t testing.TB, cfg *tls.Config, errs chan<- error) (netip.AddrPort, <-chan string) {
	t.Helper()
	sni := make(chan string, 64)
	cfg = cfg.Clone()
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		select {
		case sni <- hello.ServerName:
		default:
		}
		return nil, nil
	}
	ap := startRawTestServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		err := tls.Server(c, cfg).Handshake()
		select {
		case errs <- err:
		default:
		}
	})
	return ap, sni
}
