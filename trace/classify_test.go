package trace

import (
	"net/netip"
	"testing"

	"kzprobe/measurement"
)

func TestClassifyAndPrefix(t *testing.T) {
	tests := []struct {
		addr, class, prefix string
	}{
		{"198.51.100.77", measurement.HopPublic, "198.51.100.0/24"},
		{"::ffff:198.51.100.77", measurement.HopPublic, "198.51.100.0/24"},
		{"2001:db8:1:2:3::4", measurement.HopPublic, "2001:db8:1::/48"},
		{"10.1.2.3", measurement.HopPrivate, ""},
		{"172.16.0.1", measurement.HopPrivate, ""},
		{"192.168.1.1", measurement.HopPrivate, ""},
		{"fd77::1", measurement.HopPrivate, ""},
		{"100.64.0.1", measurement.HopCGNAT, ""},
		{"100.127.255.254", measurement.HopCGNAT, ""},
		{"100.128.0.1", measurement.HopPublic, "100.128.0.0/24"},
		{"169.254.1.1", measurement.HopLinkLocal, ""},
		{"fe80::1", measurement.HopLinkLocal, ""},
		{"127.0.0.1", measurement.HopOther, ""},
		{"::1", measurement.HopOther, ""},
		{"0.0.0.0", measurement.HopOther, ""},
		{"224.0.0.1", measurement.HopOther, ""},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tc.addr)
			if got := Classify(a); got != tc.class {
				t.Errorf("Classify(%s) = %s; want %s", a, got, tc.class)
			}
			h := hopOf(&Config{}, a, netip.Addr{})
			if h.Class != tc.class || h.Prefix != tc.prefix {
				t.Errorf("hop %+v; want class %s, prefix %q", h, tc.class, tc.prefix)
			}
		})
	}
}

// TestHopInOwnNetwork: a router in the /24 (/48) of the probe's own
// address is the volunteer's network: recorded with its network, no
// prefix.
func TestHopInOwnNetwork(t *testing.T) {
	cfg := &Config{Own: []netip.Addr{netip.MustParseAddr("198.51.100.9"), netip.MustParseAddr("2001:db8:7:1::9")}}
	for _, tc := range []struct{ addr, class, prefix string }{
		{"198.51.100.1", measurement.HopVantage, ""},
		{"198.51.101.1", measurement.HopPublic, "198.51.101.0/24"},
		{"2001:db8:7:ffff::1", measurement.HopVantage, ""},
		{"2001:db8:8::1", measurement.HopPublic, "2001:db8:8::/48"},
		{"10.0.0.1", measurement.HopPrivate, ""},
	} {
		h := hopOf(cfg, netip.MustParseAddr(tc.addr), netip.Addr{})
		if h.Class != tc.class || h.Prefix != tc.prefix {
			t.Errorf("%s: %+v; want class %s, prefix %q", tc.addr, h, tc.class, tc.prefix)
		}
	}
}
