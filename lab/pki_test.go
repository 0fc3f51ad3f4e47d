package lab

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"sync"
	"testing"
	"time"
)

func TestPKI(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 3, 17, 5, 28, 21, 0, time.UTC)
	p, err := NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	// The subject of the real ISCA roots (e.g. SHA-1 ea5d093c...), DER.
	const iscaDER = "3053313530330603550403132c496e666f726d6174696f6e2053656375726974792043657274696669636174696f6e20417574686f72697479310d300b060355040a130449534341310b3009060355040613024b5a"
	const iscaName = "CN=Information Security Certification Authority,O=ISCA,C=KZ"
	for name, c := range map[string]*x509.Certificate{
		"root": p.ISCARoot, "intermediate": p.ISCAIntermediate, "expired intermediate": p.ISCAExpiredIntermediate,
	} {
		if got := hex.EncodeToString(c.RawSubject); got != iscaDER {
			t.Errorf("ISCA %s subject DER %s; want the real one %s", name, got, iscaDER)
		}
		if got := hex.EncodeToString(c.RawIssuer); got != iscaDER {
			t.Errorf("ISCA %s issuer DER %s; want %s", name, got, iscaDER)
		}
		if got := c.Subject.String(); got != iscaName {
			t.Errorf("ISCA %s subject %q; want %q", name, got, iscaName)
		}
		if got := c.Issuer.String(); got != iscaName {
			t.Errorf("ISCA %s issuer %q; want %q", name, got, iscaName)
		}
		if !c.IsCA {
			t.Errorf("ISCA %s is not a CA", name)
		}
	}
	if got := p.ISCAIntermediate.NotAfter.Sub(p.ISCAIntermediate.NotBefore); got != ISCAIntermediateValidity {
		t.Errorf("current intermediate valid %v; want 75 days", got)
	}
	if !p.ISCAIntermediate.NotBefore.Before(now) || !p.ISCAIntermediate.NotAfter.After(now) {
		t.Errorf("current intermediate %v to %v does not cover %v", p.ISCAIntermediate.NotBefore, p.ISCAIntermediate.NotAfter, now)
	}
	if e := p.ISCAExpiredIntermediate; !e.NotAfter.Before(now.Add(-24*time.Hour)) || e.NotAfter.Sub(e.NotBefore) != ISCAIntermediateValidity {
		t.Errorf("expired intermediate %v to %v; want 75 days ending days before %v", e.NotBefore, e.NotAfter, now)
	}
	if p.CorporateRoot.Subject.CommonName != CorporateCommonName {
		t.Errorf("corporate root CN %q", p.CorporateRoot.Subject.CommonName)
	}
	// Each intermediate is signed by its root.
	for _, c := range []*x509.Certificate{p.ISCAIntermediate, p.ISCAExpiredIntermediate} {
		if err := c.CheckSignatureFrom(p.ISCARoot); err != nil {
			t.Errorf("intermediate serial %v not signed by the ISCA root: %v", c.SerialNumber, err)
		}
		if !bytes.Equal(c.AuthorityKeyId, p.ISCARoot.SubjectKeyId) {
			t.Errorf("intermediate AKI does not name the root's SKI")
		}
	}
	if err := p.PublicIntermediate.CheckSignatureFrom(p.PublicRoot); err != nil {
		t.Errorf("public intermediate: %v", err)
	}
	if bytes.Equal(p.ISCAIntermediate.Raw, p.ISCAExpiredIntermediate.Raw) || p.ISCAIntermediate.SerialNumber.Cmp(p.ISCAExpiredIntermediate.SerialNumber) == 0 {
		t.Errorf("the two intermediates are not distinct")
	}
	for _, pemData := range [][]byte{p.PublicRootPEM(), p.ISCARootPEM(), p.CorporateRootPEM(), p.ISCAIntermediatePEM(), p.ISCAExpiredIntermediatePEM(), p.PublicIntermediatePEM()} {
		if !x509.NewCertPool().AppendCertsFromPEM(pemData) {
			t.Errorf("PEM does not parse: %q", pemData[:40])
		}
	}
}

func TestForge(t *testing.T) {
	t.Parallel()
	now := time.Now()
	p, err := NewPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	// Concurrent first use yields one leaf per (name, mode).
	var wg sync.WaitGroup
	leaves := make([][]byte, 16)
	for i := range leaves {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.Forge("example.org", InterceptISCA)
			if err != nil {
				t.Error(err)
				return
			}
			leaves[i] = c.Certificate[0]
		}()
	}
	wg.Wait()
	for i := range leaves {
		if !bytes.Equal(leaves[i], leaves[0]) {
			t.Fatalf("concurrent Forge gave different leaves")
		}
	}
	cur, _ := p.Forge("example.org", InterceptISCA)
	exp, _ := p.Forge("example.org", InterceptISCAExpired)
	corp, _ := p.Forge("example.org", InterceptCorporate)
	if bytes.Equal(cur.Certificate[0], exp.Certificate[0]) {
		t.Errorf("modes share a leaf")
	}
	if len(cur.Certificate) != 2 || len(exp.Certificate) != 2 || len(corp.Certificate) != 1 {
		t.Errorf("chain lengths %d, %d, %d; want 2, 2, 1", len(cur.Certificate), len(exp.Certificate), len(corp.Certificate))
	}
	if _, err := p.Forge("", InterceptISCA); err == nil {
		t.Errorf("Forge with no name succeeded")
	}
	if _, err := p.Forge("example.org", Pass); err == nil {
		t.Errorf("Forge in mode pass succeeded")
	}
}
