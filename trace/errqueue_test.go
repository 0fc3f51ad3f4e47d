package trace

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// extendedErr builds an IP_RECVERR payload as the kernel writes it: a
// struct sock_extended_err and the offender's sockaddr.
func extendedErr(origin, typ, code uint8, errno uint32, from netip.Addr) []byte {
	b := make([]byte, sizeExtendedErr)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:4], errno)
	b[4], b[5], b[6] = origin, typ, code
	switch {
	case from.Is4():
		sa := make([]byte, 16)
		ne.PutUint16(sa[0:2], afInet)
		a := from.As4()
		copy(sa[4:8], a[:])
		b = append(b, sa...)
	case from.Is6():
		sa := make([]byte, 28)
		ne.PutUint16(sa[0:2], afInet6)
		a := from.As16()
		copy(sa[8:24], a[:])
		b = append(b, sa...)
	}
	return b
}

func TestParseExtendedErr(t *testing.T) {
	r4 := netip.MustParseAddr("198.51.100.2")
	r6 := netip.MustParseAddr("2001:db8:1::2")
	tests := []struct {
		name        string
		level, typ  int32
		data        []byte
		ok          bool
		want        icmpError
		exceeded    bool
		unreachable bool
	}{
		{"IPv4 time exceeded", solIP, ipRecvErr, extendedErr(eeOriginICMP, 11, 0, 113, r4), true,
			icmpError{Version: 4, Type: 11, Code: 0, Errno: 113, From: r4}, true, false},
		{"IPv4 port unreachable", solIP, ipRecvErr, extendedErr(eeOriginICMP, 3, 3, 111, r4), true,
			icmpError{Version: 4, Type: 3, Code: 3, Errno: 111, From: r4}, false, true},
		{"IPv6 time exceeded", solIPv6, ipv6RecvErr, extendedErr(eeOrigin6, 3, 0, 113, r6), true,
			icmpError{Version: 6, Type: 3, Code: 0, Errno: 113, From: r6}, true, false},
		{"IPv6 port unreachable", solIPv6, ipv6RecvErr, extendedErr(eeOrigin6, 1, 4, 111, r6), true,
			icmpError{Version: 6, Type: 1, Code: 4, Errno: 111, From: r6}, false, true},
		{"IPv4-mapped offender on an IPv6 socket", solIPv6, ipv6RecvErr, extendedErr(eeOriginICMP, 11, 0, 113, netip.AddrFrom16(r4.As16())), true,
			icmpError{Version: 4, Type: 11, Errno: 113, From: r4}, true, false},
		{"no offender", solIP, ipRecvErr, extendedErr(eeOriginICMP, 11, 0, 113, netip.Addr{}), true,
			icmpError{Version: 4, Type: 11, Errno: 113}, true, false},
		{"offender cut short", solIP, ipRecvErr, extendedErr(eeOriginICMP, 11, 0, 113, r4)[:20], true,
			icmpError{Version: 4, Type: 11, Errno: 113}, true, false},
		{"local error, not ICMP", solIP, ipRecvErr, extendedErr(1, 0, 0, 90, netip.Addr{}), false, icmpError{}, false, false},
		{"another control message", solIP, 8, extendedErr(eeOriginICMP, 11, 0, 113, r4), false, icmpError{}, false, false},
		{"too short", solIP, ipRecvErr, make([]byte, 15), false, icmpError{}, false, false},
		{"empty", solIPv6, ipv6RecvErr, nil, false, icmpError{}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseExtendedErr(tc.level, tc.typ, tc.data)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
			if got.timeExceeded() != tc.exceeded || got.portUnreachable() != tc.unreachable {
				t.Errorf("time exceeded %v, port unreachable %v; want %v, %v", got.timeExceeded(), got.portUnreachable(), tc.exceeded, tc.unreachable)
			}
		})
	}
}

// FuzzParseExtendedErr feeds the error queue's parser arbitrary control
// messages: it must never panic, and what it accepts must be an ICMP
// error of version 4 or 6 with, at most, a valid unmapped offender.
func FuzzParseExtendedErr(f *testing.F) {
	f.Add(int32(solIP), int32(ipRecvErr), extendedErr(eeOriginICMP, 11, 0, 113, netip.MustParseAddr("192.0.2.1")))
	f.Add(int32(solIPv6), int32(ipv6RecvErr), extendedErr(eeOrigin6, 1, 4, 111, netip.MustParseAddr("2001:db8::1")))
	f.Add(int32(solIP), int32(ipRecvErr), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, level, typ int32, data []byte) {
		e, ok := parseExtendedErr(level, typ, data)
		if !ok {
			return
		}
		if e.Version != 4 && e.Version != 6 {
			t.Fatalf("version %d", e.Version)
		}
		if e.From.IsValid() && e.From.Is4In6() {
			t.Fatalf("offender %s left mapped", e.From)
		}
	})
}
