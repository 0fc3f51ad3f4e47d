package probe

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
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
	var outside, inside atomic.Int32
	apOutside := startRawTestServerOn(t, "127.0.0.1", nil, &outside)
	apInside := startRawTestServerOn(t, "127.0.0.2", nil, &inside)
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
	deadline := time.Now().Add(2 * time.Second)
	for inside.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a late accept outside would show by now
	if got := outside.Load(); got != 0 {
		t.Errorf("listener outside the guard accepted %d connections; want 0", got)
	}
	if got := inside.Load(); got != 1 {
		t.Errorf("listener inside the guard accepted %d connections; want 1", got)
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
