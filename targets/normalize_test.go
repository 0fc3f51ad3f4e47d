package targets

import (
	"errors"
	"strings"
	"testing"
)

// expectErr fails t unless err wraps want (or is nil when want is nil).
func expectErr(t testing.TB, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("got error %v; want none", err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("got error %v; want %v", err, want)
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		input      string
		wantDomain string
		wantPort   int
	}{
		{"bare domain", "example.com", "example.com", 0},
		{"upper case and trailing dot", "Example.COM.", "example.com", 0},
		{"surrounding space", "  example.com\t", "example.com", 0},
		{"https URL with port path and query", "https://example.com:8443/path?q", "example.com", 8443},
		{"http URL with slash", "http://x.example/", "x.example", 0},
		{"upper-case scheme", "HTTPS://Example.com", "example.com", 0},
		{"host and port", "example.com:8443", "example.com", 8443},
		{"explicit default port is kept", "https://x.kz:443/", "x.kz", 443},
		{"empty port means default", "example.com:", "example.com", 0},
		{"leading zeros in port", "example.com:08443", "example.com", 8443},
		{"highest port", "example.com:65535", "example.com", 65535},
		{"path without scheme", "example.com/path/x", "example.com", 0},
		{"fragment", "http://namba.kz/#!/", "namba.kz", 0},
		{"query right after host", "https://www.blogger.com?x=1", "www.blogger.com", 0},
		{"backslash ends the host", `https://example.com\path`, "example.com", 0},
		{"userinfo dropped", "https://user:pw@x.kz:8443/", "x.kz", 8443},
		{"IDN Cyrillic", "пример.рф", "xn--e1afmkfd.xn--p1ai", 0},
		{"IDN in URL", "https://пример.рф/путь", "xn--e1afmkfd.xn--p1ai", 0},
		{"IDN mixed with ASCII label", "www.пример.рф", "www.xn--e1afmkfd.xn--p1ai", 0},
		{"IDN Kazakh", "қазақстан.kz", "xn--80aaa0a6awh12ed.kz", 0},
		{"punycode upper case", "XN--E1AFMKFD.xn--P1AI", "xn--e1afmkfd.xn--p1ai", 0},
		{"IDN ideographic full stop", "пример。рф", "xn--e1afmkfd.xn--p1ai", 0},
		{"IDN non-transitional sharp s", "faß.de", "xn--fa-hia.de", 0},
		{"fullwidth letters", "ｅｘａｍｐｌｅ.com", "example.com", 0},
		{"percent-encoded IDN host", "https://%D0%BF%D1%80%D0%B8%D0%BC%D0%B5%D1%80.%D1%80%D1%84/", "xn--e1afmkfd.xn--p1ai", 0},
		{"double hyphen in position 3", "r3---sn-apo3qvuoxuxbt-j5pe.googlevideo.com", "r3---sn-apo3qvuoxuxbt-j5pe.googlevideo.com", 0},
		{"digits in labels", "360tv.ru", "360tv.ru", 0},
		{"alphanumeric last label", "example.1a", "example.1a", 0},
		{"label of 63 bytes", strings.Repeat("a", 63) + ".kz", strings.Repeat("a", 63) + ".kz", 0},
		{"name of 253 bytes", name253(), name253(), 0},
		{"name of 253 bytes and a dot", name253() + ".", name253(), 0},
		{"name of 253 bytes in a URL", "https://" + name253() + ":8443/", name253(), 8443},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Normalize(tc.input)
			if err != nil {
				t.Fatalf("Normalize(%q): got error %v; want %q", tc.input, err, tc.wantDomain)
			}
			want := Target{Domain: tc.wantDomain, Port: tc.wantPort, Input: tc.input}
			if got != want {
				t.Errorf("Normalize(%q) = %+v; want %+v", tc.input, got, want)
			}
		})
	}
}

// name253 returns a name of exactly 253 bytes, the most RFC 1035 allows:
// 3 labels of 63 bytes and one of 61.
func name253() string { return nameOf(61) }

// nameOf returns 3 labels of 63 bytes and one of last bytes.
func nameOf(last int) string {
	l := strings.Repeat("a", 63)
	return l + "." + l + "." + l + "." + strings.Repeat("b", last)
}

func TestNormalizeRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  error
	}{
		{"empty", "", ErrEmpty},
		{"spaces", " \t ", ErrEmpty},
		{"IPv4", "1.2.3.4", ErrIPLiteral},
		{"IPv4 with port", "1.2.3.4:443", ErrIPLiteral},
		{"IPv4 URL", "https://1.2.3.4/", ErrIPLiteral},
		{"IPv4 trailing dot", "1.2.3.4.", ErrIPLiteral},
		{"IPv4 short form", "127.1", ErrIPLiteral},
		{"IPv4 hex form", "0x7f.0.0.1", ErrIPLiteral},
		{"numeric name", "1234", ErrIPLiteral},
		{"numeric last label", "example.123", ErrIPLiteral},
		{"fullwidth IPv4", "１.２.３.４", ErrIPLiteral},
		{"percent-encoded IPv4", "http://%31.2.3.4/", ErrIPLiteral},
		{"IPv6", "::1", ErrIPLiteral},
		{"IPv6 full", "2001:db8::1", ErrIPLiteral},
		{"IPv6 bracketed", "[2001:db8::1]", ErrIPLiteral},
		{"IPv6 bracketed with port", "[::1]:443", ErrIPLiteral},
		{"IPv6 URL", "https://[2001:db8::1]:8443/x", ErrIPLiteral},
		{"IPv6 URL with zone", "http://[fe80::1%25eth0]/", ErrIPLiteral},
		{"IPv4-mapped IPv6", "::ffff:1.2.3.4", ErrIPLiteral},
		{"single label", "localhost", ErrSingleLabel},
		{"single label URL", "http://x/", ErrSingleLabel},
		{"TLD only", "kz.", ErrSingleLabel},
		{"label of 64 bytes", strings.Repeat("a", 64) + ".kz", ErrLabelTooLong},
		{"IDN label over 63 bytes", strings.Repeat("ж", 60) + ".kz", ErrLabelTooLong},
		{"name of 254 bytes", nameOf(62), ErrNameTooLong},
		{"host over 1024 bytes", strings.Repeat("a.", 513) + "kz", ErrNameTooLong},
		// Punycode encoding is quadratic in the label length: without the
		// bound on the host, this one line took 16 s.
		{"huge IDN label", distinctRunes(60_000) + ".kz", ErrNameTooLong},
		{"IDN label over 252 bytes before conversion", distinctRunes(253) + ".kz", ErrLabelTooLong},
		{"IDN labels split by ideographic full stops", distinctRunes(200) + "。" + distinctRunes(260) + "。kz", ErrLabelTooLong},
		{"port 0", "example.com:0", ErrInvalidPort},
		{"port 65536", "example.com:65536", ErrInvalidPort},
		{"huge port", "https://example.com:99999999999999999999999/", ErrInvalidPort},
		{"negative port", "example.com:-1", ErrInvalidPort},
		{"port with sign", "example.com:+80", ErrInvalidPort},
		{"port name", "example.com:https", ErrInvalidPort},
		{"scheme without slashes", "https:example.com", ErrInvalidPort},
		{"ftp", "ftp://example.com/", ErrUnsupportedScheme},
		{"ws", "wss://example.com/", ErrUnsupportedScheme},
		{"file", "file:///etc/passwd", ErrUnsupportedScheme},
		{"bad scheme", "1http://example.com", ErrMalformed},
		{"empty scheme", "://example.com", ErrMalformed},
		{"no host", "https:///path", ErrMalformed},
		{"only a dot", ".", ErrMalformed},
		{"empty label", "a..kz", ErrMalformed},
		{"leading dot", ".example.com", ErrMalformed},
		{"two trailing dots", "example.com..", ErrMalformed},
		{"leading hyphen", "-a.example.com", ErrMalformed},
		{"trailing hyphen", "a-.example.com", ErrMalformed},
		{"underscore", "a_b.example.com", ErrMalformed},
		{"space inside", "exa mple.com", ErrMalformed},
		{"two words", "example.com other.com", ErrMalformed},
		{"email address", "user@example.com", ErrMalformed},
		{"mailto", "mailto:user@example.com", ErrMalformed},
		{"too many colons", "example.com:80:90", ErrMalformed},
		{"brackets around a name", "[example.com]", ErrMalformed},
		{"unclosed bracket", "[::1", ErrMalformed},
		{"bad percent-encoding", "http://exa%zzmple.com/", ErrMalformed},
		{"invalid punycode", "xn--zz.com", ErrMalformed},
		{"NUL byte", "exam\x00ple.com", ErrMalformed},
		{"invalid UTF-8", "ex\xffample.com", ErrMalformed},
		{"disallowed symbol", "ex<ample.com", ErrMalformed},
		{"bidi rule", "a" + "\u05d0" + ".com", ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Normalize(tc.input)
			if err == nil {
				t.Fatalf("Normalize(%q) = %+v; want error %v", tc.input, got, tc.want)
			}
			expectErr(t, err, tc.want)
			if got != (Target{}) {
				t.Errorf("Normalize(%q) returned %+v with its error; want the zero Target", tc.input, got)
			}
			if !strings.HasPrefix(err.Error(), "targets: ") {
				t.Errorf("error %q: want the prefix %q", err, "targets: ")
			}
		})
	}
}

// distinctRunes returns n bytes or a little more of distinct CJK runes, the
// worst case for punycode encoding.
func distinctRunes(n int) string {
	var b strings.Builder
	for r := rune(0x4e00); b.Len() < n; r++ {
		b.WriteRune(r)
	}
	return b.String()
}

// BenchmarkNormalizeWorstIDN measures the slowest host Normalize converts:
// labels of distinct non-ASCII runes, as long as maxLabelInput allows, up to
// maxHost.
func BenchmarkNormalizeWorstIDN(b *testing.B) {
	label := distinctRunes(maxLabelInput - 3)
	in := label + "." + label + "." + label + "." + label
	if len(in) > maxHost || len(label) > maxLabelInput {
		b.Fatalf("input of %d bytes; want at most %d", len(in), maxHost)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Normalize(in); !errors.Is(err, ErrLabelTooLong) {
			b.Fatalf("got %v; want %v", err, ErrLabelTooLong)
		}
	}
}

func TestTargetString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		t    Target
		want string
	}{
		{"default port", Target{Domain: "example.com"}, "example.com"},
		{"explicit port", Target{Domain: "example.com", Port: 8443}, "example.com:8443"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.t.String(); got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

// checkRenormalizes fails t unless tg, produced from some input, normalises
// to itself: from its Input, from its Domain, and from its String form.
func checkRenormalizes(t testing.TB, tg Target) {
	t.Helper()
	again, err := Normalize(tg.Input)
	if err != nil {
		t.Fatalf("Normalize(%q) (Input of %+v): %v", tg.Input, tg, err)
	}
	if again.Domain != tg.Domain || again.Port != tg.Port {
		t.Fatalf("Normalize(%q) = %+v; want domain %q port %d", tg.Input, again, tg.Domain, tg.Port)
	}
	fromDomain, err := Normalize(tg.Domain)
	if err != nil {
		t.Fatalf("Normalize(%q) (Domain of %+v): %v", tg.Domain, tg, err)
	}
	if fromDomain.Domain != tg.Domain || fromDomain.Port != 0 {
		t.Fatalf("Normalize(%q) = %+v; want domain %q port 0", tg.Domain, fromDomain, tg.Domain)
	}
	fromString, err := Normalize(tg.String())
	if err != nil {
		t.Fatalf("Normalize(%q) (String of %+v): %v", tg.String(), tg, err)
	}
	if fromString.Domain != tg.Domain || fromString.Port != tg.Port {
		t.Fatalf("Normalize(%q) = %+v; want domain %q port %d", tg.String(), fromString, tg.Domain, tg.Port)
	}
	if !isASCII(tg.Domain) || hasUpper(tg.Domain) || strings.HasSuffix(tg.Domain, ".") {
		t.Fatalf("domain %q: want lower-case ASCII without a trailing dot", tg.Domain)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"example.com", "Example.COM.", "https://example.com:8443/path?q", "http://x/",
		"example.com:8443", "пример.рф", "1.2.3.4", "[::1]:443", "ftp://x.kz",
		"xn--e1afmkfd.xn--p1ai", "http://namba.kz/#!/", "127.1", "ｅｘａｍｐｌｅ.com",
		"https://user@x.kz:443/", "%D0%BF.kz", "faß.de", "a..b", strings.Repeat("a", 64) + ".kz",
	} {
		f.Add(s)
	}
	for _, s := range fixtureURLs(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		tg, err := Normalize(input)
		if err != nil {
			if tg != (Target{}) {
				t.Fatalf("Normalize(%q) = %+v with error %v; want the zero Target", input, tg, err)
			}
			return
		}
		if tg.Input != input || tg.Source != "" {
			t.Fatalf("Normalize(%q) = %+v; want Input %q and no Source", input, tg, input)
		}
		if len(tg.Domain) > maxName || tg.Port < 0 || tg.Port > 65535 {
			t.Fatalf("Normalize(%q) = %+v: out of bounds", input, tg)
		}
		checkRenormalizes(t, tg)
	})
}

func TestNameHelpers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		s    string
		want int
	}{
		{"name253", name253(), 253},
		{"nameOf(62)", nameOf(62), 254},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.s) != tc.want {
				t.Errorf("got %d bytes; want %d", len(tc.s), tc.want)
			}
		})
	}
}
