package chain

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// EvidenceRecorded is [Interception].EvidenceSource when the evidence rests
// on a withheld certificate (see [Withheld]): its signer was checked by the
// probe, with the certificate's bytes, when it was measured, and is taken
// from the record; the signature could not be checked again.
const EvidenceRecorded = "recorded_by_probe"

// Withheld is a presented certificate that a record left out because its
// bytes held the probe's own address (measurement.WithheldCertificate),
// known only by the facts the record kept of it. [Analyzer.JudgeWithheld]
// judges a chain with such certificates from those facts: by fingerprint
// (SHA256, and SHA1 when recorded), by name (Subject and Issuer, for the
// rules) and by the signer the probe recorded. No signature of or by a
// withheld certificate is checked: there are no bytes to check.
type Withheld struct {
	// Index is the certificate's position in the presented chain.
	Index int
	// SHA1 and SHA256 are lowercase hex digests of its DER; SHA1 is empty
	// in records that did not keep it.
	SHA1, SHA256 string
	// Subject and Issuer are the names as [pkix.Name.String] prints them
	// (ParseName reads them back); text that held the address is
	// scrubbed.
	Subject, Issuer string
	// Serial is the serial number in decimal.
	Serial string
	// NotBefore and NotAfter are its validity window.
	NotBefore, NotAfter time.Time
	// IsCA is its basic constraints' CA flag (false when not recorded).
	IsCA bool
	// SignerRootSHA1 is the hex SHA-1 of the known root whose key verified
	// its signature when the probe judged it, empty when none did or when
	// the record did not keep it. A root the knowledge base does not hold
	// is ignored.
	SignerRootSHA1 string
}

// JudgeWithheld is [Analyzer.Judge] over a chain some of whose
// certificates were withheld: der[w.Index] is empty for each w of
// withheld, which stands in for it. A withheld certificate is judged from
// its facts, never as a parse error: it is a known root by fingerprint, a
// known intermediate by SHA-1, matched by the rules by its names and
// validity, and signed by the root its SignerRootSHA1 names (signature
// evidence then marked EvidenceRecorded when no certificate with bytes
// gives it). Trust cannot be judged again without the leaf's bytes: a
// withheld leaf makes the chain untrusted with ssl_invalid_certificate, as
// a missing one does; the record's chain_trusted says what the probe
// found. Entries of withheld whose Index is out of range or names a
// certificate that is present are ignored.
func (a *Analyzer) JudgeWithheld(der [][]byte, withheld []Withheld, serverName string, at time.Time) *Judgement {
	byIndex := map[int]*Withheld{}
	for i := range withheld {
		w := &withheld[i]
		if w.Index >= 0 && w.Index < len(der) && len(der[w.Index]) == 0 {
			if _, dup := byIndex[w.Index]; !dup {
				byIndex[w.Index] = w
			}
		}
	}
	if len(byIndex) == 0 {
		return a.Judge(der, serverName, at)
	}
	n := min(len(der), a.maxCerts())
	var entries []*entry
	var parseErrors []string
	for i := range n {
		if w := byIndex[i]; w != nil {
			entries = append(entries, withheldEntry(w))
			continue
		}
		es, errs := parseChain(der[i:i+1], 1)
		for _, e := range es {
			e.index = i
		}
		for _, s := range errs {
			parseErrors = append(parseErrors, strings.Replace(s, "cert[0]", fmt.Sprintf("cert[%d]", i), 1))
		}
		entries = append(entries, es...)
	}
	if len(der) > n {
		parseErrors = append(parseErrors, fmt.Sprintf("cert[%d:%d]: not parsed: more than %d certificates", n, len(der), n))
	}
	kb := a.kb()
	for _, e := range entries {
		if e.withheld != nil && e.withheld.SignerRootSHA1 != "" {
			if i, ok := kb.rootBySHA1[normalizeHex(e.withheld.SignerRootSHA1)]; ok {
				e.signer = i
			}
		}
	}
	j, _ := a.judgeParsed(entries, parseErrors, serverName, at)
	return j
}

// withheldEntry is the entry of a withheld certificate: a certificate
// struct holding its facts, with no bytes, key or signature.
func withheldEntry(w *Withheld) *entry {
	c := &x509.Certificate{
		NotBefore: w.NotBefore,
		NotAfter:  w.NotAfter,
		IsCA:      w.IsCA,
	}
	c.Subject, _ = ParseName(w.Subject)
	c.Issuer, _ = ParseName(w.Issuer)
	if s, ok := new(big.Int).SetString(w.Serial, 10); ok {
		c.SerialNumber = s
	}
	return &entry{
		index:    w.Index,
		cert:     c,
		sha1:     normalizeHex(w.SHA1),
		sha256:   normalizeHex(w.SHA256),
		subject:  w.Subject,
		issuer:   w.Issuer,
		root:     -1,
		inter:    -1,
		signer:   -1,
		withheld: w,
	}
}

// serial returns e's serial number in decimal and as SerialHex, empty
// when a withheld certificate's was not recorded.
func (e *entry) serial() (dec, hexs string) {
	if e.cert.SerialNumber == nil {
		return "", ""
	}
	return e.cert.SerialNumber.String(), SerialHex(e.cert.SerialNumber)
}

// attributeTypes maps the short names pkix.Name.String prints to the
// attribute types it reads back into pkix.Name's fields.
var attributeTypes = map[string]asn1.ObjectIdentifier{
	"C":            {2, 5, 4, 6},
	"O":            {2, 5, 4, 10},
	"OU":           {2, 5, 4, 11},
	"CN":           {2, 5, 4, 3},
	"SERIALNUMBER": {2, 5, 4, 5},
	"L":            {2, 5, 4, 7},
	"ST":           {2, 5, 4, 8},
	"STREET":       {2, 5, 4, 9},
	"POSTALCODE":   {2, 5, 4, 17},
}

// ParseName reads a distinguished name as [pkix.Name.String] prints it
// (RFC 2253: RDNs in reverse order, separated by commas, multi-valued
// ones by plus signs, special characters escaped with a backslash,
// unknown attribute types as a dotted OID with a #-prefixed hex value)
// back into a pkix.Name, so that names kept as text can be matched by
// attribute. An attribute given as #hex is kept as its hex text, not
// decoded. Malformed input is an error; the name read so far is returned
// with it.
func ParseName(s string) (pkix.Name, error) {
	var rdns pkix.RDNSequence
	var set pkix.RelativeDistinguishedNameSET
	if s == "" {
		return pkix.Name{}, nil
	}
	var err error
	for i := 0; i <= len(s); {
		// type
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			err = fmt.Errorf("chain: name %q: attribute without '=' at %d", truncName(s), i)
			break
		}
		typ := s[i : i+eq]
		i += eq + 1
		var val strings.Builder
		end := byte(0)
		for i < len(s) {
			c := s[i]
			if c == ',' || c == '+' {
				end = c
				i++
				break
			}
			if c == '\\' && i+1 < len(s) {
				if h, ok := hexPair(s[i+1:]); ok {
					val.WriteByte(h)
					i += 3
					continue
				}
				val.WriteByte(s[i+1])
				i += 2
				continue
			}
			val.WriteByte(c)
			i++
		}
		oid, ok := attributeTypes[strings.ToUpper(typ)]
		if !ok {
			if oid, ok = parseOID(typ); !ok {
				err = fmt.Errorf("chain: name %q: unknown attribute type %q", truncName(s), truncName(typ))
				break
			}
		}
		set = append(set, pkix.AttributeTypeAndValue{Type: oid, Value: val.String()})
		if end != '+' {
			rdns = append(rdns, set)
			set = nil
		}
		if end == 0 {
			break
		}
	}
	if len(set) > 0 {
		rdns = append(rdns, set)
	}
	// String printed the RDNs last first.
	for l, r := 0, len(rdns)-1; l < r; l, r = l+1, r-1 {
		rdns[l], rdns[r] = rdns[r], rdns[l]
	}
	var n pkix.Name
	n.FillFromRDNSequence(&rdns)
	return n, err
}

func hexPair(s string) (byte, bool) {
	if len(s) < 2 {
		return 0, false
	}
	b, err := hex.DecodeString(s[:2])
	if err != nil {
		return 0, false
	}
	return b[0], true
}

func parseOID(s string) (asn1.ObjectIdentifier, bool) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 64 {
		return nil, false
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		if p == "" || len(p) > 9 {
			return nil, false
		}
		n := 0
		for _, c := range p {
			if c < '0' || c > '9' {
				return nil, false
			}
			n = n*10 + int(c-'0')
		}
		oid[i] = n
	}
	return oid, true
}

func truncName(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
