package chain

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kzprobe/probe/failure"
)

// world is a generated PKI for one test: interception test roots (in the
// knowledge base, next to the real ones), a public CA (in the trust store)
// and a corporate CA (nowhere).
type world struct {
	t      testing.TB
	kb     *KnowledgeBase
	isca   *testCert // test root copying the real ISCA subject, in kb
	isca2  *testCert // a second test root with the same subject, in kb
	qaznet *testCert // test root copying the real Qaznet subject, in kb
	public *testCert // "public" CA, in trust
	corp   *testCert // corporate CA, in neither
	trust  *x509.CertPool
	names  map[string]string // SHA-1 -> name, for readable expectations
}

func newWorld(t testing.TB) *world {
	t.Helper()
	kb, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, kb: kb, trust: x509.NewCertPool(), names: map[string]string{}}
	for _, r := range kb.Roots() {
		w.names[r.SHA1] = "real:" + r.SHA1[:8]
	}
	w.isca = w.mint("isca", certOpts{rawSubject: realSubject(t, realISCA), ca: true}, nil)
	w.isca2 = w.mint("isca2", certOpts{rawSubject: realSubject(t, realISCA), ca: true}, nil)
	w.qaznet = w.mint("qaznet", certOpts{rawSubject: realSubject(t, realQaznet), ca: true}, nil)
	w.public = w.mint("public", certOpts{name: "Example Public Root", ca: true}, nil)
	w.corp = w.mint("corp", certOpts{name: "Example Corp Inspection CA", ca: true}, nil)
	for _, r := range []*testCert{w.isca, w.isca2, w.qaznet} {
		if n, err := kb.AddRootsPEM(r.PEM(), "test"); err != nil || n != 1 {
			t.Fatalf("AddRootsPEM = %d, %v", n, err)
		}
	}
	w.trust.AddCert(w.public.Cert)
	return w
}

// mint creates a certificate and remembers its name.
func (w *world) mint(name string, o certOpts, parent *testCert) *testCert {
	w.t.Helper()
	c := mint(w.t, o, parent)
	w.names[hexSHA1(c.DER)] = name
	return c
}

func (w *world) name(sha1Hex string) string {
	if sha1Hex == "" || sha1Hex == SignerUnknown {
		return sha1Hex
	}
	if n, ok := w.names[sha1Hex]; ok {
		return n
	}
	return sha1Hex
}

func (w *world) analyzer() *Analyzer { return &Analyzer{Trust: w.trust, KB: w.kb} }

// outcome is what a table case checks, with certificates by name.
type outcome struct {
	Trusted      bool
	TrustFailure string
	ParseErrors  []string // "cert[i]" prefixes
	Certs        []int    // Index of each parsed certificate
	Evidence     string   // "" for no interception
	Root         string
	RootName     string
	Rules        []string
	Rows         []row
	BrowserError bool
	Reasons      []string
}

type row struct {
	Cert, Signer string
	Valid, Known bool
}

func (w *world) outcome(j *Judgement) outcome {
	o := outcome{Trusted: j.Trusted, Certs: []int{}, ParseErrors: []string{}}
	if j.TrustFailure != nil {
		o.TrustFailure = *j.TrustFailure
	}
	for _, e := range j.ParseErrors {
		o.ParseErrors = append(o.ParseErrors, strings.SplitN(e, ":", 2)[0])
	}
	for _, c := range j.Certificates {
		o.Certs = append(o.Certs, c.Index)
	}
	if in := j.Interception; in != nil {
		o.Evidence, o.Root, o.RootName, o.Rules = in.Evidence, w.name(in.RootSHA1), in.RootName, in.Rules
		o.Rows = []row{}
		for _, r := range in.Intermediates {
			o.Rows = append(o.Rows, row{w.name(r.SHA1), w.name(r.SignerRootSHA1), r.ValidAtMeasurement, r.Known})
		}
		o.BrowserError, o.Reasons = in.BrowserErrorEvenWithRootInstalled, in.BrowserErrorReasons
	}
	return o
}

// Names used in the cases.
var (
	iscaNamed = pkix.Name{Country: []string{"KZ"}, Organization: []string{"ISCA"},
		OrganizationalUnit: []string{"test intermediate"}, CommonName: ISCACommonName}
	securityCertificate = pkix.Name{CommonName: Qaznet2019IntermediateCommonName}
	iscaRules           = []string{RuleISCAIssuerName, RuleKnownRootIssuerName}
	none                = []string{}
)

const host = "example.test"

func leafOpts() certOpts { return certOpts{name: host, dns: []string{host}} }

// The scenario catalog: a presented chain built from generated
// certificates, and what the analysis must say about it.
var judgeCases = []struct {
	name   string
	server string // default host
	chain  func(w *world) [][]byte
	want   outcome
}{
	{
		name: "isca_named_intermediate_signed_by_test_root",
		chain: func(w *world) [][]byte {
			in := w.mint("inter", certOpts{subject: iscaNamed, ca: true}, w.isca)
			return ders(w.mint("leaf", leafOpts(), in), in)
		},
		want: outcome{TrustFailure: failure.SSLUnknownAuthority, Certs: []int{0, 1},
			Evidence: EvidenceSignature, Root: "isca", RootName: ISCACommonName, Rules: iscaRules,
			Rows: []row{{"inter", "isca", true, false}}, Reasons: none},
	},
	{
		// The real intermediates have the root's exact subject: subject ==
		// issuer, yet not self-signed.
		name: "intermediate_copies_root_subject",
		chain: func(w *world) [][]byte {
			in := w.mint("inter", certOpts{rawSubject: realSubject(w.t, realISCA), ca: true}, w.isca)
			return ders(w.mint("leaf", leafOpts(), in), in)
		},
		want: outcome{TrustFailure: failure.SSLUnknownAuthority, Certs: []int{0, 1},
			Evidence: EvidenceSignature, Root: "isca", RootName: ISCACommonName, Rules: iscaRules,
			Rows: []row{{"inter", "isca", true, false}}, Reasons: none},
	},
	{
		// Two roots with one subject; the intermediate's key id points at
		// the wrong one. Only the signature tells.
		name: "same_subject_roots_misleading_key_id",
		chain: func(w *world) [][]byte {
			in := w.mint("inter", certOpts{rawSubject: realSubject(w.t, realISCA), ca: true, aki: w.isca.Cert.SubjectKeyId}, w.isca2)
			return ders(w.mint("leaf", leafOpts(), in), in)
		},
		want: outcome{TrustFailure: failure.SSLUnknownAuthority, Certs: []int{0, 1},
			Evidence: EvidenceSignature, Root: "isca2", RootName: ISCACommonName, Rules: iscaRules,
			Rows: []row{{"inter", "isca2", true, false}}, Reasons: none},
	},
	{
		name: "same_subject_roots_no_key_id",
		chain: func(w *world) [][]byte {
			in := w.mint("inter", certOpts{rawSubject: realSubject(w.t, realISCA), ca: true, aki: []byte{}}, w.isca2)
			return ders(w.mint("leaf", leafOpts(), in), in)
		},
		want: outcome{TrustFailure: failure.SSLUnknownAuthority, Certs: []int{0, 1},
			Evidence: EvidenceSignature, Root: "isca2", RootName: ISCACommonName, Rules: iscaRules,
			Rows: []row{{"inter", "isca2", true, false}}, Reasons: none},
	},
	{
		name: "missing_intermediate_name_only",
		chain: func(w *world) [][]byte {
			in := w.mint("inter", certOpts{rawSubject: realSubject(w.t, realISCA), ca: true}, w.isca)
			return ders(w.mint("leaf", leafOpts(), in))
		},
		want: outcome{TrustFailure: failure.SSLUnknownAuthority, Certs: []int{0},
			Evidence: EvidenceIssuerName, RootName: ISCACommonName, Rules: iscaRules,
			Rows: []row{}, Reasons: none},
	},
	{
		// 75 days, like every intermediate of the report, ended before the
		// measurement.
		name: "expired_intermediate",
		chain: func(w *world) [][]byte {
			in := w.mint("inter", certOpts{rawSubject: realSubject(w.t, realISCA), ca: true,
				notBefore: at.AddDate(0, 0, -100), notAfter: at.AddDate(0, 0, -25)}, w.isca)
			return ders(w.mint("leaf", leafOpts(), in), in)
		},
		// x509 reports the expired intermediate before the unknown root.
		want: outcome{TrustFailure: failure.SSLInvalidCert, Certs: []int{0, 1},
			Evidence: EvidenceSignature, Root: "isca", RootName: ISCACommonName,
			Rules: []string{RuleISCAIssuerName, RuleKnownRootIssuerName, RuleISCA75DayIntermediate},
			Rows:  []row{{"inter", "isca", false, false}}, BrowserError: true,
			Reasons: []string{ReasonIntermediateExpired}},
	},
	{
		name:   "not_yet_valid_intermediate_expired_leaf_wrong_name",
		server: "other.test",
		chain: func(w *world) [][]byte {
			in := w.mint("inter", certOpts{rawSubject: realSubject(w.t, realISCA), ca: true,
				notBefore: at.Add(24 * time.Hour), notAfter: at.AddDate(0, 3, 0)}, w.isca)
			lo := leafOpts()
			lo.notBefore, lo.notAfter = at.AddDate(0, -3, 0), at.Add(-time.Hour)
			return ders(w.mint("leaf", lo, in), in)
		},
		want: outcome{TrustFailure: failure.SSLInvalidCert, Certs: []int{0, 1},
			Evidence: EvidenceSignature, Root: "isca", RootName: ISCACommonName, Rules: iscaRules,
			Rows: []row{{"inter", "isca", false, false}}, BrowserError: true,
			Reasons: []string{ReasonLeafExpired, ReasonIntermediateNotYetValid, ReasonNameMismatch}},
	},
	{
		// Two intermediates and the root, in the wrong order.
		name: "reordered_chain",
		chain: func(w *world) [][]byte {
			in1 := w.mint("inter1", certOpts{subject: iscaNamed, ca: true}, w.isca)
			in2 := w.mint("inter2", certOpts{name: "Test Issuing CA 2", ca: true}, in1)
			return ders(w.mint("leaf", leafOpts(), in2), w.isca, in1, in2)
		},
		want: outcome{TrustFailure: failure.SSLUnknownAuthority, Certs: []int{0, 1, 2, 3},
			Evidence: EvidenceSignature, Root: "isca", RootName: ISCACommonName, Rules: iscaRules,
			Rows: []row{{"inter1", "isca", true, false}, {"inter2", SignerUnknown, true, false}}, Reasons: none},
	},
	{
		name: "junk_certs_and_garbage",
		chain: func(w *world) [][]byte {
			in := w.mint("inter", certOpts{rawSubject: realSubject(w.t, realISCA), ca: true}, w.isca)
			corpCA := w.mint("corp-inter", certOpts{name: "Example Corp Issuing CA", ca: true}, w.corp)
			junk := w.mint("junk", certOpts{name: "junk.test", dns: []string{"junk.test"}}, corpCA)
			return [][]byte{w.mint("leaf", leafOpts(), in).DER, []byte("\x30\x03junk"), junk.DER, corpCA.DER, nil, in.DER, in.DER}
		},
		want: outcome{TrustFailure: failure.SSLUnknownAuthority, ParseErrors: []string{"cert[1]", "cert[4]"},
			Certs: []int{0, 2, 3, 5, 6}, Evidence: EvidenceSignature, Root: "isca", RootName: ISCACommonName, Rules: iscaRules,
			Rows: []row{{"corp-inter", SignerUnknown, true, false}, {"inter", "isca", true, false}}, Reasons: none},
	},
	{
		name: "root_sent_in_chain",
		chain: func(w *world) [][]byte {
			in := w.mint("inter", certOpts{rawSubject: realSubject(w.t, realISCA), ca: true}, w.isca)
			return ders(w.mint("leaf", leafOpts(), in), in, w.isca)
		},
		want: outcome{TrustFailure: failure.SSLUnknownAuthority, Certs: []int{0, 1, 2},
			Evidence: EvidenceSignature, Root: "isca", RootName: ISCACommonName, Rules: iscaRules,
			Rows: []row{{"inter", "isca", true, false}}, Reasons: none},
	},
	{
		name:  "test_root_alone",
		chain: func(w *world) [][]byte { return ders(w.isca) },
		want: outcome{TrustFailure: failure.SSLInvalidHostname, Certs: []int{0},
			Evidence: EvidenceFingerprint, Root: "isca", RootName: ISCACommonName, Rules: iscaRules,
			Rows: []row{}, Reasons: none},
	},
	{
		name: "real_root_alone",
		chain: func(w *world) [][]byte {
			r, _ := w.kb.RootBySHA1(realISCA)
			return [][]byte{r.Cert.Raw}
		},
		want: outcome{TrustFailure: failure.SSLInvalidHostname, Certs: []int{0},
			Evidence: EvidenceFingerprint, Root: "real:fabda72f", RootName: ISCACommonName, Rules: iscaRules,
			Rows: []row{}, Reasons: none},
	},
	{
		name: "leaf_signed_directly_by_root",
		chain: func(w *world) [][]byte {
			return ders(w.mint("leaf", leafOpts(), w.qaznet))
		},
		want: outcome{TrustFailure: failure.SSLUnknownAuthority, Certs: []int{0},
			Evidence: EvidenceSignature, Root: "qaznet", RootName: QaznetCommonName,
			Rules: []string{RuleQaznetIssuerName, RuleKnownRootIssuerName}, Rows: []row{}, Reasons: none},
	},
	{
		// What OONI records often hold: one certificate, the intermediate.
		name: "intermediate_alone",
		chain: func(w *world) [][]byte {
			return ders(w.mint("inter", certOpts{rawSubject: realSubject(w.t, realISCA), ca: true}, w.isca))
		},
		want: outcome{TrustFailure: failure.SSLInvalidHostname, Certs: []int{0},
			Evidence: EvidenceSignature, Root: "isca", RootName: ISCACommonName, Rules: iscaRules,
			Rows: []row{{"inter", "isca", true, false}}, Reasons: none},
	},
	{
		name: "expired_intermediate_alone",
		chain: func(w *world) [][]byte {
			return ders(w.mint("inter", certOpts{rawSubject: realSubject(w.t, realISCA), ca: true,
				notBefore: at.AddDate(-1, 0, 0), notAfter: at.AddDate(0, 0, -1)}, w.isca))
		},
		want: outcome{TrustFailure: failure.SSLInvalidCert, Certs: []int{0},
			Evidence: EvidenceSignature, Root: "isca", RootName: ISCACommonName, Rules: iscaRules,
			Rows: []row{{"inter", "isca", false, false}}, BrowserError: true,
			Reasons: []string{ReasonIntermediateExpired}},
	},
	{
		// The same intermediate key certified twice, once expired: the
		// browser builds the path through the valid one.
		name: "reissued_intermediate_one_expired",
		chain: func(w *world) [][]byte {
			key := newECKey(w.t)
			old := w.mint("inter-old", certOpts{rawSubject: realSubject(w.t, realISCA), ca: true, key: key,
				notBefore: at.AddDate(0, 0, -100), notAfter: at.AddDate(0, 0, -25)}, w.isca)
			cur := w.mint("inter-new", certOpts{rawSubject: realSubject(w.t, realISCA), ca: true, key: key}, w.isca)
			return ders(w.mint("leaf", leafOpts(), cur), old, cur)
		},
		want: outcome{TrustFailure: failure.SSLUnknownAuthority, Certs: []int{0, 1, 2},
			Evidence: EvidenceSignature, Root: "isca", RootName: ISCACommonName,
			Rules: []string{RuleISCAIssuerName, RuleKnownRootIssuerName, RuleISCA75DayIntermediate},
			Rows:  []row{{"inter-old", "isca", false, false}, {"inter-new", "isca", true, false}}, Reasons: none},
	},
	{
		// Signed by the root, in its dates, but not a CA: a browser
		// rejects it for a reason other than dates or names.
		name: "non_ca_intermediate",
		chain: func(w *world) [][]byte {
			in := w.mint("not-ca", certOpts{rawSubject: realSubject(w.t, realISCA)}, w.isca)
			return ders(w.mint("leaf", leafOpts(), in), in)
		},
		want: outcome{TrustFailure: failure.SSLUnknownAuthority, Certs: []int{0, 1},
			Evidence: EvidenceSignature, Root: "isca", RootName: ISCACommonName, Rules: iscaRules,
			Rows: []row{}, BrowserError: true, Reasons: []string{ReasonChainInvalid}},
	},
	{
		name: "qaznet_2019_forgery",
		chain: func(w *world) [][]byte {
			sc := w.mint("security-certificate", certOpts{subject: securityCertificate, ca: true}, w.qaznet)
			forged := w.mint("forged", certOpts{subject: pkix.Name{CommonName: host, Organization: []string{"Example Org"}},
				dns: []string{host, "www." + host}}, sc)
			return ders(forged, sc)
		},
		want: outcome{TrustFailure: failure.SSLUnknownAuthority, Certs: []int{0, 1},
			Evidence: EvidenceSignature, Root: "qaznet", RootName: QaznetCommonName,
			Rules: []string{RuleQaznetIssuerName, RuleQaznet2019Forgery, RuleKnownRootIssuerName},
			Rows:  []row{{"security-certificate", "qaznet", true, false}}, Reasons: none},
	},
	{
		// The same pattern under a Qaznet-named root whose key is not known.
		name: "qaznet_2019_forgery_unknown_key",
		chain: func(w *world) [][]byte {
			impostor := w.mint("impostor", certOpts{rawSubject: realSubject(w.t, realQaznet), ca: true}, nil)
			sc := w.mint("security-certificate", certOpts{subject: securityCertificate, ca: true}, impostor)
			return ders(w.mint("forged", leafOpts(), sc), sc)
		},
		want: outcome{TrustFailure: failure.SSLUnknownAuthority, Certs: []int{0, 1},
			Evidence: EvidenceIssuerName, RootName: QaznetCommonName,
			Rules: []string{RuleQaznetIssuerName, RuleQaznet2019Forgery, RuleKnownRootIssuerName},
			Rows:  []row{{"security-certificate", SignerUnknown, true, false}}, Reasons: none},
	},
	{
		// "Security Certificate" alone is too generic to mean Qaznet.
		name: "security_certificate_name_alone",
		chain: func(w *world) [][]byte {
			sc := w.mint("security-certificate", certOpts{subject: securityCertificate, ca: true}, w.corp)
			return ders(w.mint("leaf", leafOpts(), sc), sc)
		},
		want: outcome{TrustFailure: failure.SSLUnknownAuthority, Certs: []int{0, 1}, ParseErrors: none},
	},
	{
		name: "corporate_ca",
		chain: func(w *world) [][]byte {
			in := w.mint("corp-inter", certOpts{name: "Example Corp Issuing CA", ca: true}, w.corp)
			return ders(w.mint("leaf", leafOpts(), in), in)
		},
		want: outcome{TrustFailure: failure.SSLUnknownAuthority, Certs: []int{0, 1}},
	},
	{
		name: "public_chain_trusted",
		chain: func(w *world) [][]byte {
			in := w.mint("public-inter", certOpts{name: "Example Public Issuing CA", ca: true}, w.public)
			return ders(w.mint("leaf", leafOpts(), in), in)
		},
		want: outcome{Trusted: true, Certs: []int{0, 1}},
	},
	{
		name:   "public_chain_wrong_name",
		server: "other.test",
		chain: func(w *world) [][]byte {
			in := w.mint("public-inter", certOpts{name: "Example Public Issuing CA", ca: true}, w.public)
			return ders(w.mint("leaf", leafOpts(), in), in)
		},
		want: outcome{TrustFailure: failure.SSLInvalidHostname, Certs: []int{0, 1}},
	},
	{
		name:  "empty_chain",
		chain: func(w *world) [][]byte { return nil },
		want:  outcome{TrustFailure: failure.SSLInvalidCert, Certs: []int{}},
	},
	{
		name: "garbage_leaf",
		chain: func(w *world) [][]byte {
			in := w.mint("inter", certOpts{rawSubject: realSubject(w.t, realISCA), ca: true}, w.isca)
			return [][]byte{{0xff, 0x00}, in.DER}
		},
		want: outcome{TrustFailure: failure.SSLInvalidCert, ParseErrors: []string{"cert[0]"}, Certs: []int{1},
			Evidence: EvidenceSignature, Root: "isca", RootName: ISCACommonName, Rules: iscaRules,
			Rows: []row{{"inter", "isca", true, false}}, Reasons: none},
	},
}

func TestJudge(t *testing.T) {
	t.Parallel()
	for _, tc := range judgeCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			server := tc.server
			if server == "" {
				server = host
			}
			j := w.analyzer().Judge(tc.chain(w), server, at)
			want := tc.want
			if want.ParseErrors == nil {
				want.ParseErrors = []string{}
			}
			if d := cmp.Diff(want, w.outcome(j)); d != "" {
				t.Errorf("Judge (-want +got):\n%s", d)
			}
			if j.ServerName != server {
				t.Errorf("ServerName = %q; want %q", j.ServerName, server)
			}
			if j.Trusted != (j.TrustFailure == nil) {
				t.Errorf("Trusted = %v with TrustFailure %v", j.Trusted, j.TrustFailure)
			}
		})
	}
}

// TestJudgeFull pins every field of one judgement, and its JSON shape.
func TestJudgeFull(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	in := w.mint("inter", certOpts{rawSubject: realSubject(t, realISCA), ca: true,
		notBefore: at.AddDate(0, 0, -10), notAfter: at.AddDate(0, 0, 65)}, w.isca)
	leaf := w.mint("leaf", leafOpts(), in)
	j := w.analyzer().Judge(ders(leaf, in), host, at)

	info := func(c *testCert) CertInfo {
		return CertInfo{
			SHA1: hexSHA1(c.DER), SHA256: hexSHA256(c.DER), Serial: c.Cert.SerialNumber.String(),
			SerialHex: colonHex(c.Cert.SerialNumber.Bytes()),
			Subject:   c.Cert.Subject.String(), Issuer: c.Cert.Issuer.String(),
			NotBefore: c.Cert.NotBefore.UTC().Format(time.RFC3339), NotAfter: c.Cert.NotAfter.UTC().Format(time.RFC3339),
			IsCA: c.Cert.IsCA,
		}
	}
	li, ii := info(leaf), info(in)
	ii.Index = 1
	ii.SignerRootSHA1, ii.SignerRootName = hexSHA1(w.isca.DER), ISCACommonName // in memory only
	iscaSubject := "CN=Information Security Certification Authority,O=ISCA,C=KZ"
	want := &Judgement{
		ServerName:   host,
		TrustFailure: failure.Ptr(failure.SSLUnknownAuthority),
		Certificates: []CertInfo{li, ii},
		ParseErrors:  []string{},
		Interception: &Interception{
			Evidence: EvidenceSignature,
			RootSHA1: hexSHA1(w.isca.DER),
			RootName: ISCACommonName,
			Rules:    []string{RuleISCAIssuerName, RuleKnownRootIssuerName, RuleISCA75DayIntermediate},
			Intermediates: []Intermediate{{
				SHA1: ii.SHA1, SHA256: ii.SHA256, Serial: ii.Serial, SerialHex: ii.SerialHex, Subject: iscaSubject, Issuer: iscaSubject,
				NotBefore: "2024-08-22T15:14:13Z", NotAfter: "2024-11-05T15:14:13Z", ValidAtMeasurement: true,
				SignerRootSHA1: hexSHA1(w.isca.DER), SignerRootName: ISCACommonName,
			}},
			BrowserErrorReasons: []string{},
		},
	}
	if d := cmp.Diff(want, j); d != "" {
		t.Errorf("Judge (-want +got):\n%s", d)
	}

	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"server_name", "trusted", "trust_failure", "certificates", "parse_errors", "interception"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("JSON has no %q: %s", k, b)
		}
	}
	if !strings.Contains(string(b), `"browser_error_reasons":[]`) || !strings.Contains(string(b), `"parse_errors":[]`) {
		t.Errorf("empty lists are not [] in %s", b)
	}
}

// TestKnownIntermediateFingerprint checks the fingerprint evidence for the
// published intermediates. Their certificates are not available and no
// test can make a certificate with a given SHA-1, so the test replaces a
// generated intermediate's SHA-1 by the published one after parsing, then
// runs the analysis on it.
func TestKnownIntermediateFingerprint(t *testing.T) {
	t.Parallel()
	for _, fact := range reportIntermediateFacts {
		t.Run(fact.SHA1[:8], func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			// Signed by a key in no knowledge base: only the fingerprint can tell.
			impostor := mint(t, certOpts{rawSubject: realSubject(t, realISCA), ca: true}, nil)
			in := mint(t, certOpts{rawSubject: realSubject(t, realISCA), ca: true}, impostor)
			leaf := mint(t, leafOpts(), in)
			a := w.analyzer()
			entries, perr := parseChain(ders(leaf, in), a.maxCerts())
			entries[1].sha1 = fact.SHA1
			seen := fact.NotBefore.Add(24 * time.Hour)
			j, _ := a.judgeParsed(entries, perr, host, seen)

			got := j.Interception
			if got == nil {
				t.Fatal("no interception")
			}
			wantRoot, wantName := fact.SignerRootSHA1, ISCACommonName
			if wantRoot == SignerUnknown {
				wantRoot = ""
			}
			if got.Evidence != EvidenceFingerprint || got.RootSHA1 != wantRoot || got.RootName != wantName {
				t.Errorf("got evidence %q, root %q (%q); want %q, %q (%q)", got.Evidence, got.RootSHA1, got.RootName,
					EvidenceFingerprint, wantRoot, wantName)
			}
			if len(got.Intermediates) != 1 || !got.Intermediates[0].Known || got.Intermediates[0].SHA1 != fact.SHA1 ||
				got.Intermediates[0].SignerRootSHA1 != SignerUnknown {
				t.Errorf("intermediates = %+v; want one, known, SHA-1 %s, signer unknown", got.Intermediates, fact.SHA1)
			}
		})
	}
	// And the lookup itself.
	kb, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if root, inter := kb.lookup("76e9f2a52c149586be8f389d8a71ac41d3f423d1", ""); root != -1 || inter != 6 {
		t.Errorf("lookup(76e9f2a5) = %d, %d; want -1, 6", root, inter)
	}
	r, _ := kb.RootBySHA1(realISCA)
	if root, inter := kb.lookup("", r.SHA256); root < 0 || kb.roots[root].SHA1 != realISCA || inter != -1 {
		t.Errorf("lookup(sha256 of fabda72f) = %d, %d", root, inter)
	}
}

// TestJudgeHostileChain: 200 certificates, all claiming an ISCA issuer and
// no key id, signed by no known key. The work stays bounded.
func TestJudgeHostileChain(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	signer := mint(t, certOpts{rawSubject: realSubject(t, realISCA), ca: true}, nil)
	der := [][]byte{mint(t, certOpts{name: host, dns: []string{host}, aki: []byte{}}, signer).DER}
	for range 199 {
		der = append(der, mint(t, certOpts{rawSubject: realSubject(t, realISCA), ca: true, aki: []byte{}}, signer).DER)
	}
	a := w.analyzer()
	entries, perr := parseChain(der, a.maxCerts())
	start := time.Now()
	j, v := a.judgeParsed(entries, perr, host, at)
	elapsed := time.Since(start)

	if got, want := len(j.Certificates), DefaultMaxCerts; got != want {
		t.Errorf("%d certificates analysed; want %d", got, want)
	}
	if got, want := j.ParseErrors, []string{"cert[32:200]: not parsed: more than 32 certificates"}; !cmp.Equal(got, want) {
		t.Errorf("ParseErrors = %q; want %q", got, want)
	}
	if max := 8 * DefaultMaxCerts; v.checks > max {
		t.Errorf("%d signature checks; want at most %d", v.checks, max)
	}
	if j.Interception == nil || j.Interception.Evidence != EvidenceIssuerName {
		t.Errorf("interception = %+v; want issuer_name", j.Interception)
	}
	t.Logf("%d signature checks in %v", v.checks, elapsed)

	// A real intermediate hidden at the end, behind the junk, is still
	// found: certificates that name a known root by key id go first.
	in := mint(t, certOpts{rawSubject: realSubject(t, realISCA), ca: true}, w.isca)
	der[DefaultMaxCerts-1] = in.DER
	j = a.Judge(der, host, at)
	if j.Interception == nil || j.Interception.Evidence != EvidenceSignature || j.Interception.RootSHA1 != hexSHA1(w.isca.DER) {
		t.Errorf("with a real intermediate at %d: interception = %+v; want signature by the test root", DefaultMaxCerts-1, j.Interception)
	}
}

func TestStrongest(t *testing.T) {
	t.Parallel()
	name := &Judgement{Interception: &Interception{Evidence: EvidenceIssuerName}}
	fp1 := &Judgement{Interception: &Interception{Evidence: EvidenceFingerprint, RootSHA1: "1"}}
	fp2 := &Judgement{Interception: &Interception{Evidence: EvidenceFingerprint, RootSHA1: "2"}}
	sig := &Judgement{Interception: &Interception{Evidence: EvidenceSignature}}
	clean := &Judgement{}
	tests := []struct {
		name string
		js   []*Judgement
		want *Interception
	}{
		{"none", nil, nil},
		{"clean_only", []*Judgement{clean, nil}, nil},
		{"signature_wins", []*Judgement{name, fp1, sig, clean}, sig.Interception},
		{"fingerprint_over_name", []*Judgement{name, clean, fp1}, fp1.Interception},
		{"first_on_tie", []*Judgement{fp1, fp2}, fp1.Interception},
		{"name_only", []*Judgement{clean, name}, name.Interception},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Strongest(tc.js); got != tc.want {
				t.Errorf("Strongest = %+v; want %+v", got, tc.want)
			}
		})
	}
}

// TestAnalyzerDefaults: a zero Analyzer uses the Mozilla bundle and the
// embedded knowledge base, and a real root is recognised.
func TestAnalyzerDefaults(t *testing.T) {
	t.Parallel()
	kb, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	r, _ := kb.RootBySHA1(realISCA)
	for _, a := range []*Analyzer{{}, NewAnalyzer(nil, nil)} {
		j := a.Judge([][]byte{r.Cert.Raw}, "", at)
		if j.Interception == nil || j.Interception.Evidence != EvidenceFingerprint || j.Interception.RootSHA1 != realISCA {
			t.Errorf("interception = %+v; want fingerprint of %s", j.Interception, realISCA)
		}
		if j.Trusted || j.TrustFailure == nil || *j.TrustFailure != failure.SSLUnknownAuthority {
			t.Errorf("trusted %v, failure %v; want ssl_unknown_authority (ISCA is not in the Mozilla bundle)", j.Trusted, j.TrustFailure)
		}
	}
	if MozillaRoots().Equal(x509.NewCertPool()) {
		t.Error("Mozilla bundle is empty")
	}
	// MozillaRoots returns a copy: changing it changes nothing else.
	p := MozillaRoots()
	p.AddCert(newWorld(t).isca.Cert)
	if MozillaRoots().Equal(p) {
		t.Error("MozillaRoots shares its pool")
	}
}

// TestJudgeZeroTime: a zero time is the year 1, not now.
func TestJudgeZeroTime(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	in := w.mint("inter", certOpts{rawSubject: realSubject(t, realISCA), ca: true}, w.isca)
	j := w.analyzer().Judge(ders(w.mint("leaf", leafOpts(), in), in), host, time.Time{})
	if j.Interception == nil || !j.Interception.BrowserErrorEvenWithRootInstalled {
		t.Fatalf("interception = %+v; want a browser error (nothing is valid in year 1)", j.Interception)
	}
	want := []string{ReasonLeafNotYetValid, ReasonIntermediateNotYetValid}
	if d := cmp.Diff(want, j.Interception.BrowserErrorReasons); d != "" {
		t.Errorf("reasons (-want +got):\n%s", d)
	}
}

func TestShort(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"c3b1e9a0dde2f9d8c1d2e6a1b7f0e3d4c5b6a798", "c3b1e9a0"},
		{"c3b1e9a0d", "c3b1e9a0"},
		{"c3b1e9a0", "c3b1e9a0"},
		{SignerUnknown, SignerUnknown},
		{"", ""},
	} {
		if got := Short(tc.in); got != tc.want {
			t.Errorf("Short(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}
