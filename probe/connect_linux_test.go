package probe

import (
	"context"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"kzprobe/probe/failure"
)

// fullBacklogAddr returns a loopback listener whose accept queue is full:
// listen(2) with backlog 0, never accepted, with the one queued slot taken.
// Linux then drops further SYNs, so a connect hangs as it would towards a
// blackholed address.
func fullBacklogAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.AddrPortFrom(netip.AddrFrom4(sa.(*syscall.SockaddrInet4).Addr), uint16(sa.(*syscall.SockaddrInet4).Port))
	for range 8 {
		c, err := net.DialTimeout("tcp", ap.String(), 200*time.Millisecond)
		if err != nil {
			return ap // the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("could not fill the accept queue of a backlog-0 listener")
	return ap
}

func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	ap := fullBacklogAddr(t)
	start := time.Now()
	conn, rec := (&Connector{Timeout: 300 * time.Millisecond}).Connect(context.Background(), ap.Addr(), int(ap.Port()), NewEpoch(nil))
	if conn != nil {
		conn.Close()
	}
	if got := failureString(rec.Status.Failure); got != failure.GenericTimeout {
		t.Errorf("failure = %q; want %q", got, failure.GenericTimeout)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Errorf("connect gave up after %v; want about 300ms", d)
	}
}
