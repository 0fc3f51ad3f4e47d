package lab

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// The lab's HTTPS servers: the origins (one hidden address per site), the
// block page, and the server behind the middlebox's interception. All
// speak HTTP/2 and HTTP/1.1 and answer every path with a short text page,
// so a client that completes a handshake can also make a request.

// newHTTPServer returns an http.Server with the lab's defaults: bounded
// header reads, the lab's error log.
func (l *Lab) newHTTPServer(h http.Handler, cfg *tls.Config) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         cfg,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          l.errorLog,
	}
}

// originCertificate picks an origin's leaf: the site whose origin address
// the client reached. Each origin serves its own leaf whatever the SNI, as
// a real single-site server does.
func (l *Lab) originCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	addr, ok := localAddr(hello.Conn)
	if ok {
		if i, found := l.byOrigin[addr]; found {
			return l.originCerts[i], nil
		}
	}
	return nil, fmt.Errorf("lab: no origin at %v", hello.Conn.LocalAddr())
}

func (l *Lab) serveOrigin(w http.ResponseWriter, r *http.Request) {
	name := "?"
	if addr, ok := localAddrString(r.Context()); ok {
		if i, found := l.byOrigin[addr]; found {
			name = l.sites[i].Domain
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "kzprobe lab origin of %s\n", name)
}

func (l *Lab) serveBlockpage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusUnavailableForLegalReasons)
	fmt.Fprint(w, "<html><body><h1>Access restricted</h1><p>kzprobe lab block page.</p></body></html>\n")
}

func (l *Lab) serveIntercepted(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "kzprobe lab middlebox: intercepted %s\n", r.Host)
}

// localAddr returns the local IP of a connection.
func localAddr(c net.Conn) (netip.Addr, bool) {
	if c == nil {
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(c.LocalAddr().String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// localAddrString reads the local address net/http puts in a request's
// context.
func localAddrString(ctx interface{ Value(any) any }) (netip.Addr, bool) {
	a, ok := ctx.Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}
