package control

// The neutral SNI endpoint of `kzprobe sweep`: a TLS listener that
// completes a handshake for any SNI with one certificate of its own, then
// closes once the client has. A probe inside the censored network hand-shakes with it once per
// name, the SNI the only thing that changes; a certificate other than this
// one (by its key pin) is interception on the way.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"time"

	"kzprobe/probe/chain"
)

// SNIEndpoint defaults, for the zero fields of SNIEndpoint.
const (
	// DefaultSNIHandshakeTimeout bounds one client's handshake.
	DefaultSNIHandshakeTimeout = 10 * time.Second
	// DefaultSNIMaxConns bounds the handshakes in progress at once; a
	// connection beyond it is closed as soon as it is accepted.
	DefaultSNIMaxConns = 4096
)

// SNIEndpointCommonName is the subject of the certificate that
// NewSNIEndpointCertificate makes: the certificate is pinned by its key,
// never judged by a name.
const SNIEndpointCommonName = "kzprobe neutral SNI endpoint"

// SNIEndpoint is the neutral endpoint: for every connection it accepts,
// one TLS handshake (TLS 1.2 or 1.3, any SNI or none, ALPN h2 or
// http/1.1) with its one certificate, then a close once the client has
// closed (or the handshake timeout, counted from the accept, is over). It
// drops whatever it reads after the handshake and writes nothing but the
// handshake. Create it with
// NewSNIEndpoint, run it with Serve, stop it with Close.
type SNIEndpoint struct {
	// HandshakeTimeout bounds one handshake. Zero means
	// DefaultSNIHandshakeTimeout.
	HandshakeTimeout time.Duration
	// MaxConns bounds the handshakes in progress. Zero means
	// DefaultSNIMaxConns.
	MaxConns int

	config *tls.Config
	pin    chain.Pin

	mu     sync.Mutex
	lns    []net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewSNIEndpoint returns an endpoint presenting cert (its leaf and any
// chain with it) for every SNI.
func NewSNIEndpoint(cert tls.Certificate) (*SNIEndpoint, error) {
	if len(cert.Certificate) == 0 {
		return nil, errors.New("control: SNI endpoint: no certificate")
	}
	pin, err := chain.SPKIPin(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("control: SNI endpoint: %w", err)
	}
	return &SNIEndpoint{
		config: &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"h2", "http/1.1"},
		},
		pin:   pin,
		conns: map[net.Conn]struct{}{},
	}, nil
}

// Pin is the key pin of the endpoint's certificate: what the control API
// returns (GET /v1/sni-endpoint) and what a probe compares the presented
// leaf with.
func (e *SNIEndpoint) Pin() chain.Pin { return e.pin }

func (e *SNIEndpoint) handshakeTimeout() time.Duration {
	if e.HandshakeTimeout > 0 {
		return e.HandshakeTimeout
	}
	return DefaultSNIHandshakeTimeout
}

func (e *SNIEndpoint) maxConns() int {
	if e.MaxConns > 0 {
		return e.MaxConns
	}
	return DefaultSNIMaxConns
}

// Serve accepts connections on ln until ln fails or Close is called, and
// hand-shakes with each in its own goroutine. It returns nil after Close.
func (e *SNIEndpoint) Serve(ln net.Listener) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		ln.Close()
		return nil
	}
	e.lns = append(e.lns, ln)
	e.mu.Unlock()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			e.mu.Lock()
			closed := e.closed
			e.mu.Unlock()
			if closed {
				return nil
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				// Out of file descriptors and the like: back off, as
				// net/http does, instead of spinning.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("control: SNI endpoint: %w", err)
		}
		delay = 0
		if !e.track(c) {
			c.Close() // full, or closing
			continue
		}
		e.wg.Add(1)
		go e.handle(c)
	}
}

// track counts c among the connections in progress; false when the
// endpoint is full or closed.
func (e *SNIEndpoint) track(c net.Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || len(e.conns) >= e.maxConns() {
		return false
	}
	e.conns[c] = struct{}{}
	return true
}

// handle hand-shakes once on c and closes it.
func (e *SNIEndpoint) handle(c net.Conn) {
	defer e.wg.Done()
	defer func() {
		e.mu.Lock()
		delete(e.conns, c)
		e.mu.Unlock()
		c.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), e.handshakeTimeout())
	defer cancel()
	c.SetDeadline(time.Now().Add(e.handshakeTimeout()))
	tc := tls.Server(c, e.config)
	if err := tc.HandshakeContext(ctx); err != nil {
		return
	}
	// Wait for the client to close first (reading and dropping at most
	// 16 KiB), within the same deadline, as any server waiting for a
	// request does. An interceptor that connects upstream before it
	// finishes the client's handshake (sslsplit does) tears the client's
	// handshake down when upstream closes first: closing right after the
	// handshake turned every intercepted name into a failed handshake,
	// sni_blocked instead of sni_intercepted_* (e2e TestE2E/sweep).
	_, _ = io.Copy(io.Discard, io.LimitReader(tc, 16<<10))
	tc.Close() // close_notify, then the TCP close
}

// Close stops every Serve, closes the connections in progress and waits
// for their goroutines.
func (e *SNIEndpoint) Close() error {
	e.mu.Lock()
	e.closed = true
	for _, ln := range e.lns {
		ln.Close()
	}
	for c := range e.conns {
		c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
	return nil
}

// NewSNIEndpointCertificate makes a self-signed certificate for an
// endpoint: an ECDSA P-256 key, the subject SNIEndpointCommonName, valid
// from an hour before now for ten years (it is pinned by its key, so no
// client ever checks its dates or name). It returns the certificate and
// key as PEM, for --sni-cert and --sni-key.
func NewSNIEndpointCertificate(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("control: SNI endpoint key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("control: SNI endpoint serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: SNIEndpointCommonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("control: SNI endpoint certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("control: SNI endpoint key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}
