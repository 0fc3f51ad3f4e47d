package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	utls "github.com/refraction-networking/utls"

	"kzprobe/measurement"
	"kzprobe/probe/failure"
)

// Handshake defaults, used when the matching Handshaker field is zero.
const (
	// DefaultHandshakeTimeout bounds one TLS handshake.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultMaxCerts is the most certificates recorded per handshake. Real
	// chains have 2 to 5; 32 leaves room for odd ones and stops a hostile
	// peer from filling the output.
	DefaultMaxCerts = 32
	// DefaultMaxChainBytes is the most DER bytes recorded per handshake,
	// the same as the TLS libraries' cap on a Certificate message.
	DefaultMaxChainBytes = 256 << 10
)

// DefaultFingerprint is the ClientHello fingerprint used when none is
// configured: the one most users' browsers send.
const DefaultFingerprint = "chrome"

// FingerprintGolang is the fingerprint of Go's own crypto/tls. It is the
// only one not produced by utls, which makes it the reference: a network
// that treats it differently from the browser fingerprints is looking at
// the ClientHello.
const FingerprintGolang = "golang"

// FingerprintSmall is Go's crypto/tls offering only classic key exchanges
// (X25519, P-256): a ClientHello of about 250 bytes, in one segment, as
// clients sent before post-quantum key shares. Middleboxes that read the
// name from the first KiB or the first segment of a hello (sslsplit 0.5.5)
// see it only in a hello this small; see [Prober.SmallHelloRetry].
const FingerprintSmall = "small"

// HelloTLS12 is a certificate-only hello for `kzprobe sweep --hello
// tls12`: Go's crypto/tls offering TLS 1.2 only (a ClientHello of about
// 200 bytes, no key share), and the handshake ends on purpose as soon as
// the server's Certificate message is read. In TLS 1.2 the certificate
// comes in clear, before any key exchange: the client computes no shared
// secret and sends no Finished (it sends a bad_certificate alert and
// closes). [Handshaker.Handshake] records it with Failure null when the
// certificate came, NegotiatedProtocol empty and the chain as usual. It is
// not one of [Fingerprints]: `kzprobe run` wants completed handshakes,
// and a server or middlebox that speaks TLS 1.3 only fails it.
const HelloTLS12 = "tls12"

// errCertificateRead ends a HelloTLS12 handshake once the chain is read.
var errCertificateRead = errors.New("probe: certificate read, handshake ended on purpose (tls12)")

// fingerprint is a ClientHello fingerprint: its name, and the utls
// ClientHelloID of its hello, zero for Go's crypto/tls.
type fingerprint struct {
	name  string
	hello utls.ClientHelloID
}

// fingerprints is the one table of the ClientHello fingerprints, in the
// order the documentation gives them: it names them ([Fingerprints]),
// validates them ([ParseFingerprint]) and says which hello each sends
// ([Handshaker.Handshake]). hello is the utls ClientHelloID; the *_Auto IDs
// follow whatever utls v1.8.2 considers current (Chrome 133, Firefox 120,
// Safari 16.0, Edge 85, iOS 14). "golang" and "small" have none: they do
// not go through utls at all.
var fingerprints = []fingerprint{
	{"chrome", utls.HelloChrome_Auto},
	{"firefox", utls.HelloFirefox_Auto},
	{"safari", utls.HelloSafari_Auto},
	{"edge", utls.HelloEdge_Auto},
	{"ios", utls.HelloIOS_Auto},
	{"randomized", utls.HelloRandomized},
	{FingerprintGolang, utls.ClientHelloID{}},
	{FingerprintSmall, utls.ClientHelloID{}},
}

// Fingerprints returns the valid fingerprint names, in the order the
// documentation gives them, for help texts and error messages. The slice
// is new at each call: the caller may change it.
func Fingerprints() []string {
	names := make([]string, len(fingerprints))
	for i, f := range fingerprints {
		names[i] = f.name
	}
	return names
}

// clientHelloID returns the utls ClientHelloID of a fingerprint name; ok
// is false for a name that is not a fingerprint and for the two that do
// not go through utls, "golang" and "small".
func clientHelloID(name string) (id utls.ClientHelloID, ok bool) {
	for _, f := range fingerprints {
		if f.name == name {
			return f.hello, f.hello != utls.ClientHelloID{}
		}
	}
	return utls.ClientHelloID{}, false
}

// validFingerprint reports whether name is one of [Fingerprints], exactly.
func validFingerprint(name string) bool {
	return slices.ContainsFunc(fingerprints, func(f fingerprint) bool { return f.name == name })
}

// ParseFingerprint validates one fingerprint name, as a request names it:
// case-insensitive, nothing else around it. It returns the name in its
// canonical form, or an error that names it and lists the valid ones.
func ParseFingerprint(name string) (string, error) {
	n := strings.ToLower(name)
	if validFingerprint(n) {
		return n, nil
	}
	return "", fmt.Errorf("probe: unknown fingerprint %q (valid: %s)", n, strings.Join(Fingerprints(), ", "))
}

// ParseFingerprints validates and normalises a list of fingerprint names as
// given on the command line or in the config: each element may itself be a
// comma-separated list, names are case-insensitive, blanks are ignored and
// duplicates are dropped (first occurrence wins, so the order given is the
// order of the handshakes). An empty list means [DefaultFingerprint]. An
// unknown name is an error that names it and lists the valid ones.
func ParseFingerprints(list []string) ([]string, error) {
	var out []string
	for _, item := range list {
		for _, name := range strings.Split(item, ",") {
			if name = strings.TrimSpace(name); name == "" {
				continue
			}
			name, err := ParseFingerprint(name)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	if len(out) == 0 {
		out = []string{DefaultFingerprint}
	}
	return out, nil
}

// defaultNextProtos is the ALPN list every browser fingerprint in utls
// v1.8.2 sends.
var defaultNextProtos = []string{"h2", "http/1.1"}

// Handshaker performs TLS handshakes with browser ClientHello fingerprints
// (utls) or with Go's crypto/tls ("golang"), records what the server
// presented and judges nothing: verification is off, the chain is kept as
// raw DER and judged afterwards by probe/chain (collect first, interpret
// second).
//
// # Bounds
//
// A handshake never outlives Timeout or its context: the conn's deadline
// cuts a peer that drips bytes, and cancelling ctx closes the conn.
//
// It holds a bounded amount of peer data. crypto/tls and utls cap a
// Certificate message at 256 KiB and any other handshake message at 64 KiB
// (both fail the handshake with "tls: handshake message of length N bytes
// exceeds maximum", which is ssl_failed_handshake) and records at 16 KiB;
// the wire tap kept for chain recovery (tls_wire.go) holds at most
// MaxChainBytes + 64 KiB, its parse as much again, and the record at most
// MaxChainBytes. With the defaults that is under 1.5 MiB per handshake, and
// TestHandshakeMemoryBound measures about 1.6 MiB allocated in total for a
// 2 MB chain. One exception: utls's Chrome fingerprint offers RFC 8879
// certificate compression, and utls v1.8.2 allocates the uncompressed
// length the server announces (a 24-bit field, so at most 16 MiB) before
// decompressing; nothing outside utls can bound that without changing the
// fingerprint.
//
// The zero value is ready to use.
type Handshaker struct {
	// Timeout bounds one handshake, from the first byte written to the
	// last read. Zero means DefaultHandshakeTimeout (10s).
	Timeout time.Duration
	// MaxCerts is the most certificates recorded; more are cut and the
	// record marked truncated. Zero means DefaultMaxCerts (32).
	MaxCerts int
	// MaxChainBytes is the most DER bytes recorded, counting whole
	// certificates in order; the first that does not fit and all after it
	// are cut and the record marked truncated. Zero means
	// DefaultMaxChainBytes (256 KiB).
	MaxChainBytes int
	// NextProtos is the ALPN list offered. Nil means h2 and http/1.1,
	// which is what every browser fingerprint sends anyway; anything else
	// changes the fingerprint (the browser ClientHello is rebuilt with this
	// ALPN list; "randomized" may or may not send ALPN at all).
	NextProtos []string
}

func (h *Handshaker) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return DefaultHandshakeTimeout
}

func (h *Handshaker) maxCerts() int {
	if h.MaxCerts > 0 {
		return h.MaxCerts
	}
	return DefaultMaxCerts
}

func (h *Handshaker) maxChainBytes() int {
	if h.MaxChainBytes > 0 {
		return h.MaxChainBytes
	}
	return DefaultMaxChainBytes
}

func (h *Handshaker) nextProtos() []string {
	if h.NextProtos != nil {
		return h.NextProtos
	}
	return defaultNextProtos
}

// Handshake runs one TLS client handshake over conn with the given
// fingerprint (one of [Fingerprints]) and SNI serverName, and returns its
// record. It takes ownership of conn and closes it before returning. t0 is
// the measurement's epoch: the record's T0 and T are t0.Since() at its
// start and end.
//
// The record always carries every certificate the server presented, in
// order, as DER (cut to MaxCerts and MaxChainBytes, with
// PeerCertificatesTruncated set), also when the handshake then fails: the
// chain is taken in VerifyPeerCertificate, which both TLS libraries call
// with InsecureSkipVerify set, and, when a library refused the chain
// before that callback (unparsable certificate, oversized Certificate
// message), recovered from the wire (tls_wire.go). TLSVersion and
// CipherSuite are what the server's ServerHello selected, so they are set
// on a handshake that failed after the ServerHello too;
// NegotiatedProtocol only on success.
//
// The failure is classified here: the handshake's own timeout (a silent
// or dripping peer) is generic_timeout_error, a cancelled ctx is
// interrupted (conn is closed at once), a panic inside utls is
// "unknown_failure: utls panic: ...", and everything else goes through
// failure.Classify.
func (h *Handshaker) Handshake(ctx context.Context, conn net.Conn, serverName, fingerprint string, t0 Epoch) measurement.TLSHandshake {
	rec := measurement.TLSHandshake{
		Network:     "tcp",
		ServerName:  serverName,
		Fingerprint: fingerprint,
		NoTLSVerify: true,
		Tags:        []string{},
		T0:          t0.Since(),
	}
	finish := func(err error) measurement.TLSHandshake {
		rec.Failure = failure.Of(err)
		rec.T = t0.Since()
		return rec
	}
	if conn == nil {
		return finish(&failure.Error{Failure: failure.UnknownPrefix + "no connection",
			Operation: "tls_handshake", Err: fmt.Errorf("probe: Handshake called with a nil conn")})
	}
	if ra := conn.RemoteAddr(); ra != nil {
		rec.Address = ra.String()
	}
	if !validFingerprint(fingerprint) && fingerprint != HelloTLS12 {
		conn.Close()
		return finish(&failure.Error{Failure: failure.UnknownPrefix + "unknown fingerprint " + fingerprint,
			Operation: "tls_handshake", Err: fmt.Errorf("probe: unknown fingerprint %q (valid: %s)",
				fingerprint, strings.Join(Fingerprints(), ", "))})
	}

	hctx, cancel := context.WithTimeout(ctx, h.timeout())
	defer cancel()
	if deadline, ok := hctx.Deadline(); ok {
		// The deadline cuts a peer that drips bytes: HandshakeContext only
		// watches ctx between reads, the conn deadline interrupts a read.
		conn.SetDeadline(deadline)
	}

	tap := &wireTap{Conn: conn, limit: h.maxChainBytes() + 64<<10}
	var (
		peer   = chainCapture{tap: tap}
		keys   keyLog
		state  tls.ConnectionState
		closer interface{ Close() error }
		err    error
	)
	if fingerprint == FingerprintGolang || fingerprint == FingerprintSmall || fingerprint == HelloTLS12 {
		state, closer, err = h.handshakeGo(hctx, tap, serverName, fingerprint, &peer, &keys)
	} else {
		state, closer, err = h.handshakeUTLS(hctx, tap, serverName, fingerprint, &peer, &keys)
	}

	certs, status := peer.certs, recoveredComplete
	if err != nil && !peer.called && len(tap.buf) > 0 {
		certs, status = recoverChain(tap.buf, keys.serverHandshake)
		if status == recoveredPartial && !tap.full && hctx.Err() == nil {
			// The library stopped reading inside the Certificate message
			// (oversized chain): read on, within the tap's bound and the
			// deadline, to recover what fits.
			stop := context.AfterFunc(hctx, func() { conn.Close() }) // Ctrl-C still cuts it
			tap.drain()
			stop()
			certs, status = recoverChain(tap.buf, keys.serverHandshake)
		}
	}
	rec.PeerCertificates, rec.PeerCertificatesTruncated = limitChain(certs, h.maxCerts(), h.maxChainBytes())
	if status == recoveredPartial {
		rec.PeerCertificatesTruncated = true // the server sent more than arrived whole
	}
	tap.release()
	if state.Version != 0 {
		rec.TLSVersion = tlsVersionString(state.Version)
		rec.CipherSuite = cipherSuiteString(state.CipherSuite)
	}

	if fingerprint == HelloTLS12 && errors.Is(err, errCertificateRead) && peer.called {
		conn.Close() // the alert is sent: nothing more to say
		return finish(nil)
	}
	if err != nil {
		conn.Close()
		return finish(handshakeError(ctx, hctx, err))
	}
	rec.NegotiatedProtocol = state.NegotiatedProtocol
	closer.Close() // close_notify, bounded by the deadline; closes conn
	return finish(nil)
}

// handshakeError classifies a handshake error, looking at the contexts
// first: on cancellation both libraries close the conn and may report that
// instead of the context's error. A cancelled parent is an interruption
// (Ctrl-C); an expired deadline, ours or the parent's, is a timeout.
func handshakeError(parent, op context.Context, err error) error {
	var fe *failure.Error
	switch {
	case errors.As(err, &fe):
		return fe
	case errors.Is(parent.Err(), context.Canceled):
		// Reproduce: cancel ctx during a handshake with a silent server.
		return &failure.Error{Failure: failure.Interrupted, Operation: "tls_handshake", Err: err}
	case op.Err() != nil:
		// Our timeout, or the caller's deadline (a per-target bound), expired.
		// Reproduce: a server that accepts and never writes, Timeout 300ms.
		return &failure.Error{Failure: failure.GenericTimeout, Operation: "tls_handshake", Err: err}
	}
	return failure.New("tls_handshake", err)
}

// handshakeGo is the "golang" fingerprint: crypto/tls with its defaults;
// "small" and HelloTLS12 are crypto/tls too.
func (h *Handshaker) handshakeGo(ctx context.Context, conn net.Conn, serverName, fingerprint string, peer *chainCapture, keys *keyLog) (tls.ConnectionState, interface{ Close() error }, error) {
	cfg := &tls.Config{
		ServerName:            serverName,
		InsecureSkipVerify:    true, // judged afterwards by probe/chain
		VerifyPeerCertificate: peer.verify,
		NextProtos:            h.nextProtos(),
		KeyLogWriter:          keys,
	}
	switch fingerprint {
	case FingerprintSmall:
		// No post-quantum key share (1.2 KB): the hello fits in 300 bytes.
		cfg.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
	case HelloTLS12:
		cfg.MaxVersion = tls.VersionTLS12
		cfg.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
			peer.verify(raw, chains)
			return errCertificateRead // before the ServerKeyExchange is even read
		}
	}
	c := tls.Client(conn, cfg)
	err := c.HandshakeContext(ctx)
	return c.ConnectionState(), c, err
}

// handshakeUTLS is every other fingerprint. utls is treated as an adapter
// (STYLE 17): its state is converted to crypto/tls's type at once and a
// panic inside it becomes an error.
func (h *Handshaker) handshakeUTLS(ctx context.Context, conn net.Conn, serverName, fingerprint string, peer *chainCapture, keys *keyLog) (state tls.ConnectionState, closer interface{ Close() error }, err error) {
	err = recoverUTLSPanic(func() error {
		state, closer, err = h.handshakeUTLSUnguarded(ctx, conn, serverName, fingerprint, peer, keys)
		return err
	})
	return state, closer, err
}

// recoverUTLSPanic runs fn and turns a panic inside it into an error with
// the failure "unknown_failure: utls panic: <value>". utls asserts its
// internal state with panics (u_conn.go uAssert) and parses the peer's
// messages with code less exercised than crypto/tls's; a probe must never
// crash on what a network sends it.
func recoverUTLSPanic(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &failure.Error{Failure: fmt.Sprintf("%sutls panic: %v", failure.UnknownPrefix, r),
				Operation: "tls_handshake", Err: fmt.Errorf("probe: utls panic: %v", r)}
		}
	}()
	return fn()
}

func (h *Handshaker) handshakeUTLSUnguarded(ctx context.Context, conn net.Conn, serverName, fingerprint string, peer *chainCapture, keys *keyLog) (tls.ConnectionState, interface{ Close() error }, error) {
	id, _ := clientHelloID(fingerprint)
	cfg := &utls.Config{
		ServerName:            serverName,
		InsecureSkipVerify:    true, // judged afterwards by probe/chain
		VerifyPeerCertificate: peer.verify,
		NextProtos:            h.nextProtos(), // used by "randomized" only; parrots carry their own ALPN
		KeyLogWriter:          keys,
	}
	uc, err := newUClient(conn, cfg, id, h.nextProtos())
	if err != nil {
		return tls.ConnectionState{}, nil, &failure.Error{Failure: failure.UnknownPrefix + err.Error(),
			Operation: "tls_handshake", Err: err}
	}
	err = uc.HandshakeContext(ctx)
	return connectionStateFromUTLS(uc.ConnectionState()), uc, err
}

// newUClient builds the utls client for id. A browser fingerprint sends
// its own ALPN list whatever Config.NextProtos says, so a non-default
// NextProtos is applied by rebuilding the browser's spec with that list.
func newUClient(conn net.Conn, cfg *utls.Config, id utls.ClientHelloID, nextProtos []string) (*utls.UConn, error) {
	if id == utls.HelloRandomized {
		return newRandomizedUClient(conn, cfg)
	}
	if slices.Equal(nextProtos, defaultNextProtos) {
		return utls.UClient(conn, cfg, id), nil
	}
	spec, err := utls.UTLSIdToSpec(id)
	if err != nil {
		return nil, fmt.Errorf("utls spec for %s: %w", id.Str(), err)
	}
	patched := false
	for _, ext := range spec.Extensions {
		if alpn, ok := ext.(*utls.ALPNExtension); ok {
			alpn.AlpnProtocols = slices.Clone(nextProtos)
			patched = true
		}
	}
	if !patched {
		return nil, fmt.Errorf("fingerprint %s has no ALPN extension to carry NextProtos", id.Str())
	}
	uc := utls.UClient(conn, cfg, utls.HelloCustom)
	if err := uc.ApplyPreset(&spec); err != nil {
		return nil, fmt.Errorf("utls preset %s: %w", id.Str(), err)
	}
	return uc, nil
}

// newRandomizedUClient draws randomized ClientHellos until it gets one
// that utls v1.8.2 can complete. utls decides independently whether to
// offer X25519MLKEM768 in supported_groups and whether to send a key share
// for it; when it offers the group without the share, a server that
// prefers it (crypto/tls does) answers with a HelloRetryRequest for it,
// which utls cannot handle: "tls: CurvePreferences includes unsupported
// curve", about one handshake in six, which would read as TLS blocking.
// See https://github.com/refraction-networking/utls/issues/366 and the
// fix proposed in https://github.com/refraction-networking/utls/pull/415.
// A draw is inspected on a throwaway UConn (building the state writes
// nothing to conn) and then replayed from its seed on a fresh one: a UConn
// whose state was built twice fails its X25519MLKEM768 handshakes.
func newRandomizedUClient(conn net.Conn, cfg *utls.Config) (*utls.UConn, error) {
	const attempts = 16 // P(all bad) is about (1/6)^16
	for range attempts {
		probe := utls.UClient(conn, cfg.Clone(), utls.HelloRandomized)
		if err := probe.BuildHandshakeStateWithoutSession(); err != nil {
			return nil, fmt.Errorf("utls randomized spec: %w", err)
		}
		if probe.ClientHelloID.Seed == nil {
			return nil, fmt.Errorf("utls randomized spec: no seed recorded")
		}
		if randomizedKeySharesConsistent(probe.Extensions) {
			return utls.UClient(conn, cfg, probe.ClientHelloID), nil
		}
	}
	return nil, fmt.Errorf("utls randomized spec: no usable ClientHello in %d draws", attempts)
}

// randomizedKeySharesConsistent reports whether X25519MLKEM768 is either
// both offered and key-shared, or neither.
func randomizedKeySharesConsistent(exts []utls.TLSExtension) bool {
	var offered, shared bool
	for _, ext := range exts {
		switch e := ext.(type) {
		case *utls.SupportedCurvesExtension:
			offered = slices.Contains(e.Curves, utls.X25519MLKEM768)
		case *utls.KeyShareExtension:
			shared = slices.ContainsFunc(e.KeyShares, func(k utls.KeyShare) bool { return k.Group == utls.X25519MLKEM768 })
		}
	}
	return offered == shared
}

// connectionStateFromUTLS converts utls's state into crypto/tls's, so that
// nothing past the adapter sees a utls type.
func connectionStateFromUTLS(s utls.ConnectionState) tls.ConnectionState {
	return tls.ConnectionState{
		Version:                     s.Version,
		HandshakeComplete:           s.HandshakeComplete,
		DidResume:                   s.DidResume,
		CipherSuite:                 s.CipherSuite,
		NegotiatedProtocol:          s.NegotiatedProtocol,
		ServerName:                  s.ServerName,
		PeerCertificates:            s.PeerCertificates,
		VerifiedChains:              s.VerifiedChains,
		SignedCertificateTimestamps: s.SignedCertificateTimestamps,
		OCSPResponse:                s.OCSPResponse,
		TLSUnique:                   s.TLSUnique,
		ECHAccepted:                 s.ECHAccepted,
	}
}

// chainCapture is the VerifyPeerCertificate callback: it keeps a copy of
// the raw chain and accepts it (verification happens later, in probe/chain).
// Once it has run, the wire tap's copy is no longer needed and is dropped.
type chainCapture struct {
	called bool
	certs  [][]byte
	tap    *wireTap
}

func (c *chainCapture) verify(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	c.called = true
	c.certs = rawCerts // copied, and cut, by limitChain
	if c.tap != nil {
		c.tap.release()
	}
	return nil
}

// limitChain copies certs into the record's form, keeping whole
// certificates in order while both bounds hold.
func limitChain(certs [][]byte, maxCerts, maxBytes int) (out []measurement.BinaryData, truncated bool) {
	total := 0
	for i, c := range certs {
		if i >= maxCerts || total+len(c) > maxBytes {
			return out, true
		}
		total += len(c)
		out = append(out, measurement.BinaryData(slices.Clone(c)))
	}
	return out, false
}

// tlsVersionString names a protocol version as OONI does ("TLSv1.3").
func tlsVersionString(v uint16) string {
	switch v {
	case 0x0300:
		// SSL 3.0. crypto/tls deprecated its constant (tls.VersionSSL30)
		// and no hello we send offers it, but a server's hello can still
		// name it, and the record says what the server selected.
		return "SSLv3"
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return fmt.Sprintf("TLS_VERSION_UNKNOWN_%d", v)
}

// cipherSuiteString is the IANA name of a cipher suite, as crypto/tls
// knows them (also the insecure ones), or OONI's unknown form.
func cipherSuiteString(id uint16) string {
	name := tls.CipherSuiteName(id)
	if strings.HasPrefix(name, "0x") {
		return fmt.Sprintf("TLS_CIPHER_SUITE_UNKNOWN_%d", id)
	}
	return name
}
