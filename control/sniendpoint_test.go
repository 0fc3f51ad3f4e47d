package control

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// TestSNIEndpointWaitsForClientClose: after the handshake the endpoint
// leaves the connection open until the client closes it, and closes it
// then. It closed right after the handshake before, and sslsplit, which
// completes its upstream handshake before the client's, tore the client's
// handshake down: every name it intercepted looked blocked (e2e
// TestE2E/sweep).
func TestSNIEndpointWaitsForClientClose(t *testing.T) {
	certPEM, keyPEM, err := NewSNIEndpointCertificate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewSNIEndpoint(cert)
	if err != nil {
		t.Fatal(err)
	}
	e.HandshakeTimeout = 5 * time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.Serve(ln)
	t.Cleanup(func() { e.Close() })

	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: "any.example.test",
			MinVersion: version, MaxVersion: version})
		if err != nil {
			t.Fatalf("TLS %x: %v", version, err)
		}
		// Still open 300 ms after the handshake: the read times out.
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("TLS %x: read after the handshake: got %v; want a timeout (the endpoint still waiting)", version, err)
		}
		// Once the client closes its side, the endpoint closes too.
		raw := c.NetConn().(*net.TCPConn)
		if err := c.CloseWrite(); err != nil {
			raw.CloseWrite()
		}
		raw.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 4096)
		for {
			_, err := raw.Read(buf)
			if err == nil {
				continue // close_notify
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("TLS %x: the endpoint did not close after the client did", version)
			}
			break
		}
		c.Close()
	}
}
