package probe

import (
	"slices"
	"testing"

	"kzprobe/measurement"
	"kzprobe/probe/chain"
	"kzprobe/probe/failure"
)

// TestDecideRules is a scenario for each verdict rule: the rule that must
// decide, by its code, and its verdict.
func TestDecideRules(t *testing.T) {
	const ip = "192.0.2.1"
	consistent := func(tk measurement.TestKeys) measurement.TestKeys {
		tk.Queries, tk.ControlQueries = []measurement.DNSQuery{qA(ip)}, []measurement.DNSQuery{qA(ip)}
		tk.DNSConsistency = cons(measurement.Consistent, measurement.ReasonIntersection)
		return tk
	}
	unconfirmedDNS := func(tk measurement.TestKeys) measurement.TestKeys {
		tk.Queries, tk.ControlQueries = []measurement.DNSQuery{qA(ip)}, []measurement.DNSQuery{qFail(failure.DNSServfail)}
		tk.DNSConsistency = cons(measurement.Unknown, measurement.ReasonControlFailed)
		return tk
	}
	resetOutside := ctrl(measurement.ControlEndpoint{Address: ip, TCPConnect: connAt(ip),
		TLSHandshake: &measurement.TLSHandshake{Failure: failure.Ptr(failure.ConnectionReset)}})
	tests := []struct {
		name string
		tk   measurement.TestKeys
		want ReasonCode
	}{
		{"NXDOMAIN from both", measurement.TestKeys{Queries: []measurement.DNSQuery{qFail(failure.DNSNXDOMAIN)}, ControlQueries: []measurement.DNSQuery{qFail(failure.DNSNXDOMAIN)},
			DNSConsistency: cons(measurement.Consistent, measurement.ReasonSameFailure)}, CodeNameDown},
		{"NXDOMAIN from both, consistency not computed", measurement.TestKeys{Queries: []measurement.DNSQuery{qFail(failure.DNSNXDOMAIN)},
			ControlQueries: []measurement.DNSQuery{qFail(failure.DNSNXDOMAIN)}}, CodeNameDown},
		{"local NXDOMAIN, control answers", measurement.TestKeys{Queries: []measurement.DNSQuery{qFail(failure.DNSNXDOMAIN)}, ControlQueries: []measurement.DNSQuery{qA(ip)},
			DNSConsistency: cons(measurement.Inconsistent, measurement.ReasonLocalNXDOMAIN)}, CodeLocalNoAddress},
		{"local times out, control SERVFAIL", measurement.TestKeys{Queries: []measurement.DNSQuery{qFail(failure.GenericTimeout)}, ControlQueries: []measurement.DNSQuery{qFail(failure.DNSServfail)},
			DNSConsistency: cons(measurement.Unknown, measurement.ReasonBothFailed)}, CodeNameDown},
		{"both resolvers fail, the control half answered", measurement.TestKeys{Queries: []measurement.DNSQuery{qFail(failure.GenericTimeout)},
			ControlQueries: []measurement.DNSQuery{qFail(failure.GenericTimeout), qA()}, DNSConsistency: cons(measurement.Unknown, measurement.ReasonBothFailed)}, CodeBothResolversFailed},
		{"no network at all", measurement.TestKeys{Queries: []measurement.DNSQuery{qFail(failure.NetworkUnreachable)}, ControlQueries: []measurement.DNSQuery{qFail(failure.NetworkUnreachable)},
			DNSConsistency: cons(measurement.Consistent, measurement.ReasonSameFailure)}, CodeControlUnanswered},
		{"control unreachable, trusted chain", measurement.TestKeys{Queries: []measurement.DNSQuery{qA(ip)}, ControlQueries: []measurement.DNSQuery{qFail(failure.ConnectionRefused)},
			DNSConsistency: cons(measurement.Unknown, measurement.ReasonControlFailed), TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsOK()}, Chains: []*chain.Judgement{trusted()}}, CodeControlUnanswered},
		{"control unreachable, bogon answer", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("10.10.34.34")}, ControlQueries: []measurement.DNSQuery{qFail(failure.GenericTimeout)},
			DNSConsistency: cons(measurement.Inconsistent, measurement.ReasonBogon)}, CodeDNSInconsistent},
		{"out of file descriptors at connect", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connFail(failure.TooManyOpenFiles)}}), CodeProbeFault},
		{"local resolver outside --allow-net", measurement.TestKeys{Queries: []measurement.DNSQuery{qFail(failure.BlockedByAllowNet)}, ControlQueries: []measurement.DNSQuery{qA(ip)},
			DNSConsistency: cons(measurement.Unknown, measurement.ReasonLocalFailed)}, CodeProbeFault},
		{"bogon answer", measurement.TestKeys{Queries: []measurement.DNSQuery{qA("10.10.34.34")}, ControlQueries: []measurement.DNSQuery{qA(ip)},
			DNSConsistency: cons(measurement.Inconsistent, measurement.ReasonBogon)}, CodeDNSInconsistent},
		{"guard refused every address", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connFail(failure.BlockedByAllowNet)}}), CodeOutsideAllowNet},
		{"refused inside and outside", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connFail(failure.ConnectionRefused)},
			Control: ctrl(epFail(ip, failure.ConnectionRefused))}), CodeTCPDown},
		{"refused, control DNS failed", unconfirmedDNS(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connFail(failure.ConnectionRefused)}}), CodeTCPUnconfirmed},
		{"refused", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connFail(failure.ConnectionRefused)}}), CodeTCPBlocked},
		{"reset inside and outside", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connAt(ip)},
			TLSHandshakes: []measurement.TLSHandshake{hsFailAt(ip, failure.ConnectionReset)}, Chains: []*chain.Judgement{nil}, Control: resetOutside}), CodeTLSDown},
		{"reset, control DNS failed", unconfirmedDNS(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsFail(failure.ConnectionReset)}, Chains: []*chain.Judgement{nil}}), CodeTLSUnconfirmed},
		{"reset on SNI", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsFail(failure.ConnectionReset)}, Chains: []*chain.Judgement{nil}}), CodeTLSBlocked},
		{"big hellos refused, small one trusted", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connOK(), connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsFail(failure.ConnectionReset), retryOK()}, Chains: []*chain.Judgement{nil, trusted()}}), CodeTLSBlocked},
		{"ISCA chain, control DNS failed", unconfirmedDNS(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsOK()}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)}, Interception: iscaFinding}), CodeInterceptionUnconfirmed},
		{"ISCA chain", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsOK()}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)}, Interception: iscaFinding}), CodeInterception},
		{"ISCA chain to the small hello only", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connOK(), connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsFail(failure.EOF), retryOK()}, Chains: []*chain.Judgement{nil, untrusted(failure.SSLUnknownAuthority)},
			Interception: iscaFinding}), CodeInterception},
		{"untrusted chain, control DNS failed", unconfirmedDNS(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsOK()}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)}}), CodeUntrustedUnconfirmed},
		{"self-signed site, the control is served the same certificate", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connAt(ip)},
			TLSHandshakes: []measurement.TLSHandshake{hsAt(ip, 1)}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)},
			Control: ctrl(ep(ip, 1, untrusted(failure.SSLUnknownAuthority)))}), CodeSameCertificateAsControl},
		{"corporate proxy", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsOK()}, Chains: []*chain.Judgement{untrusted(failure.SSLUnknownAuthority)}}), CodeUntrustedChain},
		{"chain not analysed", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsOK()}}), CodeUntrustedChain},
		{"trusted chain, control DNS failed", unconfirmedDNS(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsOK()}, Chains: []*chain.Judgement{trusted()}}), CodeTrustedUnconfirmed},
		{"clean site", consistent(measurement.TestKeys{TCPConnect: []measurement.TCPConnect{connOK()},
			TLSHandshakes: []measurement.TLSHandshake{hsOK()}, Chains: []*chain.Judgement{trusted()}}), CodeTrusted},
	}
	rules := map[ReasonCode]VerdictRule{}
	for _, r := range VerdictRules() {
		rules[r.Code] = r
	}
	decided := map[ReasonCode]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &measurement.Measurement{TestKeys: tc.tk}
			d := Decide(m)
			decided[d.Code] = true
			if d.Code != tc.want {
				t.Errorf("rule = %s (%s: %s); want %s", d.Code, d.Verdict, d.Reason, tc.want)
			}
			if want := rules[tc.want].Verdict; d.Verdict != want {
				t.Errorf("verdict = %s; want %s, rule %s's", d.Verdict, want, tc.want)
			}
			if v, reason := Classify(m); v != d.Verdict || reason != d.Reason {
				t.Errorf("Classify = %s, %q; want Decide's %s, %q", v, reason, d.Verdict, d.Reason)
			}
		})
	}
	for code := range rules {
		if !decided[code] {
			t.Errorf("rule %s decides no scenario: add one", code)
		}
	}
}

// TestVerdictRulesTable checks the table itself: codes unique, each rule
// described, every verdict given by some rule and none outside the
// vocabulary, and the last rule a catch-all.
func TestVerdictRulesTable(t *testing.T) {
	rules := VerdictRules()
	seen := map[ReasonCode]bool{}
	gives := map[measurement.Verdict]bool{}
	for _, r := range rules {
		if seen[r.Code] {
			t.Errorf("rule %s appears twice", r.Code)
		}
		seen[r.Code] = true
		gives[r.Verdict] = true
		if r.Code == "" || r.When == "" || r.match == nil || r.reason == nil {
			t.Errorf("rule %q is incomplete: when %q, match %t, reason %t", r.Code, r.When, r.match != nil, r.reason != nil)
		}
		if !slices.Contains(measurement.Verdicts(), r.Verdict) {
			t.Errorf("rule %s gives %q, not a verdict", r.Code, r.Verdict)
		}
	}
	for _, v := range measurement.Verdicts() {
		if !gives[v] {
			t.Errorf("no rule gives %s", v)
		}
	}
	if last := rules[len(rules)-1]; !last.match(newFacts(&measurement.TestKeys{})) {
		t.Errorf("the last rule, %s, does not match everything", last.Code)
	}
	rules[0].Code = "changed"
	if VerdictRules()[0].Code == "changed" {
		t.Error("VerdictRules hands out the table itself, not a copy")
	}
}
