package lab

import (
	"bytes"
	"net"
	"sync"
	"time"
)

// delayConn is the latency of the lab's own servers (origins, block page,
// DoH, DoT, DNS over TCP): everything the server writes reaches the client
// d after it was written, like a one-way propagation delay, so an answer
// arrives one RTT (d) after its question. Unlike [latencyConn], which
// sleeps in Write, it does not serialize a multiplexed connection: on the
// one HTTP/2 connection a DoH client keeps, fifty answers written within a
// millisecond all arrive d later, not one per d. Write queues a copy and
// returns; one goroutine per connection delivers in order. Close delivers
// what is queued first (or gives up when the lab closes).
type delayConn struct {
	net.Conn
	d    time.Duration
	done <-chan struct{}

	mu      sync.Mutex // serializes Write and Close
	queue   chan delayedWrite
	drained chan struct{}
	closed  bool

	errMu sync.Mutex
	err   error // the first delivery error, returned by later Writes
}

// delayedWrite is a write waiting for its time.
type delayedWrite struct {
	at time.Time
	b  []byte
}

// delayQueue bounds the writes in flight on one connection; a writer
// beyond it waits, as on a full socket buffer.
const delayQueue = 256

func newDelayConn(c net.Conn, d time.Duration, done <-chan struct{}) *delayConn {
	return &delayConn{Conn: c, d: d, done: done}
}

func (c *delayConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	if err := c.failed(); err != nil {
		return 0, err
	}
	if c.queue == nil {
		c.queue, c.drained = make(chan delayedWrite, delayQueue), make(chan struct{})
		go c.deliver()
	}
	select {
	case c.queue <- delayedWrite{at: time.Now().Add(c.d), b: bytes.Clone(b)}:
		return len(b), nil
	case <-c.done:
		return 0, net.ErrClosed
	}
}

// deliver writes each queued write at its time, in order.
func (c *delayConn) deliver() {
	defer close(c.drained)
	for w := range c.queue {
		if c.failed() != nil {
			continue // drop the rest; Write reports the error
		}
		if !sleep(time.Until(w.at), c.done) {
			c.fail(net.ErrClosed)
			continue
		}
		if _, err := c.Conn.Write(w.b); err != nil {
			c.fail(err)
		}
	}
}

func (c *delayConn) failed() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

func (c *delayConn) fail(err error) {
	c.errMu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.errMu.Unlock()
}

// Close delivers the queued writes, then closes the connection.
func (c *delayConn) Close() error {
	c.mu.Lock()
	drained := c.drained
	if !c.closed {
		c.closed = true
		if c.queue != nil {
			close(c.queue)
		}
	}
	c.mu.Unlock()
	if drained != nil {
		select {
		case <-drained:
		case <-c.done:
		}
	}
	return c.Conn.Close()
}
