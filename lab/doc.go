// Package lab is a censored network in one process, on loopback: origin
// servers with a "public" test PKI, a middlebox that intercepts TLS by SNI
// with an ISCA-like PKI (or resets, blackholes, closes), a local resolver
// that lies, and a control resolver (DoH, DoT) that does not. Tests drive
// it with ordinary clients, and `kzprobe lab` runs the probe against it.
//
// It follows the net/http/httptest pattern: [Start] builds a [Lab] from a
// [Config], the Lab's fields give its addresses and certificates, and
// [Lab.Close] stops everything.
//
// # Design
//
// What each domain gets is data: a [Scenario] of [Site]s, each with a TLS
// behaviour ([Pass], [InterceptISCA], [InterceptISCAExpired],
// [InterceptCorporate], [Reset], [Blackhole], [EOF], [Unreachable]), a
// DNS behaviour ([DNSTruthful], [DNSBlockpage], [DNSNXDOMAIN],
// [DNSBogon], [DNSNonexistent], [DNSControlServfail]) and the verdict the
// probe should give ([ExpectedVerdict] is the table). [DefaultScenario]
// uses the 14 domains of the published report and exercises every
// verdict. Hostile peers have behaviours of their own
// ([HostileTLSBehaviours]: a dripping server, garbage, a 200-certificate
// or 2 MB chain, malformed DER, absurd or invalid certificate fields, an
// alert mid-handshake; [HostileDNSBehaviours]: truncated, wrong ID, wrong
// question, compression loop, 500 answers, duplicates, silence), and
// [HostileScenario] has one site for each. [LoadScenario] reads the same
// from YAML:
//
//	name: my-network
//	latency: 30ms      # per round trip, added by the lab's servers
//	dns_drop: 0.1      # fraction of local UDP queries dropped
//	drip_interval: 1s  # pause between bytes of a drip site
//	sites:
//	  - domain: rutracker.org
//	    tls: intercept_isca
//	    ipv6: true     # also AAAA ::1, the middlebox on [::1] too
//	  - domain: example.org
//	    dns: nxdomain
//	    expect: dns_tampering   # optional; default from the table
//
// # Topology
//
// Each lab owns a random loopback /24, 127.a.b.0/24 (a in 1..254), so
// that labs coexist in one process and across processes; Start retries
// on another /24 when a bind fails. Inside it:
//
//	.1          local ISP resolver, UDP and TCP on DNSPort (53 if free)
//	.2          control resolver, DoH, on Port (443 if free)
//	.3          control resolver, DoT, on Port
//	.4          control server (package control's own, on Port): dials
//	            with [Lab.OutsideDialer], resolves with the DoH control
//	            resolver, trusts the public root, admits the lab's /24
//	.5          block-page server, TLS on Port
//	.6          the outside view of ::1, with IPv6 sites only: splices by
//	            SNI to the site's origin
//	.10+i       site i's public address: the middlebox (none if Unreachable)
//	.130+i      site i's origin, hidden: reached through the middlebox or
//	            with [Lab.OutsideDialer]
//
// so a scenario has at most [MaxSites] sites. Every TLS address shares
// one port (443 when it can be bound, else one free port found by the
// first bind).
//
// IPv6: loopback has one IPv6 address, ::1, so every site with ipv6 (in
// the default scenario, stanradar.com and wikipedia.org) shares it. Where
// a resolver answers such a site's own IPv4 address for A, it answers ::1
// for AAAA; the middlebox listens on [::1] on the lab's port and picks the
// site by SNI (another SNI, or none, is closed). Labs with IPv6 sites
// cannot share ::1's port, so Start moves to a free port when it is taken.
// [Lab.Nets] lists the lab's prefixes, ::1/128 included, for a probe's
// guard. The control server admits ::1; its outside view of ::1 (.6, see
// [Lab.OutsideDialer]) splices the SNI of an IPv6 site to that site's
// origin. Other sites get an empty AAAA answer.
// Nothing is dialled outside the /24 and ::1; the bogon answer
// 10.10.34.34 is data.
//
// # Certificates
//
// The [PKI] is generated at Start with ECDSA P-256 keys held in memory.
// Origins present leaf + a public intermediate; the middlebox forges a
// leaf per SNI (cached) and presents leaf + the current or the expired
// ISCA intermediate (leaf alone for the corporate CA); roots are never
// sent. The ISCA root and intermediates copy the real subject DN, in the
// real attribute order. [Lab.WriteFiles] writes the PEMs for a probe in
// another process.
//
// # Adding behaviours
//
// A TLS behaviour is a case in the middlebox, which owns the raw
// connection after the ClientHello; a DNS behaviour is a case in the
// resolver handler, which may write raw bytes through
// dns.ResponseWriter.Write. The hostile peers are both (hostile.go).
package lab
