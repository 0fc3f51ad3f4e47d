package control

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"kzprobe/probe"
	"kzprobe/probe/failure"
	"kzprobe/probe/guard"
)

// addressPolicy is the control server's refusal of special-purpose
// destinations: it connects where strangers ask, so it must not become a
// way into its own network (loopback, private ranges, the cloud metadata
// service at 169.254.169.254) nor a scanner of ports other than the
// configured ones. The ranges are probe.DefaultBogons, the single list of
// special-purpose ranges in kzprobe; admit (--allow-net) re-admits some
// of them, as the lab does for its loopback /24.
type addressPolicy struct {
	special []netip.Prefix
	admit   []netip.Prefix
	ports   []int
}

func newAddressPolicy(admit []netip.Prefix, ports []int) *addressPolicy {
	special := append(probe.DefaultBogons(), ipv4Compatible, ipv4Translated)
	return &addressPolicy{special: special, admit: slices.Clone(admit), ports: slices.Clone(ports)}
}

// Well-known IPv6 ranges that embed an IPv4 address a gateway or relay
// would forward to: NAT64 (RFC 6052), 6to4 (RFC 3056) and Teredo (RFC
// 4380). DefaultBogons leaves them out because they are globally
// reachable, but the embedded IPv4 address must pass the policy too.
var (
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour    = netip.MustParsePrefix("2002::/16")
	teredoPrefix = netip.MustParsePrefix("2001::/32")
)

// IPv6 forms of an IPv4 address that no site has: IPv4-compatible
// (::a.b.c.d, RFC 4291, deprecated; :: and ::1 are not of them) and
// IPv4-translated (::ffff:0:a.b.c.d, RFC 2765 SIIT). A host with an
// automatic tunnel or a translator may send them to the embedded IPv4
// address; others send them anywhere the IPv6 route goes. The policy
// refuses them outright (they are special ranges) unless --allow-net names
// them, and then the embedded address must pass too.
var (
	ipv4Compatible = netip.MustParsePrefix("::/96")
	ipv4Translated = netip.MustParsePrefix("::ffff:0:0:0/96")
)

// allowed reports whether the server may connect to a.
func (p *addressPolicy) allowed(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.Zone() != "" {
		return false
	}
	if probe.IsBogon(a, p.special) && !probe.IsBogon(a, p.admit) {
		return false
	}
	if v4, ok := embeddedIPv4(a); ok {
		return p.allowed(v4)
	}
	return true
}

// embeddedIPv4 returns the IPv4 address that a NAT64, 6to4, Teredo,
// IPv4-compatible or IPv4-translated address leads to.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() || a.Is4In6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	switch {
	case ipv4Compatible.Contains(a):
		if a == netip.IPv6Unspecified() || a == netip.IPv6Loopback() {
			return netip.Addr{}, false
		}
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case ipv4Translated.Contains(a), nat64Prefix.Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	case teredoPrefix.Contains(a):
		// The client's address is stored inverted in the last 32 bits.
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}), true
	}
	return netip.Addr{}, false
}

// dialer wraps next (the network guard's dialer) with the policy, so that
// every connection the server makes, to a submitted address or to one of
// its own DNS answers (a name may resolve to 127.0.0.1 on purpose), is
// checked before a packet is sent. A refusal fails as
// blocked_by_allow_net.
func (p *addressPolicy) dialer(next guard.DialFunc) guard.DialFunc {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return nil, &failure.Error{Failure: failure.BlockedByAllowNet, Operation: "connect",
				Err: fmt.Errorf("control: %q is not ip:port", address)}
		}
		if !p.allowed(ap.Addr()) {
			return nil, &failure.Error{Failure: failure.BlockedByAllowNet, Operation: "connect",
				Err: fmt.Errorf("control: %v is a special-purpose address not admitted by --allow-net", ap.Addr())}
		}
		if !slices.Contains(p.ports, int(ap.Port())) {
			return nil, &failure.Error{Failure: failure.BlockedByAllowNet, Operation: "connect",
				Err: fmt.Errorf("control: port %d is not a configured port", ap.Port())}
		}
		return next(ctx, network, address)
	}
}
