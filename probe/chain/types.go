package chain

import (
	"math/big"
	"strings"
)

// Evidence levels for an interception anchor, strongest first.
const (
	// EvidenceSignature: the chain verifies up to a known interception
	// root, or an intermediate's signature verifies under a known root's
	// public key (even when the chain is incomplete or expired).
	EvidenceSignature = "signature"
	// EvidenceFingerprint: a known interception root or intermediate is
	// present in the chain by SHA-1 or SHA-256.
	EvidenceFingerprint = "fingerprint"
	// EvidenceIssuerName: only the names match the interception PKI.
	EvidenceIssuerName = "issuer_name"
)

// SignerUnknown is the signer recorded for an intermediate that no known
// root's key verifies (the report's "unknown").
const SignerUnknown = "unknown"

// Judgement is the analysis of one presented chain (one TLS handshake).
type Judgement struct {
	// ServerName is the name the chain was judged for (the SNI).
	ServerName string `json:"server_name"`
	// Trusted is true when the chain verifies against the trust store for
	// ServerName at the measurement time.
	Trusted bool `json:"trusted"`
	// TrustFailure is the failure string from verification (e.g.
	// "ssl_unknown_authority"), null when Trusted.
	TrustFailure *string `json:"trust_failure"`
	// Certificates describes each presented certificate, in the order sent.
	Certificates []CertInfo `json:"certificates"`
	// ParseErrors lists certificates that did not parse, as
	// "cert[i]: <error>"; the raw DER stays in the handshake record.
	// Certificates beyond the analyser's MaxCerts are one entry,
	// "cert[i:n]: not parsed: more than M certificates". Empty, not null,
	// when every certificate parsed.
	ParseErrors []string `json:"parse_errors"`
	// Interception is the interception anchor found, null when none.
	Interception *Interception `json:"interception"`
}

// CertInfo summarises one certificate.
type CertInfo struct {
	// Index is the certificate's position in the presented chain (0 is
	// the leaf). It differs from the position in Certificates when an
	// earlier certificate did not parse.
	Index  int    `json:"index"`
	SHA1   string `json:"sha1"`
	SHA256 string `json:"sha256"`
	Serial string `json:"serial"` // decimal, as the report prints it
	// SerialHex is the serial as openssl x509 -text and crt.sh print it
	// (SerialHex).
	SerialHex string `json:"serial_hex"`
	Subject   string `json:"subject"`
	Issuer    string `json:"issuer"`
	NotBefore string `json:"not_before"` // RFC 3339, UTC
	NotAfter  string `json:"not_after"`  // RFC 3339, UTC
	IsCA      bool   `json:"is_ca"`
	// Withheld is true when the record withheld the certificate's bytes
	// and it was judged from the facts kept of it (Analyzer.JudgeWithheld).
	Withheld bool `json:"withheld,omitempty"`
	// SignerRootSHA1 and SignerRootName name the known root whose key
	// verifies this certificate's signature (for a withheld one: as
	// recorded), empty when none does. They are in memory only, never in
	// a record (Interception.Intermediates names the signer of every
	// intermediate): measurement.Withhold keeps them for a certificate it
	// withholds.
	SignerRootSHA1 string `json:"-"`
	SignerRootName string `json:"-"`
}

// Interception says which interception PKI a chain leads to and how sure
// the analysis is.
type Interception struct {
	// Evidence is one of EvidenceSignature, EvidenceFingerprint,
	// EvidenceIssuerName.
	Evidence string `json:"evidence"`
	// EvidenceSource is EvidenceRecorded when the evidence rests on the
	// signer a record kept of a withheld certificate, which could not be
	// checked again (Analyzer.JudgeWithheld); empty when it was checked
	// here.
	EvidenceSource string `json:"evidence_source,omitempty"`
	// RootSHA1 is the hex SHA-1 of the known root the chain leads to,
	// empty when the evidence does not single one out.
	RootSHA1 string `json:"root_sha1"`
	// RootName is that root's subject common name (or the matched name).
	RootName string `json:"root_name"`
	// Rules lists the named rules that matched (e.g. "qaznet_2019_forgery").
	Rules []string `json:"rules"`
	// Intermediates describes every CA certificate in the chain that is
	// not itself a known root.
	Intermediates []Intermediate `json:"intermediates"`
	// BrowserErrorEvenWithRootInstalled is true when a user who installed
	// the mandated root would still have seen an error (an expired or
	// not-yet-valid intermediate or leaf, or a name mismatch).
	BrowserErrorEvenWithRootInstalled bool `json:"browser_error_even_with_root_installed"`
	// BrowserErrorReasons says why, e.g. "intermediate_expired".
	BrowserErrorReasons []string `json:"browser_error_reasons"`
}

// Intermediate is one row of the report's intermediates table.
type Intermediate struct {
	SHA1   string `json:"sha1"`
	SHA256 string `json:"sha256"`
	Serial string `json:"serial"` // decimal, as the report prints it
	// SerialHex is the serial as openssl x509 -text and crt.sh print it
	// (SerialHex).
	SerialHex string `json:"serial_hex"`
	Subject   string `json:"subject"`
	Issuer    string `json:"issuer"`
	NotBefore string `json:"not_before"` // RFC 3339, UTC
	NotAfter  string `json:"not_after"`  // RFC 3339, UTC
	// ValidAtMeasurement is true when the measurement time falls inside
	// [NotBefore, NotAfter].
	ValidAtMeasurement bool `json:"valid_at_measurement"`
	// SignerRootSHA1 is the hex SHA-1 of the known root whose key verifies
	// this certificate's signature, or SignerUnknown.
	SignerRootSHA1 string `json:"signer_root_sha1"`
	// SignerRootName is that root's subject common name, empty if unknown.
	SignerRootName string `json:"signer_root_name"`
	// Known is true when this intermediate is in the knowledge base (a
	// published fingerprint).
	Known bool `json:"known"`
	// Withheld is true when the record withheld its bytes: the row holds
	// the facts kept of it, its signer as the probe recorded it, and SHA1
	// is empty in records that did not keep it.
	Withheld bool `json:"withheld,omitempty"`
}

// Short abbreviates a hex fingerprint (a SHA1, RootSHA1 or SignerRootSHA1)
// to its first 8 digits, as verdict reasons, the terminal summary and the
// reports show it. A string of 8 characters or fewer, such as SignerUnknown
// or "", is returned as it is.
func Short(fingerprint string) string {
	if len(fingerprint) > 8 {
		return fingerprint[:8]
	}
	return fingerprint
}

// SerialHex formats a certificate serial number as openssl x509 -text
// prints it and crt.sh shows it on a certificate's page: the bytes of its
// magnitude in lower-case hex, colon-separated ("28:7d:ce:...:59:db"),
// "-" before a negative one (which RFC 5280 forbids). openssl prints a
// serial of 8 bytes or less in decimal there; SerialHex keeps one form for
// every serial, and the decimal is the record's serial field. nil is "".
func SerialHex(n *big.Int) string {
	if n == nil {
		return ""
	}
	b := new(big.Int).Abs(n).Bytes()
	if len(b) == 0 {
		b = []byte{0}
	}
	var s strings.Builder
	s.Grow(3*len(b) + 1)
	if n.Sign() < 0 {
		s.WriteByte('-')
	}
	const digits = "0123456789abcdef"
	for i, c := range b {
		if i > 0 {
			s.WriteByte(':')
		}
		s.WriteByte(digits[c>>4])
		s.WriteByte(digits[c&0x0f])
	}
	return s.String()
}
