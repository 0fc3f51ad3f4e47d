package probe

import "net/netip"

// bogonPrefixes are the special-purpose ranges of RFC 6890 and its updates
// that are not globally reachable: an answer in one of them cannot be a
// public web server. Globally reachable special ranges (NAT64 64:ff9b::/96,
// which DNS64 resolvers synthesise, 6to4 2002::/16, Teredo) are left out.
var bogonPrefixes = [...]string{
	// IPv4
	"0.0.0.0/8",       // "this network" (RFC 791)
	"10.0.0.0/8",      // private (RFC 1918); 10.10.34.34 is a known block page
	"100.64.0.0/10",   // shared address space, CGN (RFC 6598)
	"127.0.0.0/8",     // loopback (RFC 1122)
	"169.254.0.0/16",  // link local (RFC 3927)
	"172.16.0.0/12",   // private (RFC 1918)
	"192.0.0.0/24",    // IETF protocol assignments (RFC 6890)
	"192.0.2.0/24",    // TEST-NET-1 (RFC 5737)
	"192.88.99.0/24",  // deprecated 6to4 relay anycast (RFC 7526)
	"192.168.0.0/16",  // private (RFC 1918)
	"198.18.0.0/15",   // benchmarking (RFC 2544)
	"198.51.100.0/24", // TEST-NET-2 (RFC 5737)
	"203.0.113.0/24",  // TEST-NET-3 (RFC 5737)
	"224.0.0.0/4",     // multicast (RFC 5771)
	"240.0.0.0/4",     // reserved (RFC 1112), includes 255.255.255.255
	// IPv6
	"::/128",         // unspecified (RFC 4291)
	"::1/128",        // loopback (RFC 4291)
	"::ffff:0:0/96",  // IPv4-mapped (RFC 4291): never a valid AAAA answer
	"64:ff9b:1::/48", // local-use NAT64 (RFC 8215)
	"100::/64",       // discard-only (RFC 6666)
	"2001:2::/48",    // benchmarking (RFC 5180)
	"2001:10::/28",   // deprecated ORCHID (RFC 4843)
	"2001:db8::/32",  // documentation (RFC 3849)
	"3fff::/20",      // documentation (RFC 9637)
	"fc00::/7",       // unique local (RFC 4193)
	"fe80::/10",      // link local (RFC 4291)
	"fec0::/10",      // deprecated site local (RFC 3879)
	"ff00::/8",       // multicast (RFC 4291)
}

// DefaultBogons returns the address ranges that a public name never
// legitimately resolves to (RFC 6890 special-purpose ranges that are not
// globally reachable, RFC 1918 private space, loopback, link local,
// multicast, documentation). It returns a new slice on each call.
//
// Loopback is included: in the lab, where everything is on 127.0.0.0/8,
// the caller exempts the guard's allowed prefixes with
// [ConsistencyOptions.Exempt] rather than editing this list.
func DefaultBogons() []netip.Prefix {
	out := make([]netip.Prefix, len(bogonPrefixes))
	for i, s := range bogonPrefixes {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// IsBogon reports whether a is in one of prefixes.
func IsBogon(a netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
