package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

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
		{"all", Fingerprints, Fingerprints, ""},
		{"unknown", []string{"chrome", "netscape"}, nil, `"netscape"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFingerprints(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), strings.Join(Fingerprints, ", ")) {
					t.Errorf("ParseFingerprints(%q) error = %v; want one naming %s and listing the valid names", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("ParseFingerprints(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
	for _, fp := range Fingerprints {
		if fp != FingerprintGolang && fp != FingerprintSmall {
			if _, ok := clientHelloID(fp); !ok {
				t.Errorf("fingerprint %q has no utls ClientHelloID", fp)
			}
		}
	}
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
	for _, fp := range Fingerprints {
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
