package probe

import (
	"slices"

	"kzprobe/measurement"
	"kzprobe/probe/failure"
)

// ReasonCode names a verdict rule: which rule decided a measurement's
// verdict ([Decision].Code). The human-readable reason is made from the
// rule and the facts it read.
type ReasonCode string

// The reason codes, one per rule of [VerdictRules], in the order the rules
// are tried.
const (
	// CodeProbeFault: the probe's own failure decided (it ran out of file
	// descriptors, or its guard refused the local resolver), not the
	// network (error).
	CodeProbeFault ReasonCode = "probe_fault"
	// CodeControlUnanswered: no control resolver answered (unreachable,
	// refused, timeout, TLS failure, the guard), so nothing can be checked
	// (error).
	CodeControlUnanswered ReasonCode = "control_unanswered"
	// CodeNameDown: the local resolver gave no address and the control
	// answered without one too (down).
	CodeNameDown ReasonCode = "name_down"
	// CodeLocalNoAddress: the local resolver gave no address while the
	// control answered (dns_tampering).
	CodeLocalNoAddress ReasonCode = "local_no_address"
	// CodeBothResolversFailed: neither resolver gave an address, and they
	// failed differently (error).
	CodeBothResolversFailed ReasonCode = "both_resolvers_failed"
	// CodeDNSInconsistent: the local answers are inconsistent with the
	// control's (dns_tampering).
	CodeDNSInconsistent ReasonCode = "dns_inconsistent"
	// CodeOutsideAllowNet: every address was refused by the probe's own
	// guard, nothing was sent (error).
	CodeOutsideAllowNet ReasonCode = "outside_allow_net"
	// CodeTCPDown: no TCP connect succeeded, and the control server fails
	// too (down).
	CodeTCPDown ReasonCode = "tcp_down"
	// CodeTCPUnconfirmed: no TCP connect succeeded to addresses the
	// control could not confirm (error).
	CodeTCPUnconfirmed ReasonCode = "tcp_unconfirmed"
	// CodeTCPBlocked: no TCP connect succeeded (tcp_blocking).
	CodeTCPBlocked ReasonCode = "tcp_blocked"
	// CodeTLSDown: no TLS handshake completed, and the control server
	// fails too (down).
	CodeTLSDown ReasonCode = "tls_down"
	// CodeTLSUnconfirmed: no TLS handshake completed, at addresses the
	// control could not confirm (error).
	CodeTLSUnconfirmed ReasonCode = "tls_unconfirmed"
	// CodeTLSBlocked: TCP connected but no TLS handshake completed
	// (tls_blocking).
	CodeTLSBlocked ReasonCode = "tls_blocked"
	// CodeInterceptionUnconfirmed: an interception chain at an address the
	// control could not confirm (error).
	CodeInterceptionUnconfirmed ReasonCode = "interception_unconfirmed"
	// CodeInterception: a completed handshake presented a chain that leads
	// to an interception root (mitm_isca).
	CodeInterception ReasonCode = "interception"
	// CodeUntrustedUnconfirmed: an untrusted chain at an address the
	// control could not confirm (error).
	CodeUntrustedUnconfirmed ReasonCode = "untrusted_unconfirmed"
	// CodeSameCertificateAsControl: an untrusted chain whose leaf the
	// control server was served too: the site's own (down).
	CodeSameCertificateAsControl ReasonCode = "same_certificate_as_control"
	// CodeUntrustedChain: a completed handshake presented an untrusted
	// chain that is not the ISCA PKI (mitm_other).
	CodeUntrustedChain ReasonCode = "untrusted_chain"
	// CodeTrustedUnconfirmed: every completed handshake presented a chain
	// trusted for the domain, though the control DNS failed (ok).
	CodeTrustedUnconfirmed ReasonCode = "trusted_unconfirmed"
	// CodeTrusted: consistent DNS and every completed handshake presented
	// a chain trusted for the domain (ok).
	CodeTrusted ReasonCode = "trusted"
)

// VerdictRule is one rule of [Decide]: when it is the first in
// [VerdictRules] to match a measurement, the measurement gets its Verdict,
// and a reason made from the rule and the facts it read.
type VerdictRule struct {
	// Code names the rule.
	Code ReasonCode
	// Verdict is the verdict the rule gives.
	Verdict measurement.Verdict
	// When says when the rule matches, given that no earlier rule did.
	When string
	// Local is set when the verdict is the probe's own failure, not the
	// network's: a run counts such targets and exits non-zero.
	Local bool
	// match reports whether the rule matches; reason says why, in a few
	// words, for verdict_reason.
	match  func(*facts) bool
	reason func(*facts) string
}

// verdictRules is the rule table, in the order the rules are tried. Each
// stage (DNS, TCP, TLS, interception, untrusted chain, trusted chain) ends
// with a rule that matches whatever reached it, and the last matches
// everything. It is never modified; VerdictRules hands out copies.
var verdictRules = []VerdictRule{
	// The probe's own failures, whatever the network did.
	{
		Code: CodeProbeFault, Verdict: measurement.VerdictError, Local: true,
		When: "the probe's own failure, not the network's: it ran out of file descriptors at a DNS query or a TCP connect, or its guard refused the local resolver (--allow-net)",
		match: func(f *facts) bool {
			fl, _ := probeFault(f.tk)
			return fl != ""
		},
		reason: probeFaultReason,
	},
	{
		Code: CodeControlUnanswered, Verdict: measurement.VerdictError, Local: true,
		When: "no control resolver answered (unreachable, refused, timeout, TLS failure, --allow-net), so the local answers cannot be checked: the probe's own failure, unless a local answer is a bogon",
		match: func(f *facts) bool {
			none, _ := controlUnanswered(f.tk)
			return none && f.status != measurement.Inconsistent
		},
		reason: controlUnansweredReason,
	},
	// DNS: the local resolver gave no address.
	{
		Code: CodeNameDown, Verdict: measurement.VerdictDown,
		When: "the local resolver gave no address, and the control answered without one too (NXDOMAIN, SERVFAIL, no record)",
		match: func(f *facts) bool {
			return !f.hasLocal && (f.status == measurement.Consistent || (!f.hasControl && controlAnswered(f.tk)))
		},
		reason: func(f *facts) string {
			if lf, cf := f.localFailure(), f.controlFailure(); cf != "" && cf != lf {
				return "the name fails from the control resolver too (control " + cf + ", local " + orNone(lf) + ")"
			}
			return "the name fails from the control resolver too (" + orNone(f.localFailure()) + ")"
		},
	},
	{
		Code: CodeLocalNoAddress, Verdict: measurement.VerdictDNSTampering,
		When:  "the local resolver gave no address while the control answered",
		match: func(f *facts) bool { return !f.hasLocal && f.hasControl },
		reason: func(f *facts) string {
			return "local resolver gave no address (" + orNone(f.localFailure()) + ") while the control answered"
		},
	},
	{
		Code: CodeBothResolversFailed, Verdict: measurement.VerdictError,
		When:  "neither resolver gave an address",
		match: func(f *facts) bool { return !f.hasLocal },
		reason: func(f *facts) string {
			return "both resolvers failed: local " + orNone(f.localFailure()) + ", control " + orNone(f.controlFailure())
		},
	},
	// DNS: the local answers are inconsistent.
	{
		Code: CodeDNSInconsistent, Verdict: measurement.VerdictDNSTampering,
		When:   "the local answers are inconsistent with the control (bogon, no common address, NXDOMAIN), whatever the chains say",
		match:  func(f *facts) bool { return f.status == measurement.Inconsistent },
		reason: inconsistentReason,
	},
	// TCP: no connect succeeded.
	{
		Code: CodeOutsideAllowNet, Verdict: measurement.VerdictError, Local: true,
		When:  "no TCP connect succeeded, because the probe's own guard refused every address (--allow-net)",
		match: func(f *facts) bool { return !f.connected && f.tcpFailure() == failure.BlockedByAllowNet },
		reason: func(f *facts) string {
			return "every address is outside --allow-net (" + f.tcpFailure() + "); nothing was sent"
		},
	},
	{
		Code: CodeTCPDown, Verdict: measurement.VerdictDown,
		When:   "no TCP connect succeeded, and the control server tried and failed too",
		match:  func(f *facts) bool { return !f.connected && f.controlFails().down },
		reason: func(f *facts) string { return tcpReason(f) + controlFailsTooReason(f) },
	},
	{
		Code: CodeTCPUnconfirmed, Verdict: measurement.VerdictError,
		When:   "no TCP connect succeeded, to addresses the control could not confirm",
		match:  func(f *facts) bool { return !f.connected && !f.confirmed },
		reason: func(f *facts) string { return tcpReason(f) + unconfirmed(f.tk, " and", firstConnectIP(f.tk)) },
	},
	{
		Code: CodeTCPBlocked, Verdict: measurement.VerdictTCPBlocking,
		When:   "no TCP connect succeeded",
		match:  func(f *facts) bool { return !f.connected },
		reason: func(f *facts) string { return tcpReason(f) + controlSuffix(f.tk, firstConnectIP(f.tk)) },
	},
	// TLS: no handshake completed.
	{
		Code: CodeTLSDown, Verdict: measurement.VerdictDown,
		When:   "TCP connected, no TLS handshake completed, and the control server tried and failed too",
		match:  func(f *facts) bool { return f.noHandshake() && f.controlFails().down },
		reason: func(f *facts) string { return tlsReason(f) + controlFailsTooReason(f) },
	},
	{
		Code: CodeTLSUnconfirmed, Verdict: measurement.VerdictError,
		When:   "TCP connected, no TLS handshake completed, at addresses the control could not confirm",
		match:  func(f *facts) bool { return f.noHandshake() && !f.confirmed },
		reason: func(f *facts) string { return tlsReason(f) + unconfirmed(f.tk, " and", f.tlsAddress()) },
	},
	{
		Code: CodeTLSBlocked, Verdict: measurement.VerdictTLSBlocking,
		When:   "TCP connected but no TLS handshake completed (reset, EOF, timeout); a chain presented before the failure that leads to an interception root is named in the reason",
		match:  func(f *facts) bool { return f.noHandshake() },
		reason: func(f *facts) string { return tlsReason(f) + controlSuffix(f.tk, f.tlsAddress()) },
	},
	// A completed handshake presented an interception chain.
	{
		Code: CodeInterceptionUnconfirmed, Verdict: measurement.VerdictError,
		When:  "a completed handshake presented an interception chain, at an address the control could not confirm",
		match: func(f *facts) bool { return f.tk.Interception != nil && !f.confirmed },
		reason: func(f *facts) string {
			return interceptionReason(f) + unconfirmed(f.tk, ", but", f.interceptionAddress())
		},
	},
	{
		Code: CodeInterception, Verdict: measurement.VerdictMITMISCA,
		When:  "a completed handshake presented a chain that leads to a known ISCA/Qaznet root (the reason names any address where the chain was trusted instead)",
		match: func(f *facts) bool { return f.tk.Interception != nil },
		reason: func(f *facts) string {
			return interceptionReason(f) + controlSuffix(f.tk, f.interceptionAddress()) +
				trustedElsewhere(f.tk, f.handshakeSets().done) + f.handshakeNote()
		},
	},
	// A completed handshake presented another untrusted chain.
	{
		Code: CodeUntrustedUnconfirmed, Verdict: measurement.VerdictError,
		When:  "a completed handshake presented an untrusted chain, at an address the control could not confirm",
		match: func(f *facts) bool { return f.hasUntrusted() && !f.confirmed },
		reason: func(f *facts) string {
			return untrustedReason(f) + unconfirmed(f.tk, ", and", handshakeIP(f.tk.TLSHandshakes[f.untrustedChain().at], firstConnectIP(f.tk)))
		},
	},
	{
		Code: CodeSameCertificateAsControl, Verdict: measurement.VerdictDown,
		When:  "a completed handshake presented an untrusted chain whose leaf the control server was served too: the site's own certificate",
		match: func(f *facts) bool { return f.hasUntrusted() && f.tk.Control != nil && f.comparison().same },
		reason: func(f *facts) string {
			return untrustedReason(f) + ", but " + f.comparison().view + ": the site's own certificate, not interception" + f.handshakeNote()
		},
	},
	{
		Code: CodeUntrustedChain, Verdict: measurement.VerdictMITMOther,
		When:  "a completed handshake presented an untrusted chain that is not ISCA (and differs from the control's, when a control server was asked)",
		match: func(f *facts) bool { return f.hasUntrusted() },
		reason: func(f *facts) string {
			if f.tk.Control != nil {
				return untrustedReason(f) + "; " + f.comparison().view + f.handshakeNote()
			}
			return untrustedReason(f) + f.handshakeNote()
		},
	},
	// Every completed handshake presented a trusted chain.
	{
		Code: CodeTrustedUnconfirmed, Verdict: measurement.VerdictOK,
		When:  "the chain is trusted for the domain, though the control DNS failed: the chain proves the address serves the domain",
		match: func(f *facts) bool { return !f.confirmed },
		reason: func(f *facts) string {
			return "chain trusted for the domain (control DNS failed: " + f.consistency + ")" + f.handshakeNote()
		},
	},
	{
		Code: CodeTrusted, Verdict: measurement.VerdictOK,
		When:  "consistent DNS and a chain trusted for the domain",
		match: func(*facts) bool { return true },
		reason: func(f *facts) string {
			return "consistent DNS (" + f.consistency + ") and a trusted chain" + f.handshakeNote()
		},
	},
}

// VerdictRules returns the verdict rules, in the order [Decide] tries them.
func VerdictRules() []VerdictRule { return slices.Clone(verdictRules) }
