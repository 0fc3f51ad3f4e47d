package chain

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Pin is the SHA-256 of a certificate's SubjectPublicKeyInfo (its public
// key, in DER): what `kzprobe sweep` pins a neutral endpoint's certificate
// by. A key pin survives the endpoint renewing its certificate with the
// same key, as HPKP's and curl's --pinnedpubkey do.
//
// Its text form (String, ParsePin) is "sha256:" and the hash in standard
// base64 with padding, e.g. "sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=".
type Pin [sha256.Size]byte

// PinPrefix starts every pin's text form.
const PinPrefix = "sha256:"

// ErrBadPin is wrapped by ParsePin's errors.
var ErrBadPin = errors.New("chain: bad pin")

// SPKIPin returns the pin of a DER certificate's public key. It fails
// when der is not a certificate.
func SPKIPin(der []byte) (Pin, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return Pin{}, fmt.Errorf("chain: pinning a certificate: %w", err)
	}
	return Pin(sha256.Sum256(c.RawSubjectPublicKeyInfo)), nil
}

// String is the pin's text form: "sha256:<base64>".
func (p Pin) String() string { return PinPrefix + base64.StdEncoding.EncodeToString(p[:]) }

// IsZero reports whether p is the zero Pin (no pin).
func (p Pin) IsZero() bool { return p == Pin{} }

// ParsePin reads a pin as a user writes or copies it:
//
//   - "sha256:" (or curl's "sha256//", either in any case) followed by
//     the hash in base64, standard or URL alphabet, with or without
//     padding: what `openssl dgst -sha256 -binary | openssl base64`
//     prints;
//   - or by the hash in hex, 64 digits, optionally separated by colons
//     or spaces: what `openssl dgst -sha256` prints after its "= "
//     (the "SHA2-256(stdin)= " label itself is accepted too).
//
// Surrounding blanks are ignored. A pin without the "sha256:" prefix is
// refused: a bare hash could be anyone's hash of anything (a
// certificate's SHA-256 rather than its key's, say), and the prefix is
// where the user says it is the key's.
func ParsePin(s string) (Pin, error) {
	s = strings.TrimSpace(s)
	var rest string
	switch lower := strings.ToLower(s); {
	case strings.HasPrefix(lower, "sha256//"):
		rest = s[len("sha256//"):]
	case strings.HasPrefix(lower, PinPrefix):
		rest = s[len(PinPrefix):]
	default:
		return Pin{}, fmt.Errorf("%w: %q does not start with %q (the SHA-256 of the certificate's public key, see kzprobe sweep --help)", ErrBadPin, clip(s), PinPrefix)
	}
	rest = strings.TrimSpace(rest)
	if label, hash, ok := strings.Cut(rest, "= "); ok && strings.HasSuffix(label, ")") {
		rest = strings.TrimSpace(hash) // "SHA2-256(stdin)= <hex>"
	}
	var p Pin
	if h := strings.NewReplacer(":", "", " ", "").Replace(rest); len(h) == 2*len(p) {
		if b, err := hex.DecodeString(h); err == nil {
			copy(p[:], b)
			return p, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(rest); err == nil && len(b) == len(p) {
			copy(p[:], b)
			return p, nil
		}
	}
	return Pin{}, fmt.Errorf("%w: %q is not a SHA-256 in base64 or hex (32 bytes)", ErrBadPin, clip(s))
}

// clip cuts s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
