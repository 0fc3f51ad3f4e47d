package guard

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"kzprobe/probe/failure"
)

func TestCheck(t *testing.T) {
	g, err := Parse("127.0.0.1/32,::1/128", "10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:443", true},
		{"127.0.0.2:443", false},
		{"[::1]:53", true},
		{"[::2]:53", false},
		{"10.10.34.34:443", true},
		{"1.1.1.1:443", false},
		{"[::ffff:127.0.0.1]:443", true}, // v4-mapped is unmapped
		{"127.0.0.1", true},
		{"example.com:443", false}, // a hostname cannot be checked without resolving
		{"", false},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			err := g.Check(tc.addr)
			if (err == nil) != tc.ok {
				t.Fatalf("Check(%q) = %v; want ok=%v", tc.addr, err, tc.ok)
			}
			if err != nil {
				if got := failure.Classify(err); got != failure.BlockedByAllowNet {
					t.Errorf("failure = %q; want %q", got, failure.BlockedByAllowNet)
				}
				if !errors.Is(err, ErrBlocked) {
					t.Errorf("error %v does not wrap ErrBlocked", err)
				}
			}
		})
	}
}

func TestEmptyGuardAllowsAll(t *testing.T) {
	for _, g := range []*Guard{nil, {}, New()} {
		if err := g.Check("192.0.2.1:443"); err != nil {
			t.Errorf("unrestricted guard refused: %v", err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"127.0.0.0/33", "300.1.1.1", "localhost", "10.0.0.0/8,nope"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = nil error; want one", s)
		}
	}
}

// TestDialerSendsNothingOutsideAllowNet listens on 127.0.0.2 while only
// 127.0.0.1/32 is allowed: the dial must fail at once with
// blocked_by_allow_net and the listener must see no connection at all.
func TestDialerSendsNothingOutsideAllowNet(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
			accepted <- struct{}{}
		}
	}()
	g, _ := Parse("127.0.0.1/32")
	dial := g.Dialer(nil)
	for _, network := range []string{"tcp", "udp"} {
		conn, err := dial(context.Background(), network, ln.Addr().String())
		if err == nil {
			conn.Close()
			t.Fatalf("%s dial to %s succeeded; want blocked", network, ln.Addr())
		}
		if got := failure.Classify(err); got != failure.BlockedByAllowNet {
			t.Errorf("%s: failure = %q; want %q", network, got, failure.BlockedByAllowNet)
		}
	}
	// Control: the same dialer reaches an allowed address, proving the
	// listener would have seen a connection had one been made.
	ok, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ok.Close()
	c, err := dial(context.Background(), "tcp", ok.Addr().String())
	if err != nil {
		t.Fatalf("dial to allowed %s: %v", ok.Addr(), err)
	}
	c.Close()
	select {
	case <-accepted:
		t.Fatal("the listener outside --allow-net accepted a connection")
	case <-time.After(200 * time.Millisecond):
	}
}
