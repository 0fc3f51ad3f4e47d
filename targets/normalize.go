package targets

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Sentinel errors returned (wrapped, with detail) by [Normalize] and the
// readers. Test for them with [errors.Is].
var (
	// ErrEmpty means the input has no domain at all.
	ErrEmpty = errors.New("targets: empty input")
	// ErrIPLiteral means the input is an IP address (IPv4, IPv6, bracketed
	// IPv6, or a name whose last label is numeric, which browsers parse as
	// IPv4). The probe measures names, not addresses.
	ErrIPLiteral = errors.New("targets: IP literal, not a domain")
	// ErrMalformed means the input is not a domain, host:port or URL: a bad
	// character, an empty label, a label starting or ending with a hyphen,
	// invalid punycode or IDNA.
	ErrMalformed = errors.New("targets: malformed domain or URL")
	// ErrUnsupportedScheme means a URL whose scheme is not http or https.
	ErrUnsupportedScheme = errors.New("targets: unsupported URL scheme (want http or https)")
	// ErrInvalidPort means a port that is not a number from 1 to 65535.
	ErrInvalidPort = errors.New("targets: invalid port")
	// ErrLabelTooLong means a label longer than 63 bytes (RFC 1035),
	// counted after IDNA conversion, or longer than 252 bytes before it.
	ErrLabelTooLong = errors.New("targets: label longer than 63 bytes")
	// ErrNameTooLong means a name longer than 253 bytes without the trailing
	// dot (RFC 1035), counted after IDNA conversion, or a host longer than
	// 1024 bytes before it.
	ErrNameTooLong = errors.New("targets: name longer than 253 bytes")
	// ErrSingleLabel means a name without a dot ("localhost", "com"): not a
	// public domain.
	ErrSingleLabel = errors.New("targets: single-label name, not a public domain")
)

const (
	maxLabel = 63
	maxName  = 253
	// maxHost bounds a host before IDNA conversion. Punycode encoding
	// takes time quadratic in the length of a label, so one 64 KiB line
	// of distinct non-ASCII runes would take seconds; no host longer than
	// this converts to a name of 253 bytes or less in practice (four
	// bytes a rune, and room for ignored runes).
	maxHost = 1024
	// maxLabelInput bounds a label before IDNA conversion, for the same
	// reason: 63 runes of 4 bytes, each mapping to one ASCII byte, is the
	// longest input label that can convert to 63 bytes.
	maxLabelInput = 4 * maxLabel
)

// idnaProfile converts names to ASCII the way a browser looks them up
// (UTS #46 non-transitional processing, STD3 ASCII rules, bidi and joiner
// rules), except that it does not apply CheckHyphens: labels with "--" in
// positions 3 and 4 such as "r3---sn-apo3qvuoxuxbt-j5pe.googlevideo.com" are
// in common use. Leading and trailing hyphens are still rejected, by
// checkASCIIName. A *idna.Profile is read-only once built, so sharing it is
// safe.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.CheckHyphens(false),
)

// Normalize parses one input (a domain, a domain with a port, or an http or
// https URL) into a [Target] with Input set to input and Source empty.
//
// Accepted forms: "example.com", "Example.COM." (lower-cased, trailing dot
// removed), "example.com:8443", "example.com/path", "https://example.com",
// "http://x.example/", "https://user@example.com:8443/path?q#f" (only the
// host and the port are kept), and internationalised names such as
// "пример.рф" (converted to "xn--e1afmkfd.xn--p1ai"). Port is set only when
// the input has an explicit port; a scheme alone does not set it.
//
// Rejected with a wrapped sentinel: empty input ([ErrEmpty]), IP literals
// ([ErrIPLiteral]), schemes other than http and https
// ([ErrUnsupportedScheme]), bad ports ([ErrInvalidPort]), over-long labels
// and names ([ErrLabelTooLong], [ErrNameTooLong]), names without a dot
// ([ErrSingleLabel]), and anything else that is not a host name
// ([ErrMalformed]).
func Normalize(input string) (Target, error) {
	host, port, err := splitInput(strings.TrimSpace(input))
	if err != nil {
		return Target{}, err
	}
	domain, err := normalizeHost(host)
	if err != nil {
		return Target{}, err
	}
	return Target{Domain: domain, Port: port, Input: input}, nil
}

// splitInput returns the host and the explicit port (0 when none) of a
// trimmed input.
func splitInput(s string) (host string, port int, err error) {
	if s == "" {
		return "", 0, ErrEmpty
	}
	rest := s
	hasScheme := false
	// A scheme is "name://" before any '/', '?' or '#'. Without "//",
	// "example.com:8443" is a host and a port, not a scheme.
	if i := strings.IndexAny(s, ":/?#\\"); i >= 0 && s[i] == ':' && strings.HasPrefix(s[i:], "://") {
		scheme := s[:i]
		if !validScheme(scheme) {
			return "", 0, fmt.Errorf("%w: bad URL scheme %q", ErrMalformed, truncate(scheme, maxShownLabel))
		}
		switch strings.ToLower(scheme) {
		case "http", "https":
		default:
			return "", 0, fmt.Errorf("%w: %q", ErrUnsupportedScheme, truncate(scheme, maxShownLabel))
		}
		rest = s[i+len("://"):]
		hasScheme = true
	}
	// The authority ends at the path, query or fragment. Browsers treat '\'
	// as '/' in http(s) URLs, so it ends the authority too.
	if i := strings.IndexAny(rest, "/?#\\"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		if !hasScheme {
			// "user@example.com" is an e-mail address, not a target.
			return "", 0, fmt.Errorf("%w: '@' outside a URL", ErrMalformed)
		}
		rest = rest[i+1:] // drop the userinfo of a URL
	}
	if rest == "" {
		return "", 0, fmt.Errorf("%w: no host", ErrMalformed)
	}

	portText, hasPort := "", false
	switch {
	case rest[0] == '[':
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", 0, fmt.Errorf("%w: unclosed '['", ErrMalformed)
		}
		inner := strings.Replace(rest[1:end], "%25", "%", 1) // RFC 6874 zone
		if _, err := netip.ParseAddr(inner); err == nil {
			return "", 0, ErrIPLiteral
		}
		return "", 0, fmt.Errorf("%w: brackets around %q, which is not an IP address", ErrMalformed, truncate(rest[1:end], maxShownLabel))
	case strings.Count(rest, ":") > 1:
		if _, err := netip.ParseAddr(rest); err == nil {
			return "", 0, ErrIPLiteral
		}
		return "", 0, fmt.Errorf("%w: too many ':'", ErrMalformed)
	default:
		if i := strings.IndexByte(rest, ':'); i >= 0 {
			host, portText, hasPort = rest[:i], rest[i+1:], true
		} else {
			host = rest
		}
	}
	if host == "" {
		return "", 0, fmt.Errorf("%w: no host", ErrMalformed)
	}
	// An empty port ("example.com:") is allowed by RFC 3986 and means the
	// default.
	if hasPort && portText != "" {
		port, err = parsePort(portText)
		if err != nil {
			return "", 0, err
		}
	}
	return host, port, nil
}

// validScheme reports whether s is an RFC 3986 scheme: a letter, then
// letters, digits, '+', '-' or '.'.
func validScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// parsePort parses a decimal port from 1 to 65535.
func parsePort(s string) (int, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %q is not a number", ErrInvalidPort, s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%w: %s is out of range 1-65535", ErrInvalidPort, s)
	}
	return n, nil
}

// normalizeHost turns a host as written into a lower-case ASCII domain
// without the trailing dot, or fails with a sentinel.
func normalizeHost(host string) (string, error) {
	if strings.IndexByte(host, '%') >= 0 {
		// Browsers percent-decode the host of an http(s) URL.
		h, err := url.PathUnescape(host)
		if err != nil {
			return "", fmt.Errorf("%w: bad percent-encoding in host", ErrMalformed)
		}
		host = h
	}
	if host == "" {
		return "", fmt.Errorf("%w: no host", ErrMalformed)
	}
	if len(host) > maxHost {
		return "", fmt.Errorf("%w: host of %d bytes", ErrNameTooLong, len(host))
	}
	// An IPv4 address ends in a digit; checking that first keeps the
	// parser off the common path. (IPv6 was caught by splitInput.)
	if c := host[len(host)-1]; '0' <= c && c <= '9' || c == '.' {
		if _, err := netip.ParseAddr(strings.TrimSuffix(host, ".")); err == nil {
			return "", ErrIPLiteral
		}
	}

	// Fast path: a plain ASCII name, the common case, needs neither IDNA
	// nor an allocation when it is already lower case.
	if isASCII(host) {
		name := strings.TrimSuffix(host, ".")
		if hasUpper(name) {
			name = strings.ToLower(name)
		}
		if err := checkASCIIName(name); err != nil {
			return "", err
		}
		if !hasACELabel(name) {
			return name, nil
		}
		// Punycode labels are validated (and their case folded) by IDNA.
	}

	if n := longestLabel(host); n > maxLabelInput {
		return "", fmt.Errorf("%w: a label of %d bytes before IDNA conversion", ErrLabelTooLong, n)
	}
	ascii, err := idnaProfile.ToASCII(host)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// A full stop may have been mapped from U+3002 and friends, so the
	// trailing dot is removed after the conversion.
	ascii = strings.TrimSuffix(ascii, ".")
	if err := checkASCIIName(ascii); err != nil {
		return "", err
	}
	// Converting must be idempotent so that every Target re-normalizes to
	// itself; a name for which it is not is not a usable name.
	if again, err := idnaProfile.ToASCII(ascii); err != nil || again != ascii {
		return "", fmt.Errorf("%w: IDNA conversion is not stable", ErrMalformed)
	}
	return ascii, nil
}

// checkASCIIName checks a lower-case name without its trailing dot: letters,
// digits and hyphens in 2 or more labels of 1 to 63 bytes, no leading or
// trailing hyphen, 253 bytes at most, and a last label that is not numeric.
func checkASCIIName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty host name", ErrMalformed)
	}
	start := 0
	labels := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '.' {
			c := name[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("%w: invalid character %q", ErrMalformed, rune(c))
			}
			continue
		}
		label := name[start:i]
		labels++
		switch {
		case label == "":
			return fmt.Errorf("%w: empty label", ErrMalformed)
		case len(label) > maxLabel:
			return fmt.Errorf("%w: %q is %d bytes", ErrLabelTooLong, truncate(label, maxShownLabel), len(label))
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Errorf("%w: label %q starts or ends with '-'", ErrMalformed, label)
		}
		start = i + 1
	}
	if len(name) > maxName {
		return fmt.Errorf("%w: %d bytes", ErrNameTooLong, len(name))
	}
	if last := name[strings.LastIndexByte(name, '.')+1:]; isNumericLabel(last) {
		// WHATWG URL parsing reads such a host as IPv4 ("127.1", "1.0x7f").
		return fmt.Errorf("%w: last label %q is numeric", ErrIPLiteral, last)
	}
	if labels < 2 {
		return ErrSingleLabel
	}
	return nil
}

// longestLabel returns the length in bytes of the longest label of a host
// before IDNA conversion, splitting at the runes that UTS #46 maps to a full
// stop.
func longestLabel(host string) int {
	longest, start := 0, 0
	for i, r := range host {
		switch r {
		case '.', '\u3002', '\uff0e', '\uff61':
			longest = max(longest, i-start)
			start = i + utf8.RuneLen(r)
		}
	}
	return max(longest, len(host)-start)
}

// isNumericLabel reports whether a label is a decimal or 0x-hex number, which
// the WHATWG URL host parser treats as part of an IPv4 address.
func isNumericLabel(label string) bool {
	digits := label
	if strings.HasPrefix(label, "0x") {
		digits = label[2:]
		for i := 0; i < len(digits); i++ {
			c := digits[i]
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// hasACELabel reports whether a lower-case name has a label in ASCII
// Compatible Encoding ("xn--..."), which must be checked as punycode.
func hasACELabel(name string) bool {
	for {
		if strings.HasPrefix(name, "xn--") {
			return true
		}
		i := strings.IndexByte(name, '.')
		if i < 0 {
			return false
		}
		name = name[i+1:]
	}
}
