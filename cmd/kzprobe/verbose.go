package main

import (
	"fmt"
	"strings"

	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/chain"
)

// stepLog is the debug log of one finished target (kzprobe run -v): each
// step in the order taken, read from its record: the DNS queries (local
// and control, with every resolver tried), the consistency of the answers,
// each TCP connect, each TLS handshake and the judgement of its chain,
// the control server's view, and the verdict rule that decided. Times are
// milliseconds since the target started.
func stepLog(m *measurement.Measurement) []string {
	tk := &m.TestKeys
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	for _, side := range []struct {
		name string
		qs   []measurement.DNSQuery
	}{{"local", tk.Queries}, {"control", tk.ControlQueries}} {
		for _, q := range side.qs {
			add("dns %s %s %s via %s (%s): %s%s", side.name, q.QueryType, q.Hostname, q.ResolverAddress, q.Engine, dnsOutcome(q), span(q.T0, q.T))
			if len(q.Tries) > 1 {
				for _, t := range q.Tries {
					add("dns %s %s %s: tried %s (%s): %s%s", side.name, q.QueryType, q.Hostname, t.ResolverAddress, t.Engine, failureOr(t.Failure, "answered"), span(t.T0, t.T))
				}
			}
		}
	}
	if c := tk.DNSConsistency; c != nil {
		add("dns consistency: %s (%s); local %s, control %s", c.Status, c.Reason, listOr(c.LocalAddrs), listOr(c.ControlAddrs))
	}
	for _, c := range tk.TCPConnect {
		add("connect %s:%d: %s%s", bracketIPv6(c.IP), c.Port, failureOr(c.Status.Failure, "connected"), span(c.T0, c.T))
	}
	for i, h := range tk.TLSHandshakes {
		retry := ""
		if h.SmallHelloRetry {
			retry = ", small-hello retry"
		}
		outcome := "failed: " + derefString(h.Failure)
		if h.Failure == nil {
			outcome = fmt.Sprintf("%s, %s", h.TLSVersion, plural(len(h.PeerCertificates), "certificate"))
		} else if len(h.PeerCertificates) > 0 {
			outcome += fmt.Sprintf(" (%s presented before)", plural(len(h.PeerCertificates), "certificate"))
		}
		add("handshake %s sni=%s fingerprint=%s%s: %s%s", h.Address, h.ServerName, h.Fingerprint, retry, outcome, span(h.T0, h.T))
		if i < len(tk.Chains) && tk.Chains[i] != nil {
			add("chain at %s: %s", h.Address, chainOutcome(tk.Chains[i]))
		}
	}
	if c := tk.Control; c != nil {
		switch {
		case c.Failure != nil:
			add("control server %s: %s%s", c.Server, *c.Failure, span(c.T0, c.T))
		default:
			add("control server %s: answered about %s%s", c.Server, plural(len(c.Addresses), "address"), span(c.T0, c.T))
		}
	}
	rule := ""
	if d := probe.Decide(m); d.Verdict == tk.Verdict {
		rule = " by rule " + string(d.Code)
	}
	add("judgement%s: %s: %s", rule, tk.Verdict, tk.VerdictReason)
	return out
}

func dnsOutcome(q measurement.DNSQuery) string {
	var addrs []string
	for _, a := range q.Answers {
		switch {
		case a.IPv4 != "":
			addrs = append(addrs, a.IPv4)
		case a.IPv6 != "":
			addrs = append(addrs, a.IPv6)
		case a.Hostname != "":
			addrs = append(addrs, a.AnswerType+" "+a.Hostname)
		}
	}
	switch {
	case q.Failure != nil:
		return *q.Failure
	case len(addrs) == 0:
		return "no address"
	}
	return strings.Join(addrs, ", ")
}

func chainOutcome(j *chain.Judgement) string {
	s := "trusted for " + j.ServerName
	if !j.Trusted {
		s = "untrusted (" + failureOr(j.TrustFailure, "no failure recorded") + ")"
	}
	if in := j.Interception; in != nil {
		s += fmt.Sprintf("; leads to %s (evidence: %s)", rootLabel(in.RootName, in.RootSHA1), in.Evidence)
	}
	if n := len(j.ParseErrors); n > 0 {
		s += fmt.Sprintf("; %s not parsed", plural(n, "certificate"))
	}
	return s
}

func span(t0, t float64) string {
	return fmt.Sprintf(" in %.0f ms", (t-t0)*1000)
}

func failureOr(f *string, ok string) string {
	if f == nil {
		return ok
	}
	return *f
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func listOr(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

// bracketIPv6 writes an IPv6 address as it goes before a port.
func bracketIPv6(ip string) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]"
	}
	return ip
}
