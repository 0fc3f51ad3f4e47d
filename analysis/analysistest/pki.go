// Package analysistest builds measurement files that mirror the published
// OONI report on TLS interception in Kazakhstan, for the tests of
// kzprobe/analysis and of `kzprobe analyze`, as net/http/httptest builds
// servers for tests.
//
// No certificate of the report's seven intermediates exists, only their
// facts (serial, validity window, signing root). So the PKI here is
// generated: four test roots standing in for the report's four signing
// roots and one signer that is in no knowledge base (the report's
// "unknown"), all with the real ISCA subject, and seven intermediates
// carrying the report's serials and windows. Keys are Ed25519, derived from
// fixed seeds, and Ed25519 signatures are deterministic: every run makes
// byte-identical certificates, so golden files can hold their SHA-1s. These
// are test keys, published in this source; nothing here is a real key.
package analysistest

import (
	"crypto/ed25519"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"sync"
	"time"

	"kzprobe/measurement"
)

// ISCASubject is the subject of the real ISCA roots and of every
// intermediate in the report: C=KZ, O=ISCA, CN=Information Security
// Certification Authority (report-facts.json "issuer_of_intermediates").
var ISCASubject = pkix.Name{
	Country:      []string{"KZ"},
	Organization: []string{"ISCA"},
	CommonName:   "Information Security Certification Authority",
}

// ReportRoot is one of the report's signing roots.
type ReportRoot struct {
	// SHA1 is the real root's fingerprint, as the report prints it.
	SHA1                string
	Serial              string
	NotBefore, NotAfter time.Time
}

// ReportIntermediate is one row of the report's intermediates table.
type ReportIntermediate struct {
	// SHA1 is the real intermediate's fingerprint (no certificate of it
	// exists); the generated one has another.
	SHA1                string
	Serial              string
	NotBefore, NotAfter time.Time
	// Signer indexes ReportRoots, -1 for the report's "unknown".
	Signer int
	// SeenIn is the OONI measurement the report saw it in.
	SeenIn string
}

func utc(s string) time.Time {
	t, err := time.Parse(measurement.TimeLayout, s)
	if err != nil {
		panic(err)
	}
	return t
}

// ReportRoots are the report's four signing roots, in report-facts.json's
// order.
var ReportRoots = []ReportRoot{
	{"fabda72fa1f620c160420a496194b61f82a01b4a", "212762436239719553268722926518842178639864163027", utc("2020-02-28 06:46:02"), utc("2040-02-28 06:46:02")},
	{"ea5d093c312e1a516937e153c06c2d82127b47d6", "394571478723635638549382697435194886177070445336", utc("2020-02-28 05:39:51"), utc("2050-02-28 05:39:51")},
	{"1375ebdcf56359aae0423e861ac8fc6231511ce6", "285540385527369649610289916863209926796774245522", utc("2020-02-28 06:16:40"), utc("2050-02-28 06:16:40")},
	{"bfd7f531eca8e3d65b4738167b160b7a95a8d894", "618155106210402083740770170610017403616935751280", utc("2020-02-28 07:04:41"), utc("2050-02-28 07:04:41")},
}

// ReportIntermediates are the report's seven intermediates, in its order.
var ReportIntermediates = []ReportIntermediate{
	{"c0e15a945595372030f0d45938ebb6081bb39fb5", "542829070264121061358597976201233251364726286334", utc("2021-06-18 12:54:34"), utc("2021-09-01 12:54:34"), 0, "20210808015758.022737_KZ_webconnectivity_3b9213f9ee4f2d06"},
	{"90f9aa29195ecbfbf2c943ab1d5102f3ec84a68c", "600636309019776433832878055409971857043873967144", utc("2021-08-19 12:39:14"), utc("2021-11-02 12:39:14"), -1, "20210914080702.850310_KZ_webconnectivity_88ece394d9a0fcdc"},
	{"8634ecaefb5d02463d2a9ce42178001154752561", "293697198316360729812453916520636458008892047728", utc("2023-08-09 06:33:35"), utc("2023-10-23 06:33:35"), 1, "20231016130600.035487_KZ_webconnectivity_4a5c38a0f8bea740"},
	{"cb074692a22395fa615a89a86d877c9abc034867", "203432698505598047390349427507107109607746033885", utc("2023-11-02 09:03:07"), utc("2024-01-16 09:03:07"), 1, "20231118140134.149173_KZ_webconnectivity_a93dfc958ab79ec2"},
	{"dfcd9dcb64edd86e333ad6247e2deda7dcf10ebd", "621829445753241691614495298860851878603068917060", utc("2023-11-28 11:24:53"), utc("2024-02-11 11:24:53"), 2, "20240317052821.044604_KZ_webconnectivity_3752cbf5dac624e9"},
	{"5d54c6afa4fd4685359875595565ae9f8caab914", "499633659418679795571951434192241531137344178316", utc("2024-03-20 05:50:15"), utc("2024-06-03 05:50:15"), -1, "20240418133819.497733_KZ_webconnectivity_bd3a0d69cd5e8aca"},
	{"76e9f2a52c149586be8f389d8a71ac41d3f423d1", "414124517712191942334357388114692622770498879745", utc("2024-08-23 10:46:59"), utc("2024-11-06 10:46:59"), 3, "20240901151413.637888_KZ_webconnectivity_c351db70f739197a"},
}

// Network is a vantage network of the report.
type Network struct{ ASN, Name string }

// ReportNetworks are the report's 19 networks.
var ReportNetworks = []Network{
	{"AS8200", "Uplink LLC"},
	{"AS9123", "TimeWeb Ltd."},
	{"AS9198", "JSC Kazakhtelecom"},
	{"AS15736", "\"Mobile Business Solution\" MBS LLP"},
	{"AS21299", "Kar-Tel LLC"},
	{"AS29355", "Kcell JSC"},
	{"AS29555", "Mobile Telecom-Service LLP"},
	{"AS35104", "Jusan Mobile JSC"},
	{"AS39824", "JSC Alma Telecommunications"},
	{"AS41124", "BTcom Infocommunications Ltd."},
	{"AS41798", "JSC Transtelecom"},
	{"AS43370", "OBIT-telecommunications, LLC"},
	{"AS43994", "SMARTNET TOO"},
	{"AS44477", "STARK INDUSTRIES SOLUTIONS LTD"},
	{"AS48502", "ForteBank JSC."},
	{"AS48503", "Mobile Telecom-Service LLP"},
	{"AS48716", "PS Internet Company LLP"},
	{"AS50482", "JSC Kazakhtelecom"},
	{"AS206026", "Kar-Tel LLC"},
}

// NetworkName returns the report's name of asn, "" if it is not one.
func NetworkName(asn string) string {
	for _, n := range ReportNetworks {
		if n.ASN == asn {
			return n.Name
		}
	}
	return ""
}

// ReportDomains are the report's 14 domains.
var ReportDomains = []string{
	"360tv.ru", "astrakhan.sm.news", "compromat.ru", "cont.ws", "knews.kg",
	"kz.tsargrad.tv", "regnum.ru", "rutracker.org", "sproot.it", "stanradar.com",
	"ukraina.ru", "www.for.kg", "www.pinterest.com", "xakep.ru",
}

// Cert is a generated certificate with its key.
type Cert struct {
	Cert *x509.Certificate
	DER  []byte
	Key  ed25519.PrivateKey
}

// SHA1 is the hex SHA-1 of the certificate, as the tables print it.
func (c *Cert) SHA1() string {
	s := sha1.Sum(c.DER)
	return hex.EncodeToString(s[:])
}

// PEM is the certificate as a PEM block.
func (c *Cert) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
}

// PKI is the generated stand-in for the report's interception PKI, plus a
// "public" CA for chains that are not intercepted.
type PKI struct {
	// Roots stand in for ReportRoots, index for index.
	Roots []*Cert
	// Unknown signs the intermediates whose signer the report does not
	// know; it is in no knowledge base.
	Unknown *Cert
	// Intermediates stand in for ReportIntermediates, index for index.
	Intermediates []*Cert
	// PublicRoot and PublicCA issue the clean chains.
	PublicRoot, PublicCA *Cert

	mu     sync.Mutex
	leaves map[string]*Cert
}

// key derives a deterministic Ed25519 key from label.
func key(label string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("kzprobe analysistest key: " + label))
	return ed25519.NewKeyFromSeed(seed[:])
}

// serialFor derives a positive serial from label.
func serialFor(label string) *big.Int {
	h := sha256.Sum256([]byte("kzprobe analysistest serial: " + label))
	h[0] &= 0x7f
	return new(big.Int).SetBytes(h[:16])
}

func decimal(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic("bad serial " + s)
	}
	return n
}

// mint creates a certificate, self-signed when parent is nil.
func mint(tmpl *x509.Certificate, k ed25519.PrivateKey, parent *Cert) (*Cert, error) {
	signer, parentCert := k, tmpl
	if parent != nil {
		signer, parentCert = parent.Key, parent.Cert
	}
	der, err := x509.CreateCertificate(nil, tmpl, parentCert, k.Public(), signer)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Cert{Cert: c, DER: der, Key: k}, nil
}

func caTemplate(subject pkix.Name, serial *big.Int, nb, na time.Time) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

var (
	pkiOnce sync.Once
	pkiVal  *PKI
	pkiErr  error
)

// NewReportPKI returns the generated PKI. It is built once per process
// (and is the same in every process).
func NewReportPKI() (*PKI, error) {
	pkiOnce.Do(func() { pkiVal, pkiErr = newReportPKI() })
	return pkiVal, pkiErr
}

func newReportPKI() (*PKI, error) {
	p := &PKI{leaves: map[string]*Cert{}}
	for i, r := range ReportRoots {
		c, err := mint(caTemplate(ISCASubject, decimal(r.Serial), r.NotBefore, r.NotAfter), key(fmt.Sprint("root ", i)), nil)
		if err != nil {
			return nil, err
		}
		p.Roots = append(p.Roots, c)
	}
	var err error
	p.Unknown, err = mint(caTemplate(ISCASubject, serialFor("unknown"), utc("2020-02-28 00:00:00"), utc("2050-02-28 00:00:00")), key("unknown signer"), nil)
	if err != nil {
		return nil, err
	}
	for i, im := range ReportIntermediates {
		parent := p.Unknown
		if im.Signer >= 0 {
			parent = p.Roots[im.Signer]
		}
		c, err := mint(caTemplate(ISCASubject, decimal(im.Serial), im.NotBefore, im.NotAfter), key(fmt.Sprint("intermediate ", i)), parent)
		if err != nil {
			return nil, err
		}
		p.Intermediates = append(p.Intermediates, c)
	}
	nb, na := utc("2020-01-01 00:00:00"), utc("2030-01-01 00:00:00")
	if p.PublicRoot, err = mint(caTemplate(pkix.Name{Organization: []string{"kzprobe test"}, CommonName: "kzprobe analysistest Public Root"}, serialFor("public root"), nb, na), key("public root"), nil); err != nil {
		return nil, err
	}
	if p.PublicCA, err = mint(caTemplate(pkix.Name{Organization: []string{"kzprobe test"}, CommonName: "kzprobe analysistest Public CA 1"}, serialFor("public ca"), nb, na), key("public ca"), p.PublicRoot); err != nil {
		return nil, err
	}
	return p, nil
}

// RootsPEM returns the four test roots as PEM, for
// chain.KnowledgeBase.AddRootsPEM or --interception-roots.
func (p *PKI) RootsPEM() []byte {
	var out []byte
	for _, r := range p.Roots {
		out = append(out, r.PEM()...)
	}
	return out
}

// Leaf returns the leaf for domain issued by intermediate inter (-1: the
// public CA), valid over the issuer's window. Leaves are made once.
func (p *PKI) Leaf(inter int, domain string) (*Cert, error) {
	label := fmt.Sprintf("leaf %d %s", inter, domain)
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.leaves[label]; c != nil {
		return c, nil
	}
	issuer := p.PublicCA
	if inter >= 0 {
		issuer = p.Intermediates[inter]
	}
	tmpl := &x509.Certificate{
		SerialNumber: serialFor(label),
		Subject:      pkix.Name{CommonName: domain},
		DNSNames:     []string{domain},
		NotBefore:    issuer.Cert.NotBefore,
		NotAfter:     issuer.Cert.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	c, err := mint(tmpl, key(label), issuer)
	if err != nil {
		return nil, err
	}
	p.leaves[label] = c
	return c, nil
}

// Chain returns the chain a server presents for domain through inter (-1:
// the public CA): leaf and intermediate, no root, as the middleboxes did.
func (p *PKI) Chain(inter int, domain string) ([][]byte, error) {
	leaf, err := p.Leaf(inter, domain)
	if err != nil {
		return nil, err
	}
	issuer := p.PublicCA
	if inter >= 0 {
		issuer = p.Intermediates[inter]
	}
	return [][]byte{leaf.DER, issuer.DER}, nil
}

func newPool(certs ...*Cert) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c.Cert)
	}
	return p
}

func encodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
