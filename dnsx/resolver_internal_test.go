package dnsx

import (
	"go/build"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"kzprobe/probe/guard"
)

// loopbackOnly is the guard every test dials through: nothing leaves
// 127.0.0.0/8.
var loopbackOnly = guard.New(netip.MustParsePrefix("127.0.0.0/8")).Dialer(nil)

func TestResolverDefaultsArePinned(t *testing.T) {
	t.Parallel()
	for _, s := range append([]Spec{DefaultControl()}, DefaultFallbacks()...) {
		sp, err := parseSpec(s.URL)
		if err != nil || sp.scheme != "https" || s.ServerName == "" {
			t.Errorf("%+v: scheme %q, err %v; want pinned DoH with a server name", s, sp.scheme, err)
		}
	}
	// Building them contacts nothing.
	ex, err := NewWithFallbacks(append([]Spec{DefaultControl()}, DefaultFallbacks()...), Options{Dial: loopbackOnly})
	if err != nil {
		t.Fatal(err)
	}
	ex.Close()
}

// TestPublicResolvers checks the one list of public resolvers against
// what is read from it: each entry's spec is pinned DoH to its first IP,
// every IP of an entry names it, no IP or name appears twice, and the
// defaults are the list in order.
func TestPublicResolvers(t *testing.T) {
	t.Parallel()
	list := PublicResolvers()
	seen := map[string]bool{}
	for _, p := range list {
		if p.ServerName == "" || len(p.IPs) == 0 || seen[p.ServerName] {
			t.Fatalf("%+v: want a unique server name and at least one IP", p)
		}
		seen[p.ServerName] = true
		sp, err := parseSpec(p.Spec().URL)
		if err != nil || sp.scheme != "https" || sp.addr != netip.AddrPortFrom(p.IPs[0], 443) || p.Spec().ServerName != p.ServerName {
			t.Errorf("%s: spec %+v (%v); want DoH pinned to %s:443", p.ServerName, p.Spec(), err, p.IPs[0])
		}
		for _, ip := range p.IPs {
			if seen[ip.String()] {
				t.Errorf("%s listed twice", ip)
			}
			seen[ip.String()] = true
			for _, u := range []string{"https://" + ip.String() + "/dns-query", "tls://" + ip.String() + ":853"} {
				if got := KnownServerName(u); got != p.ServerName {
					t.Errorf("KnownServerName(%q) = %q; want %q", u, got, p.ServerName)
				}
			}
		}
	}
	if DefaultControl() != list[0].Spec() {
		t.Errorf("DefaultControl() = %+v; want the first public resolver, %+v", DefaultControl(), list[0].Spec())
	}
	var rest []Spec
	for _, p := range list[1:] {
		rest = append(rest, p.Spec())
	}
	if !slices.Equal(DefaultFallbacks(), rest) {
		t.Errorf("DefaultFallbacks() = %+v; want the other public resolvers, %+v", DefaultFallbacks(), rest)
	}
	// The list is a copy each time: a caller cannot change the defaults.
	list[0].IPs[0] = netip.MustParseAddr("192.0.2.1")
	if PublicResolvers()[0].IPs[0] == list[0].IPs[0] {
		t.Error("changing the returned list changed the next one")
	}
}

func TestKnownServerName(t *testing.T) {
	t.Parallel()
	tests := []struct{ url, want string }{
		{"https://1.1.1.1/dns-query", "cloudflare-dns.com"},
		{"https://1.0.0.1:443/dns-query", "cloudflare-dns.com"},
		{"https://8.8.4.4/dns-query", "dns.google"},
		{"tls://149.112.112.112:853", "dns.quad9.net"},
		{"https://192.0.2.1/dns-query", ""},
		{"udp://127.0.0.1:53", ""},
		{"https://dns.google/dns-query", ""},
		{"", ""},
		{"%zz", ""},
	}
	for _, tc := range tests {
		if got := KnownServerName(tc.url); got != tc.want {
			t.Errorf("KnownServerName(%q) = %q; want %q", tc.url, got, tc.want)
		}
	}
}

// TestLeaf keeps dnsx a leaf: besides the standard library and
// miekg/dns it imports only the guard, the failure vocabulary and the
// embedded roots, never probe or control (which import dnsx).
func TestLeaf(t *testing.T) {
	t.Parallel()
	allowed := []string{"github.com/miekg/dns", "kzprobe/probe/chain", "kzprobe/probe/failure", "kzprobe/probe/guard"}
	for _, goos := range []string{"linux", "darwin", "windows"} {
		ctx := build.Default
		ctx.GOOS = goos
		pkg, err := ctx.ImportDir(".", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range pkg.Imports {
			first, _, _ := strings.Cut(imp, "/")
			if !strings.Contains(first, ".") && first != "kzprobe" {
				continue // the standard library
			}
			if !slices.Contains(allowed, imp) {
				t.Errorf("%s: dnsx imports %s; want only %v and the standard library", goos, imp, allowed)
			}
		}
	}
}
