package chain

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/x509roots/fallback/bundle"

	"kzprobe/probe/failure"
)

// DefaultMaxCerts is how many presented certificates Judge considers when
// Analyzer.MaxCerts is zero. Real chains have two to four; the rest of a
// longer chain is recorded as not parsed.
const DefaultMaxCerts = 32

// Analyzer judges presented chains. Its fields are read-only once Judge is
// first called; Judge is then safe for concurrent use.
type Analyzer struct {
	// Trust is the trust store chains are verified against. Nil means the
	// Mozilla bundle of golang.org/x/crypto/x509roots/fallback/bundle (see
	// [MozillaRoots]); it is never the system store.
	Trust *x509.CertPool
	// KB is the interception knowledge base. Nil means [Default].
	KB *KnowledgeBase
	// MaxCerts bounds how many presented certificates are parsed and
	// analysed; zero means DefaultMaxCerts. Signature checks are bounded by
	// a budget proportional to it (see [Analyzer.Judge]).
	MaxCerts int
}

// NewAnalyzer returns an Analyzer for trust and kb. A nil trust means a
// copy of [MozillaRoots]; a nil kb means [Default]. It panics only if the
// embedded knowledge base is broken, which the package's tests rule out.
func NewAnalyzer(trust *x509.CertPool, kb *KnowledgeBase) *Analyzer {
	if trust == nil {
		trust = MozillaRoots()
	}
	if kb == nil {
		var err error
		if kb, err = Default(); err != nil {
			panic(err)
		}
	}
	return &Analyzer{Trust: trust, KB: kb}
}

// MozillaRoots returns a new pool holding the Mozilla (NSS) roots bundled
// with golang.org/x/crypto/x509roots/fallback, with their NSS constraints.
// It does not register them as the process-wide fallback roots
// (x509.SetFallbackRoots), and the caller may modify the result.
func MozillaRoots() *x509.CertPool { return mozillaRoots().Clone() }

// mozillaRoots parses the bundle once. The pool is never modified after.
var mozillaRoots = sync.OnceValue(func() *x509.CertPool {
	p := x509.NewCertPool()
	for r := range bundle.Roots() {
		c, err := x509.ParseCertificate(r.Certificate)
		if err != nil {
			continue // as x509roots/fallback does: skip what Go cannot parse
		}
		if r.Constraint != nil {
			p.AddCertWithConstraint(c, r.Constraint)
		} else {
			p.AddCert(c)
		}
	}
	return p
})

func (a *Analyzer) trust() *x509.CertPool {
	if a.Trust != nil {
		return a.Trust
	}
	return mozillaRoots()
}

func (a *Analyzer) kb() *KnowledgeBase {
	if a.KB != nil {
		return a.KB
	}
	kb, err := parsedDefault()
	if err != nil {
		panic(err) // the embedded data is a build-time constant, tested
	}
	return kb // only read, never modified
}

func (a *Analyzer) maxCerts() int {
	if a.MaxCerts > 0 {
		return a.MaxCerts
	}
	return DefaultMaxCerts
}

// entry is one parsed presented certificate and what the analysis learns
// about it.
type entry struct {
	index        int // position in the presented chain
	cert         *x509.Certificate
	sha1, sha256 string
	subject      string // cert.Subject.String()
	issuer       string // cert.Issuer.String()
	dup          bool   // same SHA-256 as an earlier entry
	root         int    // known root with this fingerprint, -1 for none
	inter        int    // known intermediate with this SHA-1, -1 for none
	signer       int    // known root whose key verifies this certificate, -1 for none
	// withheld is the certificate's facts when the record withheld its
	// bytes (JudgeWithheld); cert then holds those facts only.
	withheld *Withheld
}

// view is one chain under analysis.
type view struct {
	kb      *KnowledgeBase
	entries []*entry
	// leaf is the presented leaf, nil when the first presented certificate
	// did not parse or is a CA certificate (see hasLeaf).
	leaf *entry
	// budget is how many signature checks are left.
	budget int
	// checks counts the signature checks made.
	checks int
}

// spend takes one signature check from the budget.
func (v *view) spend() bool {
	if v.budget <= 0 {
		return false
	}
	v.budget--
	v.checks++
	return true
}

// parseChain parses up to max certificates of der, recording failures.
func parseChain(der [][]byte, max int) (entries []*entry, parseErrors []string) {
	n := min(len(der), max)
	for i := range n {
		c, err := x509.ParseCertificate(der[i])
		if err != nil {
			parseErrors = append(parseErrors, fmt.Sprintf("cert[%d]: %v", i, err))
			continue
		}
		s1 := sha1.Sum(c.Raw)
		s256 := sha256.Sum256(c.Raw)
		entries = append(entries, &entry{
			index:   i,
			cert:    c,
			sha1:    hex.EncodeToString(s1[:]),
			sha256:  hex.EncodeToString(s256[:]),
			subject: c.Subject.String(),
			issuer:  c.Issuer.String(),
			root:    -1,
			inter:   -1,
			signer:  -1,
		})
	}
	if len(der) > n {
		parseErrors = append(parseErrors, fmt.Sprintf("cert[%d:%d]: not parsed: more than %d certificates", n, len(der), max))
	}
	return entries, parseErrors
}

// Judge analyses one presented chain, der in the order the server sent it
// (leaf first), for serverName (the SNI; empty skips the name check) at
// time at (the measurement time; a zero at is judged as the zero time,
// never as now). It never fails: certificates that do not parse are listed
// in ParseErrors and skipped.
//
// Trust: the first certificate is verified, with the others as
// intermediates, against a.Trust for serverName at at.
//
// Interception, independently of trust: each certificate that is not a
// known root is checked against the known roots' keys, never matched by
// name alone. The roots tried are those whose subject key id equals the
// certificate's authority key id (first, for every certificate) and then
// those whose subject equals its issuer name: all of them, since seven real
// roots share one name. When the authority key id points at another
// presented certificate and at no known root, the name candidates are
// skipped: the certificate names its parent in the chain (the leaf under an
// intermediate whose subject copies the root's name). All signature checks
// of one call share a budget of 8*MaxCerts, so a hostile chain costs
// linear, not quadratic, work.
func (a *Analyzer) Judge(der [][]byte, serverName string, at time.Time) *Judgement {
	entries, parseErrors := parseChain(der, a.maxCerts())
	j, _ := a.judgeParsed(entries, parseErrors, serverName, at)
	return j
}

// judgeParsed is Judge after parsing. Tests call it with entries whose
// fingerprints were replaced, to exercise the fingerprint evidence for
// intermediates of which only the fingerprint is published.
func (a *Analyzer) judgeParsed(entries []*entry, parseErrors []string, serverName string, at time.Time) (*Judgement, *view) {
	if at.IsZero() {
		// x509 reads a zero CurrentTime as "now"; this package has no clock.
		at = at.Add(time.Nanosecond)
	}
	kb := a.kb()
	v := &view{kb: kb, entries: entries, budget: 8 * a.maxCerts()}

	if parseErrors == nil {
		parseErrors = []string{} // lists are never null in the JSON
	}
	j := &Judgement{
		ServerName:   serverName,
		Certificates: make([]CertInfo, 0, len(entries)),
		ParseErrors:  parseErrors,
	}
	seen := map[string]bool{}
	for _, e := range entries {
		e.dup = seen[e.sha256]
		seen[e.sha256] = true
		e.root, e.inter = kb.lookup(e.sha1, e.sha256)
		j.Certificates = append(j.Certificates, certInfo(e))
	}
	if len(entries) > 0 && entries[0].index == 0 && hasLeaf(entries[0].cert) {
		v.leaf = entries[0]
	}

	j.Trusted, j.TrustFailure = a.verifyTrust(entries, serverName, at)
	v.identifySigners()
	for i, e := range entries {
		if e.signer >= 0 {
			j.Certificates[i].SignerRootSHA1 = kb.roots[e.signer].SHA1
			j.Certificates[i].SignerRootName = kb.roots[e.signer].Name
		}
	}
	j.Interception = v.interception(serverName, at)
	return j, v
}

// hasLeaf reports whether c, the first presented certificate, is a server
// certificate. A CA certificate with no subject alternative names is not:
// that is what OONI records hold when they kept only an intermediate.
func hasLeaf(c *x509.Certificate) bool {
	if !c.IsCA {
		return true
	}
	return len(c.DNSNames) > 0 || len(c.IPAddresses) > 0
}

func certInfo(e *entry) CertInfo {
	c := e.cert
	serial, serialHex := e.serial()
	return CertInfo{
		Index:     e.index,
		SHA1:      e.sha1,
		SHA256:    e.sha256,
		Serial:    serial,
		SerialHex: serialHex,
		Subject:   e.subject,
		Issuer:    e.issuer,
		NotBefore: rfc3339(c.NotBefore),
		NotAfter:  rfc3339(c.NotAfter),
		IsCA:      c.IsCA,
		Withheld:  e.withheld != nil,
	}
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// verifyTrust verifies the first presented certificate against the trust
// store. An unparsable, missing or withheld first certificate is
// ssl_invalid_certificate.
func (a *Analyzer) verifyTrust(entries []*entry, serverName string, at time.Time) (bool, *string) {
	if len(entries) == 0 || entries[0].index != 0 || entries[0].withheld != nil {
		return false, failure.Ptr(failure.SSLInvalidCert)
	}
	inter := x509.NewCertPool()
	for _, e := range entries[1:] {
		if !e.dup && e.withheld == nil {
			inter.AddCert(e.cert)
		}
	}
	_, err := entries[0].cert.Verify(x509.VerifyOptions{
		Roots:         a.trust(),
		Intermediates: inter,
		DNSName:       serverName,
		CurrentTime:   at,
	})
	if err != nil {
		return false, failure.Ptr(failure.Classify(err))
	}
	return true, nil
}

// identifySigners finds, for every presented certificate that is not a
// known root, the known root whose key verifies its signature. A first
// pass tries the roots named by authority key id, a second the roots named
// by issuer name; so when a hostile chain exhausts the budget, the
// certificates that point at a known root by key id have been checked.
func (v *view) identifySigners() {
	roots := v.kb.roots
	candidates := func(e *entry, byKeyID bool) []int {
		c := e.cert
		var out []int
		for i := range roots {
			akiMatch := len(c.AuthorityKeyId) > 0 && bytes.Equal(c.AuthorityKeyId, roots[i].Cert.SubjectKeyId)
			nameMatch := bytes.Equal(c.RawIssuer, roots[i].Cert.RawSubject) || e.issuer == roots[i].Subject
			if byKeyID && akiMatch || !byKeyID && !akiMatch && nameMatch {
				out = append(out, i)
			}
		}
		return out
	}
	for _, byKeyID := range []bool{true, false} {
		for _, e := range v.entries {
			if e.dup || e.root >= 0 || e.signer >= 0 || e.withheld != nil {
				continue
			}
			if !byKeyID && v.parentPresented(e) {
				continue
			}
			c := e.cert
			for _, i := range candidates(e, byKeyID) {
				if !v.spend() {
					return
				}
				if roots[i].Cert.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil {
					e.signer = i
					break
				}
			}
		}
	}
}

// parentPresented reports whether e's authority key id is the subject key
// id of another presented certificate and of no known root.
func (v *view) parentPresented(e *entry) bool {
	aki := e.cert.AuthorityKeyId
	if len(aki) == 0 {
		return false
	}
	for _, r := range v.kb.roots {
		if bytes.Equal(r.Cert.SubjectKeyId, aki) {
			return false
		}
	}
	for _, p := range v.entries {
		if p != e && p.sha256 != e.sha256 && bytes.Equal(p.cert.SubjectKeyId, aki) {
			return true
		}
	}
	return false
}

// evidenceRank orders evidence levels; higher is stronger, 0 is none.
func evidenceRank(evidence string) int {
	switch evidence {
	case EvidenceSignature:
		return 3
	case EvidenceFingerprint:
		return 2
	case EvidenceIssuerName:
		return 1
	}
	return 0
}

// interception finds the strongest interception anchor of v, nil when none.
func (v *view) interception(serverName string, at time.Time) *Interception {
	kb := v.kb
	ruleNames, matchedName := matchRules(v)
	in := &Interception{Rules: ruleNames}
	anchor := -1 // the known root the chain leads to, if singled out
	switch {
	case v.firstSigned() != nil:
		in.Evidence = EvidenceSignature
		anchor = v.firstSigned().signer
		if v.firstSigned().withheld != nil {
			in.EvidenceSource = EvidenceRecorded
		}
	case v.firstFingerprint() != nil:
		in.Evidence = EvidenceFingerprint
		e := v.firstFingerprint()
		if e.root >= 0 {
			anchor = e.root
		} else if i, ok := kb.rootBySHA1[kb.inters[e.inter].SignerRootSHA1]; ok {
			anchor = i
		}
	case len(ruleNames) > 0:
		in.Evidence = EvidenceIssuerName
	default:
		return nil
	}
	if anchor >= 0 {
		in.RootSHA1 = kb.roots[anchor].SHA1
		in.RootName = kb.roots[anchor].Name
	} else {
		in.RootName = matchedName
	}
	in.Intermediates = v.intermediates(at)
	in.BrowserErrorReasons = v.browserErrors(anchor, serverName, at)
	in.BrowserErrorEvenWithRootInstalled = len(in.BrowserErrorReasons) > 0
	return in
}

// firstSigned returns the first presented certificate signed by a known
// root's key: checked here, else as recorded for a withheld certificate.
func (v *view) firstSigned() *entry {
	var recorded *entry
	for _, e := range v.entries {
		switch {
		case e.signer < 0:
		case e.withheld == nil:
			return e
		case recorded == nil:
			recorded = e
		}
	}
	return recorded
}

// firstFingerprint returns the first presented certificate that is a known
// root or intermediate by fingerprint.
func (v *view) firstFingerprint() *entry {
	for _, e := range v.entries {
		if e.root >= 0 || e.inter >= 0 {
			return e
		}
	}
	return nil
}

// intermediates returns a row for every distinct presented CA certificate
// (or known intermediate) that is not a known root and not the leaf.
func (v *view) intermediates(at time.Time) []Intermediate {
	rows := []Intermediate{}
	for _, e := range v.entries {
		if e.dup || e.root >= 0 || e == v.leaf || !(e.cert.IsCA || e.inter >= 0) {
			continue
		}
		c := e.cert
		serial, serialHex := e.serial()
		row := Intermediate{
			SHA1:               e.sha1,
			SHA256:             e.sha256,
			Serial:             serial,
			SerialHex:          serialHex,
			Subject:            e.subject,
			Issuer:             e.issuer,
			NotBefore:          rfc3339(c.NotBefore),
			NotAfter:           rfc3339(c.NotAfter),
			ValidAtMeasurement: validAt(c, at),
			SignerRootSHA1:     SignerUnknown,
			Known:              e.inter >= 0,
			Withheld:           e.withheld != nil,
		}
		if e.signer >= 0 {
			row.SignerRootSHA1 = v.kb.roots[e.signer].SHA1
			row.SignerRootName = v.kb.roots[e.signer].Name
		}
		rows = append(rows, row)
	}
	return rows
}

// validAt reports whether at falls inside c's validity window, with the
// same bounds as x509 verification.
func validAt(c *x509.Certificate, at time.Time) bool {
	return !at.Before(c.NotBefore) && !at.After(c.NotAfter)
}

// Strongest returns the strongest interception among the judgements of one
// target's handshakes (signature, then fingerprint, then issuer_name; the
// first on a tie), nil when none has one. The result is the judgement's own
// *Interception, not a copy.
func Strongest(js []*Judgement) *Interception {
	var best *Interception
	bestRank := 0
	for _, j := range js {
		if j == nil || j.Interception == nil {
			continue
		}
		if r := evidenceRank(j.Interception.Evidence); r > bestRank {
			best, bestRank = j.Interception, r
		}
	}
	return best
}
