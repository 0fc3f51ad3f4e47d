package dnsx

import (
	"bytes"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// TestReadDatagramWhole sends datagrams of every interesting size over
// loopback and checks that each is read whole, with the pooled buffer of
// udpReadSize bytes, and that a read deadline still ends the wait.
func TestReadDatagramWhole(t *testing.T) {
	t.Parallel()
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := loopbackOnly(t.Context(), "udp", srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	var peer *net.UDPAddr
	hello := make([]byte, 16)
	if _, peer, err = srv.ReadFromUDP(hello); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, udpReadSize)
	for _, size := range []int{0, 1, 512, udpReadSize - 1, udpReadSize, udpReadSize + 1, 9000, MaxDNSMessageSize - 28 - 8} {
		want := bytes.Repeat([]byte{byte(size)}, size)
		for i := range want {
			want[i] ^= byte(i)
		}
		if _, err := srv.WriteToUDP(want, peer); err != nil {
			t.Fatalf("sending %d bytes: %v", size, err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := readDatagram(conn, buf)
		if err != nil {
			t.Fatalf("reading %d bytes: %v", size, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("read %d bytes of a %d-byte datagram, or other bytes", len(got), size)
		}
	}
	conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := readDatagram(conn, buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read with nothing sent: %v; want a deadline error", err)
	}
}
