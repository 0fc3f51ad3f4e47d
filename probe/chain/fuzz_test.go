package chain

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
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

// FuzzParseName: ParseName reads back every name pkix.Name.String prints,
// attribute by attribute (what the rules match on), and never panics on
// any other input.
func FuzzParseName(f *testing.F) {
	f.Add("Information Security Certification Authority", "ISCA", "KZ", "client [scrubbed]", `CN=a\,b+O=c,C=KZ`)
	f.Add(`#x, "y"+z\`, " lead", "trail ", "", "1.2.3=#0c0161,CN=x")
	f.Add("é", "<>;", `\`, "=", "CN=")
	f.Fuzz(func(t *testing.T, cn, o, c, ou, raw string) {
		ParseName(raw)
		n := pkix.Name{CommonName: cn, Organization: []string{o}, Country: []string{c}, OrganizationalUnit: []string{ou}}
		s := n.String()
		got, err := ParseName(s)
		if !utf8.ValidString(cn) || !utf8.ValidString(o) || !utf8.ValidString(c) || !utf8.ValidString(ou) {
			return // not a name a record holds: String replaces the bytes
		}
		if err != nil {
			t.Fatalf("ParseName(%q): %v", s, err)
		}
		if got.CommonName != cn || !slices.Equal(got.Organization, []string{o}) || !slices.Equal(got.Country, []string{c}) ||
			!slices.Equal(got.OrganizationalUnit, []string{ou}) {
			t.Errorf("ParseName(%q) = %+v; want CN %q O %q C %q OU %q", s, got, cn, o, c, ou)
		}
	})
}
