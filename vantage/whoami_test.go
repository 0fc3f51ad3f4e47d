package vantage

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// whoamiServer is an authoritative server on 127.0.0.1 that answers the
// whoami names the way Google's and Akamai's do: with the address the query
// came from. It listens on UDP and TCP on the same port.
type whoamiServer struct {
	addr string
	// truncate makes UDP answers empty with the TC bit, as a server does
	// when the answer does not fit.
	truncate bool
	// spoofFirst makes the UDP handler first send a response with another
	// ID, as an off-path attacker or a stale answer would.
	spoofFirst bool
	tcpQueries atomic.Int32
}

func startWhoami(t testing.TB, configure func(*whoamiServer)) *whoamiServer {
	t.Helper()
	s := &whoamiServer{}
	if configure != nil {
		configure(s)
	}
	// The TCP port must equal the UDP one, which the kernel chose without
	// regard to TCP: retry on a clash with another test's TCP listener.
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	for range 20 {
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	s.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: dns.HandlerFunc(s.serve)},
		{Listener: ln, Handler: dns.HandlerFunc(s.serve)},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return s
}

func (s *whoamiServer) serve(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	host, _, _ := net.SplitHostPort(w.RemoteAddr().String())
	client := netip.MustParseAddr(host)
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	if tcp {
		s.tcpQueries.Add(1)
	}
	question := q.Question[0]
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: question.Name, Rrtype: t, Class: dns.ClassINET, Ttl: 0}
	}
	switch {
	case strings.EqualFold(question.Name, GoogleWhoamiTXT) && question.Qtype == dns.TypeTXT:
		// Google puts the address in a TXT record, and the client subnet,
		// when there is one, in another.
		m.Answer = append(m.Answer,
			&dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: []string{"edns0-client-subnet 192.0.2.0/24"}},
			&dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: []string{client.String()}})
	case strings.EqualFold(question.Name, AkamaiWhoamiA) && question.Qtype == dns.TypeA && client.Is4():
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: client.AsSlice()})
	case strings.EqualFold(question.Name, AkamaiWhoamiA):
		// NOERROR, no data.
	case question.Name == "no-address.example.test.":
		m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: []string{"not an address"}})
	default:
		m.Rcode = dns.RcodeNameError
	}
	if !tcp && s.truncate {
		m.Answer = nil
		m.Truncated = true
	}
	if !tcp && s.spoofFirst {
		bad := m.Copy()
		bad.Id = q.Id + 1
		bad.Answer = []dns.RR{&dns.A{Hdr: hdr(dns.TypeA), A: net.IPv4(203, 0, 113, 66)}}
		w.WriteMsg(bad)
		w.Write([]byte("garbage"))
	}
	w.WriteMsg(m)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestWhoamiDNS(t *testing.T) {
	t.Parallel()
	loopback := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name      string
		configure func(*whoamiServer)
		qname     string
		qtype     uint16
		wantTCP   bool
	}{
		{"google TXT", nil, GoogleWhoamiTXT, dns.TypeTXT, false},
		{"akamai A", nil, AkamaiWhoamiA, dns.TypeA, false},
		{"name without trailing dot", nil, "whoami.akamai.net", dns.TypeA, false},
		{"truncated: retried over TCP", func(s *whoamiServer) { s.truncate = true }, GoogleWhoamiTXT, dns.TypeTXT, true},
		{"spoofed answer first is skipped", func(s *whoamiServer) { s.spoofFirst = true }, AkamaiWhoamiA, dns.TypeA, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startWhoami(t, tc.configure)
			var dials atomic.Int32
			dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			}
			got, err := WhoamiDNS(testCtx(t), dial, srv.addr, tc.qname, tc.qtype)
			if err != nil {
				t.Fatal(err)
			}
			if got != loopback {
				t.Errorf("WhoamiDNS = %v; want %v", got, loopback)
			}
			if gotTCP := srv.tcpQueries.Load() > 0; gotTCP != tc.wantTCP {
				t.Errorf("TCP used = %v; want %v", gotTCP, tc.wantTCP)
			}
			if dials.Load() == 0 {
				t.Error("the injected dial func was not used")
			}
		})
	}
}

func TestWhoamiDNSErrors(t *testing.T) {
	t.Parallel()
	srv := startWhoami(t, nil)
	refused := errors.New("refused by test guard")
	tests := []struct {
		name    string
		dial    DialFunc
		server  string
		qname   string
		qtype   uint16
		wantErr error
		wantMsg string
	}{
		{"hostname server is refused", nil, "localhost:53", GoogleWhoamiTXT, dns.TypeTXT, ErrWhoami, "IP-pinned"},
		{"server without port", nil, "127.0.0.1", GoogleWhoamiTXT, dns.TypeTXT, ErrWhoami, "ip:port"},
		{"unsupported type", nil, srv.addr, GoogleWhoamiTXT, dns.TypeMX, ErrWhoami, "MX"},
		{"nxdomain", nil, srv.addr, "nobody.example.test", dns.TypeTXT, ErrWhoami, "NXDOMAIN"},
		{"no data", nil, srv.addr, AkamaiWhoamiA, dns.TypeAAAA, ErrWhoami, "no address"},
		{"txt not an address", nil, srv.addr, "no-address.example.test", dns.TypeTXT, ErrWhoami, "no address"},
		{"dial refused by the guard", func(context.Context, string, string) (net.Conn, error) {
			return nil, refused
		}, srv.addr, GoogleWhoamiTXT, dns.TypeTXT, refused, "refused by test guard"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := WhoamiDNS(testCtx(t), tc.dial, tc.server, tc.qname, tc.qtype)
			if err == nil {
				t.Fatalf("WhoamiDNS = %v; want an error", got)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v does not wrap %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tc.wantMsg)
			}
		})
	}
}

// A server that never answers: the context ends the wait, and the error
// does not carry the local address (which may be the volunteer's).
func TestWhoamiDNSTimeout(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var local string
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			local = c.LocalAddr().String()
		}
		return c, err
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err = WhoamiDNS(ctx, dial, pc.LocalAddr().String(), GoogleWhoamiTXT, dns.TypeTXT)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v; want context.DeadlineExceeded", err)
	}
	if local == "" || strings.Contains(err.Error(), local) {
		t.Errorf("error %q names the local address %q", err, local)
	}
}
