package analysis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Decoding a record is a fast structural scan of the measurement object,
// which decodes the few values the analysis reads (the envelope's strings and
// test_keys' tls_handshakes, pings, domain, verdict, interception), within
// Limits (bounds.go), and steps over everything else: an OONI web_connectivity
// measurement is mostly HTTP bodies, headers and network events, which
// encoding/json would validate and then scan again to skip (two passes of
// its byte-at-a-time state machine), at several times the cost of this scan.
//
// The scan checks the structure of what it skips (strings closed, brackets
// matched, literals well formed, nothing after the object), not the
// contents of skipped strings; what is decoded is checked in full by
// encoding/json. Keys are matched exactly (OONI's are lowercase), where
// encoding/json would also accept other cases.

// errSyntax is a structural error at an offset of the line.
type errSyntax struct {
	off int
	msg string
}

func (e *errSyntax) Error() string { return fmt.Sprintf("invalid JSON at byte %d: %s", e.off, e.msg) }

// decodeFast fills rec from the measurement object b, within the default
// Limits.
func decodeFast(b []byte, rec *Record) error {
	return newDecoder(Limits{}).record(b, rec)
}

// unmarshalField decodes one value, naming the field (prefix and key) in
// errors.
func unmarshalField(prefix string, key, val []byte, dst any) error {
	if err := json.Unmarshal(val, dst); err != nil {
		name := prefix + string(key)
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("field %s: cannot read a JSON %s as %s", name, te.Value, te.Type)
		}
		return fmt.Errorf("field %s: %v", name, err)
	}
	return nil
}

// scanObject walks the JSON object that is the whole of b (base is b's
// offset in the line, for messages) and calls fn with each key (raw,
// without quotes) and value (raw bytes).
func scanObject(b []byte, base int, fn func(key, val []byte, off int) error) error {
	return scanSequence(b, base, '{', '}', func(i int) (int, error) {
		if i >= len(b) || b[i] != '"' {
			return 0, &errSyntax{base + i, "want a key string"}
		}
		end, err := skipString(b, i)
		if err != nil {
			return 0, &errSyntax{base + i, err.Error()}
		}
		key := b[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var k string
			if err := json.Unmarshal(b[i:end], &k); err != nil {
				return 0, &errSyntax{base + i, "bad key string"}
			}
			key = []byte(k)
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, &errSyntax{base + i, "want ':' after a key"}
		}
		start := skipSpace(b, i+1)
		if end, err = skipValue(b, start); err != nil {
			return 0, &errSyntax{base + start, err.Error()}
		}
		return end, fn(key, b[start:end], base+start)
	})
}

// scanArray walks the JSON array that is the whole of b (base is b's
// offset in the line) and calls fn with each element (raw bytes).
func scanArray(b []byte, base int, fn func(elem []byte, off int) error) error {
	return scanSequence(b, base, '[', ']', func(start int) (int, error) {
		end, err := skipValue(b, start)
		if err != nil {
			return 0, &errSyntax{base + start, err.Error()}
		}
		return end, fn(b[start:end], base+start)
	})
}

// scanSequence walks the object ('{', '}') or array ('[', ']') that is the
// whole of b: the open bracket, members separated by ',', the closing
// bracket and nothing after it but white space. member reads the member
// (a key and its value, or an element) that starts at b[i] and returns the
// offset after it; its error ends the walk.
func scanSequence(b []byte, base int, open, close byte, member func(i int) (int, error)) error {
	kind, after := "an array", "an array element"
	if open == '{' {
		kind, after = "an object", "an object value"
	}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != open {
		return &errSyntax{base + i, "not " + kind}
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == close {
		return trailing(b, i+1, base)
	}
	for {
		var err error
		if i, err = member(i); err != nil {
			return err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return &errSyntax{base + i, "unexpected end of JSON input"}
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case close:
			return trailing(b, i+1, base)
		default:
			return &errSyntax{base + i, fmt.Sprintf("invalid character %q after %s", b[i], after)}
		}
	}
}

func trailing(b []byte, i, base int) error {
	if i = skipSpace(b, i); i < len(b) {
		return &errSyntax{base + i, "data after the object"}
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// scanError is invalid JSON found by the skip functions.
type scanError struct{ msg string }

func (e *scanError) Error() string { return e.msg }

func isScanError(err error) bool {
	var se *scanError
	return errors.As(err, &se)
}

var (
	errEOF = &scanError{"unexpected end of JSON input"}
	// errUnterminated is a string that runs to the end of the input.
	errUnterminated = &scanError{"unterminated string"}
	errDepth        = &scanError{fmt.Sprintf("nested deeper than %d", maxDepth)}
)

// maxDepth bounds the nesting the scan follows, as encoding/json's own
// (10000): a line of 64 MiB of "[" would otherwise grow a stack as long.
const maxDepth = 10000

// skipString returns the offset after the string that starts at b[i].
func skipString(b []byte, i int) (int, error) {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, errUnterminated
		}
		q := j + k
		// The quote closes the string unless an odd number of
		// backslashes precede it.
		n := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, nil
		}
		j = q + 1
	}
}

// skipValue returns the offset after the value that starts at b[i],
// checking brackets match (with a stack) and literals are well formed.
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errEOF
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{' || c == '[':
		return skipContainer(b, i)
	default:
		return skipLiteral(b, i)
	}
}

func skipContainer(b []byte, i int) (int, error) {
	var stackBuf [64]byte
	stack := stackBuf[:0]
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			end, err := skipString(b, i)
			if err != nil {
				return 0, err
			}
			i = end
			continue
		case '{', '[':
			if len(stack) >= maxDepth {
				return 0, errDepth
			}
			stack = append(stack, c+2) // '}' is '{'+2, ']' is '['+2
		case '}', ']':
			if len(stack) == 0 || stack[len(stack)-1] != c {
				return 0, &scanError{fmt.Sprintf("mismatched %q", c)}
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return i + 1, nil
			}
		case ' ', '\t', '\n', '\r', ',', ':':
		default:
			end, err := skipLiteral(b, i)
			if err != nil {
				return 0, err
			}
			i = end
			continue
		}
		i++
	}
	return 0, errEOF
}

// skipLiteral steps over a number, true, false or null.
func skipLiteral(b []byte, i int) (int, error) {
	start := i
	for i < len(b) {
		c := b[i]
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-' || c == '+' || c == '.' || c == 'E' {
			i++
			continue
		}
		break
	}
	lit := b[start:i]
	if len(lit) == 0 {
		if i < len(b) {
			return 0, &scanError{fmt.Sprintf("invalid character %q looking for a value", b[i])}
		}
		return 0, errEOF
	}
	switch string(lit) {
	case "true", "false", "null":
		return i, nil
	}
	if i == len(b) && (strings.HasPrefix("true", string(lit)) || strings.HasPrefix("false", string(lit)) || strings.HasPrefix("null", string(lit))) {
		return 0, errEOF // cut: more input may complete it
	}
	if lit[0] == '-' || lit[0] >= '0' && lit[0] <= '9' {
		for _, c := range lit {
			if c >= 'a' && c <= 'z' && c != 'e' {
				return 0, errLiteral(lit)
			}
		}
		return i, nil
	}
	return 0, errLiteral(lit)
}

// errLiteral names the invalid literal lit (its start).
func errLiteral(lit []byte) error {
	return &scanError{fmt.Sprintf("invalid literal %q", truncate(string(lit), 16))}
}
