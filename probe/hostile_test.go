package probe_test

// End-to-end tests of hostile peers, servers that misbehave on purpose
// rather than censor: the real Prober against the lab's hostile behaviours
// (lab/hostile.go). For each behaviour the target must finish within its
// deadline, record a precise failure, never panic (a panic fails the whole
// test binary) and store a bounded amount.

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"kzprobe/dnsx"
	"kzprobe/lab"
	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/failure"
)

// hostileDripInterval makes the lab's Drip sites drip one byte per 200ms:
// a full handshake would still take minutes, and the tests stay fast.
const hostileDripInterval = 200 * time.Millisecond

// hostileHandshakeTimeout bounds one handshake in these tests: long
// enough for a 2 MB chain under the race detector on a loaded machine
// (about 1.5s seen), and how long a Drip target takes.
const hostileHandshakeTimeout = 5 * time.Second

// hostileTargetTimeout is the per-target bound in these tests. Every
// operation has a shorter one (startLab: DNS and connect 2s; handshake
// hostileHandshakeTimeout), so a target that reaches it is a bug.
const hostileTargetTimeout = 15 * time.Second

// hostileFingerprints are one utls fingerprint and Go's own TLS stack: the
// two libraries must both survive, with the same failure.
var hostileFingerprints = []string{"chrome", "golang"}

// hostileWant is what a hostile behaviour must lead to. Failure strings are
// spelled out; "" means null (success).
type hostileWant struct {
	verdict measurement.Verdict

	// The local A query.
	aFailure   string
	aEngine    string // "udp", or "tcp" after a truncated UDP answer
	aAttempts  int
	aAnswers   int  // answers recorded
	aTruncated bool // answers_truncated
	rawKept    bool // a malformed response is kept as raw_response

	// Every TLS handshake (none when noHandshake).
	noHandshake  bool
	tlsFailure   string
	tlsVersion   string // "" when not checked
	certs        int    // certificates recorded
	certsTrunc   bool   // peer_certificates_truncated
	leaf         string // what certificate 0 is: "forged" (the lab's forged ISCA leaf) or "other"
	inter        string // certificate 1: "isca" (the ISCA intermediate), "malformed" (it with its tag changed)
	interception bool   // test_keys.interception is not null
}

// hostileTable is the behaviour x outcome table: what the probe must
// record against each hostile peer, within its deadline. Each row is
// checked by TestHostileLab on the site of lab.HostileScenario with that
// behaviour.
var hostileTable = map[string]hostileWant{
	// TLS: the resolver is truthful, so DNS is one UDP answer.
	lab.Drip: {
		verdict: measurement.VerdictTLSBlocking, aEngine: "udp", aAttempts: 1, aAnswers: 1,
		tlsFailure: failure.GenericTimeout,
	},
	lab.Garbage: {
		verdict: measurement.VerdictTLSBlocking, aEngine: "udp", aAttempts: 1, aAnswers: 1,
		tlsFailure: failure.SSLFailedHandshake,
	},
	lab.ChainLong: {
		// About 80 KB fits the TLS libraries' 256 KiB cap: the handshake
		// completes, the record keeps DefaultMaxCerts.
		verdict: measurement.VerdictMITMISCA, aEngine: "udp", aAttempts: 1, aAnswers: 1,
		tlsVersion: "TLSv1.3", certs: probe.DefaultMaxCerts, certsTrunc: true,
		leaf: "forged", inter: "isca", interception: true,
	},
	lab.ChainHeavy: {
		// 2 MB exceeds the libraries' cap: the handshake fails, and the
		// certificates that fit DefaultMaxChainBytes (leaf, intermediate
		// and two of the 100 KiB ones) are recovered from the wire.
		verdict: measurement.VerdictTLSBlocking, aEngine: "udp", aAttempts: 1, aAnswers: 1,
		tlsFailure: failure.SSLFailedHandshake, tlsVersion: "TLSv1.3", certs: 4, certsTrunc: true,
		leaf: "forged", inter: "isca", interception: true,
	},
	lab.ChainMalformed: {
		verdict: measurement.VerdictTLSBlocking, aEngine: "udp", aAttempts: 1, aAnswers: 1,
		tlsFailure: failure.SSLInvalidCert, tlsVersion: "TLSv1.3", certs: 2,
		leaf: "forged", inter: "malformed", interception: true,
	},
	lab.CertAbsurd: {
		verdict: measurement.VerdictMITMISCA, aEngine: "udp", aAttempts: 1, aAnswers: 1,
		tlsVersion: "TLSv1.3", certs: 2, leaf: "other", inter: "isca", interception: true,
	},
	lab.CertInvalidFields: {
		verdict: measurement.VerdictTLSBlocking, aEngine: "udp", aAttempts: 1, aAnswers: 1,
		tlsFailure: failure.SSLInvalidCert, tlsVersion: "TLSv1.3", certs: 2,
		leaf: "other", inter: "isca", interception: true,
	},
	lab.AlertMidHandshake: {
		// The chain came before the alert: it is evidence, though no
		// handshake completed.
		verdict: measurement.VerdictTLSBlocking, aEngine: "udp", aAttempts: 1, aAnswers: 1,
		tlsFailure: "ssl_alert_handshake_failure", tlsVersion: "TLSv1.2", certs: 2,
		leaf: "forged", inter: "isca", interception: true,
	},

	// DNS: the site intercepts with the ISCA PKI, which the probe must
	// still find when the genuine answer gets through.
	lab.DNSTruncated: {
		verdict: measurement.VerdictMITMISCA, aEngine: "tcp", aAttempts: 2, aAnswers: 1,
		tlsVersion: "TLSv1.3", certs: 2, leaf: "forged", inter: "isca", interception: true,
	},
	lab.DNSWrongID: {
		verdict: measurement.VerdictMITMISCA, aEngine: "udp", aAttempts: 1, aAnswers: 1,
		tlsVersion: "TLSv1.3", certs: 2, leaf: "forged", inter: "isca", interception: true,
	},
	lab.DNSWrongQuestion: {
		verdict: measurement.VerdictMITMISCA, aEngine: "udp", aAttempts: 1, aAnswers: 1,
		tlsVersion: "TLSv1.3", certs: 2, leaf: "forged", inter: "isca", interception: true,
	},
	lab.DNSCompressionLoop: {
		verdict: measurement.VerdictDNSTampering, aFailure: failure.DNSServerMisbehaving, aEngine: "udp", aAttempts: 1,
		rawKept: true, noHandshake: true,
	},
	lab.DNSManyAnswers: {
		verdict: measurement.VerdictMITMISCA, aEngine: "tcp", aAttempts: 2, aAnswers: probe.MaxRecordedAnswers, aTruncated: true,
		tlsVersion: "TLSv1.3", certs: 2, leaf: "forged", inter: "isca", interception: true,
	},
	lab.DNSDuplicate: {
		verdict: measurement.VerdictMITMISCA, aEngine: "udp", aAttempts: 1, aAnswers: 1,
		tlsVersion: "TLSv1.3", certs: 2, leaf: "forged", inter: "isca", interception: true,
	},
	lab.DNSSilent: {
		// startLab's resolver: 2s, one retry.
		verdict: measurement.VerdictDNSTampering, aFailure: failure.GenericTimeout, aEngine: "udp", aAttempts: 2,
		noHandshake: true,
	},
}

// hostileSite returns the site of sc with the given hostile behaviour.
func hostileSite(t testing.TB, sc lab.Scenario, behaviour string) lab.Site {
	t.Helper()
	for _, s := range sc.Sites {
		if s.TLS == behaviour || s.DNS == behaviour {
			return s
		}
	}
	t.Fatalf("no site with behaviour %q", behaviour)
	return lab.Site{}
}

func failureOf(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// TestHostileLab measures every site of lab.HostileScenario and checks the
// row of hostileTable for its behaviour.
func TestHostileLab(t *testing.T) {
	t.Parallel()
	sc := lab.HostileScenario()
	sc.DripInterval = hostileDripInterval
	l, p := startLab(t, sc)
	p.Timeout = hostileTargetTimeout
	p.Handshaker = &probe.Handshaker{Timeout: hostileHandshakeTimeout}
	p.Fingerprints = hostileFingerprints

	behaviours := append(lab.HostileTLSBehaviours(), lab.HostileDNSBehaviours()...)
	for _, b := range behaviours {
		if _, ok := hostileTable[b]; !ok {
			t.Errorf("behaviour %q has no row in hostileTable", b)
		}
	}
	bogon := lab.BogonAddr
	for _, b := range behaviours {
		want, ok := hostileTable[b]
		if !ok {
			continue
		}
		site := hostileSite(t, l.Scenario, b)
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			info, _ := l.Site(site.Domain)
			start := time.Now()
			m := p.Measure(context.Background(), site.Domain, 0)
			elapsed := time.Since(start)
			tk := m.TestKeys

			// Within the deadline, with the verdict both tables give.
			if elapsed > p.Timeout+time.Second {
				t.Errorf("target took %v; want within its %v deadline", elapsed, p.Timeout)
			}
			if tk.Verdict != want.verdict || string(tk.Verdict) != site.Expect {
				t.Errorf("verdict = %s (%s); want %s (lab table: %s)", tk.Verdict, tk.VerdictReason, want.verdict, site.Expect)
			}

			// DNS.
			if len(tk.Queries) != 2 {
				t.Fatalf("%d local queries; want A and AAAA", len(tk.Queries))
			}
			a := tk.Queries[0]
			if got := failureOf(a.Failure); got != want.aFailure {
				t.Errorf("A failure = %q; want %q", got, want.aFailure)
			}
			if a.Engine != want.aEngine || a.Attempts != want.aAttempts {
				t.Errorf("A engine %s, attempts %d; want %s, %d", a.Engine, a.Attempts, want.aEngine, want.aAttempts)
			}
			if len(a.Answers) != want.aAnswers || a.AnswersTruncated != want.aTruncated {
				t.Errorf("A: %d answers, answers_truncated %v; want %d, %v", len(a.Answers), a.AnswersTruncated, want.aAnswers, want.aTruncated)
			}
			for _, ans := range a.Answers {
				if ans.IPv4 == bogon || ans.IPv4 != info.Addr.String() {
					t.Errorf("A answer %s; want only the genuine %s (a decoy was taken)", ans.IPv4, info.Addr)
				}
			}
			if want.aFailure != "" && want.aFailure != failure.DNSServerMisbehaving && a.Rcode != nil {
				t.Errorf("A rcode = %d; want null", *a.Rcode)
			}
			if want.rawKept && len(a.RawResponse) == 0 {
				t.Error("malformed response not kept as raw_response")
			}
			if b == lab.DNSManyAnswers {
				all := new(dns.Msg)
				if err := all.Unpack(a.RawResponse); err != nil || len(all.Answer) != 500 {
					t.Errorf("raw_response: %d answers (err %v); want all 500", len(all.Answer), err)
				}
			}
			for _, q := range append(slices.Clone(tk.Queries), tk.ControlQueries...) {
				if len(q.Answers) > probe.MaxRecordedAnswers || len(q.RawResponse) > dnsx.MaxDNSMessageSize {
					t.Errorf("%s %s: %d answers, %d raw bytes; want at most %d and %d", q.Engine, q.QueryType,
						len(q.Answers), len(q.RawResponse), probe.MaxRecordedAnswers, dnsx.MaxDNSMessageSize)
				}
			}

			// TLS.
			if want.noHandshake {
				if len(tk.TCPConnect) != 0 || len(tk.TLSHandshakes) != 0 {
					t.Errorf("%d connects, %d handshakes; want none without an address", len(tk.TCPConnect), len(tk.TLSHandshakes))
				}
			} else if len(tk.TLSHandshakes) != len(hostileFingerprints) {
				t.Fatalf("%d handshakes; want one per fingerprint %v", len(tk.TLSHandshakes), hostileFingerprints)
			}
			forged, err := l.PKI.Forge(site.Domain, lab.InterceptISCA) // cached: the leaf the lab served
			if err != nil {
				t.Fatal(err)
			}
			malformed := bytes.Clone(l.PKI.ISCAIntermediate.Raw)
			malformed[0] = 0x31
			for _, h := range tk.TLSHandshakes {
				if got := failureOf(h.Failure); got != want.tlsFailure {
					t.Errorf("%s: failure = %q; want %q", h.Fingerprint, got, want.tlsFailure)
				}
				if want.tlsVersion != "" && h.TLSVersion != want.tlsVersion {
					t.Errorf("%s: tls_version = %q; want %q", h.Fingerprint, h.TLSVersion, want.tlsVersion)
				}
				total := 0
				for _, c := range h.PeerCertificates {
					total += len(c)
				}
				if len(h.PeerCertificates) != want.certs || h.PeerCertificatesTruncated != want.certsTrunc {
					t.Errorf("%s: %d certificates, truncated %v; want %d, %v", h.Fingerprint, len(h.PeerCertificates), h.PeerCertificatesTruncated, want.certs, want.certsTrunc)
				}
				if len(h.PeerCertificates) > probe.DefaultMaxCerts || total > probe.DefaultMaxChainBytes {
					t.Errorf("%s: stored %d certificates, %d bytes; want at most %d and %d", h.Fingerprint, len(h.PeerCertificates), total, probe.DefaultMaxCerts, probe.DefaultMaxChainBytes)
				}
				if len(h.PeerCertificates) < 2 {
					continue
				}
				switch want.leaf {
				case "forged":
					if !bytes.Equal(h.PeerCertificates[0], forged.Certificate[0]) {
						t.Errorf("%s: certificate 0 is not the forged leaf the lab served", h.Fingerprint)
					}
				case "other":
					if bytes.Equal(h.PeerCertificates[0], forged.Certificate[0]) {
						t.Errorf("%s: certificate 0 is the usual forged leaf; want the behaviour's own", h.Fingerprint)
					}
				}
				wantInter := l.PKI.ISCAIntermediate.Raw
				if want.inter == "malformed" {
					wantInter = malformed
				}
				if !bytes.Equal(h.PeerCertificates[1], wantInter) {
					t.Errorf("%s: certificate 1 is not the %s ISCA intermediate", h.Fingerprint, want.inter)
				}
			}
			if (tk.Interception != nil) != want.interception {
				t.Errorf("interception = %+v; want present: %v", tk.Interception, want.interception)
			}
			checkHostileLeaf(t, b, tk.TLSHandshakes, site.Domain)

			// What is written is bounded: every certificate and raw
			// response is within its cap, and base64 adds a third.
			js, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			limit := len(tk.TLSHandshakes)*(probe.DefaultMaxChainBytes*4/3+64<<10) +
				(len(tk.Queries)+len(tk.ControlQueries))*(dnsx.MaxDNSMessageSize*4/3+16<<10) + 64<<10
			if len(js) > limit {
				t.Errorf("measurement is %d bytes of JSON; want at most %d", len(js), limit)
			}
		})
	}
}

// checkHostileLeaf checks the leaves of the two certificate behaviours:
// what the probe recorded is what the lab built.
func checkHostileLeaf(t *testing.T, behaviour string, hs []measurement.TLSHandshake, domain string) {
	t.Helper()
	for _, h := range hs {
		if len(h.PeerCertificates) == 0 {
			continue
		}
		switch behaviour {
		case lab.CertAbsurd:
			leaf, err := x509.ParseCertificate(h.PeerCertificates[0])
			if err != nil {
				t.Fatalf("%s: absurd leaf does not parse: %v", h.Fingerprint, err)
			}
			if len(leaf.DNSNames) != lab.CertAbsurdSANs || leaf.DNSNames[0] != domain || !leaf.NotAfter.Equal(lab.CertAbsurdNotAfter) {
				t.Errorf("%s: leaf has %d names (first %q), notAfter %v; want %d, %q, %v", h.Fingerprint,
					len(leaf.DNSNames), leaf.DNSNames[0], leaf.NotAfter, lab.CertAbsurdSANs, domain, lab.CertAbsurdNotAfter)
			}
		case lab.CertInvalidFields:
			if _, err := x509.ParseCertificate(h.PeerCertificates[0]); err == nil {
				t.Errorf("%s: the invalid-fields leaf parses; want crypto/x509 to refuse it", h.Fingerprint)
			}
		}
	}
}

// TestHostileTargetDeadline gives the operations longer timeouts than the
// target and checks that the per-target deadline still ends the target,
// with a timeout rather than an interruption.
func TestHostileTargetDeadline(t *testing.T) {
	t.Parallel()
	sc := lab.HostileScenario()
	sc.DripInterval = hostileDripInterval
	l, base := startLab(t, sc)
	const deadline = 3 * time.Second
	tests := []struct {
		name      string
		behaviour string
		tweak     func(p *probe.Prober)
		check     func(t *testing.T, tk measurement.TestKeys)
		verdict   measurement.Verdict
	}{
		{
			name: "drip outlasting a one-minute handshake timeout", behaviour: lab.Drip,
			tweak: func(p *probe.Prober) { p.Handshaker = &probe.Handshaker{Timeout: time.Minute} },
			check: func(t *testing.T, tk measurement.TestKeys) {
				if len(tk.TLSHandshakes) != 1 || failureOf(tk.TLSHandshakes[0].Failure) != failure.GenericTimeout {
					t.Errorf("handshakes %+v; want one, %s", tk.TLSHandshakes, failure.GenericTimeout)
				}
			},
			verdict: measurement.VerdictTLSBlocking,
		},
		{
			name: "silent resolver outlasting a one-minute DNS timeout", behaviour: lab.DNSSilent,
			tweak: func(p *probe.Prober) {
				p.Local = &probe.DNSResolver{Exchanger: base.Local.Exchanger, Timeout: time.Minute, Retries: -1}
			},
			check: func(t *testing.T, tk measurement.TestKeys) {
				for _, q := range tk.Queries {
					if failureOf(q.Failure) != failure.GenericTimeout {
						t.Errorf("%s failure = %q; want %s", q.QueryType, failureOf(q.Failure), failure.GenericTimeout)
					}
				}
			},
			verdict: measurement.VerdictDNSTampering,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := *base
			p.Timeout = deadline
			tc.tweak(&p)
			site := hostileSite(t, l.Scenario, tc.behaviour)
			start := time.Now()
			m := p.Measure(context.Background(), site.Domain, 0)
			elapsed := time.Since(start)
			if elapsed < deadline-100*time.Millisecond || elapsed > deadline+2*time.Second {
				t.Errorf("target took %v; want about its %v deadline", elapsed, deadline)
			}
			if m.TestKeys.Verdict != tc.verdict {
				t.Errorf("verdict = %s (%s); want %s", m.TestKeys.Verdict, m.TestKeys.VerdictReason, tc.verdict)
			}
			tc.check(t, m.TestKeys)
		})
	}
}

// TestHostileHeavyChainMemory measures the 2 MB chain (lab.ChainHeavy)
// several times, keeping every measurement, and checks how much the heap
// grows: what is kept must be about the recorded certificates, and the
// peak while measuring must stay far from "a copy of every 2 MB chain".
// The lab runs in this process, so the peak includes the server's side
// (it builds and sends 2 MB per connection). Not parallel, so that nothing
// else allocates meanwhile.
func TestHostileHeavyChainMemory(t *testing.T) {
	sc := lab.Scenario{Name: "heavy", Sites: []lab.Site{{Domain: "chain-heavy.example", TLS: lab.ChainHeavy}}}
	_, p := startLab(t, sc)
	p.Fingerprints = hostileFingerprints
	p.Handshaker = &probe.Handshaker{Timeout: hostileHandshakeTimeout}
	ctx := context.Background()
	p.Measure(ctx, "chain-heavy.example", 0) // warm up: connection pools, lazily built tables

	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})

	const n = 5
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	peak.Store(before.HeapAlloc)
	kept := make([]*measurement.Measurement, 0, n)
	for range n {
		kept = append(kept, p.Measure(ctx, "chain-heavy.example", 0))
	}
	close(stop)
	wg.Wait()
	runtime.GC()
	runtime.ReadMemStats(&after)

	stored := 0
	for _, m := range kept {
		if m.TestKeys.Verdict != measurement.VerdictTLSBlocking {
			t.Errorf("verdict = %s; want %s", m.TestKeys.Verdict, measurement.VerdictTLSBlocking)
		}
		for _, h := range m.TestKeys.TLSHandshakes {
			if got := failureOf(h.Failure); got != failure.SSLFailedHandshake {
				t.Errorf("%s: failure = %q; want %q", h.Fingerprint, got, failure.SSLFailedHandshake)
			}
			for _, c := range h.PeerCertificates {
				stored += len(c)
			}
		}
	}
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	peakGrowth := int64(peak.Load()) - int64(before.HeapAlloc)
	perMeasurement := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("%d measurements of a 2 MB chain: %d KiB of certificates kept, heap grew %d KiB (peak +%d KiB); %d KiB allocated per measurement, lab included",
		n, stored>>10, growth>>10, peakGrowth>>10, perMeasurement>>10)
	if stored > n*len(hostileFingerprints)*probe.DefaultMaxChainBytes {
		t.Errorf("kept %d bytes of certificates; want at most %d", stored, n*len(hostileFingerprints)*probe.DefaultMaxChainBytes)
	}
	if limit := int64(2*stored + 16<<20); growth > limit {
		t.Errorf("heap grew %d bytes after GC; want at most %d (twice what is kept, plus 16 MiB)", growth, limit)
	}
	if limit := int64(96 << 20); peakGrowth > limit {
		t.Errorf("heap peaked %d bytes above the start; want at most %d", peakGrowth, limit)
	}
}
