// Package ratelimit limits requests per client for kzprobe's servers (the
// control server and the collector): a token bucket per client
// (golang.org/x/time/rate), with a bound on the clients tracked so that a
// flood of addresses cannot grow the table without end.
package ratelimit

import (
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// PerClient is a token bucket per client key. A nil *PerClient allows
// everything.
type PerClient struct {
	limit rate.Limit
	burst int
	max   int

	mu        sync.Mutex
	clients   map[netip.Addr]*rate.Limiter
	lastSweep time.Time
}

// New returns a limiter of perSecond requests a second with bursts of
// burst, for at most maxClients clients at once.
func New(perSecond float64, burst, maxClients int) *PerClient {
	return &PerClient{limit: rate.Limit(perSecond), burst: burst, max: maxClients, clients: map[netip.Addr]*rate.Limiter{}}
}

// Key is the unit of rate limiting: an IPv4 address, or the /64 of an
// IPv6 address (one host usually owns a whole /64).
func Key(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// Allow takes a token for key (see Key) at now. When none is left it
// returns the wait until the next; full is true when the client could not
// even be tracked (maxClients others hold a bucket that is not full).
func (c *PerClient) Allow(key netip.Addr, now time.Time) (ok bool, wait time.Duration, full bool) {
	if c == nil {
		return true, 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.clients[key]
	if l == nil {
		if len(c.clients) >= c.max && now.Sub(c.lastSweep) >= time.Second {
			c.sweep(now)
		}
		if len(c.clients) >= c.max {
			return false, time.Second, true
		}
		l = rate.NewLimiter(c.limit, c.burst)
		c.clients[key] = l
	}
	res := l.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second, false
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d, false
	}
	return true, 0, false
}

// sweep forgets clients whose bucket is full again: a new bucket would be
// the same. c.mu is held.
func (c *PerClient) sweep(now time.Time) {
	c.lastSweep = now
	for k, l := range c.clients {
		if l.TokensAt(now) >= float64(c.burst) {
			delete(c.clients, k)
		}
	}
}

// RetryAfter formats d for a Retry-After header: whole seconds, at least 1.
func RetryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
