package dnsx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"kzprobe/probe/failure"
	"kzprobe/probe/guard"
)

// dotPoolSize is how many idle DoT connections are kept.
const dotPoolSize = 4

// dotMaxIdle is how long an idle DoT connection is kept; servers close
// idle ones (RFC 7766 section 6.2.3 suggests seconds) and a connection
// this old is likely gone.
const dotMaxIdle = 20 * time.Second

// dotExchanger is DNS-over-TLS (RFC 7858) to one pinned address. Each
// connection carries one query at a time; idle connections wait in a small
// pool for the next query. A pooled connection that the server closed
// while idle is noticed on use (EOF or reset before any answer) and the
// query is sent again on a fresh connection. A connection on which
// anything went wrong is closed, never pooled, so a late answer cannot be
// read by the next query.
type dotExchanger struct {
	addr    string
	ip      netip.Addr
	cfg     *tls.Config
	dial    guard.DialFunc
	timeout time.Duration

	mu     sync.Mutex
	idle   []idleConn
	closed bool
}

type idleConn struct {
	conn  *tls.Conn
	since time.Time
}

var _ InfoExchanger = (*dotExchanger)(nil)

func newDoT(sp spec, opts Options) *dotExchanger {
	return &dotExchanger{
		addr:    sp.addr.String(),
		ip:      sp.addr.Addr(),
		cfg:     opts.tlsConfig(sp.addr.Addr()),
		dial:    opts.dial(),
		timeout: opts.timeout(),
	}
}

func (d *dotExchanger) Engine() string  { return "dot" }
func (d *dotExchanger) Address() string { return d.addr }

// Close closes the idle connections; connections in use are closed when
// their exchange ends.
func (d *dotExchanger) Close() error {
	d.mu.Lock()
	idle := d.idle
	d.idle, d.closed = nil, true
	d.mu.Unlock()
	for _, c := range idle {
		c.conn.Close()
	}
	return nil
}

// get returns an idle connection (reused true) or dials a new one.
func (d *dotExchanger) get(ctx context.Context) (conn *tls.Conn, reused bool, err error) {
	d.mu.Lock()
	for len(d.idle) > 0 {
		c := d.idle[len(d.idle)-1]
		d.idle = d.idle[:len(d.idle)-1]
		if time.Since(c.since) < dotMaxIdle {
			d.mu.Unlock()
			return c.conn, true, nil
		}
		c.conn.Close()
	}
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return nil, false, errors.New("dnsx: DoT exchanger is closed")
	}
	raw, err := d.dial(ctx, "tcp", d.addr)
	if err != nil {
		return nil, false, err
	}
	tc := tls.Client(raw, d.cfg.Clone())
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, false, ContextError(ctx, err)
	}
	return tc, false, nil
}

// put returns a healthy connection to the pool.
func (d *dotExchanger) put(conn *tls.Conn) {
	conn.SetDeadline(time.Time{})
	d.mu.Lock()
	if d.closed || len(d.idle) >= dotPoolSize {
		d.mu.Unlock()
		conn.Close()
		return
	}
	d.idle = append(d.idle, idleConn{conn, time.Now()})
	d.mu.Unlock()
}

func (d *dotExchanger) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, []byte, error) {
	resp, raw, _, err := d.ExchangeWithInfo(ctx, q)
	return resp, raw, err
}

func (d *dotExchanger) ExchangeWithInfo(ctx context.Context, q *dns.Msg) (*dns.Msg, []byte, ExchangeInfo, error) {
	info := ExchangeInfo{Engine: "dot", Address: d.addr, ID: q.Id}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	packed, err := q.Pack()
	if err != nil {
		return nil, nil, info, fmt.Errorf("dnsx: packing DNS query: %w", err)
	}
	for {
		info.Attempts++
		conn, reused, err := d.get(ctx)
		if err != nil {
			return nil, nil, info, err
		}
		stop := WatchConn(ctx, conn)
		resp, raw, err := StreamExchange(ctx, conn, q, q.Id, packed)
		// stop is false when the context ended meanwhile and its
		// callback may yet move the deadline: such a connection is not
		// pooled.
		if stopped := stop(); err == nil {
			if stopped {
				d.put(conn)
			} else {
				conn.Close()
			}
			return resp, raw, info, nil
		}
		conn.Close()
		if reused && raw == nil && ctx.Err() == nil && staleConn(err) {
			continue // the server closed it while idle; a new one is dialled
		}
		return nil, raw, info, err
	}
}

// staleConn reports whether err is what a pooled connection that the
// server closed gives the query sent on it, so that the query can go again
// on a new connection (DoT and DoH): a connection closed while idle fails
// its first use with an EOF or a reset, and an HTTP/2 connection closed
// while a request was being written fails it with net/http's
// http2ClientConnClosed, which failure.Classify leaves as unknown_failure.
func staleConn(err error) bool {
	switch failure.Classify(err) {
	case failure.EOF, failure.ConnectionReset:
		return true
	}
	return err != nil && strings.Contains(err.Error(), http2ClientConnClosed)
}

// http2ClientConnClosed is the text of net/http's errClientConnClosed,
// which is not exported: what a request gets when its HTTP/2 connection
// closed under it. TestHTTP2ClientConnClosedText checks it against the
// net/http the module is built with.
const http2ClientConnClosed = "http2: client conn is closed"
