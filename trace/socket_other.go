//go:build !linux

package trace

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// supported is false: only Linux reports a TCP or UDP socket's ICMP
// errors, with the router's address, to an unprivileged program (the
// IP_RECVERR error queue). Elsewhere Run returns ErrUnsupported rather
// than a trace that could not see the routers.
const supported = false

func probeTCP(context.Context, netip.AddrPort, netip.Addr, int, time.Duration) sockResult {
	return sockResult{err: ErrUnsupported}
}

func probeUDP(context.Context, netip.AddrPort, netip.Addr, int, time.Duration) sockResult {
	return sockResult{err: ErrUnsupported}
}

func limitTTL(net.Conn, int) (*ttlConn, error) { return nil, ErrUnsupported }

// ttlConn is Linux's; elsewhere it is never made.
type ttlConn struct{ net.Conn }

func (c *ttlConn) icmp() *icmpError { return nil }
