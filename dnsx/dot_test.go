package dnsx_test

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"kzprobe/dnsx"
	"kzprobe/probe/failure"
)

// dotServer is a miekg/dns DoT server on 127.0.0.1.
type dotServer struct {
	addr       string
	handshakes atomic.Int32
	queries    atomic.Int32

	mu    sync.Mutex
	conns []net.Conn // accepted, TLS
}

// accept wraps the server's TLS listener so that each connection it
// accepts is kept for closeConns.
func (s *dotServer) accept(ln net.Listener) net.Listener { return &trackingListener{ln, s} }

type trackingListener struct {
	net.Listener
	s *dotServer
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.s.mu.Lock()
		l.s.conns = append(l.s.conns, c)
		l.s.mu.Unlock()
	}
	return c, err
}

// closeConns closes every connection the server accepted, as a server
// that drops idle connections does (close_notify, then FIN), and returns
// once they are closed.
func (s *dotServer) closeConns() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// startDoT serves a over TLS.
func startDoT(t testing.TB, pki *testPKI, a answerer) *dotServer {
	t.Helper()
	s := &dotServer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	srv := &dns.Server{
		Listener: s.accept(tls.NewListener(ln, pki.serverTLS(&s.handshakes))),
		Net:      "tcp-tls",
		// The TLS handshake runs in the server's first read, under its
		// read timeout: miekg's default, 2 s, reset handshakes on a
		// loaded machine (TestDoTReuse, 2 of ~90 stress runs).
		ReadTimeout: time.Minute,
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			s.queries.Add(1)
			handler(a)(w, r)
		}),
	}
	start(t, srv)
	return s
}

// startSilentTCP accepts connections on 127.0.0.1 and never writes.
func startSilentTCP(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestDoTReuse(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	dot := startDoT(t, pki, fixedA("192.0.2.85"))
	ex := newExchanger(t, "tls://"+dot.addr, dnsx.Options{RootCAs: pki.pool, ServerName: "resolver.example.test"})
	const n = 10
	for range n {
		q := lookup(t, ex, "dot.example.test", dns.TypeA)
		expectAnswer(t, q, "192.0.2.85")
		if q.Engine != "dot" || q.ResolverAddress != dot.addr || q.Attempts != 1 || q.MessageID == 0 && q.RawResponse == nil {
			t.Fatalf("engine %q address %q attempts %d; want dot %s 1", q.Engine, q.ResolverAddress, q.Attempts, dot.addr)
		}
	}
	if h := dot.handshakes.Load(); h != 1 {
		t.Errorf("%d sequential queries took %d handshakes; want 1", n, h)
	}
	concurrently(t, 12, ex, "192.0.2.85")
	if h := dot.handshakes.Load(); h > 1+12 {
		t.Errorf("handshakes = %d; want at most one per concurrent query", h)
	}
	before := dot.handshakes.Load()
	for range 5 {
		expectAnswer(t, lookup(t, ex, "again.example.test", dns.TypeA), "192.0.2.85")
	}
	if h := dot.handshakes.Load(); h != before {
		t.Errorf("sequential queries after a burst made %d new handshakes; want 0 (pooled)", h-before)
	}
}

// TestDoTServerWaitsForSlowHandshake: the test DoT server lets a client
// whose hello comes 2.5 s late finish its handshake, as a loaded machine's
// does; with miekg's default read timeout (2 s) it reset it.
func TestDoTServerWaitsForSlowHandshake(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	dot := startDoT(t, pki, fixedA("192.0.2.87"))
	late := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := loopbackOnly(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &lateConn{Conn: c, delay: 2500 * time.Millisecond}, nil
	}
	ex := newExchanger(t, "tls://"+dot.addr, dnsx.Options{RootCAs: pki.pool, ServerName: "resolver.example.test", Dial: late})
	expectAnswer(t, lookup(t, ex, "late.example.test", dns.TypeA), "192.0.2.87")
}

// lateConn waits delay before its first write.
type lateConn struct {
	net.Conn
	delay time.Duration
	once  sync.Once
}

func (c *lateConn) Write(p []byte) (int, error) {
	c.once.Do(func() { time.Sleep(c.delay) })
	return c.Conn.Write(p)
}

// TestDoTReconnectAfterIdleClose: the server drops the idle connection;
// the next query notices the dead pooled connection and dials again. The
// server closes it explicitly, so that no clock decides whether the
// connection is already gone.
func TestDoTReconnectAfterIdleClose(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	dot := startDoT(t, pki, fixedA("192.0.2.86"))
	ex := newExchanger(t, "tls://"+dot.addr, dnsx.Options{RootCAs: pki.pool})
	expectAnswer(t, lookup(t, ex, "a.example.test", dns.TypeA), "192.0.2.86")
	dot.closeConns()
	q := lookup(t, ex, "b.example.test", dns.TypeA)
	expectAnswer(t, q, "192.0.2.86")
	if q.Attempts != 2 {
		t.Errorf("attempts = %d; want 2 (stale pooled connection, then a new one)", q.Attempts)
	}
	if h := dot.handshakes.Load(); h != 2 {
		t.Errorf("handshakes = %d; want 2", h)
	}
}

func TestDoTFailures(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	t.Run("nxdomain", func(t *testing.T) {
		dot := startDoT(t, pki, rcode(dns.RcodeNameError))
		q := lookup(t, newExchanger(t, "tls://"+dot.addr, dnsx.Options{RootCAs: pki.pool}), "nx.example.test", dns.TypeA)
		if str(q.Failure) != failure.DNSNXDOMAIN || q.Rcode == nil || *q.Rcode != 3 {
			t.Errorf("failure %s rcode %v; want %s, 3", str(q.Failure), q.Rcode, failure.DNSNXDOMAIN)
		}
	})
	t.Run("wrong id ignored until timeout", func(t *testing.T) {
		dot := startDoT(t, pki, func(q *dns.Msg) *dns.Msg { m := fixedA("192.0.2.1")(q); m.Id++; return m })
		ex := newExchanger(t, "tls://"+dot.addr, dnsx.Options{RootCAs: pki.pool, Timeout: 300 * time.Millisecond})
		q := lookup(t, ex, "id.example.test", dns.TypeA)
		if str(q.Failure) != failure.GenericTimeout {
			t.Errorf("failure %s; want %s", str(q.Failure), failure.GenericTimeout)
		}
	})
	t.Run("unknown authority", func(t *testing.T) {
		dot := startDoT(t, pki, fixedA("192.0.2.1"))
		q := lookup(t, newExchanger(t, "tls://"+dot.addr, dnsx.Options{}), "ua.example.test", dns.TypeA)
		if str(q.Failure) != failure.SSLUnknownAuthority {
			t.Errorf("failure %s; want %s", str(q.Failure), failure.SSLUnknownAuthority)
		}
		if dot.queries.Load() != 0 {
			t.Error("query sent over an unverified connection")
		}
	})
	t.Run("blackhole", func(t *testing.T) {
		addr := startSilentTCP(t)
		ex := newExchanger(t, "tls://"+addr, dnsx.Options{RootCAs: pki.pool, Timeout: 300 * time.Millisecond})
		start := time.Now()
		q := lookup(t, ex, "bh.example.test", dns.TypeA)
		if str(q.Failure) != failure.GenericTimeout || time.Since(start) > 2*time.Second {
			t.Errorf("failure %s after %v; want %s within about 300ms", str(q.Failure), time.Since(start), failure.GenericTimeout)
		}
	})
	t.Run("closed", func(t *testing.T) {
		dot := startDoT(t, pki, fixedA("192.0.2.1"))
		ex := newExchanger(t, "tls://"+dot.addr, dnsx.Options{RootCAs: pki.pool})
		ex.Close()
		if q := lookup(t, ex, "c.example.test", dns.TypeA); q.Failure == nil {
			t.Error("query on a closed exchanger succeeded")
		}
	})
}
