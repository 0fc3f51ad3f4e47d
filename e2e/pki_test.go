//go:build linux

package e2e

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
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Subjects of the suite's certificate authorities. The ISCA root and both
// intermediates carry exactly the real subject (C=KZ, O=ISCA, CN=...), as
// the real intermediates do; only keys and fingerprints differ.
var (
	publicRootName  = pkix.Name{Organization: []string{"kzprobe e2e"}, CommonName: "kzprobe e2e Public Test Root"}
	publicInterName = pkix.Name{Organization: []string{"kzprobe e2e"}, CommonName: "kzprobe e2e Public Test CA 1"}
	iscaName        = pkix.Name{Country: []string{"KZ"}, Organization: []string{"ISCA"}, CommonName: "Information Security Certification Authority"}
	corpName        = pkix.Name{Organization: []string{"Example Corp"}, CommonName: "Example Corp TLS Inspection CA"}
)

// cert is a certificate with its key and the files it was written to.
type cert struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// CertFile holds the certificate alone, KeyFile the PKCS #8 key.
	CertFile, KeyFile string
}

// SHA1 is the hex SHA-1 of the certificate's DER, as kzprobe reports it.
func (c *cert) SHA1() string {
	s := sha1.Sum(c.Cert.Raw)
	return hex.EncodeToString(s[:])
}

// SHA256 is the hex SHA-256 of the certificate's DER.
func (c *cert) SHA256() string {
	s := sha256.Sum256(c.Cert.Raw)
	return hex.EncodeToString(s[:])
}

// pki is every certificate the suite serves or trusts.
type pki struct {
	PublicRoot, PublicInter *cert
	ISCARoot                *cert
	// ISCAInter is valid now; ISCAExpired ended five days ago. Both carry
	// the ISCA subject and are signed by ISCARoot.
	ISCAInter, ISCAExpired *cert
	// Corp signs forged leaves directly, like a corporate inspection box.
	Corp *cert
}

// newPKI generates the suite's PKI in dir. The CAs that sslsplit signs
// with have RSA keys (sslsplit's best-trodden path); the rest are ECDSA.
func newPKI(t testing.TB, dir string, now time.Time) *pki {
	t.Helper()
	day := 24 * time.Hour
	p := &pki{}
	p.PublicRoot = issue(t, dir, "public-root", template(publicRootName, now.Add(-day), now.Add(3650*day), true), nil, ecKey(t))
	p.PublicInter = issue(t, dir, "public-inter", template(publicInterName, now.Add(-day), now.Add(1825*day), true), p.PublicRoot, ecKey(t))
	// The real ISCA roots were issued on 2020-02-28, valid 20 or 30 years.
	p.ISCARoot = issue(t, dir, "isca-root", template(iscaName, time.Date(2020, 2, 28, 6, 46, 2, 0, time.UTC), time.Date(2040, 2, 28, 6, 46, 2, 0, time.UTC), true), nil, rsaKey(t))
	// The real intermediates lived 75 days each.
	p.ISCAInter = issue(t, dir, "isca-inter", template(iscaName, now.Add(-30*day), now.Add(45*day), true), p.ISCARoot, rsaKey(t))
	p.ISCAExpired = issue(t, dir, "isca-expired", template(iscaName, now.Add(-80*day), now.Add(-5*day), true), p.ISCARoot, rsaKey(t))
	p.Corp = issue(t, dir, "corp-root", template(corpName, now.Add(-day), now.Add(3650*day), true), nil, rsaKey(t))
	return p
}

// leaf issues a server certificate for names (DNS names or IP literals)
// from the public issuing CA, written as name.pem (leaf then issuing CA,
// as servers send it) and name.key.
func (p *pki) leaf(t testing.TB, dir, name string, now time.Time, names ...string) *cert {
	t.Helper()
	tmpl := template(pkix.Name{CommonName: names[0]}, now.Add(-24*time.Hour), now.Add(90*24*time.Hour), false)
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	c := issue(t, dir, name, tmpl, p.PublicInter, ecKey(t))
	writePEM(t, c.CertFile, c.Cert, p.PublicInter.Cert)
	return c
}

// template is a certificate template; serials are random, as CAs make them.
func template(subject pkix.Name, notBefore, notAfter time.Time, isCA bool) *x509.Certificate {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	return tmpl
}

// issue signs tmpl with parent (self-signed when nil) and writes
// dir/name.pem and dir/name.key.
func issue(t testing.TB, dir, name string, tmpl *x509.Certificate, parent *cert, key crypto.Signer) *cert {
	t.Helper()
	parentCert, parentKey := tmpl, key
	if parent != nil {
		parentCert, parentKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), parentKey)
	if err != nil {
		t.Fatalf("issuing %s: %v", name, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
	out := &cert{Cert: c, Key: key, CertFile: filepath.Join(dir, name+".pem"), KeyFile: filepath.Join(dir, name+".key")}
	writePEM(t, out.CertFile, c)
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("marshalling the key of %s: %v", name, err)
	}
	if err := os.WriteFile(out.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// writePEM writes certs to file as consecutive PEM blocks.
func writePEM(t testing.TB, file string, certs ...*x509.Certificate) {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func ecKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rsaKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
