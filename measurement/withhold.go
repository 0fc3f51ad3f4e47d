package measurement

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"time"

	"kzprobe/probe/chain"
)

// WithheldProbeAddress is the reason a raw field was left out of a record:
// its bytes hold the probe's own address (a middlebox that writes the
// client's address into the certificate it forges, a resolver that echoes
// it in an EDNS client-subnet option).
const WithheldProbeAddress = "contains_probe_address"

// Withheld stands for raw bytes left out of a record, in place of the
// field that held them (which is then null).
type Withheld struct {
	// Reason says why: WithheldProbeAddress.
	Reason string `json:"withheld"`
	// SHA256 is the hex SHA-256 of the bytes left out, so that records can
	// still be compared (the same certificate, the same response).
	SHA256 string `json:"sha256"`
	// Size is their length in bytes.
	Size int `json:"size"`
}

// WithheldCertificate stands for a presented certificate left out of
// [TLSHandshake].PeerCertificates, whose entry at Index is then null. It
// keeps the facts a verdict is drawn from, taken before the certificate
// was left out.
type WithheldCertificate struct {
	// Index is the certificate's position in the presented chain (0 is
	// the leaf).
	Index int `json:"index"`
	Withheld
	// Subject, Issuer, Serial (decimal), SerialHex (as openssl and crt.sh
	// print it, chain.SerialHex), NotBefore and NotAfter (RFC 3339, UTC)
	// are the certificate's, empty when it did not parse. Text that holds
	// the probe's address is scrubbed like every other field.
	Subject   string `json:"subject"`
	Issuer    string `json:"issuer"`
	Serial    string `json:"serial"`
	SerialHex string `json:"serial_hex"`
	NotBefore string `json:"not_before"`
	NotAfter  string `json:"not_after"`
	// SPKISHA256 is the hex SHA-256 of its SubjectPublicKeyInfo.
	SPKISHA256 string `json:"spki_sha256"`
	// SHA1 is the hex SHA-1 of the bytes left out (the fingerprint the
	// intermediates table and the knowledge base key on) and IsCA its
	// basic constraints' CA flag. Absent in records before 2026-12-04's
	// second session.
	SHA1 string `json:"sha1,omitempty"`
	IsCA bool   `json:"is_ca,omitempty"`
	// SignerRootSHA1 and SignerRootName name the known interception root
	// whose key verified this certificate's signature when the chain was
	// judged, with its bytes, before they were left out; absent when none
	// did (and in records before them). The analysis of the record cannot
	// check that signature again and says so (chain.EvidenceRecorded).
	SignerRootSHA1 string `json:"signer_root_sha1,omitempty"`
	SignerRootName string `json:"signer_root_name,omitempty"`
	// ChainTrusted is the judgement of the chain it was presented in:
	// verified against the trust store for the server name.
	ChainTrusted bool `json:"chain_trusted"`
	// RootName and RootSHA1 name the known interception root the chain
	// was found to lead to ([chain.Interception]: by a signature or a
	// fingerprint), empty when none was singled out.
	RootName string `json:"root_name"`
	RootSHA1 string `json:"root_sha1"`
}

// Withhold leaves out of m every raw field whose bytes holds reports to
// contain the probe's address: presented certificates (of the probe's
// handshakes and of the control server's) and DNS responses (of the local
// and control resolvers and of the control server's own queries). Each is
// replaced by null and described by a [Withheld] or [WithheldCertificate]
// beside it.
//
// Call it once m is judged: judgements and the verdict are m's already and
// stay as they are. It returns how many fields it withheld.
func Withhold(m *Measurement, holds func([]byte) bool) int {
	tk := &m.TestKeys
	n := withholdQueries(tk.Queries, holds) + withholdQueries(tk.ControlQueries, holds)
	for i := range tk.TLSHandshakes {
		var j *chain.Judgement
		if i < len(tk.Chains) {
			j = tk.Chains[i]
		}
		n += withholdChain(&tk.TLSHandshakes[i], j, holds)
	}
	if c := tk.Control; c != nil && c.Response != nil {
		n += withholdQueries(c.Response.Queries, holds)
		for i := range c.Response.Endpoints {
			if e := &c.Response.Endpoints[i]; e.TLSHandshake != nil {
				n += withholdChain(e.TLSHandshake, e.Chain, holds)
			}
		}
	}
	return n
}

func withholdQueries(qs []DNSQuery, holds func([]byte) bool) int {
	n := 0
	for i := range qs {
		q := &qs[i]
		if q.RawResponse == nil || !holds(q.RawResponse) {
			continue
		}
		w := withheld(q.RawResponse)
		q.RawResponse, q.RawResponseWithheld = nil, &w
		n++
	}
	return n
}

// withholdChain withholds the certificates of h that hold the address; j
// is the judgement of h's chain, nil when there is none.
func withholdChain(h *TLSHandshake, j *chain.Judgement, holds func([]byte) bool) int {
	n := 0
	for i, der := range h.PeerCertificates {
		if der == nil || !holds(der) {
			continue
		}
		w := WithheldCertificate{Index: i, Withheld: withheld(der)}
		s1 := sha1.Sum(der)
		w.SHA1 = hex.EncodeToString(s1[:])
		if c, err := x509.ParseCertificate(der); err == nil {
			w.IsCA = c.IsCA
			spki := sha256.Sum256(c.RawSubjectPublicKeyInfo)
			w.Subject, w.Issuer = c.Subject.String(), c.Issuer.String()
			w.Serial, w.SerialHex = c.SerialNumber.String(), chain.SerialHex(c.SerialNumber)
			w.NotBefore, w.NotAfter = c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339)
			w.SPKISHA256 = hex.EncodeToString(spki[:])
		}
		if j != nil {
			w.ChainTrusted = j.Trusted
			if in := j.Interception; in != nil {
				w.RootName, w.RootSHA1 = in.RootName, in.RootSHA1
			}
			for _, ci := range j.Certificates {
				if ci.Index == i && ci.SHA1 == w.SHA1 {
					w.SignerRootSHA1, w.SignerRootName = ci.SignerRootSHA1, ci.SignerRootName
				}
			}
		}
		h.PeerCertificates[i] = nil
		h.WithheldCertificates = append(h.WithheldCertificates, w)
		n++
	}
	return n
}

func withheld(b []byte) Withheld {
	sum := sha256.Sum256(b)
	return Withheld{Reason: WithheldProbeAddress, SHA256: hex.EncodeToString(sum[:]), Size: len(b)}
}

// WithholdTrace is [Withhold] for a trace record: the DNS responses of
// its queries and the certificates presented to its TLS iterations.
func WithholdTrace(t *Trace, holds func([]byte) bool) int {
	tk := &t.TestKeys
	n := withholdQueries(tk.Queries, holds)
	for _, its := range [][]TLSIteration{tk.TargetTrace, tk.ControlTrace} {
		for i := range its {
			if h := its[i].Handshake; h != nil {
				n += withholdChain(h, its[i].Chain, holds)
			}
		}
	}
	return n
}
