// Package dnsx carries DNS queries: plain DNS over UDP and TCP to a
// resolver, DNS-over-HTTPS (RFC 8484) and DNS-over-TLS (RFC 7858) to a
// control resolver, and the nameservers of resolv.conf. It says how a
// query travels and checks that the answer is the query's; what the
// answer means (records, failures, consistency) is package probe's.
//
// # Design
//
// Every transport is an [Exchanger]: one query, one matching response and
// its bytes as received, and an error only for the transport or a
// malformed response (an NXDOMAIN is a response). Each also implements
// [InfoExchanger], which reports the [ExchangeInfo] a record needs: the
// transport that carried the last attempt (UDP that fell back to TCP), the
// resolver that answered, the message ID on the wire. probe's DNSResolver
// drives an Exchanger and records each round trip.
//
// The network is assumed hostile. A response is matched to its query by
// ID and question ([CheckResponse]); one that does not match is skipped
// and reading goes on until the deadline, so a spoofed or duplicated
// packet cannot end an exchange. Every read is bounded in bytes
// ([MaxDNSMessageSize]) and time ([WatchConn]). Plain DNS dials a
// connected UDP socket per exchange and retries over TCP on truncation
// ([NewDNSExchanger]).
//
// A resolver is named by a spec, a URL whose host is an IP literal, and
// [New] builds it:
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
// depend on the machine's trust store). Every connection is dialled
// through [Options.Dial], so the network guard applies. DoH keeps one
// HTTP/2 connection and multiplexes queries on it; DoT keeps a small pool
// of connections, one query in flight on each. [NewWithFallbacks] chains
// several resolvers and moves on when one fails at the transport level.
//
// [PublicResolvers] is the one list of the public resolvers a volunteer
// can use with nothing configured; [DefaultControl], [DefaultFallbacks]
// and [KnownServerName] are read from it.
//
// dnsx is a leaf: it imports the network guard (probe/guard), the failure
// vocabulary (probe/failure) and the embedded Mozilla roots (probe/chain),
// never probe or control, so that the probe, the control server and any
// other tool can carry queries the same way.
package dnsx
