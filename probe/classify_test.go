package probe

import (
	"net/netip"
	"strings"
	"testing"

	"kzprobe/probe/chain"
	"kzprobe/probe/failure"
)

// Builders for observations, so that each case reads as a scenario.

func qA(addrs ...string) DNSQuery {
	q := DNSQuery{QueryType: "A", Rcode: new(int)}
	for _, a := range addrs {
		q.Answers = append(q.Answers, DNSAnswer{AnswerType: "A", IPv4: a})
	}
	if len(addrs) == 0 {
		q.Failure = failure.Ptr(failure.DNSNoAnswer)
	}
	return q
}

func qFail(f string) DNSQuery { return DNSQuery{QueryType: "A", Failure: failure.Ptr(f)} }

func connOK() TCPConnect { return TCPConnect{Status: TCPConnectStatus{Success: true}} }

func connFail(f string) TCPConnect {
	return TCPConnect{Status: TCPConnectStatus{Failure: failure.Ptr(f)}}
}

func hsOK() TLSHandshake           { return TLSHandshake{PeerCertificates: []BinaryData{{1}}} }
func hsFail(f string) TLSHandshake { return TLSHandshake{Failure: failure.Ptr(f)} }
func trusted() *chain.Judgement    { return &chain.Judgement{Trusted: true} }

func retryOK() TLSHandshake {
	h := hsOK()
	h.Fingerprint, h.SmallHelloRetry = FingerprintSmall, true
	return h
}

func retryFail(f string) TLSHandshake {
	h := hsFail(f)
	h.Fingerprint, h.SmallHelloRetry = FingerprintSmall, true
	return h
}
func untrusted(f string) *chain.Judgement {
	return &chain.Judgement{TrustFailure: failure.Ptr(f)}
}

func cons(status, reason string) *DNSConsistency {
	return &DNSConsistency{Status: status, Reason: reason}
}

var iscaFinding = &chain.Interception{Evidence: chain.EvidenceSignature, RootSHA1: "ea5d093c312e1a516937e153c06c2d82127b47d6",
	RootName: "Information Security Certification Authority"}

// TestClassify is the scenario catalog: (local DNS, control DNS,
// consistency, TCP, TLS, chain) -> verdict and the words the reason must hold.
func TestClassify(t *testing.T) {
	expired := *iscaFinding
	expired.BrowserErrorEvenWithRootInstalled = true
	expired.BrowserErrorReasons = []string{"intermediate_expired"}
	tests := []struct {
		name       string
		tk         TestKeys
		want       Verdict
		wantReason string
	}{
		{"clean site", TestKeys{Queries: []DNSQuery{qA("192.0.2.1")}, ControlQueries: []DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(Consistent, ReasonIntersection), TCPConnect: []TCPConnect{connOK()},
			TLSHandshakes: []TLSHandshake{hsOK()}, Chains: []*chain.Judgement{trusted()}}, VerdictOK, "trusted"},
		{"ISCA interception on consistent DNS", TestKeys{Queries: []DNSQuery{qA("192.0.2.1")}, ControlQueries: []DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(Consistent, ReasonIntersection), TCPConnect: []TCPConnect{connOK()},
			TLSHandshakes: []TLSHandshake{hsOK()}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
			Interception: iscaFinding}, VerdictMITMISCA, "ea5d093c"},
		{"ISCA interception with expired intermediate", TestKeys{Queries: []DNSQuery{qA("192.0.2.1")}, ControlQueries: []DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(Consistent, ReasonIntersection), TCPConnect: []TCPConnect{connOK()},
			TLSHandshakes: []TLSHandshake{hsOK()}, Chains: []*chain.Judgement{untrusted(failure.SSLInvalidCert)},
			Interception: &expired}, VerdictMITMISCA, "intermediate_expired"},
		{"ISCA interception seen by the small-hello retry only", TestKeys{Queries: []DNSQuery{qA("192.0.2.1")}, ControlQueries: []DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(Consistent, ReasonIntersection), TCPConnect: []TCPConnect{connOK(), connOK()},
			TLSHandshakes: []TLSHandshake{hsFail(failure.EOF), retryOK()}, Chains: []*chain.Judgement{nil, untrusted(failure.SSLUnknownAuthority)},
			Interception: iscaFinding}, VerdictMITMISCA, "every configured fingerprint was refused (eof_error) and a small ClientHello got through"},
		{"corporate proxy seen by the small-hello retry only", TestKeys{Queries: []DNSQuery{qA("192.0.2.1")}, ControlQueries: []DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(Consistent, ReasonIntersection), TCPConnect: []TCPConnect{connOK(), connOK()},
			TLSHandshakes: []TLSHandshake{hsFail(failure.ConnectionReset), retryOK()}, Chains: []*chain.Judgement{nil, untrusted(failure.SSLUnknownAuthority)}},
			VerdictMITMOther, "small ClientHello got through"},
		{"big hellos refused, small one trusted", TestKeys{Queries: []DNSQuery{qA("192.0.2.1")}, ControlQueries: []DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(Consistent, ReasonIntersection), TCPConnect: []TCPConnect{connOK(), connOK()},
			TLSHandshakes: []TLSHandshake{hsFail(failure.ConnectionReset), retryOK()}, Chains: []*chain.Judgement{nil, trusted()}},
			VerdictTLSBlocking, "the hello's size, not the name, is refused"},
		{"small-hello retry refused too", TestKeys{Queries: []DNSQuery{qA("192.0.2.1")}, ControlQueries: []DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(Consistent, ReasonIntersection), TCPConnect: []TCPConnect{connOK(), connOK()},
			TLSHandshakes: []TLSHandshake{hsFail(failure.ConnectionReset), retryFail(failure.ConnectionReset)}, Chains: []*chain.Judgement{nil, nil}},
			VerdictTLSBlocking, "every TLS handshake failed (connection_reset)"},
		{"corporate proxy", TestKeys{Queries: []DNSQuery{qA("192.0.2.1")}, ControlQueries: []DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(Consistent, ReasonIntersection), TCPConnect: []TCPConnect{connOK()},
			TLSHandshakes: []TLSHandshake{hsOK()}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)}},
			VerdictMITMOther, failure.SSLUnknownAuthority},
		{"spoofed A record to a middlebox-signed server", TestKeys{Queries: []DNSQuery{qA("198.51.100.7")}, ControlQueries: []DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(Inconsistent, ReasonNoIntersection), TCPConnect: []TCPConnect{connOK()},
			TLSHandshakes: []TLSHandshake{hsOK()}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
			Interception: iscaFinding}, VerdictDNSTampering, "chain leads to"},
		{"bogon answer", TestKeys{Queries: []DNSQuery{qA("10.10.34.34")}, ControlQueries: []DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(Inconsistent, ReasonBogon)}, VerdictDNSTampering, "bogon"},
		{"local NXDOMAIN, control answers", TestKeys{Queries: []DNSQuery{qFail(failure.DNSNXDOMAIN)}, ControlQueries: []DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(Inconsistent, "local_nxdomain")}, VerdictDNSTampering, failure.DNSNXDOMAIN},
		{"NXDOMAIN from both", TestKeys{Queries: []DNSQuery{qFail(failure.DNSNXDOMAIN)}, ControlQueries: []DNSQuery{qFail(failure.DNSNXDOMAIN)},
			DNSConsistency: cons(Consistent, ReasonSameFailure)}, VerdictDown, failure.DNSNXDOMAIN},
		{"both resolvers time out", TestKeys{Queries: []DNSQuery{qFail(failure.GenericTimeout)}, ControlQueries: []DNSQuery{qFail(failure.DNSServfail)},
			DNSConsistency: cons(Unknown, ReasonBothFailed)}, VerdictError, "both resolvers failed"},
		{"reset on SNI", TestKeys{Queries: []DNSQuery{qA("192.0.2.1")}, ControlQueries: []DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(Consistent, ReasonIntersection), TCPConnect: []TCPConnect{connOK()},
			TLSHandshakes: []TLSHandshake{hsFail(failure.ConnectionReset)}, Chains: []*chain.Judgement{nil}}, VerdictTLSBlocking, failure.ConnectionReset},
		{"handshake failed after an ISCA chain was presented", TestKeys{Queries: []DNSQuery{qA("192.0.2.1")}, ControlQueries: []DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(Consistent, ReasonIntersection), TCPConnect: []TCPConnect{connOK()},
			TLSHandshakes: []TLSHandshake{hsFail(failure.SSLFailedHandshake)}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
			Interception: iscaFinding}, VerdictTLSBlocking,
			"every TLS handshake failed (ssl_failed_handshake); the chain presented before the failure leads to Information Security Certification Authority [ea5d093c] (evidence: signature)"},
		{"blackhole after connect", TestKeys{Queries: []DNSQuery{qA("192.0.2.1")}, ControlQueries: []DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(Consistent, ReasonIntersection), TCPConnect: []TCPConnect{connOK()},
			TLSHandshakes: []TLSHandshake{hsFail(failure.GenericTimeout)}, Chains: []*chain.Judgement{nil}}, VerdictTLSBlocking, failure.GenericTimeout},
		{"TCP refused", TestKeys{Queries: []DNSQuery{qA("192.0.2.1")}, ControlQueries: []DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(Consistent, ReasonIntersection), TCPConnect: []TCPConnect{connFail(failure.ConnectionRefused)}},
			VerdictTCPBlocking, failure.ConnectionRefused},
		{"control failed, reset", TestKeys{Queries: []DNSQuery{qA("192.0.2.1")}, ControlQueries: []DNSQuery{qFail(failure.DNSServfail)},
			DNSConsistency: cons(Unknown, ReasonControlFailed), TCPConnect: []TCPConnect{connOK()},
			TLSHandshakes: []TLSHandshake{hsFail(failure.ConnectionReset)}, Chains: []*chain.Judgement{nil}}, VerdictError, "could not confirm"},
		{"control failed, trusted chain", TestKeys{Queries: []DNSQuery{qA("192.0.2.1")}, ControlQueries: []DNSQuery{qFail(failure.DNSServfail)},
			DNSConsistency: cons(Unknown, ReasonControlFailed), TCPConnect: []TCPConnect{connOK()},
			TLSHandshakes: []TLSHandshake{hsOK()}, Chains: []*chain.Judgement{trusted()}}, VerdictOK, "control DNS failed"},
		{"control failed, ISCA chain", TestKeys{Queries: []DNSQuery{qA("192.0.2.1")}, ControlQueries: []DNSQuery{qFail(failure.DNSServfail)},
			DNSConsistency: cons(Unknown, ReasonControlFailed), TCPConnect: []TCPConnect{connOK()},
			TLSHandshakes: []TLSHandshake{hsOK()}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
			Interception: iscaFinding}, VerdictError, "could not confirm"},
		{"one address intercepted, another trusted", TestKeys{Queries: []DNSQuery{qA("192.0.2.1", "192.0.2.2")}, ControlQueries: []DNSQuery{qA("192.0.2.1", "192.0.2.2")},
			DNSConsistency: cons(Consistent, ReasonIntersection), TCPConnect: []TCPConnect{connAt("192.0.2.1"), connAt("192.0.2.2")},
			TLSHandshakes: []TLSHandshake{hsAt("192.0.2.1", 1), hsAt("192.0.2.2", 2)},
			Chains:        []*chain.Judgement{untrusted(failure.SSLUnknownAuthority), trusted()}, Interception: iscaFinding},
			VerdictMITMISCA, "(evidence: signature); trusted chain at 192.0.2.2"},
		{"one fingerprint reset, another intercepted", TestKeys{Queries: []DNSQuery{qA("192.0.2.1")}, ControlQueries: []DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(Consistent, ReasonIntersection), TCPConnect: []TCPConnect{connOK(), connOK()},
			TLSHandshakes: []TLSHandshake{hsFail(failure.ConnectionReset), hsOK()},
			Chains:        []*chain.Judgement{nil, untrusted(failure.SSLUnknownAuthority)}, Interception: iscaFinding},
			VerdictMITMISCA, "1 of 2 handshakes failed"},
		{"guard refused every address", TestKeys{Queries: []DNSQuery{qA("192.0.2.1")}, ControlQueries: []DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(Consistent, ReasonIntersection), TCPConnect: []TCPConnect{connFail(failure.BlockedByAllowNet)}},
			VerdictError, "outside --allow-net"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &Measurement{TestKeys: tc.tk}
			got, reason := Classify(m)
			if got != tc.want {
				t.Errorf("verdict = %s (%s); want %s", got, reason, tc.want)
			}
			if !strings.Contains(reason, tc.wantReason) {
				t.Errorf("reason %q does not mention %q", reason, tc.wantReason)
			}
		})
	}
}

// Builders for a control server's report.

func hsAt(ip string, leaf byte) TLSHandshake {
	return TLSHandshake{Address: ip + ":443", PeerCertificates: []BinaryData{{leaf}}}
}

func hsFailAt(ip, f string) TLSHandshake {
	return TLSHandshake{Address: ip + ":443", Failure: failure.Ptr(f)}
}

func connAt(ip string) TCPConnect {
	return TCPConnect{IP: ip, Port: 443, Status: TCPConnectStatus{Success: true}}
}

func ctrl(eps ...ControlEndpoint) *ControlReport {
	return &ControlReport{Response: &ControlResponse{Version: ControlAPIVersion, Endpoints: eps}}
}

func ctrlFailed(f string) *ControlReport { return &ControlReport{Failure: failure.Ptr(f)} }

// ep is an endpoint at ip whose handshake presented leaf, judged j.
func ep(ip string, leaf byte, j *chain.Judgement, sources ...string) ControlEndpoint {
	if len(sources) == 0 {
		sources = []string{ControlSourceClient}
	}
	return ControlEndpoint{Address: ip, Sources: sources, TCPConnect: connAt(ip),
		TLSHandshake: &TLSHandshake{PeerCertificates: []BinaryData{{leaf}}}, Chain: j}
}

// epFail is an endpoint at ip whose connect failed with f.
func epFail(ip, f string, sources ...string) ControlEndpoint {
	if len(sources) == 0 {
		sources = []string{ControlSourceClient}
	}
	return ControlEndpoint{Address: ip, Sources: sources, TCPConnect: TCPConnect{IP: ip, Status: TCPConnectStatus{Failure: failure.Ptr(f)}}}
}

// TestClassifyWithControlServer is the scenario catalog with a control
// server's report: how its view changes or explains the verdict.
func TestClassifyWithControlServer(t *testing.T) {
	const ip, other = "192.0.2.1", "192.0.2.2"
	consistent := func(tk TestKeys) TestKeys {
		tk.Queries, tk.ControlQueries = []DNSQuery{qA(ip)}, []DNSQuery{qA(ip)}
		tk.DNSConsistency = cons(Consistent, ReasonIntersection)
		return tk
	}
	tests := []struct {
		name       string
		tk         TestKeys
		want       Verdict
		wantReason string
	}{
		{"ISCA inside, trusted chain outside at the same address", consistent(TestKeys{TCPConnect: []TCPConnect{connAt(ip)},
			TLSHandshakes: []TLSHandshake{hsAt(ip, 1)}, Chains: []*chain.Judgement{{TrustFailure: failure.Ptr(failure.SSLUnknownAuthority), Interception: iscaFinding}},
			Interception: iscaFinding, Control: ctrl(ep(ip, 2, trusted(), ControlSourceClient, ControlSourceDNS))}),
			VerdictMITMISCA, "ea5d093c] (evidence: signature); control saw a trusted chain at the same address"},
		{"ISCA inside, control server failed", consistent(TestKeys{TCPConnect: []TCPConnect{connAt(ip)},
			TLSHandshakes: []TLSHandshake{hsAt(ip, 1)}, Chains: []*chain.Judgement{{Interception: iscaFinding}},
			Interception: iscaFinding, Control: ctrlFailed(failure.GenericTimeout)}),
			VerdictMITMISCA, "control server failed (generic_timeout_error)"},
		{"corporate proxy: the control's chain differs", consistent(TestKeys{TCPConnect: []TCPConnect{connAt(ip)},
			TLSHandshakes: []TLSHandshake{hsAt(ip, 1)}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
			Control: ctrl(ep(ip, 2, trusted()))}),
			VerdictMITMOther, "control saw a different chain at the same address (trusted)"},
		{"self-signed site: the control is served the same certificate", consistent(TestKeys{TCPConnect: []TCPConnect{connAt(ip)},
			TLSHandshakes: []TLSHandshake{hsAt(ip, 1)}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
			Control: ctrl(ep(ip, 1, untrusted(failure.SSLUnknownAuthority)))}),
			VerdictDown, "the site's own certificate, not interception"},
		{"same certificate at another of the control's addresses", consistent(TestKeys{TCPConnect: []TCPConnect{connAt(ip)},
			TLSHandshakes: []TLSHandshake{hsAt(ip, 1)}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
			Control: ctrl(epFail(ip, failure.GenericTimeout), ep(other, 1, untrusted(failure.SSLUnknownAuthority), ControlSourceDNS))}),
			VerdictDown, "same certificate at " + other},
		{"untrusted chain, no control chain to compare", consistent(TestKeys{TCPConnect: []TCPConnect{connAt(ip)},
			TLSHandshakes: []TLSHandshake{hsAt(ip, 1)}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
			Control: ctrl(epFail(ip, failure.ConnectionRefused))}),
			VerdictMITMOther, "control could not hand-shake at the same address (connection_refused); no control chain to compare"},
		{"reset inside, trusted chain outside", consistent(TestKeys{TCPConnect: []TCPConnect{connAt(ip)},
			TLSHandshakes: []TLSHandshake{hsFailAt(ip, failure.ConnectionReset)}, Chains: []*chain.Judgement{nil},
			Control: ctrl(ep(ip, 2, trusted()))}),
			VerdictTLSBlocking, "(connection_reset); control saw a trusted chain at the same address"},
		{"reset inside and outside", consistent(TestKeys{TCPConnect: []TCPConnect{connAt(ip)},
			TLSHandshakes: []TLSHandshake{hsFailAt(ip, failure.ConnectionReset)}, Chains: []*chain.Judgement{nil},
			Control: ctrl(ControlEndpoint{Address: ip, TCPConnect: connAt(ip), TLSHandshake: &TLSHandshake{Failure: failure.Ptr(failure.ConnectionReset)}})}),
			VerdictDown, "the control server fails too (connection_reset)"},
		{"timeout inside and outside: no proof the site is down", consistent(TestKeys{TCPConnect: []TCPConnect{connAt(ip)},
			TLSHandshakes: []TLSHandshake{hsFailAt(ip, failure.GenericTimeout)}, Chains: []*chain.Judgement{nil},
			Control: ctrl(ControlEndpoint{Address: ip, TCPConnect: connAt(ip), TLSHandshake: &TLSHandshake{Failure: failure.Ptr(failure.GenericTimeout)}})}),
			VerdictTLSBlocking, "control could not hand-shake at the same address (generic_timeout_error)"},
		{"refused inside and outside", consistent(TestKeys{TCPConnect: []TCPConnect{connFail(failure.ConnectionRefused)},
			Control: ctrl(epFail(ip, failure.ConnectionRefused))}),
			VerdictDown, "the control server fails too (connection_refused)"},
		{"refused inside; the control's policy refused the address", consistent(TestKeys{TCPConnect: []TCPConnect{{IP: ip, Status: TCPConnectStatus{Failure: failure.Ptr(failure.ConnectionRefused)}}},
			Control: ctrl(epFail(ip, failure.BlockedByAllowNet))}),
			VerdictTCPBlocking, "control server refused to connect at the same address (blocked_by_allow_net)"},
		{"control resolver failed: the control server's view does not confirm", TestKeys{Queries: []DNSQuery{qA(ip)}, ControlQueries: []DNSQuery{qFail(failure.DNSServfail)},
			DNSConsistency: cons(Unknown, ReasonControlFailed), TCPConnect: []TCPConnect{connAt(ip)},
			TLSHandshakes: []TLSHandshake{hsFailAt(ip, failure.ConnectionReset)}, Chains: []*chain.Judgement{nil},
			Control: ctrl(ep(ip, 2, trusted()))},
			VerdictError, "the control resolver could not confirm the address; control saw a trusted chain at the same address"},
		{"block page: not valid for the domain from outside", TestKeys{Queries: []DNSQuery{qA(other)}, ControlQueries: []DNSQuery{qA(ip)},
			DNSConsistency: cons(Inconsistent, ReasonNoIntersection), TCPConnect: []TCPConnect{connAt(other)},
			TLSHandshakes: []TLSHandshake{hsAt(other, 3)}, Chains: []*chain.Judgement{untrusted(failure.SSLInvalidHostname)},
			Control: ctrl(ep(other, 3, untrusted(failure.SSLInvalidHostname)), ep(ip, 2, trusted(), ControlSourceDNS))},
			VerdictDNSTampering, "control saw an untrusted chain at the local address " + other + " (ssl_invalid_hostname)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := Classify(&Measurement{TestKeys: tc.tk})
			if got != tc.want {
				t.Errorf("verdict = %s (%s); want %s", got, reason, tc.want)
			}
			if !strings.Contains(reason, tc.wantReason) {
				t.Errorf("reason %q does not say %q", reason, tc.wantReason)
			}
		})
	}
}

// TestIPValidFromControl checks the consistency check that a control
// server's view enables: disjoint address sets are consistent when the
// control was served a chain valid for the domain at a local address.
func TestIPValidFromControl(t *testing.T) {
	local, control := []DNSQuery{qA("198.51.100.7")}, []DNSQuery{qA("192.0.2.1")}
	tests := []struct {
		name       string
		report     *ControlReport
		wantStatus string
		wantReason string
	}{
		{"trusted at the local address", ctrl(ep("198.51.100.7", 1, trusted())), Consistent, ReasonIPValidFromControl},
		{"untrusted at the local address", ctrl(ep("198.51.100.7", 1, untrusted(failure.SSLInvalidHostname))), Inconsistent, ReasonNoIntersection},
		{"trusted only at the control's own address", ctrl(ep("192.0.2.1", 1, trusted(), ControlSourceDNS)), Inconsistent, ReasonNoIntersection},
		{"control server failed", ctrlFailed(failure.GenericTimeout), Inconsistent, ReasonNoIntersection},
		{"no control server", nil, Inconsistent, ReasonNoIntersection},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := ConsistencyOptions{Exempt: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("192.0.2.0/24")},
				Checks: []ConsistencyCheck{IPValidFromControl(tc.report)}}
			got := opts.Check(local, control)
			if got.Status != tc.wantStatus || got.Reason != tc.wantReason {
				t.Errorf("got %s, %s; want %s, %s", got.Status, got.Reason, tc.wantStatus, tc.wantReason)
			}
		})
	}
}

func BenchmarkClassify(b *testing.B) {
	m := &Measurement{TestKeys: TestKeys{Queries: []DNSQuery{qA("192.0.2.1")}, ControlQueries: []DNSQuery{qA("192.0.2.1")},
		DNSConsistency: cons(Consistent, ReasonIntersection), TCPConnect: []TCPConnect{connOK()},
		TLSHandshakes: []TLSHandshake{hsOK()}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
		Interception: iscaFinding}}
	b.ReportAllocs()
	for b.Loop() {
		Classify(m)
	}
}
