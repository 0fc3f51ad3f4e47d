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
		{"ipv6 bare with port-like tail", "2001:db8::7:443", "[scrubbed]:443"},
		{"other ipv6 untouched", "2001:db8::8 2001:db8::6:7", "2001:db8::8 2001:db8::6:7"},
		{"ipv6 longer: scrubbed anyway", "2001:db8::70", "[scrubbed]0"},
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

// addrForms returns spellings of a: the address text that the form
// contains (which must not survive scrubbing) and the form as written.
func addrForms(a netip.Addr) []string {
	forms := []string{a.String(), strings.ToUpper(a.String()), a.StringExpanded()}
	if a.Is4() {
		b := a.As4()
		mapped := netip.AddrFrom16(netip.AddrFrom4(b).As16())
		forms = append(forms, "::ffff:"+a.String(), mapped.StringExpanded(), mapped.String())
	} else {
		forms = append(forms, strings.ToUpper(a.StringExpanded()))
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
