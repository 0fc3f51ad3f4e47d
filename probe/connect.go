package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"kzprobe/measurement"
	"kzprobe/probe/failure"
	"kzprobe/probe/guard"
)

// DefaultConnectTimeout bounds one TCP connect when [Connector.Timeout] is zero.
const DefaultConnectTimeout = 10 * time.Second

// Connector opens the TCP connections that the TLS handshakes run over (the
// TCP half of the TLS step) and records each attempt as a
// [measurement.TCPConnect].
type Connector struct {
	// Dial opens the connection. Production wiring passes the network
	// guard's dialer (guard.Guard.Dialer) so that a destination outside
	// --allow-net is refused before any packet is sent. Nil means a plain
	// net.Dialer with no guard: fine for library use, never for the CLI.
	Dial guard.DialFunc
	// Timeout bounds one connect. Zero means DefaultConnectTimeout (10s).
	Timeout time.Duration
}

func (c *Connector) dial() guard.DialFunc {
	if c.Dial != nil {
		return c.Dial
	}
	return (&net.Dialer{}).DialContext
}

func (c *Connector) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultConnectTimeout
}

// Connect dials ip:port over TCP. It always returns the record; the conn is
// non-nil exactly when the record's Status.Success is true, and then the
// caller owns it (typically passing it on to [Handshaker.Handshake]). t0 is
// the measurement's epoch: the record's T0 and T are t0.Since() at its
// start and end.
//
// The failure is classified here, where the context is known: the
// connect's own timeout is generic_timeout_error, a cancelled parent ctx
// (Ctrl-C) is interrupted, and a guard refusal is blocked_by_allow_net.
func (c *Connector) Connect(ctx context.Context, ip netip.Addr, port int, t0 Epoch) (net.Conn, measurement.TCPConnect) {
	ip = ip.Unmap()
	rec := measurement.TCPConnect{IP: ip.String(), Port: port, T0: t0.Since()}
	finish := func(err error) measurement.TCPConnect {
		rec.T = t0.Since()
		rec.Status = measurement.TCPConnectStatus{Failure: failure.Of(err), Success: err == nil}
		return rec
	}
	if !ip.IsValid() || port <= 0 || port > 65535 {
		return nil, finish(&failure.Error{Failure: failure.UnknownPrefix + "invalid address",
			Operation: "connect", Err: fmt.Errorf("probe: invalid address %v port %d", ip, port)})
	}
	address := netip.AddrPortFrom(ip, uint16(port)).String()

	cctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	conn, err := c.dial()(cctx, "tcp", address)
	if err != nil {
		return nil, finish(connectError(ctx, cctx, err))
	}
	return conn, finish(nil)
}

// connectError classifies a dial error, looking at the contexts first:
// net.Dialer reports both a cancelled and an expired context as its own
// error values, and only the caller knows which context ended. A cancelled
// parent is an interruption; an expired deadline, ours or the parent's, is
// a timeout.
func connectError(parent, op context.Context, err error) error {
	switch {
	case errors.Is(parent.Err(), context.Canceled):
		// Reproduce: dial with an already cancelled ctx (TestConnectFailures).
		return &failure.Error{Failure: failure.Interrupted, Operation: "connect", Err: err}
	case op.Err() != nil:
		// Our timeout, or the caller's deadline, expired. Reproduce: dial a
		// listener whose accept queue is full, so SYNs are dropped
		// (TestConnectTimeout).
		return &failure.Error{Failure: failure.GenericTimeout, Operation: "connect", Err: err}
	}
	return failure.New("connect", err)
}
