// Package trace finds where on the path a TLS interception (or a reset)
// answers: hop by hop, with the TTL (IPv6: the hop limit) of the probes
// lowered, as OONI's tlsmiddlebox test (ooni/spec ts-037) and Censored
// Planet's CenTrace do, joined here to the chain judgement of probe/chain.
//
// # Design
//
// [Run] traces one address in four steps, one after the other (so that
// no router is asked for two ICMP errors at once, which rate limits would
// eat):
//
//  1. a TCP traceroute to the address's port: connects with the TTL set
//     to 1, 2, 3 ..., each socket with IP_RECVERR (IPV6_RECVERR) on, so
//     that the kernel queues the ICMP time exceeded of a router, with the
//     router's address, on the socket's own error queue. No raw socket, no
//     root. It ends where the port answers (a SYN-ACK or a reset), at an
//     ICMP unreachable, after [Config].MaxSilent silent TTLs or at
//     MaxHops;
//  2. a UDP traceroute to the address, as traceroute(8) does: the
//     destination's own port unreachable gives its distance, which a box
//     that takes over TCP to port 443 does not change. TCP answered
//     before that distance is a transparent proxy;
//  3. two iterative TLS traces, for the target SNI and a control SNI: a
//     connection made at the normal TTL, then the TTL lowered to 1, 2, 3
//     ... and the ClientHello sent (probe.Handshaker, the run's browser
//     fingerprints), until something answers it: a server flight (its
//     chain judged by probe/chain), a reset, a close or an alert. A hello
//     that dies on the way comes back as an ICMP error; Linux reports that
//     on an established connection only as the socket's errno
//     (EHOSTUNREACH), not on the error queue, so the router is the one
//     the TCP traceroute met at the same TTL (TLSIteration.HopFrom);
//  4. the finding ([Interpret], a pure function of the record): the hop
//     at which the target SNI is answered by an interception chain or a
//     reset, how far the control SNI travels, the destination's distance,
//     whether TCP was answered before it, the networks of the hop that
//     answered and of the one before it, and the silent hops.
//
// A silent TTL of a traceroute is probed again (Config.Attempts): routers
// rate-limit ICMP errors. A router that never answers is recorded as
// silent and the trace goes on past it.
//
// # Privacy
//
// A router is recorded as its /24 (IPv6 /48) prefix with the prefix's
// ASN, country and network name ([measurement.TraceHop]), never its whole
// address; private (RFC 1918, unique local), CGNAT and link-local routers,
// the volunteer's side, are recorded as such with no address at all
// ([Classify]), and a router in the /24 (/48) of one of the probe's own
// addresses ([Config].Own) as measurement.HopVantage, with no prefix. The
// command's scrubber still runs over the records and the terminal.
//
// # Systems
//
// The socket error queue is Linux's. Elsewhere [Run] returns
// [ErrUnsupported] rather than a trace blind to its routers.
//
// # Records
//
// [Result.Record] wraps the test keys ([measurement.TraceTestKeys]) in
// the envelope every kzprobe record has, with test_name kzprobe_trace
// ([measurement.TraceTestName]); failures are OONI's strings
// (probe/failure).
package trace
