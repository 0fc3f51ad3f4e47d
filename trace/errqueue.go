package trace

import (
	"encoding/binary"
	"net/netip"
)

// The kernel's names for what a socket's error queue holds (linux/in.h,
// linux/in6.h, linux/errqueue.h). They are written out here, not taken
// from x/sys/unix, so that the parser builds and is fuzzed on every
// system; only the sockets that fill the queue are Linux's.
const (
	solIP        = 0  // SOL_IP, IPPROTO_IP
	solIPv6      = 41 // SOL_IPV6, IPPROTO_IPV6
	ipRecvErr    = 11 // IP_RECVERR
	ipv6RecvErr  = 25 // IPV6_RECVERR
	eeOriginICMP = 2  // SO_EE_ORIGIN_ICMP
	eeOrigin6    = 3  // SO_EE_ORIGIN_ICMP6
	afInet       = 2  // AF_INET
	afInet6      = 10 // AF_INET6

	// sizeExtendedErr is sizeof(struct sock_extended_err): ee_errno (u32),
	// ee_origin, ee_type, ee_code, ee_pad (u8 each), ee_info, ee_data (u32).
	sizeExtendedErr = 16
)

// ICMP types and codes the traces act on (RFC 792, RFC 4443).
const (
	icmpDestUnreachable = 3
	icmpTimeExceeded    = 11
	icmpPortUnreachable = 3 // code of icmpDestUnreachable

	icmp6DestUnreachable = 1
	icmp6TimeExceeded    = 3
	icmp6PortUnreachable = 4 // code of icmp6DestUnreachable
)

// icmpError is one ICMP error from a socket's error queue: the message's
// type and code and the address of the node that sent it (the
// "offender"), which for a time exceeded is the router where the TTL ran
// out.
type icmpError struct {
	// Version is 4 (ICMP) or 6 (ICMPv6).
	Version    int
	Type, Code uint8
	// Errno is the error the kernel made of it (EHOSTUNREACH for a time
	// exceeded, ECONNREFUSED for a port unreachable).
	Errno uint32
	// From is the sender; invalid when the kernel gave none.
	From netip.Addr
}

// timeExceeded reports whether e is an ICMP time exceeded.
func (e icmpError) timeExceeded() bool {
	if e.Version == 6 {
		return e.Type == icmp6TimeExceeded
	}
	return e.Type == icmpTimeExceeded
}

// portUnreachable reports whether e is a port unreachable: a UDP probe
// reached its destination.
func (e icmpError) portUnreachable() bool {
	if e.Version == 6 {
		return e.Type == icmp6DestUnreachable && e.Code == icmp6PortUnreachable
	}
	return e.Type == icmpDestUnreachable && e.Code == icmpPortUnreachable
}

// parseExtendedErr reads one IP_RECVERR or IPV6_RECVERR control message:
// level and typ are its cmsg_level and cmsg_type, data its payload, a
// struct sock_extended_err followed by the offender's sockaddr_in or
// sockaddr_in6. ok is false for any other message, for an error that did
// not come from ICMP (a local one: EMSGSIZE, a timestamp) and for a
// payload too short to hold one. The data comes from the network through
// the kernel; nothing in it is trusted beyond its length.
func parseExtendedErr(level, typ int32, data []byte) (e icmpError, ok bool) {
	switch {
	case level == solIP && typ == ipRecvErr:
	case level == solIPv6 && typ == ipv6RecvErr:
	default:
		return icmpError{}, false
	}
	if len(data) < sizeExtendedErr {
		return icmpError{}, false
	}
	ne := binary.NativeEndian
	switch data[4] { // ee_origin
	case eeOriginICMP:
		e.Version = 4
	case eeOrigin6:
		e.Version = 6
	default:
		return icmpError{}, false
	}
	e.Errno = ne.Uint32(data[0:4])
	e.Type, e.Code = data[5], data[6]
	sa := data[sizeExtendedErr:]
	if len(sa) >= 2 {
		switch ne.Uint16(sa[0:2]) { // sa_family, host order
		case afInet:
			if len(sa) >= 8 {
				e.From = netip.AddrFrom4([4]byte(sa[4:8]))
			}
		case afInet6:
			if len(sa) >= 24 {
				e.From = netip.AddrFrom16([16]byte(sa[8:24])).Unmap()
			}
		}
	}
	return e, true
}
