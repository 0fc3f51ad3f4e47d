// Package guard is the network guard: the one check that every dialer and
// resolver kzprobe makes runs before any packet is sent.
//
// A Guard holds the allowed prefixes (config network.allow, flag
// --allow-net). An empty Guard allows everything. A destination outside the
// allowed prefixes fails at once with an error whose failure string is
// failure.BlockedByAllowNet; nothing is sent.
//
// The kzprobe binary reads KZPROBE_NETWORK_ALLOW as network.allow, and CI
// and the Makefile set it to 127.0.0.0/8,::1/128: the tests that run the
// binary cannot leave loopback. Package tests do not read the variable
// (no library does): they confine themselves, with a Guard of the lab's
// /24 or of loopback, or by dialing only the servers they started on
// loopback addresses.
//
// Only IP literals are checked: the guard is applied after name resolution,
// at the dial, so a hostname must never reach net.Dial unresolved (the
// dialers here refuse hostnames when the guard is on, since resolving them
// would itself send a query to the system resolver).
package guard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"kzprobe/probe/failure"
)

// ErrBlocked is wrapped by every refusal.
var ErrBlocked = errors.New("guard: destination outside --allow-net")

// Guard is a set of allowed prefixes. The zero value and nil allow everything.
type Guard struct {
	allow []netip.Prefix
}

// New returns a guard for the given prefixes; none means no restriction.
func New(prefixes ...netip.Prefix) *Guard {
	return &Guard{allow: append([]netip.Prefix(nil), prefixes...)}
}

// Parse builds a guard from CIDR strings, each possibly a comma-separated
// list ("127.0.0.0/8,::1/128"). A bare address counts as a /32 or /128.
func Parse(specs ...string) (*Guard, error) {
	var out []netip.Prefix
	for _, spec := range specs {
		for _, s := range strings.Split(spec, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			p, err := ParsePrefix(s)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return New(out...), nil
}

// ParsePrefix parses one CIDR, or an address as a single-address prefix.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: want e.g. 127.0.0.0/8 or ::1/128", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: want e.g. 127.0.0.0/8 or ::1/128", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// Restricted reports whether the guard limits anything.
func (g *Guard) Restricted() bool { return g != nil && len(g.allow) > 0 }

// Prefixes returns a copy of the allowed prefixes.
func (g *Guard) Prefixes() []netip.Prefix {
	if g == nil {
		return nil
	}
	return append([]netip.Prefix(nil), g.allow...)
}

// String lists the allowed prefixes, or "any".
func (g *Guard) String() string {
	if !g.Restricted() {
		return "any"
	}
	s := make([]string, len(g.allow))
	for i, p := range g.allow {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// Allowed reports whether a may be contacted.
func (g *Guard) Allowed(a netip.Addr) bool {
	if !g.Restricted() {
		return true
	}
	a = a.Unmap()
	for _, p := range g.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Check returns nil when address ("ip:port" or "ip") may be contacted, and
// a *failure.Error with failure.BlockedByAllowNet otherwise. A hostname is
// refused when the guard is restricted, since it cannot be checked without
// resolving it.
func (g *Guard) Check(address string) error {
	if !g.Restricted() {
		return nil
	}
	host := address
	if h, _, err := net.SplitHostPort(address); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i] // zone
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return &failure.Error{Failure: failure.BlockedByAllowNet, Operation: "guard",
			Err: fmt.Errorf("%w: %q is not an IP literal (allowed: %s)", ErrBlocked, address, g)}
	}
	if !g.Allowed(a) {
		return &failure.Error{Failure: failure.BlockedByAllowNet, Operation: "guard",
			Err: fmt.Errorf("%w: %s (allowed: %s)", ErrBlocked, address, g)}
	}
	return nil
}

// DialFunc is the signature of net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Dialer returns a DialFunc that checks every destination with g before
// calling next (a zero net.Dialer when nil).
func (g *Guard) Dialer(next DialFunc) DialFunc {
	if next == nil {
		next = (&net.Dialer{}).DialContext
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if err := g.Check(address); err != nil {
			return nil, err
		}
		return next(ctx, network, address)
	}
}
