package probe

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"kzprobe/measurement"
	"kzprobe/probe/chain"
	"kzprobe/probe/failure"
)

// Classify turns one target's observations into a verdict and a short
// reason: the verdict and reason of [Decide]. It is a pure function of m:
// no network, no clock, no globals, so verdicts can be recomputed from a
// file of measurements.
func Classify(m *measurement.Measurement) (measurement.Verdict, string) {
	d := Decide(m)
	return d.Verdict, d.Reason
}

// Decision is the outcome of the verdict rules for one measurement.
type Decision struct {
	// Code names the rule that decided.
	Code ReasonCode
	// Verdict is the rule's verdict.
	Verdict measurement.Verdict
	// Reason says in a few words why, citing the facts the rule read
	// (failures, the interception root, what the control server saw). It
	// is what the record keeps as verdict_reason.
	Reason string
	// Local is the rule's VerdictRule.Local: the verdict is the probe's
	// own failure (no control resolver answered, its guard refused, it ran
	// out of file descriptors), not the network's.
	Local bool
}

// Decide runs the verdict rules ([VerdictRules]) over m in order and
// returns the decision of the first that matches; the last rule always
// matches. Like Classify, it is a pure function of m.
//
// It reads m.TestKeys: Queries and ControlQueries, DNSConsistency,
// TCPConnect, TLSHandshakes, Chains (the chain judgement of each
// handshake, made beforehand by probe/chain), Interception and Control
// (the control server's report, when one was asked). The rules go by
// stage, and each stage ends with a rule that matches whatever reached it:
//
//  1. The local resolver gave no address: "down" when the control fails
//     the same way, "dns_tampering" when the control answers, "error" when
//     the control failed too.
//  2. Inconsistent DNS (bogon, no intersection, local NXDOMAIN):
//     "dns_tampering", whatever the chains say (they are still analysed).
//  3. No TCP connect succeeded: "tcp_blocking".
//  4. TCP connected but no handshake completed: "tls_blocking". A chain
//     presented before the failure that leads to an interception root is
//     named in the reason, not in the verdict: no handshake with it
//     completed.
//  5. A completed handshake presented an interception chain: "mitm_isca";
//     the reason names the addresses where another completed handshake
//     presented a trusted chain (one address family intercepted, another
//     not).
//  6. A completed handshake presented an untrusted chain: "mitm_other".
//  7. Otherwise "ok".
//
// The small-hello retry's handshakes (TLSHandshake.SmallHelloRetry) count
// only when no configured fingerprint completed a handshake, and then only
// when their chain is evidence of interception; a trusted chain there
// leaves the verdict at "tls_blocking".
//
// Stages 3-6 need consistent DNS: when the control failed (consistency
// unknown) they give "error", since an address the control cannot confirm
// may not belong to the domain at all, except that a chain trusted for the
// domain proves the address serves it ("ok").
//
// With a control server (Control not null) the verdict also weighs what
// it saw from outside, and the reason cites both views ("control saw a
// trusted chain at the same address"):
//
//   - stages 3 and 4 give "down" when the control server tried and failed
//     too: it attempted some address, completed no handshake, failed
//     everywhere in a definite way (refused, reset, a TLS error; a timeout
//     is no proof, since the control's own deadline may have cut it), and
//     either DNS is consistent or it tried its own resolver's answers;
//   - stage 6 requires that the control's chain differs: when the control
//     server was served the same leaf certificate (at the same address, or
//     else at any address), the untrusted chain is the site's own and the
//     verdict is "down" (it fails from outside too), not "mitm_other";
//     when the control server saw no chain at all, the rule is as without
//     one;
//   - the control server's view alone does not confirm an address that the
//     control resolver could not (consistency unknown still gives
//     "error"); it confirms disjoint address sets through the consistency
//     reason ip_valid_from_control ([IPValidFromControl]).
//
// Without a control server the rules are exactly the above.
func Decide(m *measurement.Measurement) Decision {
	f := newFacts(&m.TestKeys)
	for i := range verdictRules {
		r := &verdictRules[i]
		if r.match(f) {
			return Decision{Code: r.Code, Verdict: r.Verdict, Reason: r.reason(f), Local: r.Local}
		}
	}
	panic("probe: no verdict rule matched; the last rule must match everything")
}

// facts are what the verdict rules read, gathered from the test keys. The
// cheap ones are computed at once; the others on first use, so that the
// common path (a completed handshake on consistent DNS) counts no failures
// and compares nothing with the control.
type facts struct {
	tk *measurement.TestKeys
	// status and consistency are the DNS consistency's status and reason;
	// unknown, both_failed when it was not computed.
	status      measurement.ConsistencyStatus
	consistency string
	// confirmed: the control confirmed the local addresses (consistent DNS).
	confirmed bool
	// hasLocal and hasControl: the local and control resolvers gave an
	// address.
	hasLocal, hasControl bool
	// connected: some TCP connect succeeded.
	connected bool

	localDNS, controlDNS, connectFailure memo[string]
	controlDown                          memo[controlFailure]
	handshakes                           memo[handshakeSets]
	note                                 memo[string]
	untrusted                            memo[untrustedChain]
	compared                             memo[controlComparison]
}

func newFacts(tk *measurement.TestKeys) *facts {
	f := &facts{tk: tk, status: measurement.Unknown, consistency: measurement.ReasonBothFailed}
	if c := tk.DNSConsistency; c != nil {
		f.status, f.consistency = c.Status, c.Reason
	}
	f.confirmed = f.status == measurement.Consistent
	f.hasLocal = len(Addrs(tk.Queries)) > 0
	f.hasControl = len(Addrs(tk.ControlQueries)) > 0
	for _, c := range tk.TCPConnect {
		f.connected = f.connected || c.Status.Success
	}
	return f
}

// memo holds a value computed on first use.
type memo[T any] struct {
	done bool
	v    T
}

func (m *memo[T]) get(compute func() T) T {
	if !m.done {
		m.v, m.done = compute(), true
	}
	return m.v
}

// localFailure is the local queries' most frequent failure.
func (f *facts) localFailure() string {
	return f.localDNS.get(func() string { return firstFailure(queryFailures(f.tk.Queries)) })
}

// controlFailure is the control queries' most frequent failure.
func (f *facts) controlFailure() string {
	return f.controlDNS.get(func() string { return firstFailure(queryFailures(f.tk.ControlQueries)) })
}

// tcpFailure is the TCP connects' most frequent failure.
func (f *facts) tcpFailure() string {
	return f.connectFailure.get(func() string { return firstFailure(connectFailures(f.tk.TCPConnect)) })
}

// controlFailure is whether the control server tried and failed too (see
// controlFailsToo), with its most frequent failure.
type controlFailure struct {
	down    bool
	failure string
}

func (f *facts) controlFails() controlFailure {
	return f.controlDown.get(func() controlFailure {
		down, cf := controlFailsToo(f.tk.Control, f.confirmed)
		return controlFailure{down, cf}
	})
}

// handshakeSets partitions the handshakes: done and failed index the
// handshakes that decide (those of the configured fingerprints, or the
// small-hello retry's when it alone shows interception); retryNote says
// what the retry found, "" when it did not count.
type handshakeSets struct {
	done, failed []int
	retryNote    string
}

func (f *facts) handshakeSets() handshakeSets {
	return f.handshakes.get(func() handshakeSets {
		tk := f.tk
		var s handshakeSets
		var retried []int
		for i, h := range tk.TLSHandshakes {
			switch {
			case h.SmallHelloRetry && h.Failure == nil:
				retried = append(retried, i)
			case h.SmallHelloRetry:
			case h.Failure == nil:
				s.done = append(s.done, i)
			default:
				s.failed = append(s.failed, i)
			}
		}
		if len(s.done) == 0 && len(retried) > 0 {
			s.retryNote = "; every configured fingerprint was refused (" + orNone(firstFailure(handshakeFailures(tk.TLSHandshakes))) +
				") and a small ClientHello got through"
			if i := retried[0]; tk.Interception != nil || (i < len(tk.Chains) && tk.Chains[i] != nil && !tk.Chains[i].Trusted) {
				// The interception shows only to a small hello: judge it.
				s.done, s.failed = retried, nil
			} else {
				s.retryNote += " with a trusted chain: the hello's size, not the name, is refused"
			}
		}
		return s
	})
}

// noHandshake: no handshake that decides completed.
func (f *facts) noHandshake() bool { return len(f.handshakeSets().done) == 0 }

// handshakeNote ends the reason of a verdict made on completed
// handshakes: how many others failed, or what the small-hello retry found.
func (f *facts) handshakeNote() string {
	return f.note.get(func() string {
		s := f.handshakeSets()
		if len(s.failed) > 0 {
			return fmt.Sprintf("; %d of %d handshakes failed (%s)", len(s.failed), len(f.tk.TLSHandshakes),
				firstFailure(handshakeFailures(f.tk.TLSHandshakes)))
		}
		return s.retryNote
	})
}

// untrustedChain is the first completed handshake whose chain is not
// trusted for the domain (at indexes TLSHandshakes), with the words for
// why; at is -1 when every completed handshake's chain is trusted.
type untrustedChain struct {
	why string
	at  int
}

func (f *facts) untrustedChain() untrustedChain {
	return f.untrusted.get(func() untrustedChain {
		tk := f.tk
		for _, i := range f.handshakeSets().done {
			if i < len(tk.Chains) && tk.Chains[i] != nil && !tk.Chains[i].Trusted {
				return untrustedChain{orNone(derefOr(tk.Chains[i].TrustFailure, "untrusted")), i}
			}
			if i >= len(tk.Chains) || tk.Chains[i] == nil {
				return untrustedChain{"chain not analysed", i}
			}
		}
		return untrustedChain{at: -1}
	})
}

// hasUntrusted: a completed handshake presented a chain not trusted for
// the domain.
func (f *facts) hasUntrusted() bool { return f.untrustedChain().at >= 0 }

// controlComparison is compareWithControl's result for the untrusted
// chain.
type controlComparison struct {
	same bool
	view string
}

func (f *facts) comparison() controlComparison {
	return f.compared.get(func() controlComparison {
		same, view := compareWithControl(f.tk.Control, f.tk.TLSHandshakes[f.untrustedChain().at], firstConnectIP(f.tk))
		return controlComparison{same, view}
	})
}

// tlsAddress is the address the TLS-stage reasons name: the first
// handshake's, else the first connect's.
func (f *facts) tlsAddress() netip.Addr {
	ip := firstConnectIP(f.tk)
	if len(f.tk.TLSHandshakes) > 0 {
		ip = handshakeIP(f.tk.TLSHandshakes[0], ip)
	}
	return ip
}

// interceptionAddress is the address of the first handshake whose chain
// leads to an interception root, else the first connect's.
func (f *facts) interceptionAddress() netip.Addr {
	tk := f.tk
	ip := firstConnectIP(tk)
	for i, h := range tk.TLSHandshakes {
		if i < len(tk.Chains) && tk.Chains[i] != nil && tk.Chains[i].Interception != nil {
			return handshakeIP(h, ip)
		}
	}
	return ip
}

// The reasons the rules of one stage share.

// inconsistentReason is why local answers count as tampering, with the
// chain they led to and what the control server saw there.
func inconsistentReason(f *facts) string {
	tk := f.tk
	r := "local answers inconsistent with the control (" + f.consistency + ")"
	if in := tk.Interception; in != nil {
		r += "; chain leads to " + rootLabel(in.RootName, in.RootSHA1)
	}
	if ip, ok := firstEndpoint(tk.Control, Addrs(tk.Queries)); ok {
		r += "; " + controlView(tk.Control, ip, "at the local address "+ip.String())
	} else if tk.Control != nil && tk.Control.Response == nil {
		r += "; " + controlView(tk.Control, netip.Addr{}, "")
	}
	return r
}

func tcpReason(f *facts) string { return "no TCP connect succeeded (" + orNone(f.tcpFailure()) + ")" }

func tlsReason(f *facts) string {
	r := "TCP connected but every TLS handshake failed (" + orNone(firstFailure(handshakeFailures(f.tk.TLSHandshakes))) + ")" + f.handshakeSets().retryNote
	if in := f.tk.Interception; in != nil {
		// A chain taken from a handshake that then failed (recovered
		// from the wire, or the retry's): the evidence is recorded, but
		// no connection was intercepted end to end.
		r += "; the chain presented before the failure " + leadsTo(in)
	}
	return r
}

func controlFailsTooReason(f *facts) string {
	return "; the control server fails too (" + orNone(f.controlFails().failure) + ")"
}

func interceptionReason(f *facts) string {
	in := f.tk.Interception
	r := "chain " + leadsTo(in)
	if in.BrowserErrorEvenWithRootInstalled {
		r += "; error even with the root installed: " + strings.Join(in.BrowserErrorReasons, ",")
	}
	return r
}

func untrustedReason(f *facts) string {
	return "untrusted chain that is not the ISCA PKI (" + f.untrustedChain().why + ")"
}

// trustedElsewhere names the addresses where a completed handshake (of
// those in done) presented a chain trusted for the domain, as
// "; trusted chain at 2001:db8::1": a middlebox that intercepts one
// address family, or one path, and lets another through. Empty when none
// did.
func trustedElsewhere(tk *measurement.TestKeys, done []int) string {
	var addrs []string
	for _, i := range done {
		if i >= len(tk.Chains) || tk.Chains[i] == nil || !tk.Chains[i].Trusted {
			continue
		}
		a := handshakeIP(tk.TLSHandshakes[i], netip.Addr{})
		if s := a.String(); a.IsValid() && !slices.Contains(addrs, s) {
			addrs = append(addrs, s)
		}
	}
	if len(addrs) == 0 {
		return ""
	}
	return "; trusted chain at " + strings.Join(addrs, ", ")
}

func queryFailures(qs []measurement.DNSQuery) []*string {
	out := make([]*string, len(qs))
	for i := range qs {
		out[i] = qs[i].Failure
	}
	return out
}

func connectFailures(cs []measurement.TCPConnect) []*string {
	out := make([]*string, len(cs))
	for i := range cs {
		out[i] = cs[i].Status.Failure
	}
	return out
}

func handshakeFailures(hs []measurement.TLSHandshake) []*string {
	out := make([]*string, len(hs))
	for i := range hs {
		out[i] = hs[i].Failure
	}
	return out
}

// firstFailure returns the most frequent failure string (ties: the
// earliest), "" when all succeeded. dns_no_answer counts less than any
// other failure so that an empty AAAA does not hide the A failure.
func firstFailure(fs []*string) string {
	count := map[string]int{}
	var order []string
	for _, f := range fs {
		if f == nil {
			continue
		}
		if count[*f] == 0 {
			order = append(order, *f)
		}
		count[*f]++
	}
	sort.SliceStable(order, func(i, j int) bool {
		wi, wj := weight(order[i], count), weight(order[j], count)
		return wi > wj
	})
	if len(order) == 0 {
		return ""
	}
	return order[0]
}

func weight(f string, count map[string]int) int {
	if f == failure.DNSNoAnswer {
		return 0
	}
	return count[f] + 1
}

func orNone(s string) string {
	if s == "" {
		return "no failure recorded"
	}
	return s
}

func derefOr(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}

// leadsTo says where an interception chain leads and on what evidence:
// "leads to NAME [sha1] (evidence: signature)".
func leadsTo(in *chain.Interception) string {
	return fmt.Sprintf("leads to %s (evidence: %s)", rootLabel(in.RootName, in.RootSHA1), in.Evidence)
}

func rootLabel(name, sha1 string) string {
	switch {
	case name != "" && sha1 != "":
		return fmt.Sprintf("%s [%s]", name, chain.Short(sha1))
	case name != "":
		return name
	case sha1 != "":
		return chain.Short(sha1)
	}
	return "an interception root"
}

// unconfirmed ends the reason of a verdict that needed consistent DNS:
// sep, then that the control resolver could not confirm the address, and
// what the control server saw there. A control server's view alone does
// not confirm an address the control resolver could not (see
// [ConsistencyOptions.Check]: the checks run only on two address sets).
func unconfirmed(tk *measurement.TestKeys, sep string, ip netip.Addr) string {
	if tk.Control == nil {
		return sep + " the control could not confirm the address"
	}
	return sep + " the control resolver could not confirm the address" + controlSuffix(tk, ip)
}

// controlSuffix is "; " and what the control server saw at ip, or ""
// without a control server.
func controlSuffix(tk *measurement.TestKeys, ip netip.Addr) string {
	if tk.Control == nil {
		return ""
	}
	return "; " + controlView(tk.Control, ip, "at the same address")
}

// controlView says in a few words what the control server r saw at ip
// ("where" names the place in the sentence).
func controlView(r *measurement.ControlReport, ip netip.Addr, where string) string {
	if r.Response == nil {
		return "control server failed (" + derefOr(r.Failure, "no response") + ")"
	}
	e := r.Endpoint(ip)
	switch {
	case e == nil:
		return "control server did not try " + strings.TrimPrefix(where, "at ")
	case !e.Attempted():
		return "control server refused to connect " + where + " (" + e.Failure() + ")"
	case e.Trusted():
		return "control saw a trusted chain " + where
	case e.Chain != nil && e.Chain.Interception != nil:
		return "control saw an interception chain " + where + " too (" + rootLabel(e.Chain.Interception.RootName, e.Chain.Interception.RootSHA1) + ")"
	case e.Chain != nil:
		return "control saw an untrusted chain " + where + " (" + derefOr(e.Chain.TrustFailure, "untrusted") + ")"
	}
	return "control could not hand-shake " + where + " (" + orNone(e.Failure()) + ")"
}

// firstEndpoint returns the first of addrs that the control server
// reported on.
func firstEndpoint(r *measurement.ControlReport, addrs []netip.Addr) (netip.Addr, bool) {
	for _, a := range addrs {
		if r.Endpoint(a) != nil {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// controlFailsToo reports whether the control server tried the target and
// failed everywhere (see Classify), with its most frequent failure.
func controlFailsToo(r *measurement.ControlReport, confirmed bool) (bool, string) {
	if r == nil || r.Response == nil {
		return false, ""
	}
	var fs []*string
	ownAnswer := false
	for i := range r.Response.Endpoints {
		e := &r.Response.Endpoints[i]
		if !e.Attempted() {
			continue
		}
		f := e.Failure()
		if e.Completed() || f == failure.GenericTimeout || f == failure.Interrupted {
			return false, ""
		}
		fs = append(fs, &f)
		for _, s := range e.Sources {
			ownAnswer = ownAnswer || s == measurement.ControlSourceDNS
		}
	}
	if len(fs) == 0 || !(confirmed || ownAnswer) {
		return false, ""
	}
	return true, firstFailure(fs)
}

// compareWithControl compares the leaf certificate of the probe's
// handshake h with what the control server was served: at the same
// address first, else at any address. It reports whether they are the
// same certificate, and says what the control saw.
func compareWithControl(r *measurement.ControlReport, h measurement.TLSHandshake, fallback netip.Addr) (same bool, view string) {
	ip := handshakeIP(h, fallback)
	var leaf []byte
	if len(h.PeerCertificates) > 0 {
		leaf = h.PeerCertificates[0]
	}
	if e := r.Endpoint(ip); e.Leaf() != nil {
		if bytes.Equal(e.Leaf(), leaf) {
			return true, "the control server was served the same certificate at the same address"
		}
		return false, "control saw a different chain at the same address (" + chainWords(e) + ")"
	}
	if r.Response != nil {
		other := false
		for i := range r.Response.Endpoints {
			if l := r.Response.Endpoints[i].Leaf(); l != nil {
				if bytes.Equal(l, leaf) {
					return true, "the control server was served the same certificate at " + r.Response.Endpoints[i].Address
				}
				other = true
			}
		}
		if other {
			return false, "control saw a different chain at its own addresses; " + controlView(r, ip, "at the same address")
		}
	}
	return false, controlView(r, ip, "at the same address") + "; no control chain to compare"
}

// handshakeIP is the address h was made to, or fallback when it does not
// say.
func handshakeIP(h measurement.TLSHandshake, fallback netip.Addr) netip.Addr {
	if ap, err := netip.ParseAddrPort(h.Address); err == nil {
		return ap.Addr().Unmap()
	}
	return fallback
}

// firstConnectIP is the address of the first TCP connect, preferring one
// that succeeded.
func firstConnectIP(tk *measurement.TestKeys) netip.Addr {
	var first netip.Addr
	for _, c := range tk.TCPConnect {
		a, err := netip.ParseAddr(c.IP)
		if err != nil {
			continue
		}
		if c.Status.Success {
			return a.Unmap()
		}
		if !first.IsValid() {
			first = a.Unmap()
		}
	}
	return first
}

// chainWords says how the server judged e's chain.
func chainWords(e *measurement.ControlEndpoint) string {
	switch {
	case e.Chain == nil:
		return "not analysed"
	case e.Chain.Trusted:
		return "trusted"
	case e.Chain.Interception != nil:
		return "an interception chain, " + rootLabel(e.Chain.Interception.RootName, e.Chain.Interception.RootSHA1)
	}
	return "untrusted, " + derefOr(e.Chain.TrustFailure, "untrusted")
}
