// Package control is the control side of a measurement: what the probe
// compares the local network's view with (DESIGN.md step 2).
//
// That is the control resolver: a DNS resolver outside the local network's
// reach, queried over DNS-over-HTTPS (RFC 8484) or DNS-over-TLS (RFC 7858)
// so the local network cannot read or rewrite the answers, or over plain
// UDP (the lab); and the control server ("test helper", [Server], with its
// probe-side [Client]), which connects from outside to the locally resolved
// addresses with the same SNI and reports the chain it is served. Its JSON
// API is documented in API.md beside this file.
//
// # Design
//
// A control resolver is named by a spec, an URL whose host is an IP literal:
//
//	https://1.1.1.1/dns-query   DoH, HTTP/2, POST (GET with Options.Method)
//	tls://9.9.9.9:853           DoT
//	udp://127.0.0.1:5353        plain DNS (TCP on truncation)
//	tcp://127.0.0.1:5353        plain DNS over TCP
//
// The address is pinned: reaching the control never needs the local
// resolver, which is the thing under test. The TLS name to verify comes
// from [Options.ServerName], and the roots from [Options.RootCAs] (the
// Mozilla bundle compiled into the binary by default, so results do not
// depend on the machine's trust store). Every connection is dialled through
// [Options.Dial], so the network guard applies.
//
// [New] returns an [Exchanger], a [probe.Exchanger] with Close, that a
// [probe.DNSResolver] drives; the records are the same DNSQuery entries as
// the local ones. DoH keeps one HTTP/2 connection and multiplexes queries on
// it; DoT keeps a small pool of connections, one query in flight on each.
// [NewWithFallbacks] chains several resolvers and moves on when one fails at
// the transport level. [DefaultControl] and [DefaultFallbacks] are public
// resolvers a volunteer can use with nothing configured; tests never
// contact them.
package control
