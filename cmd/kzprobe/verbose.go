package main

import (
	"fmt"
	"strings"

	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/chain"
)

// stepLine is one line of the live debug log of kzprobe run -v: a step
// of a target as it starts or ends, told by the engine (probe.Step), after
// the target and the milliseconds since the target started. As they end,
// the DNS queries (local and control, and every resolver a query asked
// when it asked more than one), the connects, the handshakes (the
// small-hello retry named), the control server's view, the consistency of
// the answers, the judgement of each chain and the verdict rule that
// decided; the network steps also as they start, so that a target that
// hangs shows what it waits for.
func stepLine(s probe.Step) string {
	return fmt.Sprintf("%s: %.0f ms: %s", s.Target, s.T*1000, stepText(s))
}

// stepText is what stepLine says of s.
func stepText(s probe.Step) string {
	const started = ": started"
	switch s.Kind {
	case probe.StepDNS:
		q := s.Query
		head := fmt.Sprintf("dns %s %s %s via %s (%s)", s.Side, q.QueryType, q.Hostname, q.ResolverAddress, q.Engine)
		if !s.Done {
			return head + started
		}
		return head + ": " + dnsOutcome(*q) + span(q.T0, q.T)
	case probe.StepDNSTry:
		q, t := s.Query, s.Try
		return fmt.Sprintf("dns %s %s %s: tried %s (%s): %s%s", s.Side, q.QueryType, q.Hostname, t.ResolverAddress, t.Engine, failureOr(t.Failure, "answered"), span(t.T0, t.T))
	case probe.StepConnect:
		c := s.Connect
		head := fmt.Sprintf("connect %s:%d", bracketIPv6(c.IP), c.Port)
		if !s.Done {
			return head + started
		}
		return head + ": " + failureOr(c.Status.Failure, "connected") + span(c.T0, c.T)
	case probe.StepHandshake:
		h := s.Handshake
		retry := ""
		if h.SmallHelloRetry {
			retry = ", small-hello retry"
		}
		head := fmt.Sprintf("handshake %s sni=%s fingerprint=%s%s", h.Address, h.ServerName, h.Fingerprint, retry)
		if !s.Done {
			return head + started
		}
		outcome := "failed: " + derefString(h.Failure)
		if h.Failure == nil {
			outcome = fmt.Sprintf("%s, %s", h.TLSVersion, plural(len(h.PeerCertificates), "certificate"))
		} else if len(h.PeerCertificates) > 0 {
			outcome += fmt.Sprintf(" (%s presented before)", plural(len(h.PeerCertificates), "certificate"))
		}
		return head + ": " + outcome + span(h.T0, h.T)
	case probe.StepControlServer:
		if !s.Done {
			r := s.ControlRequest
			addrs := make([]string, len(r.Addresses))
			for i, a := range r.Addresses {
				addrs[i] = a.String()
			}
			return fmt.Sprintf("control server: asking about %s (%s)", plural(len(addrs), "address"), listOr(addrs))
		}
		c := s.Control
		switch {
		case c == nil:
			return "control server: no report"
		case c.Failure != nil:
			return fmt.Sprintf("control server %s: %s%s", c.Server, *c.Failure, span(c.T0, c.T))
		}
		return fmt.Sprintf("control server %s: answered about %s%s", c.Server, plural(len(c.Addresses), "address"), span(c.T0, c.T))
	case probe.StepConsistency:
		c := s.Consistency
		return fmt.Sprintf("dns consistency: %s (%s); local %s, control %s", c.Status, c.Reason, listOr(c.LocalAddrs), listOr(c.ControlAddrs))
	case probe.StepChain:
		return fmt.Sprintf("chain at %s: %s", s.Handshake.Address, chainOutcome(s.Chain))
	case probe.StepVerdict:
		d := s.Decision
		return fmt.Sprintf("judgement by rule %s: %s: %s", d.Code, d.Verdict, d.Reason)
	}
	return string(s.Kind)
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
