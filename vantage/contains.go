package vantage

import (
	"bytes"
	"encoding/hex"
	"strconv"
	"unsafe"
)

// Minimum source prefix lengths of an EDNS client-subnet option (RFC 7871)
// that [Scrubber.Contains] counts as the address: the /24 and /48 that
// resolvers commonly send point to a few hundred addresses at most.
const (
	ecsMinBits4 = 24
	ecsMinBits6 = 48
)

// Contains reports whether b, raw bytes such as a certificate's DER or a
// DNS message in wire format, holds a hidden address in any form the
// scrubber knows:
//
//   - binary: the 4 bytes of a hidden IPv4 address (an A record, an
//     iPAddress SAN), also inverted as a Teredo address carries it and
//     split around bits 64-71 as NAT64 /48 and /56 prefixes carry it; the
//     16 bytes of a hidden IPv6 address, or the first 8 of its /64;
//   - an EDNS client-subnet option whose address has at least the first
//     24 (IPv4) or 48 (IPv6) bits of a hidden address;
//   - hex, upper or lower case, without separators or with ':', '-' or ' '
//     between bytes ("c0000207", "C0:00:02:07"; an IPv6 /64 as 8 bytes);
//     an IPv4 address as a decimal integer ("3221225991");
//   - DNS names in wire format: a dotted IPv4 address as labels
//     ("\x03192\x010\x012\x017") and the in-addr.arpa and ip6.arpa names;
//   - every text form [Scrubber.Scrub] finds: dotted, dashed, reverse-DNS
//     names, IPv6 in any spelling, NAT64, 6to4, Teredo.
//
// It errs towards yes: a binary form may occur by chance (about once in
// 10^6 chains of a few kilobytes for 4 bytes). A nil or empty scrubber
// finds nothing. Contains is meant for deciding whether to withhold a raw
// field; it does not change b.
func (s *Scrubber) Contains(b []byte) bool {
	_, ok := s.find(b)
	return ok
}

// find is [Scrubber.Contains], saying which form was found.
func (s *Scrubber) find(b []byte) (string, bool) {
	if s.Empty() || len(b) == 0 {
		return "", false
	}
	for _, g := range s.raw.groups {
		if form, ok := g.find(b); ok {
			return form, true
		}
	}
	if s.clientSubnet(b) {
		return "client subnet", true
	}
	if len(s.spans(unsafe.String(&b[0], len(b)))) > 0 {
		return "text", true
	}
	return "", false
}

// rawNeedles are the byte strings Contains looks for besides text, in
// groups sharing their first two bytes so that a group costs one scan.
type rawNeedles struct {
	groups []needleGroup
	v4     [][4]byte // hidden IPv4 addresses, for client subnets
	v6     []prefix6 // hidden IPv6 addresses and /64s, for client subnets
}

// prefix6 is an IPv6 prefix: a hidden address (128 bits) or its /64.
type prefix6 struct {
	addr [16]byte
	bits int
}

type needleGroup struct {
	prefix  [2]byte // exact bytes every needle of the group starts with
	needles []needle
}

type needle struct {
	b    []byte // lower case when fold
	fold bool   // ASCII letters match in either case
	form string
}

// find returns the form of the first needle of g found in b.
func (g *needleGroup) find(b []byte) (string, bool) {
	for from := 0; ; from++ {
		k := bytes.Index(b[from:], g.prefix[:])
		if k < 0 {
			return "", false
		}
		from += k
		for _, n := range g.needles {
			if len(b)-from < len(n.b) {
				continue
			}
			if n.fold && equalFoldASCII(b[from:from+len(n.b)], n.b) || !n.fold && bytes.Equal(b[from:from+len(n.b)], n.b) {
				return n.form, true
			}
		}
	}
}

// equalFoldASCII compares x with lower, which is lower case, folding ASCII
// letters only.
func equalFoldASCII(x, lower []byte) bool {
	for i, c := range x {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// newRawNeedles builds the needles of s's hidden addresses.
func newRawNeedles(s *Scrubber) rawNeedles {
	var r rawNeedles
	var list []needle
	exact := func(form string, b ...byte) { list = append(list, needle{b: b, form: form}) }
	folded := func(form, str string) { list = append(list, needle{b: []byte(str), fold: true, form: form}) }
	hexForms := func(form string, b []byte) {
		h := hex.EncodeToString(b)
		folded(form, h)
		for _, sep := range []byte{':', '-', ' '} {
			spaced := make([]byte, 0, 3*len(b))
			for i := 0; i < len(h); i += 2 {
				if i > 0 {
					spaced = append(spaced, sep)
				}
				spaced = append(spaced, h[i:i+2]...)
			}
			folded(form, string(spaced))
		}
	}
	for a := range s.addrs {
		if a.Is4() {
			b := a.As4()
			r.v4 = append(r.v4, b)
			exact("binary", b[:]...)
			exact("binary teredo", ^b[0], ^b[1], ^b[2], ^b[3])
			exact("binary nat64 /48", b[0], b[1], 0, b[2], b[3])
			exact("binary nat64 /56", b[0], 0, b[1], b[2], b[3])
			hexForms("hex", b[:])
			hexForms("hex teredo", []byte{^b[0], ^b[1], ^b[2], ^b[3]})
			// As a decimal integer, when long enough not to occur by chance.
			if d := strconv.FormatUint(uint64(b[0])<<24|uint64(b[1])<<16|uint64(b[2])<<8|uint64(b[3]), 10); len(d) >= 7 {
				folded("decimal", d)
			}
			var fwd, rev []byte
			for i := range 4 {
				o, ro := strconv.Itoa(int(b[i])), strconv.Itoa(int(b[3-i]))
				fwd = append(append(fwd, byte(len(o))), o...)
				rev = append(append(rev, byte(len(ro))), ro...)
			}
			folded("dns name", string(fwd))
			folded("reverse dns name", string(rev)+"\x07in-addr\x04arpa")
			continue
		}
		b := a.As16()
		if p, ok := own64(a); ok {
			r.v6 = append(r.v6, prefix6{b, 64})
			exact("binary /64", p[:]...)
			hexForms("hex /64", p[:])
			labels := []byte(nibblesReversed(p[:], 0))
			// Each nibble is a label of length 1: the separator after a
			// nibble is the next label's length.
			wire := append([]byte{1}, labels[:len(labels)-1]...)
			for i := 2; i < len(wire); i += 2 {
				wire[i] = 1
			}
			folded("reverse dns name", string(wire)+"\x03ip6\x04arpa")
			continue
		}
		r.v6 = append(r.v6, prefix6{b, 128})
		exact("binary", b[:]...)
		hexForms("hex", b[:])
	}
	for _, n := range list {
		variants := [][2]byte{{n.b[0], n.b[1]}}
		if n.fold {
			variants = caseVariants(n.b[0], n.b[1])
		}
		for _, p := range variants {
			r.add(p, n)
		}
	}
	return r
}

// add puts n into the group of prefix p.
func (r *rawNeedles) add(p [2]byte, n needle) {
	for i := range r.groups {
		if r.groups[i].prefix == p {
			r.groups[i].needles = append(r.groups[i].needles, n)
			return
		}
	}
	r.groups = append(r.groups, needleGroup{prefix: p, needles: []needle{n}})
}

// caseVariants returns the spellings of the two bytes x, y with their
// ASCII letters in either case.
func caseVariants(x, y byte) [][2]byte {
	var out [][2]byte
	for _, a := range cases(x) {
		for _, b := range cases(y) {
			out = append(out, [2]byte{a, b})
		}
	}
	return out
}

func cases(c byte) []byte {
	if c >= 'a' && c <= 'z' {
		return []byte{c, c - 'a' + 'A'}
	}
	return []byte{c}
}

// clientSubnet reports whether b holds an EDNS client-subnet option
// (code 8: length, family, source and scope prefix lengths, address
// truncated to the source prefix) for at least ecsMinBits of a hidden
// address.
func (s *Scrubber) clientSubnet(b []byte) bool {
	for from := 0; ; from++ {
		k := bytes.Index(b[from:], []byte{0, 8})
		if k < 0 {
			return false
		}
		from += k
		opt := b[from:]
		if len(opt) < 8 {
			return false
		}
		length := int(opt[2])<<8 | int(opt[3])
		family := int(opt[4])<<8 | int(opt[5])
		bits := int(opt[6])
		n := (bits + 7) / 8
		if length != 4+n || len(opt) < 8+n {
			continue
		}
		addr := opt[8 : 8+n]
		switch {
		case family == 1 && bits >= ecsMinBits4 && bits <= 32:
			for _, h := range s.raw.v4 {
				if prefixEqual(addr, h[:], bits) {
					return true
				}
			}
		case family == 2 && bits >= ecsMinBits6 && bits <= 128:
			for _, h := range s.raw.v6 {
				// Within a hidden /64, any interface identifier.
				if prefixEqual(addr, h.addr[:], min(bits, h.bits)) {
					return true
				}
			}
		}
	}
}

// prefixEqual reports whether the first bits bits of x and y are equal;
// both hold at least that many.
func prefixEqual(x, y []byte, bits int) bool {
	full := bits / 8
	if !bytes.Equal(x[:full], y[:full]) {
		return false
	}
	if rest := bits % 8; rest != 0 {
		mask := byte(0xff) << (8 - rest)
		return x[full]&mask == y[full]&mask
	}
	return true
}
