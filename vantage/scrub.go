package vantage

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unsafe"
)

// Scrubbed replaces each hidden address, as in OONI's failure strings.
const Scrubbed = "[scrubbed]"

// maxAddrText is the longest textual IP address netip parses without a
// zone: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255".
const maxAddrText = 45

// Scrubber removes given addresses from text: failure strings, log lines,
// errors, whole output files. It is immutable and safe for concurrent use;
// nil and the zero value hide nothing.
//
// Unlike OONI's scrubber, which removes every address, it removes only the
// ones it was built with (the volunteer's), since kzprobe's records hold
// target and resolver addresses that are evidence.
//
// An address is hidden when it is one it was built with, when it is an
// IPv6 address in the /64 of one (a host's temporary addresses rotate
// within its /64 during a long run), or when it is an IPv6 address that
// embeds a hidden IPv4 address: NAT64 (64:ff9b::/96, and the local-use
// 64:ff9b:1::/48 at each RFC 6052 prefix length from /48 to /96), 6to4
// (2002::/16), a Teredo client (2001::/32), ISATAP, IPv4-compatible and
// IPv4-translated IPv6. A hidden 6to4, Teredo or ISATAP address hides the
// IPv4 address it carries, which is its host's.
//
// Each occurrence becomes [Scrubbed], found in three ways whose matches
// are merged:
//
//   - By meaning: every substring made of hex digits, '.' and ':' that
//     parses as a hidden address. This catches IPv6 in any spelling netip
//     accepts (compressed anywhere, expanded, leading zeros, upper case,
//     an IPv4 tail), IPv4-mapped IPv6 of a hidden IPv4 ("::ffff:192.0.2.7",
//     "::ffff:c000:207"), and IPv4 with leading zeros ("192.000.002.007").
//     A surrounding "[...]" and a zone ("%eth0", "%25eth0") go with the
//     address; a port stays.
//     Every start and end in a run is tried, so an address is found
//     whatever surrounds it: hiding 192.0.2.7 also cuts "192.0.2.7" out
//     of "192.0.2.71" (too much rather than too little).
//   - Dashed, by meaning: every run of hex digits and '-' is read again
//     with '-' as '.' and as ':', which finds the host names ISPs give
//     addresses ("192-0-2-7.dsl.example", "2001-db8-1-2--7.ipv6.isp").
//   - By text: every case-insensitive occurrence of the reverse-DNS names
//     of a hidden IPv4 address ("7.2.0.192.in-addr.arpa") and of a hidden
//     IPv6 /64 (its 16 nibbles, then "ip6.arpa", with up to 16 nibbles of
//     an interface identifier before them).
//
// Spellings not caught in text: decimal or hex integers, octal,
// percent-encoded colons. [Scrubber.Contains] also looks for binary and
// hex forms in raw bytes.
type Scrubber struct {
	addrs map[netip.Addr]struct{} // unmapped, without zone
	// nets64 holds the /64 of each hidden IPv6 address that has one of
	// its own (not loopback, unspecified, multicast, nor in ::/64).
	nets64 map[[8]byte]struct{}
	has4   bool     // some hidden address is IPv4
	arpas  []string // lower case reverse-DNS names, each ending in ".arpa"
	// lastOctets holds the last byte of each hidden IPv4 address: an
	// IPv4 candidate whose last part is not one of them is not parsed.
	lastOctets [256]bool
	raw        rawNeedles // what Contains looks for besides text
}

// NewScrubber returns a scrubber that hides addrs. Invalid addresses are
// ignored; zones are dropped; an IPv4-mapped IPv6 address hides its IPv4
// address, and so does a 6to4, Teredo or ISATAP address.
func NewScrubber(addrs ...netip.Addr) *Scrubber {
	s := &Scrubber{addrs: make(map[netip.Addr]struct{}), nets64: make(map[[8]byte]struct{})}
	var all []netip.Addr
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		a = a.Unmap().WithZone("")
		all = append(all, a)
		if v4, ok := hostIPv4(a.As16()); ok && a.Is6() {
			all = append(all, v4)
		}
	}
	for _, a := range all {
		if _, dup := s.addrs[a]; dup {
			continue
		}
		s.addrs[a] = struct{}{}
		if a.Is4() {
			s.has4 = true
			b := a.As4()
			s.lastOctets[b[3]] = true
			s.arpas = append(s.arpas, strconv.Itoa(int(b[3]))+"."+strconv.Itoa(int(b[2]))+"."+
				strconv.Itoa(int(b[1]))+"."+strconv.Itoa(int(b[0]))+".in-addr.arpa")
			continue
		}
		if p, ok := own64(a); ok {
			if _, dup := s.nets64[p]; !dup {
				s.nets64[p] = struct{}{}
				s.arpas = append(s.arpas, nibblesReversed(p[:], '.')+"ip6.arpa")
			}
		}
	}
	s.raw = newRawNeedles(s)
	return s
}

// own64 returns the /64 holding a, when a is an address a host may use
// with other addresses of its /64.
func own64(a netip.Addr) ([8]byte, bool) {
	b := a.As16()
	p := [8]byte(b[:8])
	if a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() || p == [8]byte{} {
		return p, false
	}
	return p, true
}

// nibblesReversed spells b as reverse DNS does: its nibbles from the last
// to the first, each followed by sep.
func nibblesReversed(b []byte, sep byte) string {
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 4*len(b))
	for i := len(b) - 1; i >= 0; i-- {
		out = append(out, hex[b[i]&0xf], sep, hex[b[i]>>4], sep)
	}
	return string(out)
}

// hides reports whether a is hidden: one of s's addresses, in the /64 of
// one, or embedding a hidden IPv4 address.
func (s *Scrubber) hides(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	if _, ok := s.addrs[a]; ok {
		return true
	}
	if !a.Is6() {
		return false
	}
	b := a.As16()
	if len(s.nets64) > 0 {
		if _, ok := s.nets64[[8]byte(b[:8])]; ok {
			return true
		}
	}
	if !s.has4 {
		return false
	}
	var buf [4]netip.Addr
	for _, v4 := range embeddedIPv4(b, buf[:0]) {
		if _, ok := s.addrs[v4]; ok {
			return true
		}
	}
	return false
}

// embeddedIPv4 appends to out the IPv4 addresses that the IPv6 address b
// may carry by a standard transition mechanism: NAT64 (RFC 6052, RFC
// 8215), IPv4-compatible and IPv4-translated forms, and those of
// [hostIPv4]. It looks only at b's shape, so it may give addresses b does
// not mean; callers compare them with addresses they know.
func embeddedIPv4(b [16]byte, out []netip.Addr) []netip.Addr {
	v4 := func(x, y, z, w byte) netip.Addr { return netip.AddrFrom4([4]byte{x, y, z, w}) }
	switch {
	case [12]byte(b[:12]) == [12]byte{0, 0x64, 0xff, 0x9b}: // 64:ff9b::/96
		return append(out, v4(b[12], b[13], b[14], b[15]))
	case [6]byte(b[:6]) == [6]byte{0, 0x64, 0xff, 0x9b, 0, 1}: // 64:ff9b:1::/48
		// RFC 6052 puts the IPv4 address after a /48, /56, /64 or /96
		// prefix, skipping bits 64 to 71.
		return append(out,
			v4(b[6], b[7], b[9], b[10]),
			v4(b[7], b[9], b[10], b[11]),
			v4(b[9], b[10], b[11], b[12]),
			v4(b[12], b[13], b[14], b[15]))
	case [12]byte(b[:12]) == [12]byte{}: // IPv4-compatible ::a.b.c.d
		return append(out, v4(b[12], b[13], b[14], b[15]))
	case [12]byte(b[:12]) == [12]byte{8: 0xff, 9: 0xff}: // IPv4-translated ::ffff:0:a.b.c.d
		return append(out, v4(b[12], b[13], b[14], b[15]))
	}
	if v4, ok := hostIPv4(b); ok {
		out = append(out, v4)
	}
	return out
}

// hostIPv4 returns the IPv4 address of the host that uses the IPv6
// address b, when b is a 6to4 (2002:V4::/48), Teredo (2001::/32, the
// client's address inverted in the last 32 bits) or ISATAP (interface
// identifier 0:5efe:V4 or 200:5efe:V4) address.
func hostIPv4(b [16]byte) (netip.Addr, bool) {
	switch {
	case b[0] == 0x20 && b[1] == 0x02:
		return netip.AddrFrom4([4]byte(b[2:6])), true
	case [4]byte(b[:4]) == [4]byte{0x20, 0x01, 0, 0}:
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}), true
	case b[8]&^0x02 == 0 && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe:
		return netip.AddrFrom4([4]byte(b[12:16])), true
	}
	return netip.Addr{}, false
}

// Empty reports whether s hides nothing.
func (s *Scrubber) Empty() bool { return s == nil || len(s.addrs) == 0 }

// Scrub returns str with every hidden address replaced by [Scrubbed].
func (s *Scrubber) Scrub(str string) string {
	spans := s.spans(str)
	if len(spans) == 0 {
		return str
	}
	var b strings.Builder
	b.Grow(len(str))
	last := 0
	for _, sp := range spans {
		b.WriteString(str[last:sp.start])
		b.WriteString(Scrubbed)
		last = sp.end
	}
	b.WriteString(str[last:])
	return b.String()
}

// ScrubBytes is [Scrubber.Scrub] for bytes. It returns b itself when there
// is nothing to hide in it, else a new slice.
func (s *Scrubber) ScrubBytes(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	// spans only reads its argument and keeps none of it, and b is not
	// changed meanwhile: no copy of a whole record is needed.
	spans := s.spans(unsafe.String(&b[0], len(b)))
	if len(spans) == 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	last := 0
	for _, sp := range spans {
		out = append(out, b[last:sp.start]...)
		out = append(out, Scrubbed...)
		last = sp.end
	}
	return append(out, b[last:]...)
}

type span struct{ start, end int }

// spans returns the sorted, disjoint, non-adjacent byte ranges to replace.
func (s *Scrubber) spans(str string) []span {
	if s.Empty() {
		return nil
	}
	var out []span
	// By meaning: runs of address characters.
	for i := 0; i < len(str); {
		if !isAddrChar(str[i]) {
			i++
			continue
		}
		j, colons, dots := i, 0, 0
		for ; j < len(str) && isAddrChar(str[j]); j++ {
			switch str[j] {
			case ':':
				colons++
			case '.':
				dots++
			}
		}
		// Every spelling of an address has a colon (IPv6) or three dots
		// (IPv4): the hex and digit runs of base64 data, most of a
		// record, are skipped whole.
		if colons > 0 || dots >= 3 {
			out = s.matchRun(str, i, j, out)
		}
		i = j
	}
	// Dashed: runs of hex digits and '-' around each '-' (none in base64,
	// most of a record), read with '-' as '.' and as ':'.
	for from := 0; ; {
		k := strings.IndexByte(str[from:], '-')
		if k < 0 {
			break
		}
		i := from + k
		for i > 0 && isHexDigit(str[i-1]) {
			i--
		}
		j, dashes, double := i, 0, false
		for ; j < len(str) && isDashRunChar(str[j]); j++ {
			if str[j] == '-' {
				dashes++
				double = double || j > i && str[j-1] == '-'
			}
		}
		// An IPv4 address has 3 separators, an IPv6 one 7 or a "::".
		if dashes >= 3 || double {
			out = s.matchDashed(str[i:j], i, dashes, double, out)
		}
		from = j
	}
	// By text: each reverse-DNS name ends in ".arpa", rare in records,
	// so each '.' followed by "arpa" is an anchor where they are compared.
	for from := 0; len(s.arpas) > 0; from++ {
		k := strings.IndexByte(str[from:], '.')
		if k < 0 {
			break
		}
		from += k
		end := from + len(".arpa")
		if end > len(str) || !strings.EqualFold(str[from:end], ".arpa") {
			continue
		}
		for _, lit := range s.arpas {
			start := end - len(lit)
			if start < 0 || !strings.EqualFold(str[start:end], lit) {
				continue
			}
			if strings.HasSuffix(lit, ".ip6.arpa") {
				// The interface identifier's nibbles before the /64's.
				for n := 0; n < 16 && start >= 2 && str[start-1] == '.' && isHexDigit(str[start-2]); n++ {
					start -= 2
				}
			}
			out = append(out, span{start, end})
		}
	}
	return merge(out)
}

// matchDashed adds the hidden addresses found in run, a run of hex digits
// and dashes at offset off in the text, read with '-' as '.' and as ':'.
func (s *Scrubber) matchDashed(run string, off, dashes int, double bool, out []span) []span {
	var stack [64]byte
	buf := stack[:0]
	if len(run) > len(stack) {
		buf = make([]byte, 0, len(run))
	}
	buf = append(buf, run...)
	for _, sep := range []byte{'.', ':'} {
		if sep == '.' && dashes < 3 || sep == ':' && dashes < 7 && !double {
			continue
		}
		for k := range buf {
			if buf[k] == '-' || buf[k] == '.' || buf[k] == ':' {
				buf[k] = sep
			}
		}
		n := len(out)
		out = s.matchRun(unsafe.String(&buf[0], len(buf)), 0, len(buf), out)
		for k := n; k < len(out); k++ {
			out[k].start += off
			out[k].end += off
		}
	}
	return out
}

// matchRun adds, for each start in str[rs:re], the longest substring that
// parses as a hidden address.
func (s *Scrubber) matchRun(str string, rs, re int, out []span) []span {
	var ends [maxAddrText + 1]int
	for i := rs; i < re; i++ {
		if str[i] == '.' {
			continue
		}
		cands := plausibleEnds(str, i, addrExtent(str, i, re), ends[:0])
		for k := len(cands) - 1; k >= 0; k-- {
			j := cands[k]
			if v, ok := lastDecimal(str[i:j]); ok && (v > 255 || !s.lastOctets[v]) {
				continue
			}
			a, ok := parseAddrLenient(str[i:j])
			if !ok {
				continue
			}
			if !s.hides(a) {
				continue
			}
			sp := span{i, j}
			// A zone goes with the address: "%eth0", "%25eth0".
			if sp.end < len(str) && str[sp.end] == '%' {
				k := sp.end + 1
				for k < len(str) && isZoneChar(str[k]) {
					k++
				}
				if k > sp.end+1 {
					sp.end = k
				}
			}
			// So do brackets: "[2001:db8::1]:443" becomes "[scrubbed]:443".
			if sp.start > 0 && str[sp.start-1] == '[' && sp.end < len(str) && str[sp.end] == ']' {
				sp.start--
				sp.end++
			}
			out = append(out, sp)
			break
		}
	}
	return out
}

// addrExtent returns the end of the longest str[i:e] (e <= re) that could
// still hold an address: at most maxAddrText bytes, 8 colons, 3 dots, and 4
// hex digits between separators. It keeps long runs of hex digits (base64
// or hex certificate data) and of separators linear to scan.
func addrExtent(str string, i, re int) int {
	colons, dots, group := 0, 0, 0
	k := i
	for ; k < re && k-i < maxAddrText; k++ {
		switch str[k] {
		case ':':
			if colons++; colons > 8 || dots > 0 {
				return k
			}
			group = 0
		case '.':
			if dots++; dots > 3 {
				return k
			}
			group = 0
		default:
			if group++; group > 4 {
				return k
			}
		}
	}
	return k
}

// plausibleEnds appends to ends, in increasing order, each j in (i+1, e]
// for which str[i:j] has the shape of an address, and returns the result. The shapes, which reject most candidates that cannot parse
// in one pass over str[i:e]: IPv4 (3 dots), full IPv6 (7 colons, or 6 and
// an IPv4 tail), compressed IPv6 (one "::", at most 8 colons); no ":::",
// no trailing '.', and no trailing ':' but in "::".
func plausibleEnds(str string, i, e int, ends []int) []int {
	colons, dots, double := 0, 0, 0
	for j := i + 1; j <= e; j++ {
		switch c := str[j-1]; c {
		case ':':
			colons++
			if j-1 > i && str[j-2] == ':' {
				double++
				if j-2 > i && str[j-3] == ':' {
					return ends // ":::" never parses, nor does anything longer
				}
			}
		case '.':
			dots++
		}
		if j < i+2 {
			continue
		}
		last := str[j-1]
		if last == '.' || last == ':' && str[j-2] != ':' {
			continue
		}
		ok := false
		switch {
		case colons == 0:
			ok = dots == 3
		case dots != 0 && dots != 3:
		case double == 0:
			ok = dots == 0 && colons == 7 || dots == 3 && colons == 6
		case double == 1:
			ok = colons <= 8
		}
		if ok {
			ends = append(ends, j)
		}
	}
	return ends
}

// lastDecimal returns the value of the part after the last '.' of an
// IPv4 candidate, which has no ':' and ends in a digit, and false for any
// other candidate. A value above 255 is returned as is (the candidate does
// not parse).
func lastDecimal(c string) (int, bool) {
	if strings.IndexByte(c, ':') >= 0 {
		return 0, false
	}
	v, mul := 0, 1
	for k := len(c) - 1; k >= 0 && c[k] != '.'; k-- {
		d := c[k]
		if d < '0' || d > '9' || mul > 100 {
			return 256, true // hex letters or too many digits: no IPv4
		}
		v += int(d-'0') * mul
		mul *= 10
	}
	return v, true
}

// parseAddrLenient parses c as netip does, and also IPv4 with leading
// zeros in a part, read as decimal ("010" is 10).
func parseAddrLenient(c string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(c); err == nil {
		return a, true
	}
	if strings.IndexByte(c, ':') >= 0 {
		return netip.Addr{}, false
	}
	var b [4]byte
	parts := 0
	for p := range strings.SplitSeq(c, ".") {
		if parts == 4 || len(p) == 0 || len(p) > 3 {
			return netip.Addr{}, false
		}
		n := 0
		for k := 0; k < len(p); k++ {
			if p[k] < '0' || p[k] > '9' {
				return netip.Addr{}, false
			}
			n = n*10 + int(p[k]-'0')
		}
		if n > 255 {
			return netip.Addr{}, false
		}
		b[parts] = byte(n)
		parts++
	}
	if parts != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(b), true
}

func merge(spans []span) []span {
	if len(spans) < 2 {
		return spans
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return b.end - a.end
	})
	out := spans[:1]
	for _, sp := range spans[1:] {
		last := &out[len(out)-1]
		if sp.start <= last.end {
			last.end = max(last.end, sp.end)
			continue
		}
		out = append(out, sp)
	}
	return out
}

func isAddrChar(c byte) bool { return addrChars[c] }

// addrChars holds the bytes an address is spelt with: hex digits, '.', ':'.
var addrChars = func() (t [256]bool) {
	for _, c := range []byte("0123456789abcdefABCDEF.:") {
		t[c] = true
	}
	return t
}()

func isHexDigit(c byte) bool { return c != '.' && c != ':' && addrChars[c] }

func isDashRunChar(c byte) bool { return c == '-' || isHexDigit(c) }

func isZoneChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-'
}
