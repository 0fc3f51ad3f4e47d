package probe

import (
	"fmt"
	"slices"
	"strings"

	utls "github.com/refraction-networking/utls"
)

// DefaultFingerprint is the ClientHello fingerprint used when none is
// configured: the one most users' browsers send.
const DefaultFingerprint = "chrome"

// FingerprintGolang is the fingerprint of Go's own crypto/tls. It is the
// only one not produced by utls, which makes it the reference: a network
// that treats it differently from the browser fingerprints is looking at
// the ClientHello.
const FingerprintGolang = "golang"

// FingerprintSmall is Go's crypto/tls offering only classic key exchanges
// (X25519, P-256): a ClientHello of about 250 bytes, in one segment, as
// clients sent before post-quantum key shares. Middleboxes that read the
// name from the first KiB or the first segment of a hello (sslsplit 0.5.5)
// see it only in a hello this small; see [Prober.SmallHelloRetry].
const FingerprintSmall = "small"

// Fingerprints lists the valid fingerprint names, in the order the
// documentation gives them, for help texts and error messages. Treat it as
// read-only: validation ([ParseFingerprints], [Handshaker.Handshake]) does
// not depend on it.
var Fingerprints = []string{"chrome", "firefox", "safari", "edge", "ios", "randomized", FingerprintGolang, FingerprintSmall}

// clientHelloID maps a fingerprint name to its utls ClientHelloID. The
// *_Auto IDs follow whatever utls v1.8.2 considers current (Chrome 133,
// Firefox 120, Safari 16.0, Edge 85, iOS 14); "golang" and "small" are
// absent because they do not go through utls at all.
func clientHelloID(name string) (utls.ClientHelloID, bool) {
	switch name {
	case "chrome":
		return utls.HelloChrome_Auto, true
	case "firefox":
		return utls.HelloFirefox_Auto, true
	case "safari":
		return utls.HelloSafari_Auto, true
	case "edge":
		return utls.HelloEdge_Auto, true
	case "ios":
		return utls.HelloIOS_Auto, true
	case "randomized":
		return utls.HelloRandomized, true
	}
	return utls.ClientHelloID{}, false
}

// validFingerprint reports whether name is one of [Fingerprints].
func validFingerprint(name string) bool {
	if name == FingerprintGolang || name == FingerprintSmall {
		return true
	}
	_, ok := clientHelloID(name)
	return ok
}

// ParseFingerprints validates and normalises a list of fingerprint names as
// given on the command line or in the config: each element may itself be a
// comma-separated list, names are case-insensitive, blanks are ignored and
// duplicates are dropped (first occurrence wins, so the order given is the
// order of the handshakes). An empty list means [DefaultFingerprint]. An
// unknown name is an error that names it and lists the valid ones.
func ParseFingerprints(list []string) ([]string, error) {
	var out []string
	for _, item := range list {
		for _, name := range strings.Split(item, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			if !validFingerprint(name) {
				return nil, fmt.Errorf("probe: unknown fingerprint %q (valid: %s)",
					name, strings.Join(Fingerprints, ", "))
			}
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	if len(out) == 0 {
		out = []string{DefaultFingerprint}
	}
	return out, nil
}
