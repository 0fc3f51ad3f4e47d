//go:build !linux

package dnsx

import "net"

// udpReadSize is the read buffer of a UDP exchange: the largest DNS
// message, since here a datagram's size is not known before reading it.
const udpReadSize = MaxDNSMessageSize + 1

// readDatagram reads one datagram from conn into buf, which holds any DNS
// message.
func readDatagram(conn net.Conn, buf []byte) ([]byte, error) {
	return readWhole(conn, buf)
}
