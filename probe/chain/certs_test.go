package chain

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// Certificates for the tests are generated here, never taken from real
// keys. Test roots that play ISCA or Qaznet copy the real roots' subject
// bytes, as the lab's test root does.

// at is the pinned measurement time of the tests: the day the report's
// last intermediate (76e9f2a5…) was seen.
var at = time.Date(2024, 9, 1, 15, 14, 13, 0, time.UTC)

// testCert is a generated certificate with its key.
type testCert struct {
	Cert *x509.Certificate
	DER  []byte
	Key  crypto.Signer
}

// PEM returns the certificate as a PEM block.
func (c *testCert) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
}

// certOpts describes a certificate to generate. Zero fields get defaults:
// a P-256 key, a window of a year around at, subject from name.
type certOpts struct {
	name       string    // common name, when rawSubject and subject are empty
	subject    pkix.Name // used when non-empty
	rawSubject []byte    // exact subject bytes, used when non-empty
	ca         bool
	dns        []string
	notBefore  time.Time
	notAfter   time.Time
	key        crypto.Signer
	// aki, when non-nil, is the authority key id to claim (empty slice for
	// none). nil means the parent's subject key id.
	aki []byte
}

func newECKey(tb testing.TB) crypto.Signer {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func newRSAKey(tb testing.TB, bits int) crypto.Signer {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// mint creates a certificate signed by parent, self-signed when parent is
// nil.
func mint(tb testing.TB, o certOpts, parent *testCert) *testCert {
	tb.Helper()
	key := o.key
	if key == nil {
		key = newECKey(tb)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatal(err)
	}
	nb, na := o.notBefore, o.notAfter
	if nb.IsZero() {
		nb = at.AddDate(0, -6, 0)
	}
	if na.IsZero() {
		na = at.AddDate(0, 6, 0)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               o.subject,
		RawSubject:            o.rawSubject,
		NotBefore:             nb,
		NotAfter:              na,
		BasicConstraintsValid: true,
		IsCA:                  o.ca,
		DNSNames:              o.dns,
	}
	if len(tmpl.RawSubject) == 0 && len(o.subject.Names) == 0 && o.subject.CommonName == "" {
		tmpl.Subject = pkix.Name{CommonName: o.name}
	}
	if o.ca {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	signer, parentCert := key, tmpl
	if parent != nil {
		signer, parentCert = parent.Key, parent.Cert
		// Go copies the parent's key id only when issuer and subject bytes
		// differ; an intermediate that copies the root's name needs it set.
		tmpl.AuthorityKeyId = parent.Cert.SubjectKeyId
	}
	if o.aki != nil && parent != nil {
		// Go replaces the claimed key id by the parent's when the parent
		// has one; hide it so the claim stands.
		tmpl.AuthorityKeyId = o.aki
		p := *parent.Cert
		p.SubjectKeyId = nil
		parentCert = &p
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), signer)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &testCert{Cert: c, DER: der, Key: key}
}

// realSubject returns the subject bytes of the embedded real root with
// this SHA-1.
func realSubject(tb testing.TB, sha1Hex string) []byte {
	tb.Helper()
	kb, err := Default()
	if err != nil {
		tb.Fatal(err)
	}
	r, ok := kb.RootBySHA1(sha1Hex)
	if !ok {
		tb.Fatalf("no embedded root %s", sha1Hex)
	}
	return r.Cert.RawSubject
}

// SHA-1s of real roots used by the tests.
const (
	realISCA   = "fabda72fa1f620c160420a496194b61f82a01b4a" // C=KZ, O=ISCA, CN=Information Security Certification Authority
	realQaznet = "5811835eefaa2028835ab955da6829bf043a756d" // C=KZ, CN=Qaznet Trust Network
)

// ders returns the DER of each certificate.
func ders(cs ...*testCert) [][]byte {
	out := make([][]byte, len(cs))
	for i, c := range cs {
		out[i] = c.DER
	}
	return out
}

func hexSHA1(der []byte) string {
	s := sha1.Sum(der)
	return hex.EncodeToString(s[:])
}

func hexSHA256(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}
