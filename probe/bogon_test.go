package probe

import (
	"net/netip"
	"testing"
)

func TestBogonDefaults(t *testing.T) {
	t.Parallel()
	bogons := DefaultBogons()
	for _, tc := range []struct {
		ip    string
		bogon bool
	}{
		{"10.10.34.34", true}, {"172.16.0.1", true}, {"172.31.255.255", true}, {"172.32.0.1", false},
		{"192.168.0.1", true}, {"100.64.0.1", true}, {"100.128.0.1", false}, {"0.0.0.0", true},
		{"169.254.169.254", true}, {"224.0.0.1", true}, {"239.255.255.250", true}, {"240.0.0.1", true},
		{"255.255.255.255", true}, {"127.0.0.1", true}, {"127.255.255.254", true},
		{"192.0.2.1", true}, {"198.51.100.1", true}, {"203.0.113.1", true}, {"198.18.0.1", true},
		{"1.1.1.1", false}, {"8.8.8.8", false}, {"95.59.170.1", false}, {"93.184.215.14", false},
		{"::", true}, {"::1", true}, {"fc00::1", true}, {"fd12:3456::1", true}, {"fe80::1", true},
		{"ff02::1", true}, {"2001:db8::1", true}, {"::ffff:10.0.0.1", true}, {"::ffff:8.8.8.8", true},
		{"2606:4700:4700::1111", false}, {"2001:4860:4860::8888", false}, {"64:ff9b::808:808", false},
		{"2002:c000:204::1", false},
	} {
		if got := IsBogon(netip.MustParseAddr(tc.ip), bogons); got != tc.bogon {
			t.Errorf("IsBogon(%s) = %v; want %v", tc.ip, got, tc.bogon)
		}
	}
}

func TestBogonDefaultsAreFresh(t *testing.T) {
	t.Parallel()
	a := DefaultBogons()
	a[0] = netip.MustParsePrefix("8.8.8.0/24")
	if DefaultBogons()[0] == a[0] {
		t.Error("DefaultBogons shares its slice; callers could change the defaults")
	}
}
