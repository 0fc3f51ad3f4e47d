package probe

// The probe's own failures: what went wrong on this side (no control
// resolver answered, the guard refused, the process ran out of file
// descriptors), which says nothing about the network and must never read
// as censorship or as a site that is down. The verdict rules give such a
// target "error" ([CodeProbeFault], [CodeControlUnanswered],
// [CodeOutsideAllowNet]), and a run counts them ([Decision.Local]).

import (
	"net/netip"
	"slices"
	"strings"

	"kzprobe/measurement"
	"kzprobe/probe/failure"
)

// responded reports whether a resolver answered q: an address, or a DNS
// answer that denies one (NXDOMAIN, SERVFAIL, REFUSED, no record). A
// timeout, a refused port, no route, a TLS failure or the guard's refusal
// is no answer: the query never reached a resolver that could say
// anything about the name.
func responded(q *measurement.DNSQuery) bool {
	if q.Failure == nil || q.Rcode != nil {
		return true
	}
	switch *q.Failure {
	case failure.DNSNXDOMAIN, failure.DNSServfail, failure.DNSRefused, failure.DNSNoAnswer:
		return true
	}
	return false
}

// ControlUnanswered reports whether the control resolver was asked and
// answered no query of tk (see [CodeControlUnanswered]), with the failure
// most of its queries ended with and the resolvers tried, in order.
func ControlUnanswered(tk *measurement.TestKeys) (unanswered bool, fail string, tried []string) {
	if none, f := controlUnanswered(tk); none {
		return true, f, controlResolversTried(tk)
	}
	return false, "", nil
}

// controlUnanswered reports whether the control resolver was asked and
// answered no query, with the failure most of its queries ended with.
func controlUnanswered(tk *measurement.TestKeys) (bool, string) {
	if len(tk.ControlQueries) == 0 {
		return false, ""
	}
	for i := range tk.ControlQueries {
		if responded(&tk.ControlQueries[i]) {
			return false, ""
		}
	}
	return true, firstFailure(queryFailures(tk.ControlQueries))
}

// controlAnswered reports whether the control resolver was asked and
// answered every query (with or without an address).
func controlAnswered(tk *measurement.TestKeys) bool {
	for i := range tk.ControlQueries {
		if !responded(&tk.ControlQueries[i]) {
			return false
		}
	}
	return len(tk.ControlQueries) > 0
}

// controlResolversTried names the control resolvers the queries asked, in
// order, from their tries (or the query itself in records without them).
func controlResolversTried(tk *measurement.TestKeys) []string {
	var out []string
	add := func(a string) {
		if a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, q := range tk.ControlQueries {
		for _, t := range q.Tries {
			add(t.ResolverAddress)
		}
		add(q.ResolverAddress)
	}
	return out
}

// probeFault is the probe's own failure at a step that decides the
// verdict, and where: the process ran out of file descriptors at any step
// (a DNS query, a TCP connect), or the guard refused the local resolver.
// The guard's refusal of the control resolver is [controlUnanswered]'s,
// and of every address [CodeOutsideAllowNet]'s. It returns "" when there
// is none.
func probeFault(tk *measurement.TestKeys) (f, where string) {
	for _, q := range tk.Queries {
		if q.Failure != nil && failure.IsLocal(*q.Failure) {
			return *q.Failure, "the local resolver " + q.ResolverAddress
		}
	}
	for _, q := range tk.ControlQueries {
		if q.Failure != nil && *q.Failure == failure.TooManyOpenFiles {
			return *q.Failure, "the control resolver " + q.ResolverAddress
		}
	}
	for _, c := range tk.TCPConnect {
		if c.Status.Failure != nil && *c.Status.Failure == failure.TooManyOpenFiles {
			return *c.Status.Failure, "the TCP connect to " + hostPort(c.IP, c.Port)
		}
	}
	return "", ""
}

func hostPort(ip string, port int) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	return netip.AddrPortFrom(a, uint16(port)).String()
}

// probeFaultReason says what the probe's own failure was, and what to do.
func probeFaultReason(f *facts) string {
	fl, where := probeFault(f.tk)
	switch fl {
	case failure.TooManyOpenFiles:
		return "the probe's own failure, not the network's: it ran out of file descriptors (" + fl + ") at " + where +
			"; measure again with a lower --parallel or a higher ulimit -n"
	case failure.BlockedByAllowNet:
		return "the probe's own failure, not the network's: " + where + " is outside --allow-net (" + fl + "); nothing was sent"
	}
	return "the probe's own failure, not the network's (" + orNone(fl) + " at " + where + ")"
}

// controlUnansweredReason says which control resolvers were tried and how
// they failed.
func controlUnansweredReason(f *facts) string {
	_, fl := controlUnanswered(f.tk)
	tried := controlResolversTried(f.tk)
	r := "no control resolver answered (" + orNone(fl)
	if len(tried) > 0 {
		r += " from " + strings.Join(tried, ", ")
	}
	r += "): the local answers cannot be checked; the probe's own failure (are you online? is the control reachable?), not the network's"
	if fl == failure.BlockedByAllowNet {
		r = "no control resolver answered: " + strings.Join(tried, ", ") + " is outside --allow-net (" + fl + "); nothing was sent"
	}
	return r
}
