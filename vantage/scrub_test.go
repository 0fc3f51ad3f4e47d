package vantage

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

func TestScrub(t *testing.T) {
	t.Parallel()
	s := NewScrubber(
		netip.MustParseAddr("192.0.2.7"),
		netip.MustParseAddr("2001:db8::7"),
		netip.MustParseAddr("fe80::1%eth0"),
		netip.Addr{}, // ignored
	)
	tests := []struct{ name, in, want string }{
		{"ipv4", "read udp 192.0.2.7:5353->198.51.100.53:53: i/o timeout",
			"read udp [scrubbed]:5353->198.51.100.53:53: i/o timeout"},
		{"ipv4 twice", "192.0.2.7 and 192.0.2.7.", "[scrubbed] and [scrubbed]."},
		{"ipv4 leading zeros", "from 192.000.002.007 ok", "from [scrubbed] ok"},
		{"ipv4 glued to letters", "failed192.0.2.7x", "failed[scrubbed]x"},
		{"ipv4 longer number: scrubbed anyway", "192.0.2.71", "[scrubbed]1"},
		{"other ipv4 untouched", "192.0.2.8 and 10.192.0.2", "192.0.2.8 and 10.192.0.2"},
		{"ipv4 dashed host name", "host 192-0-2-7.dsl.example.test", "host [scrubbed].dsl.example.test"},
		{"ipv4 reverse name", "7.2.0.192.in-addr.arpa. PTR", "[scrubbed]. PTR"},
		{"ipv4-mapped ipv6", "peer ::ffff:192.0.2.7 closed", "peer [scrubbed] closed"},
		{"ipv4-mapped ipv6 in hex", "peer ::ffff:c000:207 closed", "peer [scrubbed] closed"},
		{"ipv6 compressed", "dial tcp [2001:db8::7]:443: refused", "dial tcp [scrubbed]:443: refused"},
		{"ipv6 expanded", "2001:0db8:0000:0000:0000:0000:0000:0007", "[scrubbed]"},
		{"ipv6 uncompressed", "src=2001:db8:0:0:0:0:0:7,", "src=[scrubbed],"},
		{"ipv6 upper case", "SRC 2001:DB8::7", "SRC [scrubbed]"},
		{"ipv6 leading zeros", "2001:0db8::0007", "[scrubbed]"},
		{"ipv6 with zone", "fe80::1%eth0 up", "[scrubbed] up"},
		{"ipv6 bracketed with encoded zone", "http://[fe80::1%25eth0]:80/", "http://[scrubbed]:80/"},
		// "2001:db8::7:443" is also an address of the hidden /64.
		{"ipv6 bare with port-like tail", "2001:db8::7:443", "[scrubbed]"},
		{"ipv6 bare with port-like tail, outside the /64", "2001:db8:0:1::7:443", "2001:db8:0:1::7:443"},
		{"other ipv6 untouched", "2001:db8:0:1::7 2001:db8:1::7", "2001:db8:0:1::7 2001:db8:1::7"},
		{"ipv6 longer: in the /64", "2001:db8::70", "[scrubbed]"},
		{"in json", `{"ip":"192.0.2.7","ips":["2001:db8::7"]}`, `{"ip":"[scrubbed]","ips":["[scrubbed]"]}`},
		{"adjacent addresses merge", "192.0.2.7192.0.2.7", "[scrubbed]"},
		{"nothing", "no address here: 1.2.3", "no address here: 1.2.3"},
		{"empty", "", ""},
		{"non-utf8 around", "\xff192.0.2.7\xfe", "\xff[scrubbed]\xfe"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := s.Scrub(tc.in); got != tc.want {
				t.Errorf("Scrub(%q) = %q; want %q", tc.in, got, tc.want)
			}
			if got := s.ScrubBytes([]byte(tc.in)); string(got) != tc.want {
				t.Errorf("ScrubBytes(%q) = %q; want %q", tc.in, got, tc.want)
			}
		})
	}
}

// A hidden IPv4-mapped address hides its IPv4 form.
func TestScrubMappedInput(t *testing.T) {
	t.Parallel()
	s := NewScrubber(netip.MustParseAddr("::ffff:192.0.2.7"))
	if got := s.Scrub("x 192.0.2.7 y"); got != "x [scrubbed] y" {
		t.Errorf("Scrub = %q; want %q", got, "x [scrubbed] y")
	}
}

func TestScrubNothingToHide(t *testing.T) {
	t.Parallel()
	for _, s := range []*Scrubber{nil, {}, NewScrubber(), NewScrubber(netip.Addr{})} {
		if !s.Empty() {
			t.Errorf("%v: Empty() = false; want true", s)
		}
		if got := s.Scrub("192.0.2.7"); got != "192.0.2.7" {
			t.Errorf("Scrub = %q; want it unchanged", got)
		}
	}
}

func TestScrubBytesUnchangedIsSame(t *testing.T) {
	t.Parallel()
	s := NewScrubber(netip.MustParseAddr("192.0.2.7"))
	in := []byte("nothing to hide")
	if got := s.ScrubBytes(in); &got[0] != &in[0] {
		t.Error("ScrubBytes copied a slice with nothing to hide")
	}
}

// addrForms returns spellings of a that the scrubber must hide: the
// address text in every notation, dashed as ISP host names spell it, an
// IPv4 address embedded in NAT64, 6to4, Teredo and ISATAP addresses, and
// for an IPv6 address with a /64 of its own another address of that /64
// and the ip6.arpa name.
func addrForms(a netip.Addr) []string {
	forms := []string{a.String(), strings.ToUpper(a.String()), a.StringExpanded(),
		strings.ReplaceAll(a.String(), ".", "-")}
	if a.Is4() {
		b := a.As4()
		mapped := netip.AddrFrom16(netip.AddrFrom4(b).As16())
		embed := func(prefix [16]byte, at ...int) netip.Addr {
			for i, k := range at {
				prefix[k] = b[i]
			}
			return netip.AddrFrom16(prefix)
		}
		nat64 := embed([16]byte{0, 0x64, 0xff, 0x9b}, 12, 13, 14, 15)
		local48 := embed([16]byte{0, 0x64, 0xff, 0x9b, 0, 1}, 6, 7, 9, 10)
		local56 := embed([16]byte{0, 0x64, 0xff, 0x9b, 0, 1, 0xab}, 7, 9, 10, 11)
		local64 := embed([16]byte{0, 0x64, 0xff, 0x9b, 0, 1, 0xab, 0xcd}, 9, 10, 11, 12)
		sixToFour := embed([16]byte{0x20, 0x02, 15: 1}, 2, 3, 4, 5)
		teredo := netip.AddrFrom16([16]byte{0x20, 0x01, 0, 0, 0x41, 0x36, 0xe3, 0x78, 0x80, 0, 0x63, 0xbf, ^b[0], ^b[1], ^b[2], ^b[3]})
		isatap := embed([16]byte{0xfe, 0x80, 10: 0x5e, 11: 0xfe}, 12, 13, 14, 15)
		forms = append(forms, "::ffff:"+a.String(), mapped.StringExpanded(), mapped.String(),
			"64:ff9b::"+a.String(), nat64.String(), local48.String(), local56.String(), local64.String(),
			sixToFour.String(), strings.ReplaceAll(sixToFour.String(), ":", "-"), teredo.String(), isatap.String())
		return forms
	}
	forms = append(forms, strings.ToUpper(a.StringExpanded()),
		strings.ReplaceAll(a.String(), ":", "-"), strings.ReplaceAll(a.StringExpanded(), ":", "-"))
	if _, ok := own64(a); ok {
		b := a.As16()
		for i := 8; i < 16; i++ {
			b[i] ^= 0x5a
		}
		neighbour := netip.AddrFrom16(b)
		forms = append(forms, neighbour.String(), strings.ReplaceAll(neighbour.String(), ":", "-"), ip6Reverse(a))
	}
	return forms
}

// FuzzScrub inserts a hidden address, in some spelling, into arbitrary
// text and checks that Scrub does not panic, that neither that spelling
// nor the canonical and expanded ones survive, and that ScrubBytes agrees.
func FuzzScrub(f *testing.F) {
	f.Add("read udp ->198.51.100.53:53: i/o timeout", []byte{192, 0, 2, 7}, uint8(0), uint(9), ":5353")
	f.Add("dial tcp : refused", []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}, uint8(1), uint(9), "]:443")
	f.Add("", []byte{0, 0, 0, 0}, uint8(3), uint(0), "")
	f.Add("fff:", []byte{255, 255, 255, 255}, uint8(4), uint(3), "%eth0")
	f.Add("1.1.1.1.1.1", []byte{1, 1, 1, 1}, uint8(0), uint(2), "1")
	f.Add("\xff\xfe[", []byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint8(2), uint(3), "%25x]")
	f.Add("host .ipv6.isp", []byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 7}, uint8(5), uint(5), "")
	f.Add("a-b", []byte{192, 0, 2, 7}, uint8(3), uint(2), "-1")
	f.Add("dial tcp [", []byte{192, 0, 2, 7}, uint8(11), uint(10), "]:443")
	f.Add("x", []byte{192, 0, 2, 7}, uint8(17), uint(1), ".example")
	f.Add("PTR ", []byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 7}, uint8(9), uint(4), ".")
	f.Fuzz(func(t *testing.T, text string, ip []byte, form uint8, pos uint, suffix string) {
		var a netip.Addr
		switch {
		case len(ip) >= 16:
			a = netip.AddrFrom16([16]byte(ip[:16])).Unmap()
		case len(ip) >= 4:
			a = netip.AddrFrom4([4]byte(ip[:4]))
		default:
			return
		}
		forms := addrForms(a)
		written := forms[int(form)%len(forms)]
		p := int(pos % uint(len(text)+1))
		in := text[:p] + written + suffix + text[p:]

		s := NewScrubber(a)
		out := s.Scrub(in)
		lower := lowerASCII(out)
		for _, txt := range []string{written, a.String(), a.StringExpanded()} {
			if strings.Contains(lower, lowerASCII(txt)) {
				t.Fatalf("Scrub(%q) = %q still holds %q", in, out, txt)
			}
		}
		if got := s.ScrubBytes([]byte(in)); !bytes.Equal(got, []byte(out)) {
			t.Fatalf("ScrubBytes(%q) = %q; Scrub gave %q", in, got, out)
		}
		// Scrubbing is idempotent: "[scrubbed]" holds no address.
		if again := s.Scrub(out); again != out {
			t.Fatalf("Scrub not idempotent: %q then %q", out, again)
		}
	})
}

// lowerASCII lowers ASCII letters only: the oracle for the scrubber's
// case-insensitive search.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// ip6Reverse returns the ip6.arpa name of a, nibble by nibble.
func ip6Reverse(a netip.Addr) string {
	const hex = "0123456789abcdef"
	b := a.As16()
	var sb strings.Builder
	for i := 15; i >= 0; i-- {
		sb.WriteByte(hex[b[i]&0xf])
		sb.WriteByte('.')
		sb.WriteByte(hex[b[i]>>4])
		sb.WriteByte('.')
	}
	return sb.String() + "ip6.arpa"
}

// TestScrubHostNamesAndEmbeddings covers the spellings ISP host names and
// IPv6 transition mechanisms give the volunteer's addresses: dashed IPv6,
// the other addresses of the volunteer's /64 (temporary addresses rotate
// during a run), and an IPv4 address embedded in NAT64 (64:ff9b::/96 and
// the local-use 64:ff9b:1::/48 at each RFC 6052 prefix length), 6to4,
// Teredo, ISATAP, IPv4-compatible and IPv4-translated IPv6.
func TestScrubHostNamesAndEmbeddings(t *testing.T) {
	t.Parallel()
	s := NewScrubber(netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8:1:2::7"))
	tests := []struct{ name, in, want string }{
		{"dashed ipv6 compressed", "host 2001-db8-1-2--7.ipv6.isp", "host [scrubbed].ipv6.isp"},
		{"dashed ipv6 expanded", "2001-0db8-0001-0002-0000-0000-0000-0007.dyn.example", "[scrubbed].dyn.example"},
		{"dashed ipv6 upper case", "IP-2001-DB8-1-2-0-0-0-7.ISP", "IP-[scrubbed].ISP"},
		{"dashed ipv6 neighbour in the /64", "2001-db8-1-2-a1b2-c3d4-e5f6-789.dyn.isp", "[scrubbed].dyn.isp"},
		{"dashed ipv4 leading zeros", "host 192-000-002-007.dsl.test", "host [scrubbed].dsl.test"},
		{"dashed ipv4 after hex letters", "abc192-0-2-7.test", "abc[scrubbed].test"},
		{"other dashed ipv6 untouched", "2001-db8-1-3--7.ipv6.isp 2001-db8--7", "2001-db8-1-3--7.ipv6.isp 2001-db8--7"},
		{"dates and uuids untouched", "2026-11-24 550e8400-e29b-41d4-a716-446655440000", "2026-11-24 550e8400-e29b-41d4-a716-446655440000"},
		{"temporary address of the /64", "read udp [2001:db8:1:2:a1b2:c3d4:e5f6:789]:5353->x", "read udp [scrubbed]:5353->x"},
		{"the /64 itself", "prefix 2001:db8:1:2::/64", "prefix [scrubbed]/64"},
		{"other /64 untouched", "2001:db8:1:3::7 2001:db8:1::7", "2001:db8:1:3::7 2001:db8:1::7"},
		{"ip6.arpa name of the /64", ip6Reverse(netip.MustParseAddr("2001:db8:1:2:a1b2:c3d4:e5f6:789")) + ". PTR", "[scrubbed]. PTR"},
		{"ip6.arpa of another /64 untouched", ip6Reverse(netip.MustParseAddr("2001:db8:1:3::7")), ip6Reverse(netip.MustParseAddr("2001:db8:1:3::7"))},
		{"nat64 well-known prefix in hex", "dial tcp [64:ff9b::c000:207]:443", "dial tcp [scrubbed]:443"},
		{"nat64 well-known prefix dotted", "64:ff9b::192.0.2.7", "[scrubbed]"},
		{"nat64 local-use /48", "64:ff9b:1:c000:2:700::", "[scrubbed]"},
		{"nat64 local-use /56", "64:ff9b:1:abc0:0:207::", "[scrubbed]"},
		{"nat64 local-use /64", "64:ff9b:1:abcd:c0:2:700:0", "[scrubbed]"},
		{"nat64 local-use /96", "64:ff9b:1:abcd:ef01:2345:c000:207", "[scrubbed]"},
		{"nat64 dashed", "64-ff9b--c000-207.nat64.test", "[scrubbed].nat64.test"},
		{"other nat64 untouched", "64:ff9b::c000:208 64:ff9b:2:1:c000:207::", "64:ff9b::c000:208 64:ff9b:2:1:c000:207::"},
		{"6to4", "src 2002:c000:207::1 and 2002:c000:0207:5:2e0:81ff:fe12:3456", "src [scrubbed] and [scrubbed]"},
		{"6to4 dashed", "2002-c000-207--1.example", "[scrubbed].example"},
		{"teredo client", "2001:0:4136:e378:8000:63bf:3fff:fdf8", "[scrubbed]"},
		{"isatap", "fe80::5efe:c000:207 fe80::200:5efe:c000:207", "[scrubbed] [scrubbed]"},
		{"ipv4-compatible in hex", "::c000:207", "[scrubbed]"},
		{"ipv4-translated in hex", "::ffff:0:c000:207", "[scrubbed]"},
		{"other 6to4 untouched", "2002:c000:208::1", "2002:c000:208::1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := s.Scrub(tc.in); got != tc.want {
				t.Errorf("Scrub(%q) = %q; want %q", tc.in, got, tc.want)
			}
			if got := s.ScrubBytes([]byte(tc.in)); string(got) != tc.want {
				t.Errorf("ScrubBytes(%q) = %q; want %q", tc.in, got, tc.want)
			}
		})
	}
}

// A hidden 6to4, Teredo or ISATAP address is the address of a host whose
// IPv4 address it carries: that IPv4 address is hidden too.
func TestScrubOwnTransitionAddress(t *testing.T) {
	t.Parallel()
	for _, own := range []string{"2002:c000:207::1", "2001:0:4136:e378:8000:63bf:3fff:fdf8", "fe80::5efe:c000:207"} {
		s := NewScrubber(netip.MustParseAddr(own))
		if got := s.Scrub("x 192.0.2.7 y"); got != "x [scrubbed] y" {
			t.Errorf("hiding %s: Scrub = %q; want %q", own, got, "x [scrubbed] y")
		}
	}
}
