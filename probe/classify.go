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
// reason. It is a pure function of m: no network, no clock, no globals, so
// verdicts can be recomputed from a file of measurements (DESIGN step 6).
//
// It reads m.TestKeys: Queries and ControlQueries, DNSConsistency,
// TCPConnect, TLSHandshakes, Chains (the chain judgement of each
// handshake, made beforehand by probe/chain) and Control (the control
// server's report, when one was asked). The rules, in order:
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
// Rules 3-6 need consistent DNS: when the control failed (consistency
// unknown) they give "error", since an address the control cannot confirm
// may not belong to the domain at all, except that a chain trusted for the
// domain proves the address serves it ("ok").
//
// With a control server (Control not null) the verdict also weighs what
// it saw from outside, and the reason cites both views ("control saw a
// trusted chain at the same address"):
//
//   - rules 3 and 4 give "down" when the control server tried and failed
//     too: it attempted some address, completed no handshake, failed
//     everywhere in a definite way (refused, reset, a TLS error; a timeout
//     is no proof, since the control's own deadline may have cut it), and
//     either DNS is consistent or it tried its own resolver's answers;
//   - rule 6 requires that the control's chain differs: when the control
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
func Classify(m *measurement.Measurement) (measurement.Verdict, string) {
	tk := &m.TestKeys
	cons := tk.DNSConsistency
	status, reason := measurement.Unknown, measurement.ReasonBothFailed
	if cons != nil {
		status, reason = cons.Status, cons.Reason
	}
	localAddrs := len(Addrs(tk.Queries)) > 0
	controlAddrs := len(Addrs(tk.ControlQueries)) > 0

	if !localAddrs {
		lf := firstFailure(queryFailures(tk.Queries))
		switch {
		case status == measurement.Consistent || (!controlAddrs && lf != "" && lf == firstFailure(queryFailures(tk.ControlQueries))):
			return measurement.VerdictDown, "the name fails from the control resolver too (" + orNone(lf) + ")"
		case controlAddrs:
			return measurement.VerdictDNSTampering, "local resolver gave no address (" + orNone(lf) + ") while the control answered"
		default:
			return measurement.VerdictError, "both resolvers failed: local " + orNone(lf) + ", control " + orNone(firstFailure(queryFailures(tk.ControlQueries)))
		}
	}
	if status == measurement.Inconsistent {
		r := "local answers inconsistent with the control (" + reason + ")"
		if in := tk.Interception; in != nil {
			r += "; chain leads to " + rootLabel(in.RootName, in.RootSHA1)
		}
		if ip, ok := firstEndpoint(tk.Control, Addrs(tk.Queries)); ok {
			r += "; " + controlView(tk.Control, ip, "at the local address "+ip.String())
		} else if tk.Control != nil && tk.Control.Response == nil {
			r += "; " + controlView(tk.Control, netip.Addr{}, "")
		}
		return measurement.VerdictDNSTampering, r
	}
	confirmed := status == measurement.Consistent

	connected := false
	for _, c := range tk.TCPConnect {
		if c.Status.Success {
			connected = true
		}
	}
	if !connected {
		f := firstFailure(connectFailures(tk.TCPConnect))
		if f == failure.BlockedByAllowNet {
			// Our own guard, not the network, refused: nothing was measured.
			return measurement.VerdictError, "every address is outside --allow-net (" + f + "); nothing was sent"
		}
		r := "no TCP connect succeeded (" + orNone(f) + ")"
		if down, cf := controlFailsToo(tk.Control, confirmed); down {
			return measurement.VerdictDown, r + "; the control server fails too (" + orNone(cf) + ")"
		}
		if !confirmed {
			return measurement.VerdictError, r + unconfirmed(tk, " and", firstConnectIP(tk))
		}
		return measurement.VerdictTCPBlocking, r + controlSuffix(tk, firstConnectIP(tk))
	}

	// The handshakes with the configured fingerprints decide, except that
	// the small-hello retry's chain counts as evidence of interception.
	var done, failed, retried []int
	for i, h := range tk.TLSHandshakes {
		switch {
		case h.SmallHelloRetry && h.Failure == nil:
			retried = append(retried, i)
		case h.SmallHelloRetry:
		case h.Failure == nil:
			done = append(done, i)
		default:
			failed = append(failed, i)
		}
	}
	retryNote := ""
	if len(done) == 0 && len(retried) > 0 {
		retryNote = "; every configured fingerprint was refused (" + orNone(firstFailure(handshakeFailures(tk.TLSHandshakes))) +
			") and a small ClientHello got through"
		if i := retried[0]; tk.Interception != nil || (i < len(tk.Chains) && tk.Chains[i] != nil && !tk.Chains[i].Trusted) {
			// The interception shows only to a small hello: judge it.
			done, failed = retried, nil
		} else {
			retryNote += " with a trusted chain: the hello's size, not the name, is refused"
		}
	}
	if len(done) == 0 {
		r := "TCP connected but every TLS handshake failed (" + orNone(firstFailure(handshakeFailures(tk.TLSHandshakes))) + ")" + retryNote
		if in := tk.Interception; in != nil {
			// A chain taken from a handshake that then failed (recovered
			// from the wire, or the retry's): the evidence is recorded, but
			// no connection was intercepted end to end.
			r += "; the chain presented before the failure " + leadsTo(in)
		}
		if down, cf := controlFailsToo(tk.Control, confirmed); down {
			return measurement.VerdictDown, r + "; the control server fails too (" + orNone(cf) + ")"
		}
		ip := firstConnectIP(tk)
		if len(tk.TLSHandshakes) > 0 {
			ip = handshakeIP(tk.TLSHandshakes[0], ip)
		}
		if !confirmed {
			return measurement.VerdictError, r + unconfirmed(tk, " and", ip)
		}
		return measurement.VerdictTLSBlocking, r + controlSuffix(tk, ip)
	}
	note := retryNote
	if len(failed) > 0 {
		note = fmt.Sprintf("; %d of %d handshakes failed (%s)", len(failed), len(tk.TLSHandshakes),
			firstFailure(handshakeFailures(tk.TLSHandshakes)))
	}

	if in := tk.Interception; in != nil {
		r := "chain " + leadsTo(in)
		if in.BrowserErrorEvenWithRootInstalled {
			r += "; error even with the root installed: " + strings.Join(in.BrowserErrorReasons, ",")
		}
		ip := firstConnectIP(tk)
		for i, h := range tk.TLSHandshakes {
			if i < len(tk.Chains) && tk.Chains[i] != nil && tk.Chains[i].Interception != nil {
				ip = handshakeIP(h, ip)
				break
			}
		}
		if !confirmed {
			return measurement.VerdictError, r + unconfirmed(tk, ", but", ip)
		}
		return measurement.VerdictMITMISCA, r + controlSuffix(tk, ip) + trustedElsewhere(tk, done) + note
	}

	untrusted, at := "", -1
	for _, i := range done {
		if i < len(tk.Chains) && tk.Chains[i] != nil && !tk.Chains[i].Trusted {
			untrusted, at = orNone(derefOr(tk.Chains[i].TrustFailure, "untrusted")), i
			break
		}
		if i >= len(tk.Chains) || tk.Chains[i] == nil {
			untrusted, at = "chain not analysed", i
			break
		}
	}
	if untrusted != "" {
		r := "untrusted chain that is not the ISCA PKI (" + untrusted + ")"
		if !confirmed {
			return measurement.VerdictError, r + unconfirmed(tk, ", and", handshakeIP(tk.TLSHandshakes[at], firstConnectIP(tk)))
		}
		if tk.Control != nil {
			same, view := compareWithControl(tk.Control, tk.TLSHandshakes[at], firstConnectIP(tk))
			if same {
				return measurement.VerdictDown, r + ", but " + view + ": the site's own certificate, not interception" + note
			}
			return measurement.VerdictMITMOther, r + "; " + view + note
		}
		return measurement.VerdictMITMOther, r + note
	}
	if !confirmed {
		return measurement.VerdictOK, "chain trusted for the domain (control DNS failed: " + reason + ")" + note
	}
	return measurement.VerdictOK, "consistent DNS (" + reason + ") and a trusted chain" + note
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
		return fmt.Sprintf("%s [%s]", name, short(sha1))
	case name != "":
		return name
	case sha1 != "":
		return short(sha1)
	}
	return "an interception root"
}

// short abbreviates a hex fingerprint for humans.
func short(hex string) string {
	if len(hex) > 8 {
		return hex[:8]
	}
	return hex
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
