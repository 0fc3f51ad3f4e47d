package probe

// Chain recovery from the wire.
//
// crypto/tls and utls v1.8.2 both parse every certificate the server
// presents (x509.ParseCertificate, and a size check on RSA keys) before
// they call VerifyPeerCertificate or VerifyConnection, and fail the
// handshake without calling them when a certificate does not parse:
// "tls: failed to parse certificate from server: x509: ..." (utls
// handshake_client.go verifyServerCertificate, the same code as the
// standard library). The same happens when the Certificate message is
// larger than the libraries' 256 KiB cap ("tls: handshake message of
// length N bytes exceeds maximum of 262144 bytes"). A middlebox that sends
// a malformed or oversized chain would then leave no evidence, although
// the chain is exactly what we want to record.
//
// So the handshake reads the server's bytes through a bounded tap, and the
// TLS library writes its secrets to an in-memory key log (Config.
// KeyLogWriter; nothing leaves the process). When the handshake fails
// before the certificate callback ran, recoverChain re-reads the server's
// flight from the tap: in TLS 1.2 the Certificate message is plaintext; in
// TLS 1.3 it decrypts the handshake records with the server handshake
// traffic secret (RFC 8446 section 7). It recovers every complete
// certificate entry, also from a Certificate message cut short by the
// tap's bound (then the chain is marked truncated). It does not handle
// RFC 8879 compressed certificates (utls's Chrome fingerprint offers
// brotli; a server that compresses and sends an unparsable chain yields no
// recovered chain) and gives up quietly on anything unexpected: recovery is
// best effort and never changes the failure string.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"net"

	"golang.org/x/crypto/chacha20poly1305"
)

// wireTap is a net.Conn that keeps a copy of the first limit bytes read
// from the peer. It is used by one handshake goroutine at a time; Close may
// come from another goroutine (ctx cancellation) and is passed through.
type wireTap struct {
	net.Conn
	buf   []byte
	limit int
	full  bool
}

func (w *wireTap) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	w.record(p[:n])
	return n, err
}

func (w *wireTap) record(p []byte) {
	if w.full {
		return
	}
	if room := w.limit - len(w.buf); room <= len(p) {
		p = p[:max(room, 0)]
		w.full = true
	}
	if need := len(w.buf) + len(p); need > cap(w.buf) {
		// Double (append grows large slices by 1.25x, which would copy the
		// tap five times over), but never beyond the limit.
		grown := make([]byte, len(w.buf), min(max(2*cap(w.buf), need, 4<<10), w.limit))
		copy(grown, w.buf)
		w.buf = grown
	}
	w.buf = append(w.buf, p...)
}

// release drops the copy and stops recording.
func (w *wireTap) release() {
	w.buf, w.full = nil, true
}

// drain reads more of the peer's flight into the tap, until the tap is
// full, the peer stops sending or the conn's deadline passes. It is used
// when the TLS library stopped reading in the middle of the Certificate
// message (oversized chain).
func (w *wireTap) drain() {
	p := make([]byte, 16<<10)
	for !w.full {
		n, err := w.Conn.Read(p)
		w.record(p[:n])
		if err != nil {
			return
		}
	}
}

// keyLog receives the TLS library's NSS key log lines (in memory only) and
// keeps the server handshake traffic secret, for TLS 1.3 recovery.
type keyLog struct {
	serverHandshake []byte
}

func (k *keyLog) Write(p []byte) (int, error) {
	// One line per call: "LABEL <client_random hex> <secret hex>\n".
	f := bytes.Fields(p)
	if len(f) == 3 && string(f[0]) == "SERVER_HANDSHAKE_TRAFFIC_SECRET" {
		if s, err := hex.DecodeString(string(f[2])); err == nil {
			k.serverHandshake = s
		}
	}
	return len(p), nil
}

// TLS record and handshake constants (RFC 8446, RFC 5246).
const (
	recordChangeCipherSpec = 20
	recordHandshake        = 22
	recordApplicationData  = 23

	hsServerHello         = 2
	hsEncryptedExtensions = 8
	hsCertificate         = 11
	hsCertificateRequest  = 13

	extSupportedVersions = 43
)

// helloRetryRandom is the ServerHello.random of a HelloRetryRequest (RFC
// 8446 section 4.1.3).
var helloRetryRandom = []byte{
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
}

// recovered says how much of the server's Certificate message recoverChain found.
type recovered int

const (
	recoveredNone     recovered = iota // no Certificate message (or unreadable)
	recoveredPartial                   // the message was cut short
	recoveredComplete                  // the whole message
)

// recoverChain extracts the certificates of the server's Certificate
// message from wire (the bytes the server sent, from the start of the
// connection) using secret (the server handshake traffic secret, needed for
// TLS 1.3 only). When the message was cut short, certs holds the entries
// that arrived whole.
func recoverChain(wire, secret []byte) (certs [][]byte, status recovered) {
	var (
		hs        = make([]byte, 0, len(wire)) // handshake bytes not yet consumed
		tls13     bool
		decrypter *recordDecrypter
	)
	// stop returns what a Certificate message begun in hs holds so far.
	stop := func() ([][]byte, recovered) {
		if len(hs) < 4 || hs[0] != hsCertificate {
			return nil, recoveredNone
		}
		mlen := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
		certs, _ := parseCertificateMsg(hs[4:min(len(hs), 4+mlen)], tls13)
		return certs, recoveredPartial
	}
	for len(wire) >= 5 {
		typ := wire[0]
		n := int(binary.BigEndian.Uint16(wire[3:5]))
		header, body := wire[:5], wire[5:]
		partial := len(body) < n
		if !partial {
			body = body[:n]
		}
		wire = wire[5+len(body):]

		switch {
		case typ == recordChangeCipherSpec:
			continue
		case decrypter == nil && typ == recordHandshake:
			hs = append(hs, body...)
		case decrypter != nil && typ == recordApplicationData && !partial:
			inner, innerType, ok := decrypter.open(header, body)
			if !ok || innerType != recordHandshake {
				return stop()
			}
			hs = append(hs, inner...)
		default:
			// An alert, a record cut inside its encryption (it cannot be
			// authenticated), or something that is not a server flight.
			return stop()
		}

		// Consume the whole handshake messages buffered so far.
		for len(hs) >= 4 {
			mtype := hs[0]
			mlen := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
			if len(hs) < 4+mlen {
				break // more records to come
			}
			msg := hs[4 : 4+mlen]
			if mtype == hsCertificate {
				certs, ok := parseCertificateMsg(msg, tls13)
				if !ok {
					return certs, recoveredPartial
				}
				return certs, recoveredComplete
			}
			hs = hs[4+mlen:]
			switch mtype {
			case hsServerHello:
				v, suite, hrr, ok := parseServerHello(msg)
				if !ok {
					return nil, recoveredNone
				}
				if v == 0x0304 && !hrr {
					tls13 = true
					if decrypter, ok = newRecordDecrypter(suite, secret); !ok || len(hs) != 0 {
						// No usable secret, or data after the ServerHello in
						// its record, which TLS 1.3 forbids.
						return nil, recoveredNone
					}
				}
			case hsEncryptedExtensions, hsCertificateRequest:
				// TLS 1.3 messages that may precede the server Certificate.
			default:
				return nil, recoveredNone
			}
		}
	}
	return stop()
}

// parseServerHello returns the selected version (supported_versions wins
// over legacy_version), the cipher suite and whether it is a
// HelloRetryRequest.
func parseServerHello(m []byte) (vers, suite uint16, hrr, ok bool) {
	// legacy_version(2) random(32) session_id<0..32> cipher_suite(2) compression(1) extensions<..>
	if len(m) < 2+32+1 {
		return 0, 0, false, false
	}
	vers = binary.BigEndian.Uint16(m)
	hrr = bytes.Equal(m[2:34], helloRetryRandom)
	m = m[34:]
	sid := int(m[0])
	if len(m) < 1+sid+3 {
		return 0, 0, false, false
	}
	m = m[1+sid:]
	suite = binary.BigEndian.Uint16(m)
	m = m[3:]
	if len(m) < 2 {
		return vers, suite, hrr, true // no extensions: TLS 1.2 or older
	}
	el := int(binary.BigEndian.Uint16(m))
	m = m[2:]
	if len(m) < el {
		return 0, 0, false, false
	}
	m = m[:el]
	for len(m) >= 4 {
		et := binary.BigEndian.Uint16(m)
		l := int(binary.BigEndian.Uint16(m[2:]))
		if len(m) < 4+l {
			return 0, 0, false, false
		}
		if et == extSupportedVersions && l == 2 {
			vers = binary.BigEndian.Uint16(m[4:])
		}
		m = m[4+l:]
	}
	return vers, suite, hrr, true
}

// parseCertificateMsg parses the body of a Certificate handshake message
// (TLS 1.2: certificate_list; TLS 1.3: context, then entries with
// extensions). It returns the entries that are whole; complete is false
// when the message ends inside the list.
func parseCertificateMsg(m []byte, tls13 bool) (certs [][]byte, complete bool) {
	if tls13 {
		if len(m) < 1 || len(m) < 1+int(m[0]) {
			return nil, false
		}
		m = m[1+int(m[0]):]
	}
	if len(m) < 3 {
		return nil, false
	}
	total := int(m[0])<<16 | int(m[1])<<8 | int(m[2])
	m = m[3:]
	complete = len(m) >= total
	if complete {
		m = m[:total]
	}
	for len(m) >= 3 {
		l := int(m[0])<<16 | int(m[1])<<8 | int(m[2])
		if len(m) < 3+l {
			return certs, false
		}
		certs = append(certs, m[3:3+l]) // copied by limitChain
		m = m[3+l:]
		if tls13 {
			if len(m) < 2 {
				return certs, false
			}
			el := int(binary.BigEndian.Uint16(m))
			if len(m) < 2+el {
				return certs, false
			}
			m = m[2+el:]
		}
	}
	return certs, complete && len(m) == 0
}

// recordDecrypter opens TLS 1.3 records protected with one traffic secret
// (RFC 8446 section 5.2, 5.3, 7.3).
type recordDecrypter struct {
	aead cipher.AEAD
	iv   []byte
	seq  uint64
}

func newRecordDecrypter(suite uint16, secret []byte) (*recordDecrypter, bool) {
	var (
		h      func() hash.Hash
		keyLen int
		mk     func(key []byte) (cipher.AEAD, error)
	)
	gcm := func(key []byte) (cipher.AEAD, error) {
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	}
	switch suite {
	case 0x1301: // TLS_AES_128_GCM_SHA256
		h, keyLen, mk = sha256.New, 16, gcm
	case 0x1302: // TLS_AES_256_GCM_SHA384
		h, keyLen, mk = sha512.New384, 32, gcm
	case 0x1303: // TLS_CHACHA20_POLY1305_SHA256
		h, keyLen, mk = sha256.New, 32, chacha20poly1305.New
	default:
		return nil, false
	}
	if len(secret) != h().Size() {
		return nil, false
	}
	key, err1 := expandLabel(h, secret, "key", keyLen)
	iv, err2 := expandLabel(h, secret, "iv", 12)
	if err1 != nil || err2 != nil {
		return nil, false
	}
	aead, err := mk(key)
	if err != nil {
		return nil, false
	}
	return &recordDecrypter{aead: aead, iv: iv}, true
}

// open decrypts one TLSCiphertext and returns the content and its real type.
func (d *recordDecrypter) open(header, body []byte) ([]byte, byte, bool) {
	nonce := bytes.Clone(d.iv)
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], d.seq)
	for i := range seq {
		nonce[len(nonce)-8+i] ^= seq[i]
	}
	d.seq++
	p, err := d.aead.Open(nil, nonce, body, header)
	if err != nil {
		return nil, 0, false
	}
	// Strip the zero padding; the last non-zero byte is the content type.
	i := len(p) - 1
	for i >= 0 && p[i] == 0 {
		i--
	}
	if i < 0 {
		return nil, 0, false
	}
	return p[:i], p[i], true
}

// expandLabel is HKDF-Expand-Label with an empty context (RFC 8446 section 7.1).
func expandLabel(h func() hash.Hash, secret []byte, label string, length int) ([]byte, error) {
	full := "tls13 " + label
	info := make([]byte, 0, 4+len(full))
	info = binary.BigEndian.AppendUint16(info, uint16(length))
	info = append(info, byte(len(full)))
	info = append(info, full...)
	info = append(info, 0) // empty context
	return hkdf.Expand(h, secret, string(info), length)
}
