package chain

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// FuzzJudge feeds arbitrary bytes as one to three presented certificates.
// Judge must not panic, and every certificate must be either described or
// recorded as a parse failure.
func FuzzJudge(f *testing.F) {
	w := newWorld(f)
	in := w.mint("inter", certOpts{rawSubject: realSubject(f, realISCA), ca: true}, w.isca)
	leaf := w.mint("leaf", leafOpts(), in)
	f.Add(leaf.DER, in.DER, w.isca.DER, uint8(2))
	f.Add(leaf.DER, in.DER, []byte{}, uint8(1))
	f.Add([]byte("garbage"), in.DER[:len(in.DER)/2], leaf.DER, uint8(2))
	f.Add(in.DER, []byte{0x30, 0x80}, []byte(nil), uint8(0))
	a := w.analyzer()
	f.Fuzz(func(t *testing.T, c0, c1, c2 []byte, n uint8) {
		der := [][]byte{c0, c1, c2}[:int(n)%3+1]
		j := a.Judge(der, host, at)
		if got := len(j.Certificates) + len(j.ParseErrors); got != len(der) {
			t.Fatalf("%d certificates and %d parse errors for %d inputs", len(j.Certificates), len(j.ParseErrors), len(der))
		}
		for _, e := range j.ParseErrors {
			var i int
			if _, err := fmt.Sscanf(e, "cert[%d]:", &i); err != nil || i < 0 || i >= len(der) || !strings.HasPrefix(e, fmt.Sprintf("cert[%d]: ", i)) {
				t.Fatalf("parse error %q does not name a certificate", e)
			}
			if _, err := x509.ParseCertificate(der[i]); err == nil {
				t.Fatalf("cert[%d] parses, yet is recorded as a parse error", i)
			}
		}
		if j.Trusted != (j.TrustFailure == nil) {
			t.Fatalf("Trusted = %v with TrustFailure %v", j.Trusted, j.TrustFailure)
		}
		if _, err := json.Marshal(j); err != nil {
			t.Fatal(err)
		}
	})
}
