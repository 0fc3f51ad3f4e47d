//go:build linux

package trace

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// supported is true: Linux queues a socket's ICMP errors, with the
// sender's address, on the socket itself when IP_RECVERR (IPV6_RECVERR)
// is set, so the traces need neither a raw socket nor root.
const supported = true

// pollSlice is how long one poll waits before the context is looked at
// again: Ctrl-C stops a probe within it.
const pollSlice = 50 * time.Millisecond

// newSocket opens a non-blocking socket of the destination's family with
// the error queue on and the TTL (IPv6: unicast hop limit) set, bound to
// bind when it is valid.
func newSocket(dst netip.AddrPort, bind netip.Addr, typ, ttl int) (int, error) {
	family := unix.AF_INET
	if dst.Addr().Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("trace: socket: %w", err)
	}
	if err := setTTL(fd, dst.Addr().Is6(), ttl); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if bind.IsValid() {
		if err := unix.Bind(fd, sockaddr(netip.AddrPortFrom(bind, 0), dst.Addr().Is6())); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("trace: bind %s: %w", bind, err)
		}
	}
	return fd, nil
}

// setTTL turns the error queue on and sets the TTL or hop limit of fd.
func setTTL(fd int, v6 bool, ttl int) error {
	level, hops := hopsOption(v6)
	recvErr := unix.IP_RECVERR
	if v6 {
		recvErr = unix.IPV6_RECVERR
	}
	if err := unix.SetsockoptInt(fd, level, recvErr, 1); err != nil {
		return fmt.Errorf("trace: setsockopt RECVERR: %w", err)
	}
	if err := unix.SetsockoptInt(fd, level, hops, ttl); err != nil {
		return fmt.Errorf("trace: setsockopt TTL %d: %w", ttl, err)
	}
	return nil
}

// sockaddr is ap as the kernel's sockaddr for a socket of the family v6
// says (an IPv4 source on an IPv6 socket is not needed: the family
// follows the destination).
func sockaddr(ap netip.AddrPort, v6 bool) unix.Sockaddr {
	if v6 {
		return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
}

// readErrQueue takes one message off fd's error queue, without waiting.
// ok is false when the queue held no ICMP error.
func readErrQueue(fd int) (e icmpError, ok bool) {
	var buf [64]byte
	var oob [256]byte
	for range 4 { // a local error may precede the ICMP one
		_, oobn, _, _, err := unix.Recvmsg(fd, buf[:], oob[:], unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if err != nil {
			return icmpError{}, false
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return icmpError{}, false
		}
		for _, m := range msgs {
			if e, ok := parseExtendedErr(m.Header.Level, m.Header.Type, m.Data); ok {
				return e, true
			}
		}
	}
	return icmpError{}, false
}

// wait polls fd for events until one of them, the timeout or the end of
// ctx. It returns the events seen, 0 on timeout.
func wait(ctx context.Context, fd int, events int16, timeout time.Duration) (int16, error) {
	deadline := time.Now().Add(timeout)
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return 0, nil
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(fds, int(min(left, pollSlice).Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("trace: poll: %w", err)
		}
		if n > 0 && fds[0].Revents != 0 {
			return fds[0].Revents, nil
		}
	}
}

// probeTCP connects to dst with the TTL ttl and waits for the outcome:
// connected (a SYN-ACK), refused (a reset), an ICMP error from the error
// queue (time exceeded from a router, or unreachable), or nothing within
// timeout. A connection that completes is reset at once (SO_LINGER 0):
// the trace needs the answer, not the connection.
func probeTCP(ctx context.Context, dst netip.AddrPort, bind netip.Addr, ttl int, timeout time.Duration) sockResult {
	fd, err := newSocket(dst, bind, unix.SOCK_STREAM, ttl)
	if err != nil {
		return sockResult{err: err}
	}
	defer unix.Close(fd)
	err = unix.Connect(fd, sockaddr(dst, dst.Addr().Is6()))
	if err != nil && !errors.Is(err, unix.EINPROGRESS) {
		return sockResult{err: &net.OpError{Op: "connect", Net: "tcp", Err: err}}
	}
	if err == nil {
		return connected(fd)
	}
	ev, err := wait(ctx, fd, unix.POLLOUT, timeout)
	if err != nil {
		return sockResult{err: err}
	}
	if ev == 0 {
		return sockResult{timedOut: true}
	}
	res := sockResult{}
	if e, ok := readErrQueue(fd); ok {
		res.icmp = &e
	}
	soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	switch {
	case err != nil:
		res.err = fmt.Errorf("trace: getsockopt SO_ERROR: %w", err)
	case soerr != 0:
		res.err = &net.OpError{Op: "connect", Net: "tcp", Err: syscall.Errno(soerr)}
	case res.icmp == nil:
		return connected(fd)
	}
	return res
}

// connected is the result of a completed connect; the connection is
// dropped with a reset.
func connected(fd int) sockResult {
	_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	return sockResult{connected: true}
}

// probeUDP sends one datagram to dst with the TTL ttl and waits for an
// ICMP error (time exceeded from a router, port unreachable from the
// destination), a reply, or nothing within timeout.
func probeUDP(ctx context.Context, dst netip.AddrPort, bind netip.Addr, ttl int, timeout time.Duration) sockResult {
	fd, err := newSocket(dst, bind, unix.SOCK_DGRAM, ttl)
	if err != nil {
		return sockResult{err: err}
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, sockaddr(dst, dst.Addr().Is6())); err != nil {
		return sockResult{err: &net.OpError{Op: "connect", Net: "udp", Err: err}}
	}
	if _, err := unix.Write(fd, udpPayload[:]); err != nil {
		return sockResult{err: &net.OpError{Op: "write", Net: "udp", Err: err}}
	}
	ev, err := wait(ctx, fd, unix.POLLIN|unix.POLLERR, timeout)
	if err != nil {
		return sockResult{err: err}
	}
	switch {
	case ev == 0:
		return sockResult{timedOut: true}
	case ev&unix.POLLERR != 0:
		if e, ok := readErrQueue(fd); ok {
			return sockResult{icmp: &e, err: &net.OpError{Op: "read", Net: "udp", Err: syscall.Errno(e.Errno)}}
		}
		soerr, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		return sockResult{err: &net.OpError{Op: "read", Net: "udp", Err: syscall.Errno(soerr)}}
	}
	return sockResult{connected: true} // a datagram came back: something listens there
}

// limitTTL turns the error queue on for conn, an established TCP
// connection, and lowers its TTL to ttl: what conn sends from now on dies
// at hop ttl. The returned conn reads the error queue when it is closed.
func limitTTL(conn net.Conn, ttl int) (*ttlConn, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("trace: a %T has no socket to set the TTL on", conn)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	c := &ttlConn{Conn: conn, rc: rc}
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		c.v6 = a.IP.To4() == nil
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		level, opt := hopsOption(c.v6)
		if c.ttl, serr = unix.GetsockoptInt(int(fd), level, opt); serr == nil {
			serr = setTTL(int(fd), c.v6, ttl)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	if serr != nil {
		return nil, fmt.Errorf("trace: TTL: %w", serr)
	}
	return c, nil
}

// hopsOption is the socket option of the TTL (IPv6: unicast hop limit).
func hopsOption(v6 bool) (level, opt int) {
	if v6 {
		return unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS
	}
	return unix.IPPROTO_IP, unix.IP_TTL
}

// ttlConn is a connection whose TTL was lowered. Linux queues an ICMP
// error with the router's address only while a connection is being set
// up; on an established one it reports the error as the next read's
// errno (EHOSTUNREACH). Close still looks at the queue, in case a kernel
// queues it.
type ttlConn struct {
	net.Conn
	rc syscall.RawConn
	v6 bool
	// ttl is the connection's TTL before it was lowered, restored on
	// Close so that the FIN reaches the server: a FIN that died at a
	// router left the server waiting on a half-open connection (a
	// server that serves one connection at a time never answered the
	// next TTL).
	ttl  int
	once sync.Once
	got  *icmpError
}

// Close reads the error queue, then closes the connection.
func (c *ttlConn) Close() error {
	c.drain()
	return c.Conn.Close()
}

func (c *ttlConn) drain() {
	c.once.Do(func() {
		_ = c.rc.Control(func(fd uintptr) {
			if e, ok := readErrQueue(int(fd)); ok {
				c.got = &e
			}
			level, opt := hopsOption(c.v6)
			_ = unix.SetsockoptInt(int(fd), level, opt, c.ttl)
		})
	})
}

// icmp returns the ICMP error the queue held when the connection was
// closed, nil when none.
func (c *ttlConn) icmp() *icmpError {
	c.drain()
	return c.got
}
