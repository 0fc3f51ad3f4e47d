package control

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"kzprobe/probe"
	"kzprobe/ratelimit"
)

// connTracker bounds the open connections of an http.Server through its
// ConnState hook: per client (an IPv4 address or an IPv6 /64, as the rate
// limit counts), and over all clients. A connection beyond either bound is
// closed as soon as it is accepted, before its TLS handshake, so that it
// gives back its place in the listener (netutil.LimitListener) at once:
// one address holding every place with idle connections locked every
// other client out for as long as the idle timeout.
//
// Under load, from half of maxConns open, a connection idle for busyIdle
// is closed rather than after the http.Server's idle timeout, the longest
// idle first, until the load is gone: an idle connection is cheap to open
// again for its owner, and its place is worth more to a client that has
// none.
type connTracker struct {
	maxConns     int
	maxPerClient int
	busyIdle     time.Duration
	// exempt are the trusted proxies, whose connections carry many
	// clients: they count in the total but are not bounded per client.
	exempt []netip.Prefix

	mu        sync.Mutex
	open      int // connections counted, closing ones included
	closing   int // connections closed by sweep, not yet forgotten
	perClient map[netip.Addr]int
	conns     map[net.Conn]*trackedConn
	// timer runs the next sweep, at due (zero when none is pending).
	timer *time.Timer
	due   time.Time
}

// trackedConn is what the tracker knows of one open connection.
type trackedConn struct {
	conn    net.Conn
	key     netip.Addr // the client, invalid for an exempt peer
	idle    bool
	since   time.Time // start of the idle period
	closing bool
}

func newConnTracker(maxConns, maxPerClient int, busyIdle time.Duration, exempt []netip.Prefix) *connTracker {
	return &connTracker{maxConns: maxConns, maxPerClient: maxPerClient, busyIdle: busyIdle, exempt: exempt,
		perClient: map[netip.Addr]int{}, conns: map[net.Conn]*trackedConn{}}
}

// connState is the http.Server's ConnState hook.
func (t *connTracker) connState(c net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		if !t.admit(c) {
			// Closing before the handshake: the client reads EOF, and
			// the server's goroutine for it ends at its first read.
			c.Close()
		}
	case http.StateActive:
		t.setIdle(c, false)
	case http.StateIdle:
		t.setIdle(c, true)
	case http.StateClosed, http.StateHijacked:
		t.forget(c)
	}
}

// clientKey is the unit a connection is counted against: the peer's rate
// key, or invalid for a trusted proxy (or a peer that is not ip:port).
func (t *connTracker) clientKey(c net.Conn) netip.Addr {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	peer := ap.Addr().Unmap()
	if probe.IsBogon(peer, t.exempt) {
		return netip.Addr{}
	}
	return ratelimit.Key(peer)
}

// admit counts a new connection, or reports that it must be closed.
func (t *connTracker) admit(c net.Conn) bool {
	key := t.clientKey(c)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.open >= t.maxConns || (key.IsValid() && t.perClient[key] >= t.maxPerClient) {
		return false
	}
	t.open++
	if key.IsValid() {
		t.perClient[key]++
	}
	t.conns[c] = &trackedConn{conn: c, key: key}
	if t.loaded() && t.due.IsZero() {
		// Load begins, or goes on with no sweep pending: connections
		// idle since before may be due already.
		t.schedule(time.Now())
	}
	return true
}

// loaded reports whether the server is under load. t.mu is held.
func (t *connTracker) loaded() bool { return 2*(t.open-t.closing) >= t.maxConns }

// setIdle records that c went idle or active.
func (t *connTracker) setIdle(c net.Conn, idle bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tc := t.conns[c]
	if tc == nil {
		return
	}
	tc.idle, tc.since = idle, time.Now()
	if idle && t.loaded() {
		t.schedule(tc.since.Add(t.busyIdle))
	}
}

// schedule makes the next sweep run at or before at. t.mu is held.
func (t *connTracker) schedule(at time.Time) {
	if !t.due.IsZero() && !at.Before(t.due) {
		return
	}
	if t.timer != nil {
		t.timer.Stop()
	}
	t.due = at
	t.timer = time.AfterFunc(time.Until(at), t.sweep)
}

// sweep closes, while the server is loaded, the connections idle for
// busyIdle, the longest idle first, and schedules itself for the next.
func (t *connTracker) sweep() {
	t.mu.Lock()
	t.due = time.Time{}
	now := time.Now()
	var idle []*trackedConn
	for _, tc := range t.conns {
		if tc.idle && !tc.closing {
			idle = append(idle, tc)
		}
	}
	slices.SortFunc(idle, func(a, b *trackedConn) int { return a.since.Compare(b.since) })
	var shed []net.Conn
	for _, tc := range idle {
		if !t.loaded() {
			break
		}
		if at := tc.since.Add(t.busyIdle); at.After(now) {
			t.schedule(at)
			break
		}
		tc.closing = true
		t.closing++
		shed = append(shed, tc.conn)
	}
	t.mu.Unlock()
	for _, c := range shed {
		// Each on its own: a TLS close_notify to a client that reads
		// nothing may wait for its write deadline.
		go c.Close()
	}
}

// forget uncounts a closed connection.
func (t *connTracker) forget(c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tc := t.conns[c]
	if tc == nil {
		return // refused at StateNew, never counted
	}
	delete(t.conns, c)
	t.open--
	if tc.closing {
		t.closing--
	}
	if tc.key.IsValid() {
		if t.perClient[tc.key]--; t.perClient[tc.key] <= 0 {
			delete(t.perClient, tc.key)
		}
	}
}
