package dnsx_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"kzprobe/dnsx"
	"kzprobe/probe/failure"
)

// dohServer is an RFC 8484 server over TLS with HTTP/2 on 127.0.0.1.
type dohServer struct {
	srv        *httptest.Server
	url, addr  string
	handshakes atomic.Int32

	mu       sync.Mutex
	requests []dohRequest
}

// dohRequest is what the server saw of one request.
type dohRequest struct {
	method, proto, host string
	id                  uint16
}

func (s *dohServer) seen() []dohRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]dohRequest(nil), s.requests...)
}

// startDoH serves a at /dns-query. write, when set, replaces the normal
// response writing (for hostile servers).
func startDoH(t testing.TB, pki *testPKI, a answerer, write ...func(w http.ResponseWriter, q *dns.Msg, resp []byte)) *dohServer {
	t.Helper()
	s := &dohServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/dns-query", func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		switch r.Method {
		case http.MethodGet:
			b, err := base64.RawURLEncoding.DecodeString(r.URL.Query().Get("dns"))
			if err != nil {
				http.Error(w, "bad dns parameter", http.StatusBadRequest)
				return
			}
			body = b
		case http.MethodPost:
			if r.Header.Get("Content-Type") != "application/dns-message" {
				http.Error(w, "bad content type", http.StatusUnsupportedMediaType)
				return
			}
			body, _ = io.ReadAll(io.LimitReader(r.Body, 65536))
		}
		q := new(dns.Msg)
		if err := q.Unpack(body); err != nil || len(q.Question) != 1 {
			http.Error(w, "bad query", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.requests = append(s.requests, dohRequest{r.Method, r.Proto, r.Host, q.Id})
		s.mu.Unlock()
		resp, _ := a(q).Pack()
		if len(write) > 0 {
			write[0](w, q, resp)
			return
		}
		w.Header().Set("Content-Type", "application/dns-message")
		w.Write(resp)
	})
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.EnableHTTP2 = true
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	s.srv.TLS = pki.serverTLS(&s.handshakes)
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	s.url = s.srv.URL + "/dns-query"
	s.addr = strings.TrimPrefix(s.srv.URL, "https://")
	return s
}

func TestDoHPostHTTP2Reuse(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	doh := startDoH(t, pki, fixedA("192.0.2.80"))
	ex := newExchanger(t, doh.url, dnsx.Options{RootCAs: pki.pool, ServerName: "resolver.example.test"})
	const n = 10
	for range n {
		q := lookup(t, ex, "reuse.example.test", dns.TypeA)
		expectAnswer(t, q, "192.0.2.80")
		if q.Engine != "doh" || q.ResolverAddress != doh.url || q.MessageID != 0 || q.RawResponse == nil {
			t.Fatalf("engine %q address %q id %d raw %d bytes; want doh, %s, 0, raw", q.Engine, q.ResolverAddress, q.MessageID, len(q.RawResponse), doh.url)
		}
	}
	concurrently(t, 20, ex, "192.0.2.80")
	if h := doh.handshakes.Load(); h != 1 {
		t.Errorf("%d queries took %d TLS handshakes; want 1", n+20, h)
	}
	for _, r := range doh.seen() {
		if r.method != http.MethodPost || r.proto != "HTTP/2.0" || r.id != 0 || r.host != "resolver.example.test" {
			t.Fatalf("server saw %+v; want POST over HTTP/2.0, ID 0, Host resolver.example.test", r)
		}
	}
}

// TestDoHColdConcurrent: a burst of queries on a new exchanger still makes
// one connection.
func TestDoHColdConcurrent(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	doh := startDoH(t, pki, fixedA("192.0.2.81"))
	ex := newExchanger(t, doh.url, dnsx.Options{RootCAs: pki.pool})
	concurrently(t, 16, ex, "192.0.2.81")
	if h := doh.handshakes.Load(); h != 1 {
		t.Errorf("16 concurrent cold queries took %d TLS handshakes; want 1", h)
	}
}

func TestDoHGet(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	doh := startDoH(t, pki, fixedA("192.0.2.82"))
	ex := newExchanger(t, doh.url, dnsx.Options{RootCAs: pki.pool, Method: http.MethodGet})
	for range 3 {
		expectAnswer(t, lookup(t, ex, "get.example.test", dns.TypeA), "192.0.2.82")
	}
	seen := doh.seen()
	if len(seen) != 3 || seen[0].method != http.MethodGet || seen[0].proto != "HTTP/2.0" || seen[0].id != 0 {
		t.Errorf("server saw %+v; want 3 GET over HTTP/2.0 with ID 0", seen)
	}
	if h := doh.handshakes.Load(); h != 1 {
		t.Errorf("3 queries took %d handshakes; want 1", h)
	}
}

func TestDoHReconnectAfterServerClose(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	doh := startDoH(t, pki, fixedA("192.0.2.83"))
	ex := newExchanger(t, doh.url, dnsx.Options{RootCAs: pki.pool})
	expectAnswer(t, lookup(t, ex, "a.example.test", dns.TypeA), "192.0.2.83")
	// No pause: the next query may race with the close and is then sent
	// again on a new connection.
	doh.srv.CloseClientConnections()
	expectAnswer(t, lookup(t, ex, "b.example.test", dns.TypeA), "192.0.2.83")
	if h := doh.handshakes.Load(); h != 2 {
		t.Errorf("handshakes = %d; want 2 (one reconnect)", h)
	}
}

func TestDoHTLSVerification(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	doh := startDoH(t, pki, fixedA("192.0.2.84"))
	tests := []struct {
		name string
		opts dnsx.Options
		want string
	}{
		{"IP SAN", dnsx.Options{RootCAs: pki.pool}, "<nil>"},
		{"server name", dnsx.Options{RootCAs: pki.pool, ServerName: "resolver.example.test"}, "<nil>"},
		{"wrong server name", dnsx.Options{RootCAs: pki.pool, ServerName: "cloudflare-dns.com"}, failure.SSLInvalidHostname},
		// The default roots are the Mozilla bundle: the test CA (like an
		// interception CA) is unknown there.
		{"default roots", dnsx.Options{}, failure.SSLUnknownAuthority},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := lookup(t, newExchanger(t, doh.url, tc.opts), "v.example.test", dns.TypeA)
			if got := str(q.Failure); got != tc.want {
				t.Errorf("failure %s; want %s", got, tc.want)
			}
		})
	}
}

func TestDoHHostileServer(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	tests := []struct {
		name  string
		a     answerer
		write func(w http.ResponseWriter, q *dns.Msg, resp []byte)
		want  string
		rcode int // -1: null
	}{
		{"nxdomain", rcode(dns.RcodeNameError), nil, failure.DNSNXDOMAIN, 3},
		{"servfail", rcode(dns.RcodeServerFailure), nil, failure.DNSServfail, 2},
		{"wrong question", func(q *dns.Msg) *dns.Msg {
			m := fixedA("10.10.34.34")(q)
			m.Question[0].Name = "other.example.test."
			return m
		}, nil, failure.DNSServerMisbehaving, -1},
		{"wrong id", func(q *dns.Msg) *dns.Msg { m := fixedA("192.0.2.1")(q); m.Id = 4242; return m }, nil, failure.DNSServerMisbehaving, -1},
		{"HTTP 500", fixedA("192.0.2.1"), func(w http.ResponseWriter, _ *dns.Msg, _ []byte) {
			http.Error(w, "oops", http.StatusInternalServerError)
		}, failure.DNSServerMisbehaving, -1},
		{"HTML instead of DNS", fixedA("192.0.2.1"), func(w http.ResponseWriter, _ *dns.Msg, _ []byte) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html>blocked</html>"))
		}, failure.DNSServerMisbehaving, -1},
		{"body over 64 KiB", fixedA("192.0.2.1"), func(w http.ResponseWriter, _ *dns.Msg, resp []byte) {
			w.Header().Set("Content-Type", "application/dns-message")
			w.Write(resp)
			w.Write(bytes.Repeat([]byte{0}, 70000))
		}, failure.DNSServerMisbehaving, -1},
		{"compression loop", fixedA("192.0.2.1"), func(w http.ResponseWriter, _ *dns.Msg, resp []byte) {
			w.Header().Set("Content-Type", "application/dns-message")
			b := append([]byte(nil), resp[:12]...)
			b[4], b[5], b[6], b[7], b[10], b[11] = 0, 1, 0, 0, 0, 0
			w.Write(append(b, 0xC0, 0x0C, 0, 1, 0, 1))
		}, failure.DNSServerMisbehaving, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var doh *dohServer
			if tc.write != nil {
				doh = startDoH(t, pki, tc.a, tc.write)
			} else {
				doh = startDoH(t, pki, tc.a)
			}
			q := lookup(t, newExchanger(t, doh.url, dnsx.Options{RootCAs: pki.pool}), "h.example.test", dns.TypeA)
			if got := str(q.Failure); got != tc.want {
				t.Errorf("failure %s; want %s", got, tc.want)
			}
			switch {
			case tc.rcode < 0 && q.Rcode != nil:
				t.Errorf("rcode %d; want null", *q.Rcode)
			case tc.rcode >= 0 && (q.Rcode == nil || *q.Rcode != tc.rcode):
				t.Errorf("rcode %v; want %d", q.Rcode, tc.rcode)
			}
		})
	}
}

// TestDoHBlackhole: a server that accepts TCP and never speaks TLS.
func TestDoHBlackhole(t *testing.T) {
	t.Parallel()
	addr := startSilentTCP(t)
	ex := newExchanger(t, "https://"+addr+"/dns-query", dnsx.Options{Timeout: 300 * time.Millisecond})
	start := time.Now()
	q := lookup(t, ex, "bh.example.test", dns.TypeA)
	if str(q.Failure) != failure.GenericTimeout {
		t.Errorf("failure %s; want %s", str(q.Failure), failure.GenericTimeout)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v; want about the 300ms timeout", d)
	}
}
