package probe

import (
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
