package lab

import (
	"errors"
	"fmt"
	"io"
)

// The middlebox reads a client's first flight itself, to choose a behaviour
// by SNI without consuming the bytes (they are replayed to the origin or to
// crypto/tls). The input comes from any client, so the parser checks every
// length against what remains and caps what it buffers.

// ClientHello is what the middlebox learns from a client's first flight.
type ClientHello struct {
	// ServerName is the SNI host_name as sent (not lowercased); "" when
	// the extension is absent.
	ServerName string
	// ALPN is the offered application protocols, in order.
	ALPN []string
	// Version is the legacy_version field (0x0303 for TLS 1.2 and 1.3).
	Version uint16
	// SupportedVersions is the supported_versions extension, if any.
	SupportedVersions []uint16
}

// Limits on what the middlebox reads before deciding.
const (
	// maxRecordLen is the largest TLS plaintext record (RFC 8446 5.1).
	maxRecordLen = 1 << 14
	// maxClientHelloLen caps the ClientHello message, which may span
	// records. Real ones are under 2 KB (8 KB with large post-quantum
	// key shares).
	maxClientHelloLen = 64 << 10
	// maxHelloRecords caps the records one ClientHello may span, so a
	// client cannot make the middlebox parse a million one-byte records.
	maxHelloRecords = 64
)

// Errors from the ClientHello reader. The middlebox passes a connection it
// cannot parse through to the origin, which then answers it as it would.
var (
	ErrNotTLS           = errors.New("lab: not a TLS handshake record")
	ErrNotClientHello   = errors.New("lab: first handshake message is not a ClientHello")
	ErrClientHelloLarge = errors.New("lab: ClientHello too large")
	ErrMalformedHello   = errors.New("lab: malformed ClientHello")
)

const (
	recordTypeHandshake      = 22
	handshakeTypeClientHello = 1
	extServerName            = 0
	extALPN                  = 16
	extSupportedVersions     = 43
	sniHostName              = 0
)

// ReadClientHello reads TLS records from r until it holds one complete
// ClientHello handshake message, which may span several records. It
// returns every byte it read (to be replayed), even on error, and the
// parsed hello. It never reads past the record that completes the message.
func ReadClientHello(r io.Reader) (raw []byte, hello *ClientHello, err error) {
	var msg []byte
	var hdr [5]byte
	for records := 0; ; records++ {
		if records == maxHelloRecords {
			return raw, nil, fmt.Errorf("%w: more than %d records", ErrClientHelloLarge, maxHelloRecords)
		}
		n, err := io.ReadFull(r, hdr[:])
		raw = append(raw, hdr[:n]...)
		if err != nil {
			return raw, nil, err
		}
		// A record: type(1) legacy_record_version(2) length(2).
		if hdr[0] != recordTypeHandshake || hdr[1] != 3 {
			return raw, nil, ErrNotTLS
		}
		length := int(hdr[3])<<8 | int(hdr[4])
		if length == 0 || length > maxRecordLen {
			return raw, nil, fmt.Errorf("%w: record length %d", ErrMalformedHello, length)
		}
		if len(msg)+length > 4+maxClientHelloLen {
			return raw, nil, ErrClientHelloLarge
		}
		start := len(raw)
		raw = append(raw, make([]byte, length)...)
		n, err = io.ReadFull(r, raw[start:])
		raw = raw[:start+n]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return raw, nil, err
		}
		msg = append(msg, raw[start:]...)
		if len(msg) < 4 {
			continue
		}
		if msg[0] != handshakeTypeClientHello {
			return raw, nil, ErrNotClientHello
		}
		msgLen := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
		if msgLen > maxClientHelloLen {
			return raw, nil, fmt.Errorf("%w: %d bytes", ErrClientHelloLarge, msgLen)
		}
		if len(msg) < 4+msgLen {
			continue
		}
		if len(msg) > 4+msgLen {
			// Another handshake message in the same flight: not what a
			// client sends before the ServerHello.
			return raw, nil, fmt.Errorf("%w: data after the ClientHello", ErrMalformedHello)
		}
		hello, err := ParseClientHello(msg)
		return raw, hello, err
	}
}

// ParseClientHello parses one ClientHello handshake message (type 1, a
// 24-bit length, the body; RFC 8446 4.1.2), checking every length. It
// reads the SNI, ALPN and supported_versions extensions and rejects
// duplicate extensions, as crypto/tls does.
func ParseClientHello(msg []byte) (*ClientHello, error) {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrMalformedHello, what) }
	s := cursor(msg)
	typ, ok := s.u8()
	if !ok || typ != handshakeTypeClientHello {
		return nil, ErrNotClientHello
	}
	body, ok := s.vec24()
	if !ok || !s.empty() {
		return nil, bad("message length")
	}
	var h ClientHello
	if h.Version, ok = body.u16(); !ok {
		return nil, bad("version")
	}
	if _, ok = body.take(32); !ok {
		return nil, bad("random")
	}
	sid, ok := body.vec8()
	if !ok || len(sid) > 32 {
		return nil, bad("session id")
	}
	suites, ok := body.vec16()
	if !ok || len(suites) < 2 || len(suites)%2 != 0 {
		return nil, bad("cipher suites")
	}
	comp, ok := body.vec8()
	if !ok || len(comp) < 1 {
		return nil, bad("compression methods")
	}
	if body.empty() {
		return &h, nil // no extensions at all (old clients)
	}
	exts, ok := body.vec16()
	if !ok || !body.empty() {
		return nil, bad("extensions length")
	}
	seen := make(map[uint16]bool)
	for !exts.empty() {
		typ, ok := exts.u16()
		if !ok {
			return nil, bad("extension type")
		}
		data, ok := exts.vec16()
		if !ok {
			return nil, bad("extension length")
		}
		if seen[typ] {
			return nil, bad(fmt.Sprintf("duplicate extension %d", typ))
		}
		seen[typ] = true
		switch typ {
		case extServerName:
			name, err := parseServerName(data)
			if err != nil {
				return nil, err
			}
			h.ServerName = name
		case extALPN:
			list, ok := data.vec16()
			if !ok || !data.empty() || list.empty() {
				return nil, bad("alpn list")
			}
			for !list.empty() {
				p, ok := list.vec8()
				if !ok || len(p) == 0 {
					return nil, bad("alpn protocol")
				}
				h.ALPN = append(h.ALPN, string(p))
			}
		case extSupportedVersions:
			list, ok := data.vec8()
			if !ok || !data.empty() || len(list) < 2 || len(list)%2 != 0 {
				return nil, bad("supported versions")
			}
			for !list.empty() {
				v, _ := list.u16()
				h.SupportedVersions = append(h.SupportedVersions, v)
			}
		}
	}
	return &h, nil
}

// parseServerName reads the server_name extension (RFC 6066 3): a list of
// (name_type, name) holding at most one host_name, which must be a
// plausible hostname (letters, digits, '-', '_', '.'; 1 to 255 bytes).
func parseServerName(data cursor) (string, error) {
	bad := func(what string) error { return fmt.Errorf("%w: server_name %s", ErrMalformedHello, what) }
	list, ok := data.vec16()
	if !ok || !data.empty() || list.empty() {
		return "", bad("list")
	}
	var name string
	for !list.empty() {
		typ, ok := list.u8()
		if !ok {
			return "", bad("type")
		}
		v, ok := list.vec16()
		if !ok {
			return "", bad("length")
		}
		if typ != sniHostName {
			continue
		}
		if name != "" {
			return "", bad("has two host names")
		}
		if len(v) == 0 || len(v) > 255 {
			return "", bad("host name length")
		}
		for _, c := range v {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				return "", bad("host name character")
			}
		}
		name = string(v)
	}
	return name, nil
}

// cursor is a bounds-checked reader over a byte slice: every method
// returns ok=false instead of reading past the end.
type cursor []byte

func (c *cursor) empty() bool { return len(*c) == 0 }

func (c *cursor) take(n int) (cursor, bool) {
	if n < 0 || n > len(*c) {
		return nil, false
	}
	v := (*c)[:n:n]
	*c = (*c)[n:]
	return v, true
}

func (c *cursor) u8() (uint8, bool) {
	v, ok := c.take(1)
	if !ok {
		return 0, false
	}
	return v[0], true
}

func (c *cursor) u16() (uint16, bool) {
	v, ok := c.take(2)
	if !ok {
		return 0, false
	}
	return uint16(v[0])<<8 | uint16(v[1]), true
}

func (c *cursor) vec8() (cursor, bool) {
	n, ok := c.u8()
	if !ok {
		return nil, false
	}
	return c.take(int(n))
}

func (c *cursor) vec16() (cursor, bool) {
	n, ok := c.u16()
	if !ok {
		return nil, false
	}
	return c.take(int(n))
}

func (c *cursor) vec24() (cursor, bool) {
	v, ok := c.take(3)
	if !ok {
		return nil, false
	}
	return c.take(int(v[0])<<16 | int(v[1])<<8 | int(v[2]))
}
