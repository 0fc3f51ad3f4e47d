package lab

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
)

// captureHello returns the first flight a crypto/tls client sends with cfg.
func captureHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	cli, srv := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tls.Client(cli, cfg).Handshake()
	}()
	raw, _, err := ReadClientHello(srv)
	srv.Close()
	cli.Close()
	<-done
	if err != nil {
		t.Fatalf("reading a crypto/tls ClientHello: %v", err)
	}
	return raw
}

// goHello runs the first flight through a crypto/tls server and returns
// what it saw of the ClientHello (nil if it rejected it).
func goHello(raw []byte) *tls.ClientHelloInfo {
	cli, srv := net.Pipe()
	go func() {
		cli.Write(raw)
		io.Copy(io.Discard, cli) // the server's alert
	}()
	var info *tls.ClientHelloInfo
	tls.Server(srv, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		info = h
		return nil, errors.New("seen")
	}}).Handshake()
	srv.Close()
	cli.Close()
	return info
}

// clientConfigs are the ClientHellos the tests and the fuzz corpus start
// from.
func clientConfigs() map[string]*tls.Config {
	return map[string]*tls.Config{
		"sni alpn":    {ServerName: "rutracker.org", NextProtos: []string{"h2", "http/1.1"}},
		"no sni":      {InsecureSkipVerify: true},
		"tls12 only":  {ServerName: "Example.ORG", MaxVersion: tls.VersionTLS12},
		"long name":   {ServerName: strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + ".example"},
		"many alpn":   {ServerName: "x.example", NextProtos: []string{"h2", "http/1.1", "spdy/3", "acme-tls/1", strings.Repeat("p", 200)}},
		"tls13 only":  {ServerName: "www.for.kg", MinVersion: tls.VersionTLS13},
		"underscored": {ServerName: "a_b.example"},
	}
}

func TestReadClientHelloMatchesCryptoTLS(t *testing.T) {
	t.Parallel()
	for name, cfg := range clientConfigs() {
		t.Run(name, func(t *testing.T) {
			raw := captureHello(t, cfg)
			got, h, err := ReadClientHello(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("ReadClientHello: %v", err)
			}
			if !bytes.Equal(got, raw) {
				t.Errorf("returned %d bytes; want all %d read", len(got), len(raw))
			}
			want := goHello(raw)
			if want == nil {
				t.Fatal("crypto/tls rejected its own ClientHello")
			}
			if h.ServerName != want.ServerName && !strings.EqualFold(h.ServerName, want.ServerName) {
				t.Errorf("ServerName %q; crypto/tls saw %q", h.ServerName, want.ServerName)
			}
			if !slices.Equal(h.ALPN, want.SupportedProtos) {
				t.Errorf("ALPN %q; crypto/tls saw %q", h.ALPN, want.SupportedProtos)
			}
			if len(h.SupportedVersions) > 0 && !slices.Equal(h.SupportedVersions, want.SupportedVersions) {
				t.Errorf("versions %x; crypto/tls saw %x", h.SupportedVersions, want.SupportedVersions)
			}

			// The same hello cut into small records.
			frag := refragment(raw, 37)
			got, h2, err := ReadClientHello(bytes.NewReader(append(frag, "trailing"...)))
			if err != nil {
				t.Fatalf("fragmented: %v", err)
			}
			if !bytes.Equal(got, frag) {
				t.Errorf("fragmented: returned %d bytes; want the %d of the hello only", len(got), len(frag))
			}
			if h2.ServerName != h.ServerName {
				t.Errorf("fragmented: ServerName %q; want %q", h2.ServerName, h.ServerName)
			}
		})
	}
}

// refragment re-cuts a single-record first flight into records of at most
// n bytes.
func refragment(raw []byte, n int) []byte {
	msg := raw[5:]
	var out []byte
	for len(msg) > 0 {
		k := min(n, len(msg))
		out = append(out, recordTypeHandshake, 3, 1, byte(k>>8), byte(k))
		out = append(out, msg[:k]...)
		msg = msg[k:]
	}
	return out
}

// record wraps a handshake message in one TLS record.
func record(msg []byte) []byte {
	return append([]byte{recordTypeHandshake, 3, 1, byte(len(msg) >> 8), byte(len(msg))}, msg...)
}

// helloMsg builds a ClientHello message with the given extensions (each
// already encoded as type, length, data); nil means no extensions block.
func helloMsg(exts ...[]byte) []byte {
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...) // random
	body = append(body, 0)                   // session id
	body = append(body, 0, 2, 0x13, 0x01)    // one suite
	body = append(body, 1, 0)                // null compression
	if exts != nil {
		var all []byte
		for _, e := range exts {
			all = append(all, e...)
		}
		body = append(body, byte(len(all)>>8), byte(len(all)))
		body = append(body, all...)
	}
	return append([]byte{handshakeTypeClientHello, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
}

func ext(typ uint16, data []byte) []byte {
	return append([]byte{byte(typ >> 8), byte(typ), byte(len(data) >> 8), byte(len(data))}, data...)
}

// sni encodes a server_name extension with the given (type, name) entries.
func sni(entries ...string) []byte {
	var list []byte
	for _, e := range entries {
		list = append(list, 0, byte(len(e)>>8), byte(len(e)))
		list = append(list, e...)
	}
	return ext(extServerName, append([]byte{byte(len(list) >> 8), byte(len(list))}, list...))
}

func TestParseClientHello(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		msg     []byte
		wantSNI string
		wantErr error
	}{
		{"no extensions", helloMsg(), "", nil},
		{"empty extensions", helloMsg([]byte{}), "", nil},
		{"sni", helloMsg(sni("a.example")), "a.example", nil},
		{"sni trailing dot", helloMsg(sni("a.example.")), "a.example.", nil},
		{"unknown extension kept going", helloMsg(ext(0xfe0d, []byte{1, 2, 3}), sni("b.example")), "b.example", nil},
		{"duplicate sni extension", helloMsg(sni("a.example"), sni("b.example")), "", ErrMalformedHello},
		{"two host names", helloMsg(sni("a.example", "b.example")), "", ErrMalformedHello},
		{"empty host name", helloMsg(sni("")), "", ErrMalformedHello},
		{"host name with space", helloMsg(sni("a example")), "", ErrMalformedHello},
		{"host name with NUL", helloMsg(sni("a.example\x00.evil")), "", ErrMalformedHello},
		{"host name 256 bytes", helloMsg(sni(strings.Repeat("a", 256))), "", ErrMalformedHello},
		{"sni list overruns", helloMsg(ext(extServerName, []byte{0, 9, 0, 0, 1, 'a'})), "", ErrMalformedHello},
		{"sni empty list", helloMsg(ext(extServerName, []byte{0, 0})), "", ErrMalformedHello},
		{"alpn empty protocol", helloMsg(ext(extALPN, []byte{0, 1, 0})), "", ErrMalformedHello},
		{"versions odd", helloMsg(ext(extSupportedVersions, []byte{3, 3, 4, 3})), "", ErrMalformedHello},
		{"extension overruns", append(helloMsg(sni("a.example"))[:20:20], 0), "", ErrMalformedHello},
		{"not a client hello", append([]byte{2}, helloMsg()[1:]...), "", ErrNotClientHello},
		{"empty", nil, "", ErrNotClientHello},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseClientHello(tc.msg)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("err = %v; want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if h.ServerName != tc.wantSNI {
				t.Errorf("ServerName = %q; want %q", h.ServerName, tc.wantSNI)
			}
		})
	}

	// Trailing bytes after the extensions block.
	msg := helloMsg(sni("a.example"))
	msg = append(msg, 0)
	msg[3]++ // keep the 24-bit length consistent
	if _, err := ParseClientHello(msg); !errors.Is(err, ErrMalformedHello) {
		t.Errorf("trailing data: err = %v; want ErrMalformedHello", err)
	}
}

func TestReadClientHelloErrors(t *testing.T) {
	t.Parallel()
	hello := record(helloMsg(sni("a.example")))
	manyTiny := []byte{}
	big := helloMsg(sni("a.example"))
	for i := 0; i <= maxHelloRecords; i++ {
		manyTiny = append(manyTiny, recordTypeHandshake, 3, 1, 0, 1, big[i%len(big)])
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"http", []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), ErrNotTLS},
		{"application data record", append([]byte{23, 3, 3, 0, 1}, 0), ErrNotTLS},
		{"ssl2-ish", []byte{0x80, 0x2e, 1, 3, 1}, ErrNotTLS},
		{"zero length record", []byte{22, 3, 1, 0, 0}, ErrMalformedHello},
		{"oversize record", []byte{22, 3, 1, 0x40, 1}, ErrMalformedHello},
		{"server hello", record(append([]byte{2}, helloMsg()[1:]...)), ErrNotClientHello},
		{"huge message length", record([]byte{1, 0x10, 0, 0, 1, 2, 3}), ErrClientHelloLarge},
		{"too many records", manyTiny, ErrClientHelloLarge},
		{"data after hello", record(append(helloMsg(), 1, 0, 0, 0)), ErrMalformedHello},
		{"truncated record", hello[:len(hello)-3], io.ErrUnexpectedEOF},
		{"truncated header", hello[:3], io.ErrUnexpectedEOF},
		{"nothing", nil, io.EOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, h, err := ReadClientHello(bytes.NewReader(tc.in))
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v; want %v", err, tc.wantErr)
			}
			if h != nil {
				t.Errorf("hello = %+v; want nil on error", h)
			}
			if !bytes.HasPrefix(tc.in, raw) {
				t.Errorf("returned bytes are not a prefix of the input")
			}
		})
	}
}

func FuzzParseClientHello(f *testing.F) {
	for _, cfg := range clientConfigs() {
		raw := captureHello(f, cfg)
		f.Add(raw)
		f.Add(raw[5:])
		f.Add(refragment(raw, 7))
	}
	f.Add(record(helloMsg(sni("a.example", "b.example"))))
	f.Add(helloMsg(ext(extALPN, []byte{0, 3, 2, 'h', '2'}), ext(extSupportedVersions, []byte{2, 3, 4})))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(h *ClientHello) {
			if len(h.ServerName) > 255 {
				t.Fatalf("ServerName of %d bytes", len(h.ServerName))
			}
			for _, c := range []byte(h.ServerName) {
				if c <= ' ' || c >= 0x7f {
					t.Fatalf("ServerName %q has byte %#x", h.ServerName, c)
				}
			}
			for _, p := range h.ALPN {
				if p == "" {
					t.Fatal("empty ALPN protocol accepted")
				}
			}
		}
		if h, err := ParseClientHello(data); err == nil {
			if h == nil {
				t.Fatal("nil hello without error")
			}
			check(h)
		} else if h != nil {
			t.Fatal("hello with an error")
		}
		raw, h, err := ReadClientHello(bytes.NewReader(data))
		if !bytes.HasPrefix(data, raw) {
			t.Fatalf("returned %d bytes that are not a prefix of the input", len(raw))
		}
		if len(raw) > maxHelloRecords*(5+maxRecordLen) {
			t.Fatalf("read %d bytes", len(raw))
		}
		if err == nil {
			if h == nil {
				t.Fatal("nil hello without error")
			}
			check(h)
			// A hello read from records parses the same from a
			// refragmented copy.
			var msg []byte
			for r := raw; len(r) >= 5; {
				n := int(r[3])<<8 | int(r[4])
				msg = append(msg, r[5:5+n]...)
				r = r[5+n:]
			}
			h2, err := ParseClientHello(msg)
			if err != nil || h2.ServerName != h.ServerName {
				t.Fatalf("reassembled message parses differently: %v", err)
			}
		}
	})
}
