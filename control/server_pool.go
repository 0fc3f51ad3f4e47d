package control

import (
	"net/netip"
	"sync"
)

// checkPool is the checks in progress, at most max over all clients, and
// for each client at most a fair share: max divided by the number of
// clients with checks in progress (this one counted) plus one, so that a
// share is always left for a client yet to come. One client alone may hold
// half the pool; two, a third each. Without shares, one client with slow
// targets (a resolver that takes seconds, addresses that never answer TLS)
// held 49 of 64 slots, and another got 503 four times in seven.
type checkPool struct {
	max int

	mu    sync.Mutex
	total int
	held  map[netip.Addr]int
}

func newCheckPool(max int) *checkPool {
	return &checkPool{max: max, held: map[netip.Addr]int{}}
}

// acquire takes a slot for client. When it cannot, full says whether the
// pool is full (every slot taken) rather than the client at its share.
func (p *checkPool) acquire(client netip.Addr) (ok, full bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.total >= p.max {
		return false, true
	}
	n := p.held[client]
	if n >= p.share(client) {
		return false, false
	}
	p.held[client] = n + 1
	p.total++
	return true, false
}

// share is the most slots client may hold now. p.mu is held.
func (p *checkPool) share(client netip.Addr) int {
	clients := len(p.held)
	if p.held[client] == 0 {
		clients++
	}
	return max(1, p.max/(clients+1))
}

// release gives back a slot that acquire gave client.
func (p *checkPool) release(client netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total--
	if p.held[client]--; p.held[client] <= 0 {
		delete(p.held, client)
	}
}
