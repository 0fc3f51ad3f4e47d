package dnsx

import (
	"net"
	"os"
	"syscall"
)

// udpReadSize is the pooled read buffer of a UDP exchange: 3 times the
// advertised EDNS0BufferSize. A longer datagram is read into a buffer of
// its own size (readDatagram).
const udpReadSize = 4096

// readDatagram reads one whole datagram from conn, into buf when it fits,
// else into a new buffer of the datagram's size, which the kernel tells
// by a peek (MSG_PEEK|MSG_TRUNC) before the read.
func readDatagram(conn net.Conn, buf []byte) ([]byte, error) {
	uc, ok := conn.(*net.UDPConn)
	if !ok {
		return readWhole(conn, buf)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	size := 0
	var perr error
	// RawConn.Read waits for the socket as Read does, deadlines included.
	if err := rc.Read(func(fd uintptr) bool {
		for {
			size, _, perr = syscall.Recvfrom(int(fd), nil, syscall.MSG_PEEK|syscall.MSG_TRUNC)
			if perr != syscall.EINTR {
				return perr != syscall.EAGAIN
			}
		}
	}); err != nil {
		return nil, err
	}
	if perr != nil {
		// A socket error, such as the port unreachable that an ICMP
		// message reported: the kernel has now cleared it, so it is
		// returned as Read would have.
		return nil, &net.OpError{Op: "read", Net: "udp", Source: uc.LocalAddr(), Addr: uc.RemoteAddr(),
			Err: os.NewSyscallError("recvfrom", perr)}
	}
	if size > len(buf) {
		buf = make([]byte, size)
	}
	n, err := uc.Read(buf)
	return buf[:n], err
}
