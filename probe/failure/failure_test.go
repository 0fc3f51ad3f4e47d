package failure_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	utls "github.com/refraction-networking/utls"

	"kzprobe/probe/failure"
	"kzprobe/probe/guard"
)

func opErr(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Err: &os.SyscallError{Syscall: op, Err: errno}}
}

func TestFailureClassifyTable(t *testing.T) {
	t.Parallel()
	blocked := guard.New(netip.MustParsePrefix("127.0.0.2/32")).Check("10.0.0.1:443")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"already classified", &failure.Error{Failure: failure.DNSNXDOMAIN, Operation: "dns_round_trip"}, failure.DNSNXDOMAIN},
		{"already classified wrapped", fmt.Errorf("lookup: %w", &failure.Error{Failure: failure.DNSServfail}), failure.DNSServfail},
		{"guard refusal", blocked, failure.BlockedByAllowNet},
		{"guard refusal wrapped", fmt.Errorf("dial: %w", blocked), failure.BlockedByAllowNet},

		{"unknown authority", x509.UnknownAuthorityError{}, failure.SSLUnknownAuthority},
		{"hostname", x509.HostnameError{Host: "example.test"}, failure.SSLInvalidHostname},
		{"expired", x509.CertificateInvalidError{Reason: x509.Expired}, failure.SSLInvalidCert},
		{"verification error wrapping unknown authority",
			&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, failure.SSLUnknownAuthority},
		{"verification error, other", &tls.CertificateVerificationError{Err: errors.New("x")}, failure.SSLInvalidCert},
		{"utls verification error", &utls.CertificateVerificationError{Err: errors.New("x")}, failure.SSLInvalidCert},
		{"utls verification error wrapping hostname",
			&utls.CertificateVerificationError{Err: x509.HostnameError{}}, failure.SSLInvalidHostname},

		{"record header", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, failure.SSLFailedHandshake},
		{"utls record header", utls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, failure.SSLFailedHandshake},
		{"utls record header wrapped", fmt.Errorf("x: %w", utls.RecordHeaderError{}), failure.SSLFailedHandshake},
		// QUIC-only: the alert we sent, never one received.
		{"alert error is not a received alert", tls.AlertError(112), failure.SSLFailedHandshake},

		{"context deadline", context.DeadlineExceeded, failure.GenericTimeout},
		{"context deadline wrapped", fmt.Errorf("x: %w", context.DeadlineExceeded), failure.GenericTimeout},
		{"conn deadline", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, failure.GenericTimeout},
		{"etimedout", opErr("connect", syscall.ETIMEDOUT), failure.GenericTimeout},
		{"cancelled", context.Canceled, failure.Interrupted},
		{"cancelled wrapped", fmt.Errorf("x: %w", context.Canceled), failure.Interrupted},

		{"eof", io.EOF, failure.EOF},
		{"unexpected eof", io.ErrUnexpectedEOF, failure.EOF},
		{"eof wrapped", fmt.Errorf("read: %w", io.EOF), failure.EOF},

		{"refused", opErr("dial", syscall.ECONNREFUSED), failure.ConnectionRefused},
		{"reset", opErr("read", syscall.ECONNRESET), failure.ConnectionReset},
		{"broken pipe", opErr("write", syscall.EPIPE), failure.ConnectionReset},
		{"aborted", opErr("read", syscall.ECONNABORTED), failure.ConnectionAborted},
		{"host unreachable", opErr("dial", syscall.EHOSTUNREACH), failure.HostUnreachable},
		{"network unreachable", opErr("dial", syscall.ENETUNREACH), failure.NetworkUnreachable},
		{"too many open files", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", syscall.EMFILE)}, failure.TooManyOpenFiles},
		{"file table full", opErr("dial", syscall.ENFILE), failure.TooManyOpenFiles},
		// Windows: Winsock numbers, with messages in the user's language.
		{"windows refused", opErr("connectex", syscall.Errno(10061)), failure.ConnectionRefused},
		{"windows reset", opErr("wsarecv", syscall.Errno(10054)), failure.ConnectionReset},
		{"windows aborted", opErr("wsasend", syscall.Errno(10053)), failure.ConnectionAborted},
		{"windows timed out", opErr("connectex", syscall.Errno(10060)), failure.GenericTimeout},
		{"windows host unreachable", opErr("connectex", syscall.Errno(10065)), failure.HostUnreachable},
		{"windows network unreachable", opErr("connectex", syscall.Errno(10051)), failure.NetworkUnreachable},
		{"windows too many sockets", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", syscall.Errno(10024))}, failure.TooManyOpenFiles},

		// Last resort: libraries that flatten errors into strings.
		{"text reset", errors.New("read tcp 1.2.3.4:5: connection reset by peer"), failure.ConnectionReset},
		{"text refused", errors.New("dial tcp: connection refused"), failure.ConnectionRefused},
		{"text timeout", errors.New("read tcp: i/o timeout"), failure.GenericTimeout},
		{"text eof", errors.New("unexpected EOF"), failure.EOF},
		{"text alert", errors.New("remote error: tls: unrecognized name"), "ssl_alert_unrecognized_name"},
		{"text alert handshake failure", errors.New("remote error: tls: handshake failure"), "ssl_alert_handshake_failure"},
		{"text alert unknown", errors.New("remote error: tls: something new"), "ssl_alert_unknown"},
		{"text local alert", errors.New("local error: tls: unexpected message"), failure.SSLFailedHandshake},
		{"text oversized message", errors.New("tls: handshake message of length 2097152 bytes exceeds maximum of 262144 bytes"), failure.SSLFailedHandshake},
		{"text unparsable certificate", errors.New("tls: failed to parse certificate from server: x509: malformed certificate"), failure.SSLInvalidCert},
		{"text huge rsa key", errors.New("tls: server sent certificate containing RSA key larger than 8192 bits"), failure.SSLInvalidCert},
		{"unknown", errors.New("something odd"), failure.UnknownPrefix + "something odd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := failure.Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %q; want %q", tc.err, got, tc.want)
			}
		})
	}
}

// TestFailureAlertTextMatchesCode checks that the string fallback and the
// typed path agree on every alert name crypto/tls knows.
func TestFailureAlertTextMatchesCode(t *testing.T) {
	t.Parallel()
	for code := 0; code < 256; code++ {
		want := failure.AlertName(uint8(code))
		if strings.TrimLeft(strings.TrimPrefix(want, failure.SSLAlertPrefix), "0123456789") == "" {
			continue // no name for this code
		}
		if code == 0 {
			continue // close_notify is reported as io.EOF by both libraries
		}
		err := errors.New("remote error: " + tls.AlertError(uint8(code)).Error())
		if got := failure.Classify(err); got != want {
			t.Errorf("code %d: Classify(%q) = %q; want %q", code, err, got, want)
		}
	}
	if got, want := failure.AlertName(200), "ssl_alert_200"; got != want {
		t.Errorf("AlertName(200) = %q; want %q", got, want)
	}
}

func TestFailureNewKeepsOperationAndCause(t *testing.T) {
	t.Parallel()
	cause := opErr("dial", syscall.ECONNREFUSED)
	e := failure.New("connect", cause)
	if e.Failure != failure.ConnectionRefused || e.Operation != "connect" {
		t.Errorf("New = %+v; want connection_refused at connect", e)
	}
	if got, want := e.Error(), "connect: connection_refused"; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
	if !errors.Is(e, syscall.ECONNREFUSED) {
		t.Errorf("errors.Is(New(...), ECONNREFUSED) = false; want true")
	}
	if again := failure.New("tls_handshake", fmt.Errorf("x: %w", e)); again != e {
		t.Errorf("New on an *Error = %p; want the same %p", again, e)
	}
	if failure.New("connect", nil) != nil || failure.Of(nil) != nil || failure.Ptr("") != nil {
		t.Errorf("nil error or empty failure did not map to nil")
	}
	if got := failure.Of(io.EOF); got == nil || *got != failure.EOF {
		t.Errorf("Of(io.EOF) = %v; want %q", got, failure.EOF)
	}
}

// rawServer accepts one connection on loopback, reads the ClientHello's
// first bytes and answers with reply.
func rawServer(t *testing.T, reply []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		c.Write(reply)
		io.Copy(io.Discard, c)
	}()
	return ln.Addr().String()
}

// TestFailureRealTLSErrors produces the errors of both TLS libraries on
// loopback and classifies them: the typed path, not the string fallback,
// has to recognise them.
func TestFailureRealTLSErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		reply []byte
		want  string
	}{
		{"alert unrecognized_name", []byte{21, 3, 3, 0, 2, 2, 112}, "ssl_alert_unrecognized_name"},
		{"alert handshake_failure", []byte{21, 3, 3, 0, 2, 2, 40}, "ssl_alert_handshake_failure"},
		{"alert protocol_version", []byte{21, 3, 1, 0, 2, 2, 70}, "ssl_alert_protocol_version"},
		{"alert unassigned code", []byte{21, 3, 3, 0, 2, 2, 200}, "ssl_alert_200"},
		{"garbage", []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), failure.SSLFailedHandshake},
	}
	handshakes := map[string]func(net.Conn) error{
		"golang": func(c net.Conn) error {
			return tls.Client(c, &tls.Config{ServerName: "example.test", InsecureSkipVerify: true}).Handshake()
		},
		"utls": func(c net.Conn) error {
			return utls.UClient(c, &utls.Config{ServerName: "example.test", InsecureSkipVerify: true}, utls.HelloChrome_Auto).Handshake()
		},
	}
	for _, tc := range tests {
		for lib, handshake := range handshakes {
			t.Run(tc.name+"/"+lib, func(t *testing.T) {
				t.Parallel()
				c, err := net.Dial("tcp", rawServer(t, tc.reply))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				err = handshake(c)
				if got := failure.Classify(err); got != tc.want {
					t.Errorf("Classify(%v) = %q; want %q", err, got, tc.want)
				}
				// The typed path must be what matched, not the message.
				if strings.HasPrefix(tc.want, failure.SSLAlertPrefix) {
					var op *net.OpError
					if !errors.As(err, &op) || op.Op != "remote error" {
						t.Errorf("error %T %v is not a remote-error *net.OpError", err, err)
					}
				}
			})
		}
	}
}

// TestIsLocal names the failures that are the probe's own: the guard's
// refusal and running out of file descriptors, not what the network did.
func TestIsLocal(t *testing.T) {
	t.Parallel()
	for f, want := range map[string]bool{
		failure.BlockedByAllowNet: true, failure.TooManyOpenFiles: true,
		failure.NetworkUnreachable: false, failure.ConnectionRefused: false, failure.GenericTimeout: false,
		failure.DNSNXDOMAIN: false, failure.SSLUnknownAuthority: false, failure.UnknownPrefix + "x": false, "": false,
	} {
		if got := failure.IsLocal(f); got != want {
			t.Errorf("IsLocal(%q) = %v; want %v", f, got, want)
		}
	}
}
