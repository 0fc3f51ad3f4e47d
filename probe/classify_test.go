package probe

import (
	"net/netip"
	"strings"
	"testing"

	"kzprobe/measurement"
	"kzprobe/probe/chain"
	"kzprobe/probe/failure"
)

// Builders for observations, so that each case reads as a scenario.

func qA(addrs ...string) measurement.DNSQuery {
	q := measurement.DNSQuery{QueryType: "A", Rcode: new(int)}
	for _, a := range addrs {
		q.Answers = append(q.Answers, measurement.DNSAnswer{AnswerType: "A", IPv4: a})
	}
	if len(addrs) == 0 {
		q.Failure = failure.Ptr(failure.DNSNoAnswer)
	}
	return q
}

func qFail(f string) measurement.DNSQuery {
	return measurement.DNSQuery{QueryType: "A", Failure: failure.Ptr(f)}
}

func connOK() measurement.TCPConnect {
	return measurement.TCPConnect{Status: measurement.TCPConnectStatus{Success: true}}
}

func connFail(f string) measurement.TCPConnect {
	return measurement.TCPConnect{Status: measurement.TCPConnectStatus{Failure: failure.Ptr(f)}}
}

func hsOK() measurement.TLSHandshake {
	return measurement.TLSHandshake{PeerCertificates: []measurement.BinaryData{{1}}}
}
func hsFail(f string) measurement.TLSHandshake {
	return measurement.TLSHandshake{Failure: failure.Ptr(f)}
}
func trusted() *chain.Judgement { return &chain.Judgement{Trusted: true} }

func retryOK() measurement.TLSHandshake {
	h := hsOK()
	h.Fingerprint, h.SmallHelloRetry = FingerprintSmall, true
	return h
}

func retryFail(f string) measurement.TLSHandshake {
	h := hsFail(f)
	h.Fingerprint, h.SmallHelloRetry = FingerprintSmall, true
	return h
}
func untrusted(f string) *chain.Judgement {
	return &chain.Judgement{TrustFailure: failure.Ptr(f)}
}

func cons(status measurement.ConsistencyStatus, reason string) *measurement.DNSConsistency {
	return &measurement.DNSConsistency{Status: status, Reason: reason}
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
		tk         measurement.TestKeys
		want       measurement.Verdict
		wantReason string
	}{
		{"clean site", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1")}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(measurement.Consistent, measurement.ReasonIntersection), TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsOK()}, Chains: []*chain.Judgement{trusted()}}, measurement.VerdictOK, "trusted"},
		{"ISCA interception on consistent DNS", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1")}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(measurement.Consistent, measurement.ReasonIntersection), TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsOK()}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
			Interception: iscaFinding}, measurement.VerdictMITMISCA, "ea5d093c"},
		{"ISCA interception with expired intermediate", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1")}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(measurement.Consistent, measurement.ReasonIntersection), TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsOK()}, Chains: []*chain.Judgement{untrusted(failure.SSLInvalidCert)},
			Interception: &expired}, measurement.VerdictMITMISCA, "intermediate_expired"},
		{"ISCA interception seen by the small-hello retry only", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1")}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(measurement.Consistent, measurement.ReasonIntersection), TCPConnect: []measurement.TCPConnect{connOK(), connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsFail(failure.EOF), retryOK()}, Chains: []*chain.Judgement{nil, untrusted(failure.SSLUnknownAuthority)},
			Interception: iscaFinding}, measurement.VerdictMITMISCA, "every configured fingerprint was refused (eof_error) and a small ClientHello got through"},
		{"corporate proxy seen by the small-hello retry only", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1")}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(measurement.Consistent, measurement.ReasonIntersection), TCPConnect: []measurement.TCPConnect{connOK(), connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsFail(failure.ConnectionReset), retryOK()}, Chains: []*chain.Judgement{nil, untrusted(failure.SSLUnknownAuthority)}},
			measurement.VerdictMITMOther, "small ClientHello got through"},
		{"big hellos refused, small one trusted", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1")}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(measurement.Consistent, measurement.ReasonIntersection), TCPConnect: []measurement.TCPConnect{connOK(), connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsFail(failure.ConnectionReset), retryOK()}, Chains: []*chain.Judgement{nil, trusted()}},
			measurement.VerdictTLSBlocking, "the hello's size, not the name, is refused"},
		{"small-hello retry refused too", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1")}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(measurement.Consistent, measurement.ReasonIntersection), TCPConnect: []measurement.TCPConnect{connOK(), connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsFail(failure.ConnectionReset), retryFail(failure.ConnectionReset)}, Chains: []*chain.Judgement{nil, nil}},
			measurement.VerdictTLSBlocking, "every TLS handshake failed (connection_reset)"},
		{"corporate proxy", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1")}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(measurement.Consistent, measurement.ReasonIntersection), TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsOK()}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)}},
			measurement.VerdictMITMOther, failure.SSLUnknownAuthority},
		{"spoofed A record to a middlebox-signed server", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("198.51.100.7")}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(measurement.Inconsistent, measurement.ReasonNoIntersection), TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsOK()}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
			Interception: iscaFinding}, measurement.VerdictDNSTampering, "chain leads to"},
		{"bogon answer", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("10.10.34.34")}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(measurement.Inconsistent, measurement.ReasonBogon)}, measurement.VerdictDNSTampering, "bogon"},
		{"local NXDOMAIN, control answers", measurement.TestKeys{Queries: []measurement.DNSQuery{qFail(failure.DNSNXDOMAIN)}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(measurement.Inconsistent, "local_nxdomain")}, measurement.VerdictDNSTampering, failure.DNSNXDOMAIN},
		{"NXDOMAIN from both", measurement.TestKeys{Queries: []measurement.DNSQuery{qFail(failure.DNSNXDOMAIN)}, ControlQueries: []measurement.DNSQuery{qFail(failure.DNSNXDOMAIN)},
			DNSConsistency: cons(measurement.Consistent, measurement.ReasonSameFailure)}, measurement.VerdictDown, failure.DNSNXDOMAIN},
		{"both resolvers time out", measurement.TestKeys{Queries: []measurement.DNSQuery{qFail(failure.GenericTimeout)}, ControlQueries: []measurement.DNSQuery{qFail(failure.GenericTimeout)},
			DNSConsistency: cons(measurement.Unknown, measurement.ReasonBothFailed)}, measurement.VerdictError, "no control resolver answered"},
		{"local times out, control SERVFAIL", measurement.TestKeys{Queries: []measurement.DNSQuery{qFail(failure.GenericTimeout)}, ControlQueries: []measurement.DNSQuery{qFail(failure.DNSServfail)},
			DNSConsistency: cons(measurement.Unknown, measurement.ReasonBothFailed)}, measurement.VerdictDown, "control dns_servfail_error, local generic_timeout_error"},
		{"local times out, control half answered", measurement.TestKeys{Queries: []measurement.DNSQuery{qFail(failure.GenericTimeout)}, ControlQueries: []measurement.DNSQuery{qFail(failure.GenericTimeout), qA()},
			DNSConsistency: cons(measurement.Unknown, measurement.ReasonBothFailed)}, measurement.VerdictError, "both resolvers failed"},
		{"reset on SNI", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1")}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(measurement.Consistent, measurement.ReasonIntersection), TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsFail(failure.ConnectionReset)}, Chains: []*chain.Judgement{nil}}, measurement.VerdictTLSBlocking, failure.ConnectionReset},
		{"handshake failed after an ISCA chain was presented", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1")}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(measurement.Consistent, measurement.ReasonIntersection), TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsFail(failure.SSLFailedHandshake)}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
			Interception: iscaFinding}, measurement.VerdictTLSBlocking,
			"every TLS handshake failed (ssl_failed_handshake); the chain presented before the failure leads to Information Security Certification Authority [ea5d093c] (evidence: signature)"},
		{"blackhole after connect", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1")}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(measurement.Consistent, measurement.ReasonIntersection), TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsFail(failure.GenericTimeout)}, Chains: []*chain.Judgement{nil}}, measurement.VerdictTLSBlocking, failure.GenericTimeout},
		{"TCP refused", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1")}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(measurement.Consistent, measurement.ReasonIntersection), TCPConnect: []measurement.TCPConnect{connFail(failure.ConnectionRefused)}},
			measurement.VerdictTCPBlocking, failure.ConnectionRefused},
		{"control failed, reset", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1")}, ControlQueries: []measurement.DNSQuery{qFail(failure.DNSServfail)},
			DNSConsistency: cons(measurement.Unknown, measurement.ReasonControlFailed), TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsFail(failure.ConnectionReset)}, Chains: []*chain.Judgement{nil}}, measurement.VerdictError, "could not confirm"},
		{"control failed, trusted chain", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1")}, ControlQueries: []measurement.DNSQuery{qFail(failure.DNSServfail)},
			DNSConsistency: cons(measurement.Unknown, measurement.ReasonControlFailed), TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsOK()}, Chains: []*chain.Judgement{trusted()}}, measurement.VerdictOK, "control DNS failed"},
		{"control failed, ISCA chain", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1")}, ControlQueries: []measurement.DNSQuery{qFail(failure.DNSServfail)},
			DNSConsistency: cons(measurement.Unknown, measurement.ReasonControlFailed), TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsOK()}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
			Interception: iscaFinding}, measurement.VerdictError, "could not confirm"},
		{"one address intercepted, another trusted", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1", "192.0.2.2")}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1", "192.0.2.2")},
			DNSConsistency: cons(measurement.Consistent, measurement.ReasonIntersection), TCPConnect: []measurement.TCPConnect{connAt("192.0.2.1"), connAt("192.0.2.2")},
			TLSHandshakes: []measurement.TLSHandshake{hsAt("192.0.2.1", 1), hsAt("192.0.2.2", 2)},
			Chains:        []*chain.Judgement{untrusted(failure.SSLUnknownAuthority), trusted()}, Interception: iscaFinding},
			measurement.VerdictMITMISCA, "(evidence: signature); trusted chain at 192.0.2.2"},
		{"one fingerprint reset, another intercepted", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1")}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(measurement.Consistent, measurement.ReasonIntersection), TCPConnect: []measurement.TCPConnect{connOK(), connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsFail(failure.ConnectionReset), hsOK()},
			Chains:        []*chain.Judgement{nil, untrusted(failure.SSLUnknownAuthority)}, Interception: iscaFinding},
			measurement.VerdictMITMISCA, "1 of 2 handshakes failed"},
		{"guard refused every address", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1")}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1")},
			DNSConsistency: cons(measurement.Consistent, measurement.ReasonIntersection), TCPConnect: []measurement.TCPConnect{connFail(failure.BlockedByAllowNet)}},
			measurement.VerdictError, "outside --allow-net"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &measurement.Measurement{TestKeys: tc.tk}
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

func hsAt(ip string, leaf byte) measurement.TLSHandshake {
	return measurement.TLSHandshake{Address: ip + ":443", PeerCertificates: []measurement.BinaryData{{leaf}}}
}

func hsFailAt(ip, f string) measurement.TLSHandshake {
	return measurement.TLSHandshake{Address: ip + ":443", Failure: failure.Ptr(f)}
}

func connAt(ip string) measurement.TCPConnect {
	return measurement.TCPConnect{IP: ip, Port: 443, Status: measurement.TCPConnectStatus{Success: true}}
}

func ctrl(eps ...measurement.ControlEndpoint) *measurement.ControlReport {
	return &measurement.ControlReport{Response: &measurement.ControlResponse{Version: measurement.ControlAPIVersion, Endpoints: eps}}
}

func ctrlFailed(f string) *measurement.ControlReport {
	return &measurement.ControlReport{Failure: failure.Ptr(f)}
}

// ep is an endpoint at ip whose handshake presented leaf, judged j.
func ep(ip string, leaf byte, j *chain.Judgement, sources ...string) measurement.ControlEndpoint {
	if len(sources) == 0 {
		sources = []string{measurement.ControlSourceClient}
	}
	return measurement.ControlEndpoint{Address: ip, Sources: sources, TCPConnect: connAt(ip),
		TLSHandshake: &measurement.TLSHandshake{PeerCertificates: []measurement.BinaryData{{leaf}}}, Chain: j}
}

// epFail is an endpoint at ip whose connect failed with f.
func epFail(ip, f string, sources ...string) measurement.ControlEndpoint {
	if len(sources) == 0 {
		sources = []string{measurement.ControlSourceClient}
	}
	return measurement.ControlEndpoint{Address: ip, Sources: sources, TCPConnect: measurement.TCPConnect{IP: ip, Status: measurement.TCPConnectStatus{Failure: failure.Ptr(f)}}}
}

// TestClassifyWithControlServer is the scenario catalog with a control
// server's report: how its view changes or explains the verdict.
func TestClassifyWithControlServer(t *testing.T) {
	const ip, other = "192.0.2.1", "192.0.2.2"
	consistent := func(tk measurement.TestKeys) measurement.TestKeys {
		tk.Queries, tk.ControlQueries = []measurement.DNSQuery{qA(ip)}, []measurement.DNSQuery{qA(ip)}
		tk.DNSConsistency = cons(measurement.Consistent, measurement.ReasonIntersection)
		return tk
	}
	tests := []struct {
		name       string
		tk         measurement.TestKeys
		want       measurement.Verdict
		wantReason string
	}{
		{"ISCA inside, trusted chain outside at the same address", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connAt(ip)},
			TLSHandshakes: []measurement.TLSHandshake{hsAt(ip, 1)}, Chains: []*chain.Judgement{{TrustFailure: failure.Ptr(failure.SSLUnknownAuthority), Interception: iscaFinding}},
			Interception: iscaFinding, Control: ctrl(ep(ip, 2, trusted(), measurement.ControlSourceClient, measurement.ControlSourceDNS))}),
			measurement.VerdictMITMISCA, "ea5d093c] (evidence: signature); control saw a trusted chain at the same address"},
		{"ISCA inside, control server failed", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connAt(ip)},
			TLSHandshakes: []measurement.TLSHandshake{hsAt(ip, 1)}, Chains: []*chain.Judgement{{Interception: iscaFinding}},
			Interception: iscaFinding, Control: ctrlFailed(failure.GenericTimeout)}),
			measurement.VerdictMITMISCA, "control server failed (generic_timeout_error)"},
		{"corporate proxy: the control's chain differs", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connAt(ip)},
			TLSHandshakes: []measurement.TLSHandshake{hsAt(ip, 1)}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
			Control: ctrl(ep(ip, 2, trusted()))}),
			measurement.VerdictMITMOther, "control saw a different chain at the same address (trusted)"},
		{"self-signed site: the control is served the same certificate", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connAt(ip)},
			TLSHandshakes: []measurement.TLSHandshake{hsAt(ip, 1)}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
			Control: ctrl(ep(ip, 1, untrusted(failure.SSLUnknownAuthority)))}),
			measurement.VerdictDown, "the site's own certificate, not interception"},
		{"same certificate at another of the control's addresses", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connAt(ip)},
			TLSHandshakes: []measurement.TLSHandshake{hsAt(ip, 1)}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
			Control: ctrl(epFail(ip, failure.GenericTimeout), ep(other, 1, untrusted(failure.SSLUnknownAuthority), measurement.ControlSourceDNS))}),
			measurement.VerdictDown, "same certificate at " + other},
		{"untrusted chain, no control chain to compare", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connAt(ip)},
			TLSHandshakes: []measurement.TLSHandshake{hsAt(ip, 1)}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
			Control: ctrl(epFail(ip, failure.ConnectionRefused))}),
			measurement.VerdictMITMOther, "control could not hand-shake at the same address (connection_refused); no control chain to compare"},
		{"reset inside, trusted chain outside", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connAt(ip)},
			TLSHandshakes: []measurement.TLSHandshake{hsFailAt(ip, failure.ConnectionReset)}, Chains: []*chain.Judgement{nil},
			Control: ctrl(ep(ip, 2, trusted()))}),
			measurement.VerdictTLSBlocking, "(connection_reset); control saw a trusted chain at the same address"},
		{"reset inside and outside", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connAt(ip)},
			TLSHandshakes: []measurement.TLSHandshake{hsFailAt(ip, failure.ConnectionReset)}, Chains: []*chain.Judgement{nil},
			Control: ctrl(measurement.ControlEndpoint{Address: ip, TCPConnect: connAt(ip), TLSHandshake: &measurement.TLSHandshake{Failure: failure.Ptr(failure.ConnectionReset)}})}),
			measurement.VerdictDown, "the control server fails too (connection_reset)"},
		{"timeout inside and outside: no proof the site is down", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connAt(ip)},
			TLSHandshakes: []measurement.TLSHandshake{hsFailAt(ip, failure.GenericTimeout)}, Chains: []*chain.Judgement{nil},
			Control: ctrl(measurement.ControlEndpoint{Address: ip, TCPConnect: connAt(ip), TLSHandshake: &measurement.TLSHandshake{Failure: failure.Ptr(failure.GenericTimeout)}})}),
			measurement.VerdictTLSBlocking, "control could not hand-shake at the same address (generic_timeout_error)"},
		{"refused inside and outside", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connFail(failure.ConnectionRefused)},
			Control: ctrl(epFail(ip, failure.ConnectionRefused))}),
			measurement.VerdictDown, "the control server fails too (connection_refused)"},
		{"refused inside; the control's policy refused the address", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{{IP: ip, Status: measurement.TCPConnectStatus{Failure: failure.Ptr(failure.ConnectionRefused)}}},
			Control: ctrl(epFail(ip, failure.BlockedByAllowNet))}),
			measurement.VerdictTCPBlocking, "control server refused to connect at the same address (blocked_by_allow_net)"},
		{"control resolver failed: the control server's view does not confirm", measurement.TestKeys{Queries: []measurement.DNSQuery{qA(ip)}, ControlQueries: []measurement.DNSQuery{qFail(failure.DNSServfail)},
			DNSConsistency: cons(measurement.Unknown, measurement.ReasonControlFailed), TCPConnect: []measurement.TCPConnect{connAt(ip)},
			TLSHandshakes: []measurement.TLSHandshake{hsFailAt(ip, failure.ConnectionReset)}, Chains: []*chain.Judgement{nil},
			Control: ctrl(ep(ip, 2, trusted()))},
			measurement.VerdictError, "the control resolver could not confirm the address; control saw a trusted chain at the same address"},
		{"block page: not valid for the domain from outside", measurement.TestKeys{Queries: []measurement.DNSQuery{qA(other)}, ControlQueries: []measurement.DNSQuery{qA(ip)},
			DNSConsistency: cons(measurement.Inconsistent, measurement.ReasonNoIntersection), TCPConnect: []measurement.TCPConnect{connAt(other)},
			TLSHandshakes: []measurement.TLSHandshake{hsAt(other, 3)}, Chains: []*chain.Judgement{untrusted(failure.SSLInvalidHostname)},
			Control: ctrl(ep(other, 3, untrusted(failure.SSLInvalidHostname)), ep(ip, 2, trusted(), measurement.ControlSourceDNS))},
			measurement.VerdictDNSTampering, "control saw an untrusted chain at the local address " + other + " (ssl_invalid_hostname)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := Classify(&measurement.Measurement{TestKeys: tc.tk})
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
	local, control := []measurement.DNSQuery{qA("198.51.100.7")}, []measurement.DNSQuery{qA("192.0.2.1")}
	tests := []struct {
		name       string
		report     *measurement.ControlReport
		wantStatus measurement.ConsistencyStatus
		wantReason string
	}{
		{"trusted at the local address", ctrl(ep("198.51.100.7", 1, trusted())), measurement.Consistent, measurement.ReasonIPValidFromControl},
		{"untrusted at the local address", ctrl(ep("198.51.100.7", 1, untrusted(failure.SSLInvalidHostname))), measurement.Inconsistent, measurement.ReasonNoIntersection},
		{"trusted only at the control's own address", ctrl(ep("192.0.2.1", 1, trusted(), measurement.ControlSourceDNS)), measurement.Inconsistent, measurement.ReasonNoIntersection},
		{"control server failed", ctrlFailed(failure.GenericTimeout), measurement.Inconsistent, measurement.ReasonNoIntersection},
		{"no control server", nil, measurement.Inconsistent, measurement.ReasonNoIntersection},
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
	m := &measurement.Measurement{TestKeys: measurement.TestKeys{Queries: []measurement.DNSQuery{qA("192.0.2.1")}, ControlQueries: []measurement.DNSQuery{qA("192.0.2.1")},
		DNSConsistency: cons(measurement.Consistent, measurement.ReasonIntersection), TCPConnect: []measurement.TCPConnect{connOK()},
		TLSHandshakes: []measurement.TLSHandshake{hsOK()}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
		Interception: iscaFinding}}
	b.ReportAllocs()
	for b.Loop() {
		Classify(m)
	}
}
