package chain_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	"kzprobe/probe/chain"
)

// Judge a chain from a test interception root that copies the real ISCA
// subject, as the lab's does. The root is added to the knowledge base
// (config interception.extra_roots); the intermediate copies the root's
// name, like every intermediate seen in the wild.
func ExampleAnalyzer_Judge() {
	at := time.Date(2024, 9, 1, 12, 0, 0, 0, time.UTC)
	kb, err := chain.Default()
	if err != nil {
		panic(err)
	}
	real, _ := kb.RootBySHA1("fabda72fa1f620c160420a496194b61f82a01b4a")

	// A generated test PKI: root, intermediate with the root's exact
	// subject, leaf for example.test.
	mint := func(tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl.SerialNumber, _ = rand.Int(rand.Reader, big.NewInt(1<<62))
		tmpl.NotBefore, tmpl.NotAfter = at.AddDate(0, 0, -10), at.AddDate(0, 0, 65)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
		if err != nil {
			panic(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, key
	}
	ca := func() *x509.Certificate {
		return &x509.Certificate{RawSubject: real.Cert.RawSubject, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign}
	}
	root, rootKey := mint(ca(), nil, nil)
	inTmpl := ca()
	inTmpl.AuthorityKeyId = root.SubjectKeyId
	in, inKey := mint(inTmpl, root, rootKey)
	leaf, _ := mint(&x509.Certificate{Subject: pkix.Name{CommonName: "example.test"}, DNSNames: []string{"example.test"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, in, inKey)

	if _, err := kb.AddRootsPEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), "lab-isca.pem"); err != nil {
		panic(err)
	}
	a := chain.NewAnalyzer(nil, kb) // nil: the Mozilla bundle
	j := a.Judge([][]byte{leaf.Raw, in.Raw}, "example.test", at)

	testRoot := kb.Roots()[len(kb.Roots())-1]
	fmt.Println("trusted:", j.Trusted, *j.TrustFailure)
	fmt.Println("evidence:", j.Interception.Evidence)
	fmt.Println("root:", j.Interception.RootName, j.Interception.RootSHA1 == testRoot.SHA1)
	fmt.Println("rules:", j.Interception.Rules)
	row := j.Interception.Intermediates[0]
	fmt.Println("intermediate signed by the test root:", row.SignerRootSHA1 == testRoot.SHA1, "valid:", row.ValidAtMeasurement)
	fmt.Println("browser error even with root installed:", j.Interception.BrowserErrorEvenWithRootInstalled)
	// Output:
	// trusted: false ssl_unknown_authority
	// evidence: signature
	// root: Information Security Certification Authority true
	// rules: [isca_issuer_name known_root_issuer_name isca_75_day_intermediate]
	// intermediate signed by the test root: true valid: true
	// browser error even with root installed: false
}

// Strongest picks, among a target's handshakes, the one whose interception
// evidence is strongest.
func ExampleStrongest() {
	js := []*chain.Judgement{
		{Interception: &chain.Interception{Evidence: chain.EvidenceIssuerName}},
		{Interception: nil},
		{Interception: &chain.Interception{Evidence: chain.EvidenceSignature}},
	}
	fmt.Println(chain.Strongest(js).Evidence)
	// Output: signature
}
