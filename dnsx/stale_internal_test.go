package dnsx

import (
	"context"
	"errors"
	"fmt"
	"go/build"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestStaleConn: the errors of a pooled connection the server closed send
// the query again; others do not. "http2: client conn is closed", as
// net/http returns it for a DoH POST whose connection closed while its
// body was being written, was unknown_failure and not retried
// (TestDoHReconnectAfterServerClose failed with it under load).
func TestStaleConn(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"EOF", io.EOF, true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{"HTTP/2 connection closed under the request", &url.Error{Op: "Post", URL: "https://127.0.0.1/dns-query",
			Err: errors.New(http2ClientConnClosed)}, true},
		{"wrapped again", fmt.Errorf("dnsx: DoH: %w", &url.Error{Op: "Post", URL: "https://127.0.0.1/dns-query",
			Err: errors.New(http2ClientConnClosed)}), true},
		{"timeout", context.DeadlineExceeded, false},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, false},
		{"other HTTP/2 error", errors.New("http2: server sent GOAWAY and closed the connection"), false},
		{"nil", nil, false},
	} {
		if got := staleConn(tc.err); got != tc.want {
			t.Errorf("%s: staleConn(%v) = %t; want %t", tc.name, tc.err, got, tc.want)
		}
	}
}

// TestHTTP2ClientConnClosedText checks that net/http, as this module is
// built with it, still returns the error staleConn matches by its text.
func TestHTTP2ClientConnClosedText(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(build.Default.GOROOT, "src", "net", "http", "h2_bundle.go"))
	if err != nil {
		t.Skipf("net/http's source is not at hand: %v", err)
	}
	if !strings.Contains(string(src), `errors.New("`+http2ClientConnClosed+`")`) {
		t.Errorf("net/http no longer has the error %q: update http2ClientConnClosed", http2ClientConnClosed)
	}
}
