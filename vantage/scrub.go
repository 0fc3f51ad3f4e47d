package vantage

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
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
//   - By text: every case-insensitive occurrence of the canonical and
//     expanded spellings, whatever surrounds them, plus the dashed
//     ("192-0-2-7") and reverse-DNS ("7.2.0.192.in-addr.arpa") spellings
//     of an IPv4 address, which ISP host names embed.
//
// The second rule scrubs too much rather than too little: hiding 192.0.2.7
// also cuts "192.0.2.7" out of "192.0.2.71". Spellings not caught: decimal
// or hex integers, octal, IPv6 reverse nibbles, percent-encoded colons.
type Scrubber struct {
	addrs    map[netip.Addr]struct{} // unmapped, without zone
	literals []string                // lower case
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
			s.literals = append(s.literals, a.String(),
				strings.ReplaceAll(a.String(), ".", "-"),
				strconv.Itoa(int(b[3]))+"."+strconv.Itoa(int(b[2]))+"."+
					strconv.Itoa(int(b[1]))+"."+strconv.Itoa(int(b[0]))+".in-addr.arpa")
		} else {
			s.literals = append(s.literals, a.String(), a.StringExpanded())
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
	spans := s.spans(string(b))
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
		j := i
		for j < len(str) && isAddrChar(str[j]) {
			j++
		}
		out = s.matchRun(str, i, j, out)
		i = j
	}
	// By text.
	lower := asciiLower(str)
	for _, lit := range s.literals {
		for from := 0; ; {
			k := strings.Index(lower[from:], lit)
			if k < 0 {
				break
			}
			out = append(out, span{from + k, from + k + len(lit)})
			from += k + 1
		}
	}
	return merge(out)
}

// matchRun adds, for each start in str[rs:re], the longest substring that
// parses as a hidden address.
func (s *Scrubber) matchRun(str string, rs, re int, out []span) []span {
	for i := rs; i < re; i++ {
		if str[i] == '.' {
			continue
		}
		for j := addrExtent(str, i, re); j >= i+2; j-- {
			c := str[i:j]
			if !plausibleAddr(c) {
				continue
			}
			a, ok := parseAddrLenient(c)
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

// plausibleAddr rejects most candidates that cannot parse, cheaply: the
// separator counts of IPv4 (3 dots), full IPv6 (7 colons, or 6 and an IPv4
// tail) and compressed IPv6 (one "::", at most 8 colons).
func plausibleAddr(c string) bool {
	last := c[len(c)-1]
	if last == '.' || last == ':' && !strings.HasSuffix(c, "::") {
		return false
	}
	colons, dots := strings.Count(c, ":"), strings.Count(c, ".")
	if colons == 0 {
		return dots == 3
	}
	if dots != 0 && dots != 3 {
		return false
	}
	switch strings.Count(c, "::") {
	case 0:
		return dots == 0 && colons == 7 || dots == 3 && colons == 6
	case 1:
		return colons <= 8
	}
	return false
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

func isAddrChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':'
}

func isZoneChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-'
}

// asciiLower lowers ASCII letters only, so byte offsets stay the same.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for k := i; k < len(b); k++ {
				if b[k] >= 'A' && b[k] <= 'Z' {
					b[k] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
