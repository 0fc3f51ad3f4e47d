package probe

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"kzprobe/measurement"
	"kzprobe/probe/failure"
	"kzprobe/probe/guard"
)

func TestConnectSuccess(t *testing.T) {
	t.Parallel()
	ap := startRawTestServer(t, nil)
	conn, rec := (&Connector{}).Connect(context.Background(), ap.Addr(), int(ap.Port()), NewEpoch(nil))
	if conn == nil {
		t.Fatalf("conn = nil; want a connection (record %+v)", rec)
	}
	conn.Close()
	want := measurement.TCPConnect{IP: "127.0.0.1", Port: int(ap.Port()), Status: measurement.TCPConnectStatus{Success: true}}
	if rec.IP != want.IP || rec.Port != want.Port || rec.Status.Success != true || rec.Status.Failure != nil {
		t.Errorf("record = %+v; want %+v", rec, want)
	}
	if rec.T0 < 0 || rec.T < rec.T0 {
		t.Errorf("t0 = %v, t = %v; want 0 <= t0 <= t", rec.T0, rec.T)
	}
}

// refusedAddr returns a loopback address where nothing listens: a port
// that was just listened on and closed.
func refusedAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	return ap
}

func TestConnectFailures(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	onlyOther := guard.New(netip.MustParsePrefix("127.0.0.2/32"))
	tests := []struct {
		name      string
		connector Connector
		ctx       context.Context
		addr      func(t *testing.T) netip.AddrPort
		want      string
	}{
		{
			// Reproduce: listen on a port, close it, dial it.
			name: "refused", ctx: context.Background(), addr: refusedAddr,
			want: failure.ConnectionRefused,
		},
		{
			name: "cancelled", ctx: cancelled,
			addr: func(t *testing.T) netip.AddrPort { return startRawTestServer(t, nil) },
			want: failure.Interrupted,
		},
		{
			name: "caller deadline passed", ctx: expired,
			addr: func(t *testing.T) netip.AddrPort { return startRawTestServer(t, nil) },
			want: failure.GenericTimeout,
		},
		{
			name: "guard refusal", ctx: context.Background(), connector: Connector{Dial: onlyOther.Dialer(nil)},
			addr: func(t *testing.T) netip.AddrPort { return startRawTestServer(t, nil) },
			want: failure.BlockedByAllowNet,
		},
		{
			name: "invalid port", ctx: context.Background(),
			addr: func(t *testing.T) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0) },
			want: failure.UnknownPrefix + "invalid address",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ap := tc.addr(t)
			conn, rec := tc.connector.Connect(tc.ctx, ap.Addr(), int(ap.Port()), NewEpoch(nil))
			if conn != nil {
				conn.Close()
				t.Errorf("conn != nil; want nil on failure")
			}
			if got := failureString(rec.Status.Failure); got != tc.want || rec.Status.Success {
				t.Errorf("status = %q, success %v; want %q, false", got, rec.Status.Success, tc.want)
			}
		})
	}
}

// TestConnectGuard checks that a guard refusal sends nothing: a listener
// outside the allowed /32 sees no connection, one inside does.
func TestConnectGuard(t *testing.T) {
	t.Parallel()
	apOutside, outside := startAcceptLog(t, "127.0.0.1")
	apInside, inside := startAcceptLog(t, "127.0.0.2")
	c := &Connector{Dial: guard.New(netip.MustParsePrefix("127.0.0.2/32")).Dialer(nil)}

	conn, rec := c.Connect(context.Background(), apOutside.Addr(), int(apOutside.Port()), NewEpoch(nil))
	if got := failureString(rec.Status.Failure); conn != nil || got != failure.BlockedByAllowNet {
		t.Errorf("outside: failure = %q; want %q", got, failure.BlockedByAllowNet)
	}
	conn, rec = c.Connect(context.Background(), apInside.Addr(), int(apInside.Port()), NewEpoch(nil))
	if conn == nil {
		t.Fatalf("inside: failure = %q; want success", failureString(rec.Status.Failure))
	}
	conn.Close()
	// A sentinel connection of our own to each listener, after the
	// probe's: a listener accepts in arrival order, so once it has
	// accepted the sentinel it has accepted whatever the probe sent
	// before, and what it logged is final.
	for _, l := range []struct {
		name string
		ap   netip.AddrPort
		log  *acceptLog
		want int
	}{{"outside", apOutside, outside, 0}, {"inside", apInside, inside, 1}} {
		sentinel, err := net.Dial("tcp", l.ap.String())
		if err != nil {
			t.Fatalf("sentinel to the listener %s: %v", l.name, err)
		}
		from := sentinel.LocalAddr().String()
		sentinel.Close()
		waitUntil(t, "the listener "+l.name+" to accept the sentinel", func() bool { return l.log.seen(from) })
		if got := l.log.count() - 1; got != l.want {
			t.Errorf("listener %s the guard accepted %d connections from the probe; want %d", l.name, got, l.want)
		}
	}
}

// acceptLog records, in order, the remote address of each connection a
// listener accepted.
type acceptLog struct {
	mu    sync.Mutex
	addrs []string
}

// startAcceptLog listens on ip and logs each connection, in the order the
// listener accepts them, then closes it.
func startAcceptLog(t testing.TB, ip string) (netip.AddrPort, *acceptLog) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	a := &acceptLog{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.mu.Lock()
			a.addrs = append(a.addrs, c.RemoteAddr().String())
			a.mu.Unlock()
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return netip.MustParseAddrPort(ln.Addr().String()), a
}

func (a *acceptLog) seen(addr string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Contains(a.addrs, addr)
}

func (a *acceptLog) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.addrs)
}

// waitUntil polls cond until it holds, failing the test after 10 s.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
	}
}

func TestConnectIPv6(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	ap := netip.MustParseAddrPort(ln.Addr().String())
	conn, rec := (&Connector{}).Connect(context.Background(), ap.Addr(), int(ap.Port()), NewEpoch(nil))
	if conn == nil {
		t.Fatalf("failure = %q; want success", failureString(rec.Status.Failure))
	}
	defer conn.Close()
	if rec.IP != "::1" || conn.RemoteAddr().String() != ap.String() {
		t.Errorf("ip = %q, remote %s; want ::1, %s", rec.IP, conn.RemoteAddr(), ap)
	}
}
