package lab

import (
	"net"
	"sync"
	"time"
)

// replayConn is a connection whose first reads return bytes already read
// from it (the peeked ClientHello), so crypto/tls sees the whole stream.
type replayConn struct {
	net.Conn
	mu     sync.Mutex
	replay []byte
}

func (c *replayConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if len(c.replay) > 0 {
		n := copy(b, c.replay)
		c.replay = c.replay[n:]
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(b)
}

// latencyConn delays the first write after each read by d: a server's
// flight answering a client's, i.e. one round trip. Reads and writes that
// follow each other without a turn of the conversation are not delayed
// again. The delay ends early when the lab closes.
type latencyConn struct {
	net.Conn
	d    time.Duration
	done <-chan struct{}

	mu        sync.Mutex
	readSince bool // a read returned data since the last write
}

func (c *latencyConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.mu.Lock()
		c.readSince = true
		c.mu.Unlock()
	}
	return n, err
}

func (c *latencyConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	turn := c.readSince
	c.readSince = false
	c.mu.Unlock()
	if turn && !sleep(c.d, c.done) {
		return 0, net.ErrClosed
	}
	return c.Conn.Write(b)
}

// sleep waits d or until done is closed; it reports whether the full
// delay elapsed.
func sleep(d time.Duration, done <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// trackingListener registers every accepted connection with the lab, so
// Close can end connections that no server owns any more (hijacked,
// spliced, blackholed), and wraps it for latency when the lab has some.
type trackingListener struct {
	net.Listener
	lab     *Lab
	latency bool
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c = l.lab.track(c)
	if l.latency && l.lab.latency > 0 {
		c = newDelayConn(c, l.lab.latency, l.lab.done) // lab/delay.go
	}
	return c, nil
}

// trackedConn removes itself from the lab's set when closed.
type trackedConn struct {
	net.Conn
	lab  *Lab
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.lab.untrack(c) })
	return c.Conn.Close()
}

// chanListener is a net.Listener fed by the middlebox: connections it has
// decided to terminate are handed to an http.Server through it.
type chanListener struct {
	addr  net.Addr
	ch    chan net.Conn
	done  chan struct{}
	close sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// push hands c to the server; it closes c if the listener is closed.
func (l *chanListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Close() error {
	l.close.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
