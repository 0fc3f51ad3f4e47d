package probe

import (
	"fmt"
	"sort"
	"strings"

	"kzprobe/probe/failure"
)

// Classify turns one target's observations into a verdict and a short
// reason. It is a pure function of m: no network, no clock, no globals, so
// verdicts can be recomputed from a file of measurements (DESIGN step 6).
//
// It reads m.TestKeys: Queries and ControlQueries, DNSConsistency,
// TCPConnect, TLSHandshakes and Chains (the chain judgement of each
// handshake, made beforehand by probe/chain). The rules, in order:
//
//  1. The local resolver gave no address: "down" when the control fails
//     the same way, "dns_tampering" when the control answers, "error" when
//     the control failed too.
//  2. Inconsistent DNS (bogon, no intersection, local NXDOMAIN):
//     "dns_tampering", whatever the chains say (they are still analysed).
//  3. No TCP connect succeeded: "tcp_blocking".
//  4. TCP connected but no handshake completed: "tls_blocking".
//  5. A completed handshake presented an interception chain: "mitm_isca".
//  6. A completed handshake presented an untrusted chain: "mitm_other".
//  7. Otherwise "ok".
//
// Rules 3-6 need consistent DNS: when the control failed (consistency
// unknown) they give "error", since an address the control cannot confirm
// may not belong to the domain at all, except that a chain trusted for the
// domain proves the address serves it ("ok").
func Classify(m *Measurement) (Verdict, string) {
	tk := &m.TestKeys
	cons := tk.DNSConsistency
	status, reason := Unknown, ReasonBothFailed
	if cons != nil {
		status, reason = cons.Status, cons.Reason
	}
	localAddrs := len(Addrs(tk.Queries)) > 0
	controlAddrs := len(Addrs(tk.ControlQueries)) > 0

	if !localAddrs {
		lf := firstFailure(queryFailures(tk.Queries))
		switch {
		case status == Consistent || (!controlAddrs && lf != "" && lf == firstFailure(queryFailures(tk.ControlQueries))):
			return VerdictDown, "the name fails from the control resolver too (" + orNone(lf) + ")"
		case controlAddrs:
			return VerdictDNSTampering, "local resolver gave no address (" + orNone(lf) + ") while the control answered"
		default:
			return VerdictError, "both resolvers failed: local " + orNone(lf) + ", control " + orNone(firstFailure(queryFailures(tk.ControlQueries)))
		}
	}
	if status == Inconsistent {
		r := "local answers inconsistent with the control (" + reason + ")"
		if in := tk.Interception; in != nil {
			r += "; chain leads to " + rootLabel(in.RootName, in.RootSHA1)
		}
		return VerdictDNSTampering, r
	}
	confirmed := status == Consistent

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
			return VerdictError, "every address is outside --allow-net (" + f + "); nothing was sent"
		}
		r := "no TCP connect succeeded (" + orNone(f) + ")"
		if !confirmed {
			return VerdictError, r + " and the control could not confirm the address"
		}
		return VerdictTCPBlocking, r
	}

	var done, failed []int
	for i, h := range tk.TLSHandshakes {
		if h.Failure == nil {
			done = append(done, i)
		} else {
			failed = append(failed, i)
		}
	}
	if len(done) == 0 {
		r := "TCP connected but every TLS handshake failed (" + orNone(firstFailure(handshakeFailures(tk.TLSHandshakes))) + ")"
		if !confirmed {
			return VerdictError, r + " and the control could not confirm the address"
		}
		return VerdictTLSBlocking, r
	}
	note := ""
	if len(failed) > 0 {
		note = fmt.Sprintf("; %d of %d handshakes failed (%s)", len(failed), len(tk.TLSHandshakes),
			firstFailure(handshakeFailures(tk.TLSHandshakes)))
	}

	if in := tk.Interception; in != nil {
		r := fmt.Sprintf("chain leads to %s (evidence: %s)", rootLabel(in.RootName, in.RootSHA1), in.Evidence)
		if in.BrowserErrorEvenWithRootInstalled {
			r += "; error even with the root installed: " + strings.Join(in.BrowserErrorReasons, ",")
		}
		if !confirmed {
			return VerdictError, r + ", but the control could not confirm the address"
		}
		return VerdictMITMISCA, r + note
	}

	untrusted := ""
	for _, i := range done {
		if i < len(tk.Chains) && tk.Chains[i] != nil && !tk.Chains[i].Trusted {
			untrusted = orNone(derefOr(tk.Chains[i].TrustFailure, "untrusted"))
			break
		}
		if i >= len(tk.Chains) || tk.Chains[i] == nil {
			untrusted = "chain not analysed"
			break
		}
	}
	if untrusted != "" {
		r := "untrusted chain that is not the ISCA PKI (" + untrusted + ")"
		if !confirmed {
			return VerdictError, r + ", and the control could not confirm the address"
		}
		return VerdictMITMOther, r + note
	}
	if !confirmed {
		return VerdictOK, "chain trusted for the domain (control DNS failed: " + reason + ")" + note
	}
	return VerdictOK, "consistent DNS (" + reason + ") and a trusted chain" + note
}

func queryFailures(qs []DNSQuery) []*string {
	out := make([]*string, len(qs))
	for i := range qs {
		out[i] = qs[i].Failure
	}
	return out
}

func connectFailures(cs []TCPConnect) []*string {
	out := make([]*string, len(cs))
	for i := range cs {
		out[i] = cs[i].Status.Failure
	}
	return out
}

func handshakeFailures(hs []TLSHandshake) []*string {
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
