// Package control is the control server of a measurement: a vantage
// outside the local network whose view of a site the probe compares with
// its own (it confirms the addresses the local resolver gave, step 3 of a
// measurement, and shows the chain the site really serves).
//
// The control server ("test helper", [Server]) resolves a domain with its
// own resolver, connects from outside to the addresses the probe resolved
// locally with the same SNI, and reports the chain it is served. [Client]
// is its probe side. Its JSON API is documented in API.md beside this
// file; api.go is the schema.
//
// # Design
//
// The server's resolver is a probe.DNSResolver over any dnsx exchanger
// (the control resolvers, DoH and DoT, are in package dnsx), and every
// connection it makes goes through [ServerConfig.Dial], so the network
// guard applies. It serves strangers: every limit (addresses, ports,
// special-purpose ranges, body size, rate, concurrency, deadline) is a
// field of [ServerConfig] with a safe default.
package control
