package chain

import (
	"crypto"
	"testing"
)

// typicalChain is a public leaf and intermediate under a root in trust,
// with keys from newKey.
func typicalChain(b *testing.B, newKey func() crypto.Signer) (*Analyzer, [][]byte) {
	w := newWorld(b)
	root := w.mint("root", certOpts{name: "Bench Public Root", ca: true, key: newKey()}, nil)
	in := w.mint("inter", certOpts{name: "Bench Issuing CA", ca: true, key: newKey()}, root)
	leaf := w.mint("leaf", certOpts{name: host, dns: []string{host}, key: newKey()}, in)
	w.trust.AddCert(root.Cert)
	a := w.analyzer()
	if j := a.Judge(ders(leaf, in), host, at); !j.Trusted || j.Interception != nil {
		b.Fatalf("bench chain: trusted %v, interception %+v", j.Trusted, j.Interception)
	}
	return a, ders(leaf, in)
}

func BenchmarkJudgeTypicalChain(b *testing.B) {
	for _, bc := range []struct {
		name string
		key  func() crypto.Signer
	}{
		{"ecdsa_p256", func() crypto.Signer { return newECKey(b) }},
		{"rsa2048", func() crypto.Signer { return newRSAKey(b, 2048) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			a, der := typicalChain(b, bc.key)
			b.ReportAllocs()
			for b.Loop() {
				a.Judge(der, host, at)
			}
		})
	}
}

// BenchmarkJudgeInterception: leaf and an intermediate with the real ISCA
// subject. "known_signer" is signed by a root in the knowledge base (found
// by key id); "unknown_signer" by a key in none, so every real ISCA root
// (RSA-4096) is tried, as for the report's "unknown" intermediates.
func BenchmarkJudgeInterception(b *testing.B) {
	w := newWorld(b)
	impostor := mint(b, certOpts{rawSubject: realSubject(b, realISCA), ca: true}, nil)
	for _, bc := range []struct {
		name   string
		signer *testCert
	}{
		{"known_signer", w.isca},
		{"unknown_signer", impostor},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in := mint(b, certOpts{rawSubject: realSubject(b, realISCA), ca: true}, bc.signer)
			der := ders(mint(b, leafOpts(), in), in)
			a := w.analyzer()
			if j := a.Judge(der, host, at); j.Interception == nil {
				b.Fatal("no interception")
			}
			b.ReportAllocs()
			for b.Loop() {
				a.Judge(der, host, at)
			}
		})
	}
}

// BenchmarkJudgeHostileChain: 200 certificates claiming an ISCA issuer,
// signed by no known key.
func BenchmarkJudgeHostileChain(b *testing.B) {
	w := newWorld(b)
	signer := mint(b, certOpts{rawSubject: realSubject(b, realISCA), ca: true}, nil)
	der := [][]byte{mint(b, certOpts{name: host, dns: []string{host}, aki: []byte{}}, signer).DER}
	for range 199 {
		der = append(der, mint(b, certOpts{rawSubject: realSubject(b, realISCA), ca: true, aki: []byte{}}, signer).DER)
	}
	a := w.analyzer()
	b.ReportAllocs()
	for b.Loop() {
		a.Judge(der, host, at)
	}
}

func BenchmarkDefaultKB(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Default(); err != nil {
			b.Fatal(err)
		}
	}
}
