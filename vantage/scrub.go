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
// Each occurrence becomes [Scrubbed], found in two ways whose matches are
// merged:
//
//   - By meaning: every substring made of hex digits, '.' and ':' that
//     parses as an address equal to a hidden one. This catches IPv6 in any
//     spelling netip accepts (compressed anywhere, expanded, leading zeros,
//     upper case, an IPv4 tail), IPv4-mapped IPv6 of a hidden IPv4
//     ("::ffff:192.0.2.7", "::ffff:c000:207"), and IPv4 with leading zeros
//     ("192.000.002.007"). A surrounding "[...]" and a zone ("%eth0",
//     "%25eth0") go with the address; a port stays.
//     Every start and end in a run is tried, so an address is found
//     whatever surrounds it: hiding 192.0.2.7 also cuts "192.0.2.7" out
//     of "192.0.2.71" (too much rather than too little).
//   - By text: every case-insensitive occurrence of the dashed
//     ("192-0-2-7") and reverse-DNS ("7.2.0.192.in-addr.arpa") spellings
//     of an IPv4 address, which ISP host names embed.
//
// Spellings not caught: decimal or hex integers, octal, IPv6 reverse
// nibbles, percent-encoded colons.
type Scrubber struct {
	addrs    map[netip.Addr]struct{} // unmapped, without zone
	literals []string                // lower case, each with a '-'
	// lastOctets holds the last byte of each hidden IPv4 address: an
	// IPv4 candidate whose last part is not one of them is not parsed.
	lastOctets [256]bool
}

// NewScrubber returns a scrubber that hides addrs. Invalid addresses are
// ignored; zones are dropped; an IPv4-mapped IPv6 address hides its IPv4
// address.
func NewScrubber(addrs ...netip.Addr) *Scrubber {
	s := &Scrubber{addrs: make(map[netip.Addr]struct{})}
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		a = a.Unmap().WithZone("")
		if _, dup := s.addrs[a]; dup {
			continue
		}
		s.addrs[a] = struct{}{}
		if a.Is4() {
			b := a.As4()
			s.lastOctets[b[3]] = true
			s.literals = append(s.literals,
				strings.ReplaceAll(a.String(), ".", "-"),
				strconv.Itoa(int(b[3]))+"."+strconv.Itoa(int(b[2]))+"."+
					strconv.Itoa(int(b[1]))+"."+strconv.Itoa(int(b[0]))+".in-addr.arpa")
		}
	}
	return s
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
	// By text: each literal holds a '-', rare in records, so each '-' in
	// str is an anchor where the literals are compared.
	for from := 0; len(s.literals) > 0; from++ {
		k := strings.IndexByte(str[from:], '-')
		if k < 0 {
			break
		}
		from += k
		for _, lit := range s.literals {
			start := from - strings.IndexByte(lit, '-')
			if start >= 0 && start+len(lit) <= len(str) && strings.EqualFold(str[start:start+len(lit)], lit) {
				out = append(out, span{start, start + len(lit)})
			}
		}
	}
	return merge(out)
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
			if _, hidden := s.addrs[a.Unmap()]; !hidden {
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

func isZoneChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-'
}
