package probe

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"kzprobe/dnsx"
	"kzprobe/measurement"
	"kzprobe/probe/chain"
	"kzprobe/probe/failure"
)

// The golden records: one measurement for each verdict, as the Writer
// writes it, under testdata/golden/<verdict>.json (indented, so that a
// change reads as a diff of fields). The observations are fixed inputs, as
// the engine records them (DNS responses packed by miekg/dns, certificates
// from a PKI derived from fixed seeds), and the clock is pinned; the
// engine's own interpretation (Prober.interpret: consistency, chain
// judgements, interception, verdict) runs on them. A change to the record
// format, or to what a verdict's record says, fails TestGoldenRecords;
// `go test ./probe -run TestGoldenRecords -update` rewrites the files.

// goldenTime is the pinned clock: every measurement starts then.
var goldenTime = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const (
	goldenDomain   = "www.example.test"
	goldenSite     = "192.0.2.10"   // the site's address, as both resolvers answer
	goldenBlock    = "203.0.113.66" // the block page the tampering resolver answers
	goldenResolver = "192.0.2.53:53"
	goldenDoH      = "https://dns.example.test/dns-query"
	goldenControl  = "https://control.example.test"
)

// goldenNets are the documentation ranges the golden records use. They are
// bogons for DefaultBogons, so the consistency check exempts them, as the
// lab exempts its loopback addresses.
var goldenNets = []netip.Prefix{
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
}

// goldenCert is a certificate of the golden PKI.
type goldenCert struct {
	cert *x509.Certificate
	key  ed25519.PrivateKey
}

// goldenPKI is the PKI of the golden records: a public root and its leaves,
// an ISCA-named root with an intermediate and a forged leaf, and a
// corporate proxy's root and leaf. Keys are Ed25519 from fixed seeds and
// Ed25519 signatures are deterministic, so every run makes byte-identical
// certificates. These are test keys; nothing here is a real key.
type goldenPKI struct {
	publicRoot, publicLeaf, blockLeaf goldenCert
	iscaRoot, iscaInter, iscaLeaf     goldenCert
	corpRoot, corpLeaf                goldenCert
}

func newGoldenPKI(t testing.TB) *goldenPKI {
	t.Helper()
	serial := int64(1000)
	issue := func(name pkix.Name, dnsName string, parent *goldenCert) goldenCert {
		t.Helper()
		seed := sha256.Sum256([]byte("kzprobe golden " + name.String() + " " + dnsName))
		key := ed25519.NewKeyFromSeed(seed[:])
		serial++
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      name,
			NotBefore:    time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
			NotAfter:     time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		}
		if dnsName == "" {
			tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
			tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		} else {
			tmpl.DNSNames = []string{dnsName}
			tmpl.KeyUsage = x509.KeyUsageDigitalSignature
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		}
		parentCert, parentKey := tmpl, key
		if parent != nil {
			parentCert, parentKey = parent.cert, parent.key
		}
		der, err := x509.CreateCertificate(nil, tmpl, parentCert, key.Public(), parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return goldenCert{c, key}
	}
	isca := pkix.Name{Country: []string{"KZ"}, Organization: []string{"ISCA"}, CommonName: chain.ISCACommonName}
	p := &goldenPKI{}
	p.publicRoot = issue(pkix.Name{Organization: []string{"Golden Public Trust"}, CommonName: "Golden Public Root"}, "", nil)
	p.publicLeaf = issue(pkix.Name{CommonName: goldenDomain}, goldenDomain, &p.publicRoot)
	p.blockLeaf = issue(pkix.Name{CommonName: "blockpage.example.test"}, "blockpage.example.test", &p.publicRoot)
	p.iscaRoot = issue(isca, "", nil)
	p.iscaInter = issue(isca, "", &p.iscaRoot)
	p.iscaLeaf = issue(pkix.Name{CommonName: goldenDomain}, goldenDomain, &p.iscaInter)
	p.corpRoot = issue(pkix.Name{Organization: []string{"Golden Corp"}, CommonName: "Golden Corp Proxy CA"}, "", nil)
	p.corpLeaf = issue(pkix.Name{CommonName: goldenDomain}, goldenDomain, &p.corpRoot)
	return p
}

// goldenProber is a Prober as `kzprobe run` configures one, with the golden
// PKI's public root as the trust store and its ISCA root added to the
// knowledge base. Its resolver is never asked: interpret sends nothing.
func goldenProber(t testing.TB, pki *goldenPKI) *Prober {
	t.Helper()
	trust := x509.NewCertPool()
	trust.AddCert(pki.publicRoot.cert)
	kb, err := chain.Default()
	if err != nil {
		t.Fatal(err)
	}
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.iscaRoot.cert.Raw})
	if _, err := kb.AddRootsPEM(rootPEM, "golden"); err != nil {
		t.Fatal(err)
	}
	return &Prober{
		Local:         &DNSResolver{Exchanger: dnsx.NewDNSExchanger(goldenResolver, nil)},
		Control:       &DNSResolver{Exchanger: goldenHelper{}},
		ControlServer: goldenHelper{},
		Analyzer:      chain.NewAnalyzer(trust, kb),
		Consistency:   ConsistencyOptions{Exempt: goldenNets},
		Envelope: Envelope{
			ReportID:        "20250601T120000Z_kzprobetlsmitm_KZ_64500_n0_A6TXS7HOYQ3M2W4E", // NewReportID's random part, pinned
			TestStartTime:   goldenTime,
			SoftwareVersion: "golden",
			ProbeASN:        "AS64500",
			ProbeCC:         "KZ",
		},
	}
}

// goldenHelper stands for the golden records' control resolver (DoH at
// goldenDoH) and control server (goldenControl), which the envelope names
// in test_helpers. It is never asked: interpret sends nothing.
type goldenHelper struct{}

func (goldenHelper) Exchange(context.Context, *dns.Msg) (*dns.Msg, []byte, error) {
	return nil, nil, errors.New("golden: the control resolver is not asked")
}
func (goldenHelper) Engine() string  { return "doh" }
func (goldenHelper) Address() string { return goldenDoH }
func (goldenHelper) Close() error    { return nil }
func (goldenHelper) Server() string  { return goldenControl }
func (goldenHelper) Check(context.Context, measurement.ControlRequest, Epoch) *measurement.ControlReport {
	panic("golden: the control server is not asked")
}

// The observations, as the engine records them.

// goldenQuery is a DNS round trip whose response has rcode and the given
// addresses, recorded as Lookup records it.
func goldenQuery(engine, resolver string, qtype uint16, id uint16, rcode int, addrs []string, t0, t float64) measurement.DNSQuery {
	q := new(dns.Msg)
	q.Id = id
	q.RecursionDesired = true
	q.Question = []dns.Question{{Name: dns.Fqdn(goldenDomain), Qtype: qtype, Qclass: dns.ClassINET}}
	q.SetEdns0(dnsx.EDNS0BufferSize, false)
	resp := new(dns.Msg)
	resp.SetRcode(q, rcode)
	resp.RecursionAvailable = true
	for _, a := range addrs {
		hdr := dns.RR_Header{Name: q.Question[0].Name, Rrtype: qtype, Class: dns.ClassINET, Ttl: 300}
		if qtype == dns.TypeA {
			resp.Answer = append(resp.Answer, &dns.A{Hdr: hdr, A: net.ParseIP(a)})
		} else {
			resp.Answer = append(resp.Answer, &dns.AAAA{Hdr: hdr, AAAA: net.ParseIP(a)})
		}
	}
	raw, err := resp.Pack()
	if err != nil {
		panic(err)
	}
	rec := measurement.DNSQuery{Engine: engine, ResolverAddress: resolver, Hostname: goldenDomain, QueryType: typeName(qtype),
		RawResponse: raw, MessageID: id, Attempts: 1, T0: t0, T: t}
	recordResponse(&rec, q.Question[0], resp)
	return rec
}

// goldenLookup is the A and AAAA round trips of one resolver: A answers
// addrs (none: rcode alone), AAAA answers nothing.
func goldenLookup(engine, resolver string, id uint16, rcode int, addrs ...string) []measurement.DNSQuery {
	return []measurement.DNSQuery{
		goldenQuery(engine, resolver, dns.TypeA, id, rcode, addrs, 0.0002, 0.0121),
		goldenQuery(engine, resolver, dns.TypeAAAA, id+1, rcode, nil, 0.0002, 0.0134),
	}
}

func goldenLocal(rcode int, addrs ...string) []measurement.DNSQuery {
	return goldenLookup("udp", goldenResolver, 0x1a01, rcode, addrs...)
}

func goldenDoHLookup(rcode int, addrs ...string) []measurement.DNSQuery {
	return goldenLookup("doh", goldenDoH, 0, rcode, addrs...)
}

func goldenConnect(ip string, f string) measurement.TCPConnect {
	c := measurement.TCPConnect{IP: ip, Port: 443, T0: 0.0135, T: 0.0412, Status: measurement.TCPConnectStatus{Success: true}}
	if f != "" {
		c.Status = measurement.TCPConnectStatus{Failure: failure.Ptr(f)}
		c.T = 10.0136
	}
	return c
}

// goldenHandshake is a handshake with fingerprint at ip: completed with
// chain, or failed with f before any certificate.
func goldenHandshake(ip, fingerprint, f string, chain ...goldenCert) measurement.TLSHandshake {
	h := measurement.TLSHandshake{Network: "tcp", Address: ip + ":443", ServerName: goldenDomain, Fingerprint: fingerprint,
		NoTLSVerify: true, Tags: []string{}, T0: 0.0413, T: 0.1207}
	if f != "" {
		h.Failure = failure.Ptr(f)
		h.T = 0.0838
		return h
	}
	h.TLSVersion, h.CipherSuite, h.NegotiatedProtocol = "TLSv1.3", "TLS_AES_128_GCM_SHA256", "h2"
	for _, c := range chain {
		h.PeerCertificates = append(h.PeerCertificates, c.cert.Raw)
	}
	return h
}

// goldenControlReport is a control server's answer: it resolved the
// domain to goldenSite and was served chain there, judged by its analyzer
// at the pinned time.
func goldenControlReport(p *Prober, chain ...goldenCert) *measurement.ControlReport {
	h := goldenHandshake(goldenSite, DefaultFingerprint, "", chain...)
	der := make([][]byte, len(h.PeerCertificates))
	for i, c := range h.PeerCertificates {
		der[i] = c
	}
	return &measurement.ControlReport{
		Server: goldenControl, Addresses: []string{goldenSite}, NotChecked: []measurement.ControlNotChecked{}, StatusCode: 200, Attempts: 1, T0: 0.0122, T: 0.4310,
		Response: &measurement.ControlResponse{
			Version: measurement.ControlAPIVersion, Domain: goldenDomain, Port: 443, Fingerprint: DefaultFingerprint,
			Queries: goldenLookup("udp", "198.51.100.53:53", 0x2b01, dns.RcodeSuccess, goldenSite),
			Endpoints: []measurement.ControlEndpoint{{
				Address:      goldenSite,
				Sources:      []string{measurement.ControlSourceClient, measurement.ControlSourceDNS},
				TCPConnect:   goldenConnect(goldenSite, ""),
				TLSHandshake: &h,
				Chain:        p.Analyzer.Judge(der, goldenDomain, goldenTime),
			}},
			TestRuntime: 0.2915,
		},
	}
}

// goldenCases are the golden records' scenarios, one per verdict, with the
// rule that decides each.
func goldenCases(p *Prober, pki *goldenPKI) []struct {
	verdict measurement.Verdict
	code    ReasonCode
	tk      measurement.TestKeys
} {
	truthful := measurement.TestKeys{Queries: goldenLocal(dns.RcodeSuccess, goldenSite), ControlQueries: goldenDoHLookup(dns.RcodeSuccess, goldenSite),
		TCPConnect: []measurement.TCPConnect{goldenConnect(goldenSite, "")}}
	with := func(tk measurement.TestKeys, hs ...measurement.TLSHandshake) measurement.TestKeys {
		tk.TLSHandshakes = hs
		return tk
	}
	isca := with(truthful, goldenHandshake(goldenSite, DefaultFingerprint, "", pki.iscaLeaf, pki.iscaInter))
	isca.Control = goldenControlReport(p, pki.publicLeaf)
	reset := truthful
	reset.TCPConnect = append(reset.TCPConnect, goldenConnect(goldenSite, ""))
	return []struct {
		verdict measurement.Verdict
		code    ReasonCode
		tk      measurement.TestKeys
	}{
		{measurement.VerdictOK, CodeTrusted, with(truthful, goldenHandshake(goldenSite, DefaultFingerprint, "", pki.publicLeaf))},
		{measurement.VerdictMITMISCA, CodeInterception, isca},
		{measurement.VerdictMITMOther, CodeUntrustedChain, with(truthful, goldenHandshake(goldenSite, DefaultFingerprint, "", pki.corpLeaf))},
		{measurement.VerdictDNSTampering, CodeDNSInconsistent, measurement.TestKeys{
			Queries: goldenLocal(dns.RcodeSuccess, goldenBlock), ControlQueries: goldenDoHLookup(dns.RcodeSuccess, goldenSite),
			TCPConnect:    []measurement.TCPConnect{goldenConnect(goldenBlock, "")},
			TLSHandshakes: []measurement.TLSHandshake{goldenHandshake(goldenBlock, DefaultFingerprint, "", pki.blockLeaf)}}},
		{measurement.VerdictTLSBlocking, CodeTLSBlocked, func() measurement.TestKeys {
			retry := goldenHandshake(goldenSite, FingerprintSmall, failure.ConnectionReset)
			retry.SmallHelloRetry = true
			return with(reset, goldenHandshake(goldenSite, DefaultFingerprint, failure.ConnectionReset), retry)
		}()},
		{measurement.VerdictTCPBlocking, CodeTCPBlocked, measurement.TestKeys{
			Queries: goldenLocal(dns.RcodeSuccess, goldenSite), ControlQueries: goldenDoHLookup(dns.RcodeSuccess, goldenSite),
			TCPConnect: []measurement.TCPConnect{goldenConnect(goldenSite, failure.GenericTimeout)}}},
		{measurement.VerdictDown, CodeNameDown, measurement.TestKeys{
			Queries: goldenLocal(dns.RcodeNameError), ControlQueries: goldenDoHLookup(dns.RcodeNameError)}},
		{measurement.VerdictError, CodeTLSUnconfirmed, measurement.TestKeys{
			Queries: goldenLocal(dns.RcodeSuccess, goldenSite), ControlQueries: goldenDoHLookup(dns.RcodeServerFailure),
			TCPConnect:    []measurement.TCPConnect{goldenConnect(goldenSite, "")},
			TLSHandshakes: []measurement.TLSHandshake{goldenHandshake(goldenSite, DefaultFingerprint, failure.ConnectionReset)}}},
	}
}

// TestGoldenRecords compares each verdict's record, as the Writer writes
// it, with its golden file (-update rewrites them).
func TestGoldenRecords(t *testing.T) {
	pki := newGoldenPKI(t)
	p := goldenProber(t, pki)
	covered := map[measurement.Verdict]bool{}
	for _, tc := range goldenCases(p, pki) {
		covered[tc.verdict] = true
		t.Run(string(tc.verdict), func(t *testing.T) {
			m := p.newMeasurement(goldenDomain, 443, goldenTime)
			m.MeasurementUID = "20250601120000.000000_KZ_kzprobetlsmitm_0123456789abcdef" // newMeasurementUID's random part, pinned
			m.TestKeys.Queries, m.TestKeys.ControlQueries = tc.tk.Queries, tc.tk.ControlQueries
			m.TestKeys.TCPConnect, m.TestKeys.TLSHandshakes, m.TestKeys.Control = tc.tk.TCPConnect, tc.tk.TLSHandshakes, tc.tk.Control
			p.interpret(m, goldenTime)
			m.TestRuntime = 0.5
			if d := Decide(m); m.TestKeys.Verdict != tc.verdict || d.Code != tc.code {
				t.Fatalf("verdict = %s by rule %s (%s); want %s by rule %s", m.TestKeys.Verdict, d.Code, m.TestKeys.VerdictReason, tc.verdict, tc.code)
			}

			var line bytes.Buffer
			if err := measurement.NewWriter(&line, -1).Write(m); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := json.Indent(&got, line.Bytes(), "", "  "); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "golden", string(tc.verdict)+".json"), got.Bytes())
		})
	}
	for _, v := range measurement.Verdicts() {
		if !covered[v] {
			t.Errorf("no golden record for %s", v)
		}
	}
}

// golden compares got with the file at path, rewriting it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./probe -run TestGoldenRecords -update creates it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s differs (-want +got; go test ./probe -run TestGoldenRecords -update rewrites it):\n%s", path, d)
	}
}
