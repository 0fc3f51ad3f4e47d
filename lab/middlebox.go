package lab

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"
)

// The middlebox listens on every reachable site's public address (the one
// the DNS gives). For each connection it reads the client's first flight,
// takes the SNI, looks it up in the scenario and acts:
//
//   - Pass, an SNI no site has, no SNI, or a first flight that is not a
//     parseable ClientHello: splice to the origin behind the dialled
//     address, replaying the bytes read;
//   - intercept_*: terminate TLS with a forged leaf for the SNI;
//   - Reset, EOF, Blackhole: as their constants say;
//   - the hostile behaviours (HostileTLSBehaviours): as their constants
//     say, in hostile.go;
//   - Unreachable: that is a property of an address (no listener there);
//     the SNI of an unreachable site sent to another address passes.
//
// On ::1, which all IPv6 sites share (Site.IPv6), the SNI also picks the
// site: one of an IPv6 site is handled as on its IPv4 address (Pass
// splices to its origin); any other SNI, or none, is closed.
//
// On the neutral SNI endpoint's address (lab/sniendpoint.go) the SNI
// picks the behaviour as anywhere, and Pass splices to the endpoint.

const (
	// helloTimeout bounds the wait for a client's first flight.
	helloTimeout = 30 * time.Second
	// eofDrain bounds how long the EOF behaviour reads after its FIN, so
	// that unread client bytes do not turn the close into a RST.
	eofDrain = 2 * time.Second
)

// Listeners that serve no one site: the SNI picks it.
const (
	// siteByIPv6SNI is the middlebox on ::1, shared by the IPv6 sites.
	siteByIPv6SNI = -1
	// siteOutside6 is the outside view of ::1 ([Lab.OutsideDialer]): it
	// splices every IPv6 site's SNI to that site's origin, whatever the
	// site's behaviour.
	siteOutside6 = -2
)

// serveMiddlebox accepts connections on one public address: site's, or
// with siteByIPv6SNI or siteOutside6 a listener shared by the IPv6 sites.
func (l *Lab) serveMiddlebox(ln net.Listener, site int) {
	defer l.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by Close; Accept errors on loopback are not transient
		}
		tc := l.track(c)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.handleMiddlebox(tc, site)
		}()
	}
}

// handleMiddlebox runs one client connection through the middlebox; on
// the listeners the IPv6 sites share (site < 0) the SNI picks the site.
func (l *Lab) handleMiddlebox(c net.Conn, site int) {
	c.SetReadDeadline(time.Now().Add(helloTimeout))
	raw, hello, err := ReadClientHello(c)
	c.SetReadDeadline(time.Time{})
	if err != nil && !isParseError(err) {
		c.Close() // the client went away (or timed out) before its hello
		return
	}
	behaviour, name := l.behaviourFor(hello)
	defer func() {
		// What the middlebox did, once the SNI has named the site.
		l.logRequest("tls %s -> %s: sni %q: %s", c.RemoteAddr(), c.LocalAddr(), name, behaviour)
	}()
	var origin netip.Addr // where Pass splices to: the site's origin, unless set here
	if site == siteSNIEndpoint {
		// The neutral SNI endpoint's address: the SNI picks the
		// behaviour, and what passes reaches the endpoint.
		origin = hostAddr(l.Net, hostSNIOrigin)
	} else if site < 0 {
		// A listener of the IPv6 sites: the SNI names the site, which must
		// be one of them.
		i, ok := l.siteIndex(name)
		if !ok || !l.sites[i].Addr6.IsValid() {
			c.Close()
			return
		}
		if site == siteOutside6 {
			behaviour = Pass
		}
		site = i
	}
	switch behaviour {
	case InterceptISCA, InterceptISCAExpired, InterceptCorporate:
		l.intercept(c, raw, name, behaviour)
	case InterceptISCASNIPeek:
		if len(raw) <= sniPeekBytes {
			l.intercept(c, raw, name, InterceptISCA)
			return
		}
		// No name in the first KiB: the upstream, a shared host, would
		// refuse a handshake without one; close as sslsplit does.
		l.closeAfterRTT(c)
	case Reset:
		if !sleep(l.latency, l.done) {
			c.Close()
			return
		}
		if tcp, ok := tcpConn(c); ok {
			tcp.SetLinger(0) // close sends RST
		}
		c.Close()
	case EOF:
		l.closeAfterRTT(c)
	case Blackhole:
		io.Copy(io.Discard, c) // until the client or Close ends it
		c.Close()
	case Drip, Garbage, ChainLong, ChainHeavy, ChainMalformed, CertAbsurd, CertInvalidFields, AlertMidHandshake:
		l.hostileTLS(c, raw, name, behaviour)
	default: // Pass
		if !origin.IsValid() {
			origin = l.sites[site].OriginAddr
		}
		l.splice(c, raw, origin)
	}
}

// closeAfterRTT waits one round trip, then closes c cleanly (FIN) and
// drains what the client still sends: the client reads io.EOF.
func (l *Lab) closeAfterRTT(c net.Conn) {
	defer c.Close()
	if !sleep(l.latency, l.done) {
		return
	}
	if tcp, ok := tcpConn(c); ok {
		tcp.CloseWrite()
		c.SetReadDeadline(time.Now().Add(eofDrain))
		io.Copy(io.Discard, c)
	}
}

// sniPeekBytes is how much of the ClientHello an InterceptISCASNIPeek
// middlebox reads for the name: sslsplit 0.5.5's peek.
const sniPeekBytes = 1024

// isParseError reports whether err says the first flight was not a
// ClientHello we understand (rather than that the connection failed).
func isParseError(err error) bool {
	return errors.Is(err, ErrNotTLS) || errors.Is(err, ErrNotClientHello) ||
		errors.Is(err, ErrClientHelloLarge) || errors.Is(err, ErrMalformedHello)
}

// behaviourFor returns the behaviour for a ClientHello (nil when it could
// not be parsed) and the canonical SNI.
func (l *Lab) behaviourFor(hello *ClientHello) (behaviour, name string) {
	if hello == nil || hello.ServerName == "" {
		return Pass, ""
	}
	name = strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	i, ok := l.siteIndex(name)
	if !ok {
		return Pass, name
	}
	switch b := l.sites[i].TLS; b {
	case "", Unreachable:
		return Pass, name
	default:
		return b, name
	}
}

// intercept terminates TLS on c with a leaf forged for name and hands the
// connection to the interception HTTP server.
func (l *Lab) intercept(c net.Conn, raw []byte, name, mode string) {
	cert, err := l.PKI.Forge(name, mode)
	if l.echo {
		if ap, perr := netip.ParseAddrPort(c.RemoteAddr().String()); perr == nil {
			cert, err = l.PKI.ForgeFor(name, mode, ap.Addr())
		}
	}
	if err != nil {
		c.Close()
		return
	}
	var conn net.Conn = &replayConn{Conn: c, replay: raw}
	if l.latency > 0 {
		conn = &latencyConn{Conn: conn, d: l.latency, done: l.done}
	}
	l.interceptLn.push(tls.Server(conn, &tls.Config{
		Certificates: []tls.Certificate{*cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}))
}

// splice connects c to the origin and copies both ways, replaying the
// bytes already read from c. Each direction half-closes the other side
// when its source ends; both conns close when both directions are done or
// either fails.
func (l *Lab) splice(c net.Conn, raw []byte, origin netip.Addr) {
	d := net.Dialer{Timeout: 5 * time.Second}
	o, err := d.Dial("tcp4", netip.AddrPortFrom(origin, uint16(l.Port)).String())
	if err != nil {
		if tcp, ok := tcpConn(c); ok {
			tcp.SetLinger(0)
		}
		c.Close()
		return
	}
	o = l.track(o)
	if _, err := o.Write(raw); err != nil {
		o.Close()
		c.Close()
		return
	}
	done := make(chan struct{})
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(done)
		pipe(o, c)
	}()
	pipe(c, o)
	<-done
	c.Close()
	o.Close()
}

// pipe copies src to dst, then half-closes dst; on an error it closes both
// so that the other direction ends too.
func pipe(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if err != nil {
		dst.Close()
		src.Close()
		return
	}
	if tcp, ok := tcpConn(dst); ok {
		tcp.CloseWrite()
	} else {
		dst.Close()
	}
}

// tcpConn finds the *net.TCPConn under the lab's wrappers.
func tcpConn(c net.Conn) (*net.TCPConn, bool) {
	for {
		switch v := c.(type) {
		case *net.TCPConn:
			return v, true
		case *trackedConn:
			c = v.Conn
		case *replayConn:
			c = v.Conn
		case *latencyConn:
			c = v.Conn
		default:
			return nil, false
		}
	}
}
