package measurement

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net"
	"reflect"
	"testing"
	"time"

	"kzprobe/probe/chain"
)

// testCert returns a self-signed certificate for name with the given IP
// addresses.
func testCert(t *testing.T, name string, ips ...net.IP) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(4242), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), NotAfter: time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC),
		DNSNames: []string{name}, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestWithhold withholds the raw fields that hold the probe's address
// (here: its four bytes), everywhere a record keeps raw bytes, keeping the
// facts and judgements, and leaves every other field as it was.
func TestWithhold(t *testing.T) {
	t.Parallel()
	probeIP := net.IPv4(192, 0, 2, 7).To4()
	holds := func(b []byte) bool { return bytes.Contains(b, probeIP) }
	leaf := testCert(t, "forged.example", probeIP)
	ca := testCert(t, "Forging CA")
	control := testCert(t, "control.example", probeIP)
	dirty := append([]byte("\x12\x34\x81\x80answer"), probeIP...)
	clean := []byte("\x12\x34\x81\x80clean answer")
	leafSHA1 := sha1.Sum(leaf.Raw)
	// The judgement names the leaf's signer in memory (chain.CertInfo):
	// the withheld certificate keeps it.
	judgement := &chain.Judgement{ServerName: "forged.example", Certificates: []chain.CertInfo{{Index: 0, Subject: "CN=forged.example",
		SHA1: hex.EncodeToString(leafSHA1[:]), SignerRootSHA1: "ab12", SignerRootName: "Lab ISCA Root"}},
		Interception: &chain.Interception{Evidence: chain.EvidenceSignature, RootName: "Lab ISCA Root", RootSHA1: "ab12"}}
	m := &Measurement{
		Envelope: Envelope{Input: "forged.example"},
		TestKeys: TestKeys{
			Domain:         "forged.example",
			Queries:        []DNSQuery{{QueryType: "A", RawResponse: dirty}, {QueryType: "AAAA", RawResponse: clean}},
			ControlQueries: []DNSQuery{{QueryType: "A", RawResponse: clean}, {QueryType: "AAAA"}},
			TLSHandshakes:  []TLSHandshake{{PeerCertificates: []BinaryData{leaf.Raw, ca.Raw}}},
			Chains:         []*chain.Judgement{judgement},
			Interception:   judgement.Interception,
			Control: &ControlReport{Response: &ControlResponse{
				Queries:   []DNSQuery{{QueryType: "A", RawResponse: dirty}},
				Endpoints: []ControlEndpoint{{Address: "198.51.100.1", TLSHandshake: &TLSHandshake{PeerCertificates: []BinaryData{control.Raw}}}},
			}},
			Verdict:       VerdictMITMISCA,
			VerdictReason: "chain leads to Lab ISCA Root",
		},
	}
	before := *m
	if n := Withhold(m, holds); n != 4 {
		t.Errorf("Withhold = %d; want 4 (a leaf, a response, the control's response and leaf)", n)
	}
	tk := &m.TestKeys
	if tk.Verdict != before.TestKeys.Verdict || tk.VerdictReason != before.TestKeys.VerdictReason ||
		tk.Chains[0] != judgement || tk.Interception != judgement.Interception || !reflect.DeepEqual(*judgement.Interception, chain.Interception{Evidence: chain.EvidenceSignature, RootName: "Lab ISCA Root", RootSHA1: "ab12"}) {
		t.Errorf("Withhold changed the judgement or the verdict")
	}

	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	h := tk.TLSHandshakes[0]
	if h.PeerCertificates[0] != nil || !bytes.Equal(h.PeerCertificates[1], ca.Raw) {
		t.Errorf("peer certificates: leaf %d bytes, CA kept %v; want the leaf withheld, the CA kept", len(h.PeerCertificates[0]), bytes.Equal(h.PeerCertificates[1], ca.Raw))
	}
	want := []WithheldCertificate{{
		Index: 0, Withheld: Withheld{Reason: WithheldProbeAddress, SHA256: sum(leaf.Raw), Size: len(leaf.Raw)},
		Subject: "CN=forged.example", Issuer: "CN=forged.example", Serial: "4242", SerialHex: "10:92",
		NotBefore: "2026-01-02T03:04:05Z", NotAfter: "2027-01-02T03:04:05Z", SPKISHA256: hex.EncodeToString(spki[:]),
		SHA1: hex.EncodeToString(leafSHA1[:]), SignerRootSHA1: "ab12", SignerRootName: "Lab ISCA Root",
		RootName: "Lab ISCA Root", RootSHA1: "ab12",
	}}
	if !reflect.DeepEqual(h.WithheldCertificates, want) {
		t.Errorf("withheld certificates:\n%+v\nwant\n%+v", h.WithheldCertificates, want)
	}
	wantQuery := &Withheld{Reason: WithheldProbeAddress, SHA256: sum(dirty), Size: len(dirty)}
	if q := tk.Queries[0]; q.RawResponse != nil || !reflect.DeepEqual(q.RawResponseWithheld, wantQuery) {
		t.Errorf("dirty response: raw %q, withheld %+v; want null and %+v", q.RawResponse, q.RawResponseWithheld, wantQuery)
	}
	for _, q := range []DNSQuery{tk.Queries[1], tk.ControlQueries[0], tk.ControlQueries[1]} {
		if q.RawResponseWithheld != nil {
			t.Errorf("%s response withheld: %+v", q.QueryType, q.RawResponseWithheld)
		}
	}
	if !bytes.Equal(tk.Queries[1].RawResponse, clean) {
		t.Errorf("clean response changed")
	}
	r := tk.Control.Response
	if r.Queries[0].RawResponse != nil || r.Queries[0].RawResponseWithheld == nil {
		t.Errorf("the control server's response was not withheld")
	}
	if e := r.Endpoints[0].TLSHandshake; e.PeerCertificates[0] != nil || len(e.WithheldCertificates) != 1 || e.WithheldCertificates[0].Subject != "CN=control.example" {
		t.Errorf("the control server's leaf was not withheld: %+v", e.WithheldCertificates)
	}

	// The record reads back: a withheld entry is null, its facts beside it.
	var buf bytes.Buffer
	if err := NewWriter(&buf, -1).Write(m); err != nil {
		t.Fatal(err)
	}
	var back *Measurement
	if _, err := ReadJSONL(&buf, func(r *Measurement) error { back = r; return nil }); err != nil || back == nil {
		t.Fatalf("read back: %v", err)
	}
	bh := back.TestKeys.TLSHandshakes[0]
	if len(bh.PeerCertificates) != 2 || bh.PeerCertificates[0] != nil || !reflect.DeepEqual(bh.WithheldCertificates, want) {
		t.Errorf("read back: %d certificates (first %d bytes), withheld %+v", len(bh.PeerCertificates), len(bh.PeerCertificates[0]), bh.WithheldCertificates)
	}
	if !reflect.DeepEqual(back.TestKeys.Queries[0].RawResponseWithheld, wantQuery) {
		t.Errorf("read back: withheld response %+v", back.TestKeys.Queries[0].RawResponseWithheld)
	}
}

// A record with nothing to withhold is written byte for byte as before:
// no new field appears.
func TestWithholdNothing(t *testing.T) {
	t.Parallel()
	m := sampleMeasurement("clean.example")
	m.TestKeys.Queries = []DNSQuery{{QueryType: "A", RawResponse: []byte("answer")}}
	var before, after bytes.Buffer
	if err := NewWriter(&before, -1).Write(m); err != nil {
		t.Fatal(err)
	}
	if n := Withhold(m, func([]byte) bool { return false }); n != 0 {
		t.Errorf("Withhold = %d; want 0", n)
	}
	if err := NewWriter(&after, -1).Write(m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before.Bytes(), after.Bytes()) {
		t.Errorf("record changed:\n%s\n%s", before.Bytes(), after.Bytes())
	}
}

// Writer.Redact runs on each record before it is encoded.
func TestWriterRedact(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := NewWriter(&buf, -1)
	w.Redact = func(m *Measurement) { Withhold(m, func([]byte) bool { return true }) }
	if err := w.Write(sampleMeasurement("x.example")); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte(`"peer_certificates":[null],"withheld_certificates":[{"index":0,"withheld":"contains_probe_address"`)) {
		t.Errorf("line %s; want the certificate withheld", buf.Bytes())
	}
}
