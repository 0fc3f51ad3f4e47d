package probe

// DNS consistency: a pure function of the recorded local and control
// queries; the later checks that need the network (the control server) or a
// database (ASN) plug in as ConsistencyCheck hooks whose inputs the caller
// has already collected. The statuses and reasons it records are defined
// with the record, in package measurement.

import (
	"net/netip"

	"kzprobe/measurement"
	"kzprobe/probe/failure"
)

// ConsistencyCheck is a later check that may find disjoint address sets
// consistent after all: it returns true when it does. local and control are
// the addresses compared (no bogons among local). Checks must be pure:
// whatever they need (a control server's report, an ASN database) is
// gathered before.
type ConsistencyCheck struct {
	// Reason is recorded when Match returns true, e.g.
	// measurement.ReasonIPValidFromControl or measurement.ReasonASNMatch.
	Reason string
	// Match decides.
	Match func(local, control []netip.Addr) bool
}

// ConsistencyOptions configures CheckConsistency. The zero value uses
// DefaultBogons and no later checks.
type ConsistencyOptions struct {
	// Bogons are the ranges never consistent. Nil means DefaultBogons();
	// an empty non-nil slice means none.
	Bogons []netip.Prefix
	// Exempt are ranges never counted as bogons, though listed in Bogons:
	// the lab passes the guard's allowed prefixes (127.0.0.0/8, ::1/128),
	// where its servers live. Nil means none.
	Exempt []netip.Prefix
	// Checks run in order when the sets do not intersect; the first that
	// matches makes the result Consistent with its Reason. Nil means none.
	Checks []ConsistencyCheck
}

// CheckConsistency compares local and control queries with the default
// options. See [ConsistencyOptions.Check].
func CheckConsistency(local, control []measurement.DNSQuery) *measurement.DNSConsistency {
	return ConsistencyOptions{}.Check(local, control)
}

// Check compares the local and control queries of one target (A and AAAA
// each) and returns the status and the reason. The rules, first match wins:
//
//  1. a local address in Bogons (and not in Exempt): Inconsistent, bogon;
//  2. neither side has an address: Consistent, same_failure, when both
//     resolvers answered and failed the same way (both NXDOMAIN, both no
//     answer, ...), so the verdict can say the name is down everywhere;
//     else Unknown, both_failed. Two transport failures are no answer:
//     with no network at all both sides fail with network_unreachable,
//     which says nothing about the name;
//  3. only the control has addresses: Inconsistent, local_nxdomain or
//     local_no_answer when the local resolver denied the name, else
//     Unknown, local_failed (a timeout or SERVFAIL is not evidence of a
//     lie);
//  4. only the local side has addresses: Unknown, control_failed;
//  5. the sets share an address: Consistent, intersection;
//  6. a ConsistencyCheck matches: Consistent with its reason;
//  7. the sets share no address family: Unknown, address_families_differ;
//  8. else Inconsistent, no_intersection.
func (o ConsistencyOptions) Check(local, control []measurement.DNSQuery) *measurement.DNSConsistency {
	bogons := o.Bogons
	if bogons == nil {
		bogons = DefaultBogons()
	}
	la, ca := Addrs(local), Addrs(control)
	c := &measurement.DNSConsistency{LocalAddrs: addrStrings(la), ControlAddrs: addrStrings(ca), Bogons: []string{}}
	for _, a := range la {
		if IsBogon(a, bogons) && !IsBogon(a, o.Exempt) {
			c.Bogons = append(c.Bogons, a.String())
		}
	}
	lf, lAnswered := sideFailure(local)
	cf, cAnswered := sideFailure(control)
	switch {
	case len(c.Bogons) > 0:
		return decide(c, measurement.Inconsistent, measurement.ReasonBogon)
	case len(la) == 0 && len(ca) == 0:
		if lf != "" && lf == cf && lAnswered && cAnswered {
			return decide(c, measurement.Consistent, measurement.ReasonSameFailure)
		}
		return decide(c, measurement.Unknown, measurement.ReasonBothFailed)
	case len(la) == 0:
		switch lf {
		case failure.DNSNXDOMAIN:
			return decide(c, measurement.Inconsistent, measurement.ReasonLocalNXDOMAIN)
		case failure.DNSNoAnswer:
			return decide(c, measurement.Inconsistent, measurement.ReasonLocalNoAnswer)
		}
		return decide(c, measurement.Unknown, measurement.ReasonLocalFailed)
	case len(ca) == 0:
		return decide(c, measurement.Unknown, measurement.ReasonControlFailed)
	}
	cset := make(map[netip.Addr]bool, len(ca))
	for _, a := range ca {
		cset[a] = true
	}
	for _, a := range la {
		if cset[a] {
			return decide(c, measurement.Consistent, measurement.ReasonIntersection)
		}
	}
	for _, chk := range o.Checks {
		if chk.Match != nil && chk.Match(la, ca) {
			return decide(c, measurement.Consistent, chk.Reason)
		}
	}
	if !sharesFamily(la, ca) {
		return decide(c, measurement.Unknown, measurement.ReasonFamiliesDiffer)
	}
	return decide(c, measurement.Inconsistent, measurement.ReasonNoIntersection)
}

// decide records the status and reason in c and returns c.
func decide(c *measurement.DNSConsistency, status measurement.ConsistencyStatus, reason string) *measurement.DNSConsistency {
	c.Status, c.Reason = status, reason
	return c
}

// sideFailure summarises the queries of one side that produced no
// address: NXDOMAIN when any query says so (a statement about the name,
// stronger than a lost packet), else the first failure, else
// dns_no_answer. It returns "" when no queries were made. answered says
// whether the failure came with a response from the resolver (see
// responded), rather than from the transport (a timeout, a refused port,
// no route).
func sideFailure(queries []measurement.DNSQuery) (f string, answered bool) {
	for _, q := range queries {
		if q.Failure == nil {
			continue
		}
		if *q.Failure == failure.DNSNXDOMAIN {
			return failure.DNSNXDOMAIN, true
		}
		if f == "" {
			f, answered = *q.Failure, responded(&q)
		}
	}
	if f == "" && len(queries) > 0 {
		return failure.DNSNoAnswer, true
	}
	return f, answered
}

func sharesFamily(a, b []netip.Addr) bool {
	var a4, a6, b4, b6 bool
	for _, x := range a {
		a4, a6 = a4 || x.Is4(), a6 || x.Is6()
	}
	for _, x := range b {
		b4, b6 = b4 || x.Is4(), b6 || x.Is6()
	}
	return (a4 && b4) || (a6 && b6)
}

func addrStrings(addrs []netip.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}
