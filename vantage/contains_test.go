package vantage

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestContains finds each raw form of the hidden addresses (192.0.2.7 and
// 2001:db8:1:2::7 with its /64) in bytes such as DER and DNS wire messages
// carry them, and says which form it found.
func TestContains(t *testing.T) {
	t.Parallel()
	s := NewScrubber(netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8:1:2::7"))
	v6 := netip.MustParseAddr("2001:db8:1:2::7").As16()
	neighbour := netip.MustParseAddr("2001:db8:1:2:a1b2:c3d4:e5f6:789").As16()
	junk := "\x30\x82\x01\x0a\x02\x82\x01\x01\x00\xc3\x5a"
	tests := []struct {
		name string
		in   string
		form string // "" when nothing must be found
	}{
		{"ipv4 iPAddress SAN", "\x87\x04\xc0\x00\x02\x07", "binary"},
		{"ipv4 A record", "\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04\xc0\x00\x02\x07", "binary"},
		{"ipv6 iPAddress SAN", "\x87\x10" + string(v6[:]), "binary /64"},
		{"ipv6 neighbour in the /64", "\x87\x10" + string(neighbour[:]), "binary /64"},
		{"teredo client, binary", "\x20\x01\x00\x00\x41\x36\xe3\x78\x80\x00\x63\xbf\x3f\xff\xfd\xf8", "binary teredo"},
		{"nat64 /48, binary", "\x00\x64\xff\x9b\x00\x01\xc0\x00\x00\x02\x07\x00\x00\x00\x00\x00", "binary nat64 /48"},
		// For 192.0.2.7 the /48 and /56 splits are the same bytes; see
		// TestContainsNAT64Split.
		{"nat64 /56, binary", "\x00\x64\xff\x9b\x00\x01\xab\xc0\x00\x00\x02\x07\x00\x00\x00\x00", "binary nat64 /48"},
		{"client subnet /24", "\x00\x08\x00\x07\x00\x01\x18\x00\xc0\x00\x02", "client subnet"},
		{"client subnet /32 scope /24", "\x00\x08\x00\x08\x00\x01\x20\x18\xc0\x00\x02\x07", "binary"},
		{"client subnet /56 of the /64", "\x00\x08\x00\x0b\x00\x02\x38\x00\x20\x01\x0d\xb8\x00\x01\x00", "client subnet"},
		{"client subnet /60 of a neighbour", "\x00\x08\x00\x0c\x00\x02\x3c\x00" + string(neighbour[:7]) + string(neighbour[7]&0xf0), "client subnet"},
		{"client subnet /16: not the address", "\x00\x08\x00\x06\x00\x01\x10\x00\xc0\x00", ""},
		{"client subnet /24 of another network", "\x00\x08\x00\x07\x00\x01\x18\x00\xc0\x00\x03", ""},
		{"client subnet with a wrong length", "\x00\x08\x00\x09\x00\x01\x18\x00\xc0\x00\x02", ""},
		{"hex", junk + "c0000207", "hex"},
		{"hex upper case with colons", "C0:00:02:07", "hex"},
		{"hex with dashes", "serial c0-00-02-07", "hex"},
		{"hex with spaces", "c0 00 02 07", "hex"},
		{"hex ipv6 /64", "20010DB800010002a1b2c3d4e5f60789", "hex /64"},
		{"hex ipv6 with colons", "20:01:0d:b8:00:01:00:02:00:00", "hex /64"},
		{"hex teredo", "3ffffdf8", "hex teredo"},
		{"decimal", "id=3221225991;", "decimal"},
		{"dotted in a subject", junk + "\x0c\x0c192.0.2.7 CA", "text"},
		{"dashed in a SAN", "\x82\x11192-0-2-7.dsl.isp", "text"},
		{"dashed ipv6 in a SAN", "\x82\x182001-db8-1-2--7.ipv6.isp", "text"},
		{"ipv6 text neighbour", "\x0c\x1f2001:db8:1:2:a1b2:c3d4:e5f6:789", "text"},
		{"nat64 text", "64:ff9b::c000:207", "text"},
		{"in-addr.arpa text", "7.2.0.192.in-addr.arpa", "text"},
		{"wire name, dotted", "\x03192\x010\x012\x017\x03nip\x02io\x00", "dns name"},
		{"wire name, reverse", "\x017\x012\x010\x03192\x07IN-ADDR\x04ARPA\x00", "reverse dns name"},
		{"wire name, ip6.arpa of the /64", wireName(ip6Reverse(netip.AddrFrom16(neighbour))), "reverse dns name"},
		{"other address, binary", "\x87\x04\xc0\x00\x02\x08", ""},
		{"other /64, binary", "\x20\x01\x0d\xb8\x00\x01\x00\x03\x00\x00\x00\x00\x00\x00\x00\x07", ""},
		{"other wire name", "\x03192\x010\x012\x018\x00", ""},
		{"junk", junk, ""},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			form, ok := s.find([]byte(tc.in))
			if ok != (tc.form != "") || form != tc.form {
				t.Errorf("find(%q) = %q, %v; want %q", tc.in, form, ok, tc.form)
			}
			if s.Contains([]byte(tc.in)) != ok {
				t.Errorf("Contains(%q) disagrees with find", tc.in)
			}
		})
	}
}

// TestContainsNAT64Split finds an IPv4 address split around bits 64-71 of
// a NAT64 address under a /48 and under a /56 prefix (RFC 6052).
func TestContainsNAT64Split(t *testing.T) {
	t.Parallel()
	s := NewScrubber(netip.MustParseAddr("198.51.100.53"))
	for in, want := range map[string]string{
		"\x00\x64\xff\x9b\x00\x01\xc6\x33\x00\x64\x35\x00\x00\x00\x00\x00": "binary nat64 /48",
		"\x00\x64\xff\x9b\x00\x01\xab\xc6\x00\x33\x64\x35\x00\x00\x00\x00": "binary nat64 /56",
	} {
		if form, ok := s.find([]byte(in)); !ok || form != want {
			t.Errorf("find(%q) = %q, %v; want %q", in, form, ok, want)
		}
	}
}

// wireName returns name in DNS wire format.
func wireName(name string) string {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		panic(err)
	}
	return string(buf[:n])
}

func TestContainsNothingToHide(t *testing.T) {
	t.Parallel()
	for _, s := range []*Scrubber{nil, {}, NewScrubber()} {
		if s.Contains([]byte("\xc0\x00\x02\x07 192.0.2.7")) {
			t.Errorf("%v: Contains = true; want false", s)
		}
	}
}

// TestContainsCertificatesAndMessages builds real DER certificates and
// DNS messages: those that carry the hidden address (in the subject, a
// DNS or IP SAN, an answer, a client-subnet option) are found, the same
// without it are not.
func TestContainsCertificatesAndMessages(t *testing.T) {
	t.Parallel()
	s := NewScrubber(netip.MustParseAddr("203.0.113.77"), netip.MustParseAddr("2001:db8:77::1"))
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cert := func(cn string, dnsNames []string, ips ...string) []byte {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn, Organization: []string{"Forged Inc"}},
			NotBefore: time.Unix(1e9, 0), NotAfter: time.Unix(2e9, 0), DNSNames: dnsNames,
		}
		for _, ip := range ips {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	msg := func(answer string, ecs string) []byte {
		m := new(dns.Msg)
		m.SetQuestion("example.test.", dns.TypeA)
		m.Response = true
		if answer != "" {
			rr, err := dns.NewRR("example.test. 300 IN A " + answer)
			if err != nil {
				t.Fatal(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		m.SetEdns0(1232, false)
		if ecs != "" {
			p := netip.MustParsePrefix(ecs)
			family := uint16(1)
			if p.Addr().Is6() {
				family = 2
			}
			opt := m.IsEdns0()
			opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: family,
				SourceNetmask: uint8(p.Bits()), SourceScope: 0, Address: p.Addr().AsSlice()})
		}
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want bool
	}{
		{"clean leaf", cert("example.test", []string{"example.test", "www.example.test"}, "198.51.100.1"), false},
		{"address in the subject", cert("client 203.0.113.77", []string{"example.test"}), true},
		{"address in a DNS SAN", cert("example.test", []string{"203-0-113-77.dyn.isp.test"}), true},
		{"address in an IP SAN", cert("example.test", nil, "203.0.113.77"), true},
		{"neighbour of the ipv6 address in an IP SAN", cert("example.test", nil, "2001:db8:77::beef"), true},
		{"clean answer", msg("198.51.100.1", ""), false},
		{"address in an answer", msg("203.0.113.77", ""), true},
		{"client subnet /24 of the address", msg("198.51.100.1", "203.0.113.0/24"), true},
		{"client subnet /56 of the ipv6 address", msg("198.51.100.1", "2001:db8:77::/56"), true},
		{"client subnet of another network", msg("198.51.100.1", "198.51.100.0/24"), false},
	}
	for _, tc := range tests {
		if got := s.Contains(tc.in); got != tc.want {
			form, _ := s.find(tc.in)
			t.Errorf("%s: Contains = %v (%q); want %v", tc.name, got, form, tc.want)
		}
	}
}

// rawForms returns raw forms of a that Contains must find.
func rawForms(a netip.Addr) [][]byte {
	var out [][]byte
	for _, f := range addrForms(a) {
		out = append(out, []byte(f))
	}
	if a.Is4() {
		b := a.As4()
		out = append(out, b[:], []byte(fmt.Sprintf("%02X:%02x:%02x:%02x", b[0], b[1], b[2], b[3])),
			[]byte(wireName(a.String()+".nip.io")),
			[]byte(wireName(fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa", b[3], b[2], b[1], b[0]))),
			append([]byte{0, 8, 0, 7, 0, 1, 24, 0}, b[:3]...))
		return out
	}
	b := a.As16()
	out = append(out, b[:], []byte(fmt.Sprintf("%X", b[:])))
	if _, ok := own64(a); ok {
		out = append(out, []byte(wireName(ip6Reverse(a))), append([]byte{0, 8, 0, 11, 0, 2, 56, 0}, b[:7]...))
	}
	return out
}

// FuzzContains inserts a raw form of a hidden address into arbitrary bytes
// and checks that Contains finds it, and that on arbitrary bytes it never
// panics and finds whatever Scrub would replace.
func FuzzContains(f *testing.F) {
	f.Add([]byte("\x30\x82\x01\x0a\x02\x82"), []byte{192, 0, 2, 7}, uint8(0), uint(3))
	f.Add([]byte("\x00\x08\x00\x07\x00\x01\x18\x00"), []byte{203, 0, 113, 77}, uint8(30), uint(8))
	f.Add([]byte{0, 8, 0, 0x0b, 0, 2, 0x38}, []byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 7}, uint8(21), uint(7))
	f.Add([]byte{}, []byte{0, 0, 0, 0}, uint8(2), uint(0))
	f.Add([]byte("\x03192"), []byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint8(1), uint(4))
	f.Fuzz(func(t *testing.T, data, ip []byte, form uint8, pos uint) {
		var a netip.Addr
		switch {
		case len(ip) >= 16:
			a = netip.AddrFrom16([16]byte(ip[:16])).Unmap()
		case len(ip) >= 4:
			a = netip.AddrFrom4([4]byte(ip[:4]))
		default:
			return
		}
		s := NewScrubber(a)
		if !bytes.Equal(s.ScrubBytes(data), data) && !s.Contains(data) {
			t.Fatalf("Scrub changes %q but Contains does not find %s in it", data, a)
		}
		forms := rawForms(a)
		written := forms[int(form)%len(forms)]
		p := int(pos % uint(len(data)+1))
		in := append(append(append([]byte{}, data[:p]...), written...), data[p:]...)
		if !s.Contains(in) {
			t.Fatalf("Contains(%q) = false; %s is in it as %q", in, a, written)
		}
	})
}

// benchChain returns a certificate chain of the usual size: an RSA-2048
// leaf with 12 names, signed by an RSA-2048 intermediate (about 3 KB).
func benchChain(tb testing.TB) [][]byte {
	tb.Helper()
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	leafKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Example Issuing CA R3", Organization: []string{"Example Trust Services"}, Country: []string{"US"}},
		NotBefore: time.Unix(1e9, 0), NotAfter: time.Unix(2e9, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, CRLDistributionPoints: []string{"http://crl.example.test/r3.crl"},
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for i := range 12 {
		names = append(names, fmt.Sprintf("www%d.news-portal.example.kz", i))
	}
	leaf := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes([]byte(strings.Repeat("\x5c", 16))), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Unix(1.7e9, 0), NotAfter: time.Unix(1.8e9, 0), DNSNames: names,
		OCSPServer: []string{"http://ocsp.example.test"}, IssuingCertificateURL: []string{"http://ca.example.test/r3.der"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	return [][]byte{leafDER, caDER}
}

// BenchmarkContainsChain searches a clean 3 KB chain for a run's hidden
// addresses (public IPv4 and IPv6, a LAN address, a link-local one): what
// the probe does for every handshake.
func BenchmarkContainsChain(b *testing.B) {
	chain := benchChain(b)
	s := NewScrubber(netip.MustParseAddr("203.0.113.77"), netip.MustParseAddr("2001:db8:77::1"),
		netip.MustParseAddr("192.168.1.23"), netip.MustParseAddr("fe80::1c2d:3eff:fe4f:5a6b"))
	n := 0
	for _, c := range chain {
		n += len(c)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range chain {
			if s.Contains(c) {
				form, _ := s.find(c)
				b.Fatalf("found the address (%s) in a clean chain", form)
			}
		}
	}
}
