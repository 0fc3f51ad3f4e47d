package lab

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Subjects of the lab's certificate authorities.
const (
	// ISCACommonName, with O=ISCA and C=KZ, is the subject of the real
	// interception roots and of their intermediates (report-facts.json
	// "issuer_of_intermediates"). The lab's ISCA root and intermediates
	// copy it; only their keys and fingerprints differ from the real ones.
	ISCACommonName = "Information Security Certification Authority"
	// CorporateCommonName is the subject CN of the unrelated corporate
	// TLS-inspection root.
	CorporateCommonName = "Example Corp TLS Inspection CA"
	// PublicRootCommonName and PublicIntermediateCommonName name the lab's
	// "public" web PKI, which the origins use.
	PublicRootCommonName         = "kzprobe lab Public Test Root"
	PublicIntermediateCommonName = "kzprobe lab Public Test CA 1"
)

// Validity of the interception intermediates. The real ones were valid for
// 75 days each (report-facts.json "intermediate_validity_days").
const (
	ISCAIntermediateValidity = 75 * 24 * time.Hour
	// iscaCurrentAge is how long before the lab's start the current
	// intermediate began: it then ends 45 days after.
	iscaCurrentAge = 30 * 24 * time.Hour
	// iscaExpiredAgo is how long before the lab's start the expired
	// intermediate ended.
	iscaExpiredAgo = 5 * 24 * time.Hour
	// leafValidity is the lifetime of every leaf, origin or forged.
	leafValidity = 90 * 24 * time.Hour
	// backdate is how far before the start every other certificate begins,
	// so small clock differences do not matter.
	backdate = 24 * time.Hour
	// maxForged caps the forged-leaf cache: SNIs come from clients, and a
	// hostile client can send a new one on every connection.
	maxForged = 4096
)

// Interception modes for [PKI.Forge].
const (
	forgeISCA      = InterceptISCA
	forgeExpired   = InterceptISCAExpired
	forgeCorporate = InterceptCorporate
)

// PKI is the lab's certificate authorities, generated at [Start] with ECDSA
// P-256 keys that live only in memory. Its certificates are test
// certificates: the ISCA ones copy the real subject but not the real keys.
//
// The chains served:
//   - origins: leaf (SAN = domain) + PublicIntermediate, under PublicRoot;
//   - DoH/DoT and block page: the same public PKI;
//   - intercept_isca: forged leaf + ISCAIntermediate, under ISCARoot;
//   - intercept_isca_expired: forged leaf + ISCAExpiredIntermediate;
//   - intercept_corporate: forged leaf alone, issued by CorporateRoot.
//
// The roots are never sent, as with the real middlebox.
type PKI struct {
	// Now is the time the PKI was generated; every validity is relative
	// to it.
	Now time.Time

	PublicRoot              *x509.Certificate
	PublicIntermediate      *x509.Certificate
	ISCARoot                *x509.Certificate
	ISCAIntermediate        *x509.Certificate
	ISCAExpiredIntermediate *x509.Certificate
	CorporateRoot           *x509.Certificate

	publicRootKey, publicIntKey             crypto.Signer
	iscaRootKey, iscaIntKey, iscaExpiredKey crypto.Signer
	corporateKey                            crypto.Signer

	mu     sync.Mutex
	forged map[forgeKey]*tls.Certificate
}

type forgeKey struct{ name, mode string }

// NewPKI generates the lab's roots and intermediates, valid relative to now.
func NewPKI(now time.Time) (*PKI, error) {
	p := &PKI{Now: now, forged: make(map[forgeKey]*tls.Certificate)}
	iscaName, err := iscaSubject()
	if err != nil {
		return nil, err
	}
	type ca struct {
		cert      **x509.Certificate
		key       *crypto.Signer
		rawName   []byte
		name      pkix.Name
		parent    **x509.Certificate
		parentKey *crypto.Signer
		from, to  time.Time
	}
	steps := []ca{
		{cert: &p.PublicRoot, key: &p.publicRootKey,
			name: pkix.Name{Country: []string{"ZZ"}, Organization: []string{"kzprobe lab (test only)"}, CommonName: PublicRootCommonName},
			from: now.Add(-backdate), to: now.AddDate(10, 0, 0)},
		{cert: &p.PublicIntermediate, key: &p.publicIntKey, parent: &p.PublicRoot, parentKey: &p.publicRootKey,
			name: pkix.Name{Country: []string{"ZZ"}, Organization: []string{"kzprobe lab (test only)"}, CommonName: PublicIntermediateCommonName},
			from: now.Add(-backdate), to: now.AddDate(5, 0, 0)},
		{cert: &p.ISCARoot, key: &p.iscaRootKey, rawName: iscaName,
			from: now.AddDate(-5, 0, 0), to: now.AddDate(25, 0, 0)},
		{cert: &p.ISCAIntermediate, key: &p.iscaIntKey, rawName: iscaName, parent: &p.ISCARoot, parentKey: &p.iscaRootKey,
			from: now.Add(-iscaCurrentAge), to: now.Add(-iscaCurrentAge + ISCAIntermediateValidity)},
		{cert: &p.ISCAExpiredIntermediate, key: &p.iscaExpiredKey, rawName: iscaName, parent: &p.ISCARoot, parentKey: &p.iscaRootKey,
			from: now.Add(-iscaExpiredAgo - ISCAIntermediateValidity), to: now.Add(-iscaExpiredAgo)},
		{cert: &p.CorporateRoot, key: &p.corporateKey,
			name: pkix.Name{Country: []string{"ZZ"}, Organization: []string{"Example Corp"}, CommonName: CorporateCommonName},
			from: now.AddDate(-1, 0, 0), to: now.AddDate(10, 0, 0)},
	}
	for _, s := range steps {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("lab: pki: %w", err)
		}
		serial, err := newSerial()
		if err != nil {
			return nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber:          serial,
			Subject:               s.name,
			RawSubject:            s.rawName,
			NotBefore:             s.from,
			NotAfter:              s.to,
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
		parent, parentKey := tmpl, crypto.Signer(key)
		if s.parent != nil {
			parent, parentKey = *s.parent, *s.parentKey
			tmpl.MaxPathLenZero = true
			// Go omits the AKI when issuer and subject names are equal,
			// as for the ISCA intermediates; name the key explicitly.
			tmpl.AuthorityKeyId = parent.SubjectKeyId
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
		if err != nil {
			return nil, fmt.Errorf("lab: pki: %w", err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("lab: pki: %w", err)
		}
		*s.cert, *s.key = cert, key
	}
	return p, nil
}

// iscaSubject is the DER subject of the real ISCA roots, byte for byte:
// the attributes in their order (CN, O, C) as PrintableStrings. pkix.Name
// would encode C first; the bytes would differ though Go prints both as
// "CN=Information Security Certification Authority,O=ISCA,C=KZ" (OpenSSL's
// RFC 2253 form, and the report's, is "C=KZ,O=ISCA,CN=...").
func iscaSubject() ([]byte, error) {
	attr := func(oid asn1.ObjectIdentifier, v string) pkix.RelativeDistinguishedNameSET {
		return pkix.RelativeDistinguishedNameSET{{Type: oid, Value: v}}
	}
	rdn := pkix.RDNSequence{
		attr(asn1.ObjectIdentifier{2, 5, 4, 3}, ISCACommonName),
		attr(asn1.ObjectIdentifier{2, 5, 4, 10}, "ISCA"),
		attr(asn1.ObjectIdentifier{2, 5, 4, 6}, "KZ"),
	}
	der, err := asn1.Marshal(rdn)
	if err != nil {
		return nil, fmt.Errorf("lab: pki: %w", err)
	}
	return der, nil
}

func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("lab: pki: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// issue makes a leaf for the given DNS names and IP addresses signed by
// parent, and returns it with chain appended (the intermediates to send).
func (p *PKI) issue(parent *x509.Certificate, parentKey crypto.Signer, from, to time.Time, names []string, ips []net.IP, chain ...*x509.Certificate) (*tls.Certificate, error) {
	return p.issueEdited(nil, parent, parentKey, from, to, names, ips, chain...)
}

// issueEdited is issue with edit, when not nil, applied to the template
// before it is signed.
func (p *PKI) issueEdited(edit func(*x509.Certificate), parent *x509.Certificate, parentKey crypto.Signer, from, to time.Time, names []string, ips []net.IP, chain ...*x509.Certificate) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("lab: pki: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	cn := ""
	if len(names) > 0 {
		cn = names[0]
	} else if len(ips) > 0 {
		cn = ips[0].String()
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             from,
		NotAfter:              to,
		DNSNames:              names,
		IPAddresses:           ips,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		AuthorityKeyId:        parent.SubjectKeyId,
	}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, fmt.Errorf("lab: pki: issuing for %v: %w", names, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("lab: pki: %w", err)
	}
	c := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	for _, ch := range chain {
		c.Certificate = append(c.Certificate, ch.Raw)
	}
	return c, nil
}

// IssuePublic issues a leaf from the public intermediate for the given DNS
// names and IP addresses; the returned certificate carries the chain
// leaf + PublicIntermediate.
func (p *PKI) IssuePublic(names []string, ips []net.IP) (*tls.Certificate, error) {
	return p.issue(p.PublicIntermediate, p.publicIntKey, p.Now.Add(-backdate), p.Now.Add(leafValidity), names, ips, p.PublicIntermediate)
}

// Forge returns the leaf the middlebox presents for an SNI in the given
// interception mode (InterceptISCA, InterceptISCAExpired or
// InterceptCorporate), generating it on first use and caching it. The
// chain is leaf + the mode's intermediate (leaf alone for the corporate
// CA). An empty name (no SNI) is an error: the middlebox passes such
// connections through.
func (p *PKI) Forge(name, mode string) (*tls.Certificate, error) {
	if name == "" {
		return nil, errors.New("lab: pki: cannot forge a leaf without a name")
	}
	return p.cached(forgeKey{name, mode}, func() (*tls.Certificate, error) {
		// Forged leaves begin an hour before the start, like a freshly
		// forged one, whatever the intermediate's own window.
		from, to := p.Now.Add(-time.Hour), p.Now.Add(leafValidity)
		switch mode {
		case forgeISCA:
			return p.issue(p.ISCAIntermediate, p.iscaIntKey, from, to, []string{name}, nil, p.ISCAIntermediate)
		case forgeExpired:
			return p.issue(p.ISCAExpiredIntermediate, p.iscaExpiredKey, from, to, []string{name}, nil, p.ISCAExpiredIntermediate)
		case forgeCorporate:
			return p.issue(p.CorporateRoot, p.corporateKey, from, to, []string{name}, nil)
		}
		return nil, fmt.Errorf("lab: pki: %q is not an interception mode", mode)
	})
}

// ForgeFor is [PKI.Forge] by a middlebox that writes the client's address
// into the leaf it forges: in the subject (organizational unit "client
// ADDR"), as a DNS name (ADDR dashed, under client.lab.test) and as an IP
// address. The leaf is as valid for name as Forge's.
func (p *PKI) ForgeFor(name, mode string, client netip.Addr) (*tls.Certificate, error) {
	if name == "" {
		return nil, errors.New("lab: pki: cannot forge a leaf without a name")
	}
	client = client.Unmap()
	parent, key, chain := p.ISCAIntermediate, crypto.Signer(p.iscaIntKey), []*x509.Certificate{p.ISCAIntermediate}
	switch mode {
	case forgeISCA:
	case forgeExpired:
		parent, key, chain = p.ISCAExpiredIntermediate, p.iscaExpiredKey, []*x509.Certificate{p.ISCAExpiredIntermediate}
	case forgeCorporate:
		parent, key, chain = p.CorporateRoot, p.corporateKey, nil
	default:
		return nil, fmt.Errorf("lab: pki: %q is not an interception mode", mode)
	}
	dashed := strings.NewReplacer(".", "-", ":", "-").Replace(client.String()) + ".client." + labZone
	return p.cached(forgeKey{name, mode + " for " + client.String()}, func() (*tls.Certificate, error) {
		from, to := p.Now.Add(-time.Hour), p.Now.Add(leafValidity)
		edit := func(t *x509.Certificate) { t.Subject.OrganizationalUnit = []string{"client " + client.String()} }
		return p.issueEdited(edit, parent, key, from, to, []string{name, dashed}, []net.IP{client.AsSlice()}, chain...)
	})
}

// cached returns the certificate cached under k, or builds it, caches it
// and returns it. The cache holds at most maxForged certificates (it is
// emptied when full); of two connections building the same certificate at
// once, the first to finish wins.
func (p *PKI) cached(k forgeKey, build func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	p.mu.Lock()
	c, ok := p.forged[k]
	p.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := build()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev, ok := p.forged[k]; ok {
		return prev, nil
	}
	if len(p.forged) >= maxForged {
		clear(p.forged)
	}
	p.forged[k] = c
	return c, nil
}

// PublicRootPEM returns the public test root as PEM: the trust anchor of
// the origins, the block page and the control resolver.
func (p *PKI) PublicRootPEM() []byte { return certPEM(p.PublicRoot) }

// PublicIntermediatePEM returns the intermediate the origins send, as PEM.
func (p *PKI) PublicIntermediatePEM() []byte { return certPEM(p.PublicIntermediate) }

// ISCARootPEM returns the lab's ISCA interception root as PEM.
func (p *PKI) ISCARootPEM() []byte { return certPEM(p.ISCARoot) }

// ISCAIntermediatePEM returns the current ISCA intermediate as PEM.
func (p *PKI) ISCAIntermediatePEM() []byte { return certPEM(p.ISCAIntermediate) }

// ISCAExpiredIntermediatePEM returns the expired ISCA intermediate as PEM.
func (p *PKI) ISCAExpiredIntermediatePEM() []byte { return certPEM(p.ISCAExpiredIntermediate) }

// CorporateRootPEM returns the corporate TLS-inspection root as PEM.
func (p *PKI) CorporateRootPEM() []byte { return certPEM(p.CorporateRoot) }

// PublicRoots returns a pool holding only the public test root: what a
// client of the lab trusts as "the web PKI".
func (p *PKI) PublicRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.PublicRoot)
	return pool
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
