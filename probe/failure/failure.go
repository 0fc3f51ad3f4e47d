// Package failure is kzprobe's closed vocabulary of failure strings and the
// one place where Go errors are mapped onto it.
//
// The strings follow OONI's (netxlite/errno.go, classify.go) wherever OONI has
// one, so OONI tooling reads kzprobe files. A failure is recorded as a
// *string in measurements: null means success. Anything the mapping does not
// recognise becomes "unknown_failure: <text>", never a guess such as
// "timeout" (compare zgrab2's status.go, which maps most errors to timeout).
//
// It is a subpackage of probe, not a file in it, because packages that
// probe imports use the same vocabulary: the chain analysis (probe/chain)
// and the DNS transports (dnsx). The control server (control/), which
// imports probe, uses it too.
package failure

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"syscall"

	utls "github.com/refraction-networking/utls"
)

// The failure vocabulary. Each constant is a value that may appear in a
// measurement's "failure" field.
const (
	ConnectionRefused    = "connection_refused"
	ConnectionReset      = "connection_reset"
	ConnectionAborted    = "connection_aborted"
	HostUnreachable      = "host_unreachable"
	NetworkUnreachable   = "network_unreachable"
	GenericTimeout       = "generic_timeout_error"
	EOF                  = "eof_error"
	Interrupted          = "interrupted"
	SSLFailedHandshake   = "ssl_failed_handshake"
	SSLUnknownAuthority  = "ssl_unknown_authority"
	SSLInvalidHostname   = "ssl_invalid_hostname"
	SSLInvalidCert       = "ssl_invalid_certificate"
	DNSNXDOMAIN          = "dns_nxdomain_error"
	DNSNoAnswer          = "dns_no_answer"
	DNSRefused           = "dns_refused_error"
	DNSServfail          = "dns_servfail_error"
	DNSServerMisbehaving = "dns_server_misbehaving"
	DNSBogon             = "dns_bogon_error"
	BlockedByAllowNet    = "blocked_by_allow_net"
	// TooManyOpenFiles is kzprobe's own (OONI has none): the process ran
	// out of file descriptors (EMFILE, ENFILE) before a socket was
	// opened. Like BlockedByAllowNet it is the probe's failure, not the
	// network's ([IsLocal]).
	TooManyOpenFiles = "too_many_open_files"
	UnknownPrefix    = "unknown_failure: "
	// SSLAlertPrefix starts the name of a TLS alert received from the peer,
	// e.g. "ssl_alert_unrecognized_name". OONI once read that alert as
	// blocking (https://github.com/ooni/probe/issues/2300); kzprobe keeps
	// the alert's name so it never has to guess.
	SSLAlertPrefix = "ssl_alert_"
)

// IsLocal reports whether failure f is the probe's own, not the network's:
// its guard refused the destination (BlockedByAllowNet) or the process ran
// out of file descriptors (TooManyOpenFiles). A measurement with such a
// failure says nothing about the network at that step.
func IsLocal(f string) bool {
	return f == BlockedByAllowNet || f == TooManyOpenFiles
}

// Error is an error already mapped to the vocabulary. It keeps the operation
// that failed and the underlying error (ooni netxlite/errwrapper.go).
type Error struct {
	// Failure is a string from the vocabulary above.
	Failure string
	// Operation names the step, e.g. "connect", "tls_handshake", "dns_round_trip".
	Operation string
	// Err is the original error.
	Err error
}

func (e *Error) Error() string {
	if e.Operation == "" {
		return e.Failure
	}
	return e.Operation + ": " + e.Failure
}

// Unwrap returns the original error.
func (e *Error) Unwrap() error { return e.Err }

// New maps err for operation op. It returns nil for a nil err and returns an
// *Error unchanged when err already is one.
func New(op string, err error) *Error {
	if err == nil {
		return nil
	}
	var fe *Error
	if errors.As(err, &fe) {
		return fe
	}
	return &Error{Failure: Classify(err), Operation: op, Err: err}
}

// Ptr returns a pointer to s, for the *string failure fields; it returns
// nil for the empty string (success).
func Ptr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Of returns the failure string for err as a pointer, nil for nil.
func Of(err error) *string {
	if err == nil {
		return nil
	}
	return Ptr(Classify(err))
}

// Classify maps any error to the vocabulary. Typed errors are checked first
// (errors.As), errno values second, and message suffixes only last.
func Classify(err error) string {
	if err == nil {
		return ""
	}
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Failure
	}
	// Certificate judgements.
	var unknownAuth x509.UnknownAuthorityError
	if errors.As(err, &unknownAuth) {
		return SSLUnknownAuthority
	}
	var hostErr x509.HostnameError
	if errors.As(err, &hostErr) {
		return SSLInvalidHostname
	}
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) {
		return SSLInvalidCert
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return SSLInvalidCert
	}
	var uverr *utls.CertificateVerificationError
	if errors.As(err, &uverr) {
		return SSLInvalidCert
	}
	// TLS alerts sent by the peer: crypto/tls and utls both report them as
	// &net.OpError{Op: "remote error", Err: alert(code)}, where alert is an
	// unexported uint8 type. Reproduce: a server that answers the
	// ClientHello with the record 15 03 03 00 02 02 70 gives
	// ssl_alert_unrecognized_name; a crypto/tls server whose GetCertificate
	// fails sends internal_error (TLS 1.3) and gives ssl_alert_internal_error.
	// tls.AlertError and utls.AlertError are deliberately not matched:
	// the libraries only return them on QUIC, and there they name the alert
	// this side sent, not one received.
	if code, ok := remoteAlert(err); ok {
		return AlertName(code)
	}
	// A peer that is not speaking TLS. Reproduce: a server that answers the
	// ClientHello with "HTTP/1.1 400 Bad Request\r\n..." or random bytes
	// ("tls: first record does not look like a TLS handshake"). No failure
	// string is more precise than OONI's ssl_failed_handshake here.
	var rhe tls.RecordHeaderError
	if errors.As(err, &rhe) {
		return SSLFailedHandshake
	}
	var urhe utls.RecordHeaderError
	if errors.As(err, &urhe) {
		return SSLFailedHandshake
	}
	// Reproduce: a server that accepts, reads the ClientHello and never
	// answers, with a 300ms handshake timeout (the conn deadline gives
	// os.ErrDeadlineExceeded, the context context.DeadlineExceeded); or a
	// peer that drips one byte per 100ms.
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return GenericTimeout
	}
	// Reproduce: cancel the ctx of a handshake with a silent server (both
	// TLS libraries return ctx.Err()).
	if errors.Is(err, context.Canceled) {
		return Interrupted
	}
	// Reproduce: a server that reads the ClientHello and closes (FIN).
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return EOF
	}
	switch {
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		// Reproduce: lower RLIMIT_NOFILE to what is open, then dial.
		return TooManyOpenFiles
	case errors.Is(err, syscall.ECONNREFUSED):
		// Reproduce: listen on a loopback port, close it, dial it.
		return ConnectionRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		// Reproduce: a server that reads the ClientHello, then SetLinger(0)
		// and Close (RST).
		return ConnectionReset
	case errors.Is(err, syscall.ECONNABORTED):
		return ConnectionAborted
	case errors.Is(err, syscall.EHOSTUNREACH):
		return HostUnreachable
	case errors.Is(err, syscall.ENETUNREACH):
		return NetworkUnreachable
	case errors.Is(err, syscall.ETIMEDOUT):
		// The kernel gave up (SYN or data retransmissions); not on loopback.
		return GenericTimeout
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if f, ok := winsockFailures[errno]; ok {
			return f
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return GenericTimeout
	}
	return classifyText(err.Error())
}

// winsockFailures maps the Winsock error numbers that Windows returns where
// Unix returns ECONNREFUSED and the like (Go's syscall.Errno.Is does not
// translate them, and their messages are in the user's language). The
// numbers (WSABASEERR+n, above 10000) are no errno on Linux or macOS, so
// the map is consulted everywhere. OONI does the same
// (netxlite/errno_windows.go). Reproduce on Windows: dial a closed
// loopback port ("connectex: No connection could be made because the
// target machine actively refused it.").
var winsockFailures = map[syscall.Errno]string{
	10024: TooManyOpenFiles,   // WSAEMFILE
	10051: NetworkUnreachable, // WSAENETUNREACH
	10053: ConnectionAborted,  // WSAECONNABORTED
	10054: ConnectionReset,    // WSAECONNRESET
	10060: GenericTimeout,     // WSAETIMEDOUT
	10061: ConnectionRefused,  // WSAECONNREFUSED
	10065: HostUnreachable,    // WSAEHOSTUNREACH
}

// classifyText is the last resort, for libraries that flatten errors into
// strings (utls does for several handshake failures).
func classifyText(s string) string {
	l := strings.ToLower(s)
	switch {
	case strings.HasSuffix(l, "connection reset by peer"):
		return ConnectionReset
	case strings.HasSuffix(l, "connection refused"):
		return ConnectionRefused
	case strings.HasSuffix(l, "i/o timeout"), strings.Contains(l, "deadline exceeded"):
		return GenericTimeout
	case strings.HasSuffix(l, "eof"):
		return EOF
	case strings.Contains(l, "tls: failed to parse certificate from server"),
		strings.Contains(l, "tls: server sent certificate containing rsa key larger than"):
		// The server presented a certificate the TLS library refuses before
		// any verification (both crypto/tls and utls flatten the x509 parse
		// error into a string). Reproduce: a crypto/tls server whose
		// tls.Certificate.Certificate holds a DER blob with a flipped tag
		// byte. ssl_invalid_certificate is the closest OONI string; the
		// chain itself is still recorded (probe/tls_wire.go).
		return SSLInvalidCert
	case strings.Contains(l, "tls: ") || strings.Contains(l, "handshake"):
		if name, ok := alertFromText(l); ok {
			return name
		}
		return SSLFailedHandshake
	}
	return UnknownPrefix + s
}

// remoteAlert finds an alert received from the peer in err's chain: a
// *net.OpError with Op "remote error" whose Err is crypto/tls's or utls's
// unexported alert type (a uint8). It walks the chain by hand because
// errors.As stops at the first *net.OpError, which may be another layer's.
func remoteAlert(err error) (uint8, bool) {
	for err != nil {
		if op, ok := err.(*net.OpError); ok && op.Op == "remote error" && op.Err != nil {
			v := reflect.ValueOf(op.Err)
			switch v.Type().PkgPath() {
			case "crypto/tls", "github.com/refraction-networking/utls":
				if v.Kind() == reflect.Uint8 {
					return uint8(v.Uint()), true
				}
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if code, ok := remoteAlert(e); ok {
					return code, true
				}
			}
			return 0, false
		default:
			return 0, false
		}
	}
	return 0, false
}

// alertFromText recognises "remote error: tls: <alert description>", the
// form in which crypto/tls and utls report alerts received from the peer.
func alertFromText(l string) (string, bool) {
	const marker = "remote error: tls: "
	i := strings.Index(l, marker)
	if i < 0 {
		return "", false
	}
	desc := strings.TrimSpace(l[i+len(marker):])
	for code, name := range alertNames {
		if strings.ToLower(strings.TrimPrefix(alertDescription(code), "tls: ")) == desc {
			return SSLAlertPrefix + name, true
		}
	}
	return SSLAlertPrefix + "unknown", true
}

// AlertName returns the vocabulary string for a TLS alert code.
func AlertName(code uint8) string {
	if name, ok := alertNames[code]; ok {
		return SSLAlertPrefix + name
	}
	return fmt.Sprintf("%s%d", SSLAlertPrefix, code)
}

// alertDescription is the text crypto/tls prints for an alert code.
func alertDescription(code uint8) string { return tls.AlertError(code).Error() }

// alertNames are the RFC 8446 section 6 alert names, snake_case.
var alertNames = map[uint8]string{
	0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
	21: "decryption_failed", 22: "record_overflow", 30: "decompression_failure",
	40: "handshake_failure", 41: "no_certificate", 42: "bad_certificate",
	43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
	46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca",
	49: "access_denied", 50: "decode_error", 51: "decrypt_error",
	60: "export_restriction", 70: "protocol_version", 71: "insufficient_security",
	80: "internal_error", 86: "inappropriate_fallback", 90: "user_canceled",
	100: "no_renegotiation", 109: "missing_extension", 110: "unsupported_extension",
	111: "certificate_unobtainable", 112: "unrecognized_name",
	113: "bad_certificate_status_response", 114: "bad_certificate_hash_value",
	115: "unknown_psk_identity", 116: "certificate_required", 120: "no_application_protocol",
	121: "ech_required",
}
