package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"kzprobe/dnsx"
	"kzprobe/measurement"
	"kzprobe/probe/failure"
	"kzprobe/probe/guard"
)

// loopbackOnly is the guard every test dials through: nothing leaves
// 127.0.0.0/8.
var loopbackOnly = guard.New(netip.MustParsePrefix("127.0.0.0/8")).Dialer(nil)

// startDNS runs a miekg/dns server on 127.0.0.1, UDP and TCP on the same
// port, and returns "127.0.0.1:port".
func startDNS(t testing.TB, h dns.HandlerFunc) string {
	t.Helper()
	for range 10 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close() // the TCP port is taken; try another
			continue
		}
		for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
			started := make(chan struct{})
			srv.NotifyStartedFunc = func() { close(started) }
			go srv.ActivateAndServe()
			<-started
			t.Cleanup(func() { srv.Shutdown() })
		}
		return pc.LocalAddr().String()
	}
	t.Fatal("no free UDP+TCP port on 127.0.0.1")
	return ""
}

// rawUDP is a UDP server on 127.0.0.1 that answers each datagram with
// whatever respond returns, byte for byte.
type rawUDP struct {
	addr     string
	received atomic.Int32
}

func startRawUDP(t testing.TB, respond func(req []byte) [][]byte) *rawUDP {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawUDP{addr: pc.LocalAddr().String()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.received.Add(1)
			for _, out := range respond(bytes.Clone(buf[:n])) {
				pc.WriteTo(out, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return s
}

// zone answers from a fixed set of records, by owner name and type,
// following nothing: the records are the answer section as given.
func zone(rrs ...string) dns.HandlerFunc {
	var parsed []dns.RR
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(err) // test input
		}
		parsed = append(parsed, rr)
	}
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		q := r.Question[0]
		for _, rr := range parsed {
			h := rr.Header()
			if strings.EqualFold(h.Name, q.Name) && (h.Rrtype == q.Qtype || h.Rrtype == dns.TypeCNAME) {
				m.Answer = append(m.Answer, rr)
				if c, ok := rr.(*dns.CNAME); ok {
					for _, rr2 := range parsed {
						if strings.EqualFold(rr2.Header().Name, c.Target) && rr2.Header().Rrtype == q.Qtype {
							m.Answer = append(m.Answer, rr2)
						}
					}
				}
			}
		}
		w.WriteMsg(m)
	}
}

// fixed answers every query with the records of the query's type and the
// CNAMEs among rrs, whatever their owner.
func fixed(rrs ...string) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		for _, s := range rrs {
			rr, _ := dns.NewRR(s)
			if t := rr.Header().Rrtype; t == r.Question[0].Qtype || t == dns.TypeCNAME {
				m.Answer = append(m.Answer, rr)
			}
		}
		w.WriteMsg(m)
	}
}

// rcodeHandler answers every query with rcode and no records.
func rcodeHandler(rcode int) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		w.WriteMsg(new(dns.Msg).SetRcode(r, rcode))
	}
}

// replyTo builds a response to the packed query req with the given
// answers, for raw servers.
func replyTo(t testing.TB, req []byte, rrs ...string) *dns.Msg {
	q := new(dns.Msg)
	if err := q.Unpack(req); err != nil {
		t.Errorf("server got an unparseable query: %v", err)
		return new(dns.Msg)
	}
	m := new(dns.Msg).SetReply(q)
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		m.Answer = append(m.Answer, rr)
	}
	return m
}

func pack(t testing.TB, m *dns.Msg) []byte {
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func lookup(t testing.TB, ex dnsx.Exchanger, host string, qtype uint16, timeout time.Duration) measurement.DNSQuery {
	t.Helper()
	r := &DNSResolver{Exchanger: ex, Timeout: timeout}
	return r.Lookup(context.Background(), host, qtype, NewEpoch(nil))
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func expectFailure(t testing.TB, q measurement.DNSQuery, want string) {
	t.Helper()
	if got := str(q.Failure); got != want {
		t.Errorf("failure = %s; want %s", got, want)
	}
}

func expectRcode(t testing.TB, q measurement.DNSQuery, want int) {
	t.Helper()
	if q.Rcode == nil {
		t.Errorf("rcode = null; want %d", want)
	} else if *q.Rcode != want {
		t.Errorf("rcode = %d; want %d", *q.Rcode, want)
	}
}

func TestDNSLookupRecordsAnswers(t *testing.T) {
	t.Parallel()
	addr := startDNS(t, fixed(
		"www.example.test. 300 IN CNAME edge.cdn.example.test.",
		"edge.cdn.example.test. 60 IN A 192.0.2.10",
		"edge.cdn.example.test. 60 IN AAAA 2001:db8::10",
		// Not on the chain: in the raw response only.
		"other.example.test. 300 IN A 192.0.2.99",
	))
	ex := dnsx.NewDNSExchanger(addr, loopbackOnly)
	q := (&DNSResolver{Exchanger: ex}).Lookup(context.Background(), "www.example.test", dns.TypeA, NewEpoch(nil))

	want := measurement.DNSQuery{
		Engine: "udp", ResolverAddress: addr, Hostname: "www.example.test", QueryType: "A",
		Answers: []measurement.DNSAnswer{
			{AnswerType: "CNAME", Hostname: "edge.cdn.example.test", TTL: 300},
			{AnswerType: "A", IPv4: "192.0.2.10", TTL: 60},
		},
		CNAMEs:   []string{"edge.cdn.example.test"},
		Attempts: 1,
		Tries:    []measurement.DNSTry{{Engine: "udp", ResolverAddress: addr}},
	}
	got := q
	got.Rcode, got.RawResponse, got.MessageID, got.T0, got.T = nil, nil, 0, 0, 0
	got.Tries = slices.Clone(got.Tries)
	for i := range got.Tries {
		got.Tries[i].T0, got.Tries[i].T = 0, 0
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("record (-want +got):\n%s", d)
	}
	expectRcode(t, q, dns.RcodeSuccess)
	raw := new(dns.Msg)
	if err := raw.Unpack(q.RawResponse); err != nil {
		t.Fatalf("raw response does not parse: %v", err)
	}
	if raw.Id != q.MessageID {
		t.Errorf("raw response ID %d; message_id %d", raw.Id, q.MessageID)
	}
	if len(raw.Answer) != 3 {
		t.Errorf("raw response has %d answers; want 3 (all, as received)", len(raw.Answer))
	}
	if !(0 <= q.T0 && q.T0 <= q.T && q.T < 5) {
		t.Errorf("t0 = %v, t = %v; want 0 <= t0 <= t < 5", q.T0, q.T)
	}

	q6 := lookup(t, ex, "www.example.test", dns.TypeAAAA, 5*time.Second)
	if want := []measurement.DNSAnswer{
		{AnswerType: "CNAME", Hostname: "edge.cdn.example.test", TTL: 300},
		{AnswerType: "AAAA", IPv6: "2001:db8::10", TTL: 60},
	}; !cmp.Equal(q6.Answers, want) {
		t.Errorf("AAAA answers %v; want %v", q6.Answers, want)
	}
	if q6.QueryType != "AAAA" || q6.Failure != nil {
		t.Errorf("AAAA query type %q failure %s; want AAAA, success", q6.QueryType, str(q6.Failure))
	}
}

func TestDNSRcodeMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler dns.HandlerFunc
		want    string
		rcode   int
	}{
		{"nxdomain", rcodeHandler(dns.RcodeNameError), failure.DNSNXDOMAIN, 3},
		{"servfail", rcodeHandler(dns.RcodeServerFailure), failure.DNSServfail, 2},
		{"refused", rcodeHandler(dns.RcodeRefused), failure.DNSRefused, 5},
		{"formerr", rcodeHandler(dns.RcodeFormatError), failure.DNSServerMisbehaving, 1},
		{"notimp", rcodeHandler(dns.RcodeNotImplemented), failure.DNSServerMisbehaving, 4},
		{"yxdomain", rcodeHandler(dns.RcodeYXDomain), failure.DNSServerMisbehaving, 6},
		{"noerror without records", rcodeHandler(dns.RcodeSuccess), failure.DNSNoAnswer, 0},
		{"noerror with only a CNAME", zone("a.example.test. 60 IN CNAME b.example.test."), failure.DNSNoAnswer, 0},
		{"noerror with only the other family", zone("a.example.test. 60 IN AAAA 2001:db8::1"), failure.DNSNoAnswer, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := startDNS(t, tc.handler)
			q := lookup(t, dnsx.NewDNSExchanger(addr, loopbackOnly), "a.example.test", dns.TypeA, 5*time.Second)
			expectFailure(t, q, tc.want)
			expectRcode(t, q, tc.rcode)
			if q.RawResponse == nil {
				t.Error("raw response not recorded")
			}
			if q.Attempts != 1 {
				t.Errorf("attempts = %d; want 1 (an rcode is not retried)", q.Attempts)
			}
		})
	}
}

func TestDNSTruncationFallsBackToTCP(t *testing.T) {
	t.Parallel()
	full := zone("big.example.test. 60 IN A 192.0.2.1")
	var udpSeen, tcpSeen atomic.Int32
	addr := startDNS(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if w.LocalAddr().Network() == "udp" {
			udpSeen.Add(1)
			m := new(dns.Msg).SetReply(r)
			m.Truncated = true
			w.WriteMsg(m)
			return
		}
		tcpSeen.Add(1)
		full(w, r)
	})
	q := lookup(t, dnsx.NewDNSExchanger(addr, loopbackOnly), "big.example.test", dns.TypeA, 5*time.Second)
	expectFailure(t, q, "<nil>")
	if q.Engine != "tcp" || q.Attempts != 2 {
		t.Errorf("engine %q attempts %d; want tcp, 2", q.Engine, q.Attempts)
	}
	if len(q.Answers) != 1 || q.Answers[0].IPv4 != "192.0.2.1" {
		t.Errorf("answers %v; want the TCP answer", q.Answers)
	}
	if udpSeen.Load() != 1 || tcpSeen.Load() != 1 {
		t.Errorf("server saw %d UDP, %d TCP queries; want 1, 1", udpSeen.Load(), tcpSeen.Load())
	}
}

func TestDNSTCPExchanger(t *testing.T) {
	t.Parallel()
	addr := startDNS(t, zone("t.example.test. 60 IN A 192.0.2.7"))
	q := lookup(t, dnsx.NewTCPDNSExchanger(addr, loopbackOnly), "t.example.test", dns.TypeA, 5*time.Second)
	expectFailure(t, q, "<nil>")
	if q.Engine != "tcp" || q.Attempts != 1 || len(q.Answers) != 1 {
		t.Errorf("engine %q attempts %d answers %v; want tcp, 1, one A", q.Engine, q.Attempts, q.Answers)
	}
}

// TestDNSHostileResponses covers the responses of a hostile resolver
// (truncated, wrong ID or question, compression loops, floods) with a raw
// UDP server that sends exactly the bytes given.
func TestDNSHostileResponses(t *testing.T) {
	t.Parallel()
	good := func(t testing.TB, req []byte) []byte {
		return pack(t, replyTo(t, req, "h.example.test. 60 IN A 192.0.2.80"))
	}
	tests := []struct {
		name    string
		respond func(t testing.TB, req []byte) [][]byte
		failure string
		// answered: the good answer must be recorded.
		answered bool
		// keepsRaw: the malformed response must be kept as raw_response.
		keepsRaw bool
	}{
		{
			name: "wrong ID then right ID",
			respond: func(t testing.TB, req []byte) [][]byte {
				bad := good(t, req)
				binary.BigEndian.PutUint16(bad, binary.BigEndian.Uint16(bad)+1)
				return [][]byte{bad, good(t, req)}
			},
			failure: "<nil>", answered: true,
		},
		{
			name: "wrong question then right question",
			respond: func(t testing.TB, req []byte) [][]byte {
				m := replyTo(t, req, "evil.example.test. 60 IN A 10.10.34.34")
				m.Question[0].Name = "evil.example.test."
				return [][]byte{pack(t, m), good(t, req)}
			},
			failure: "<nil>", answered: true,
		},
		{
			name: "wrong type then right type",
			respond: func(t testing.TB, req []byte) [][]byte {
				m := replyTo(t, req)
				m.Question[0].Qtype = dns.TypeTXT
				return [][]byte{pack(t, m), good(t, req)}
			},
			failure: "<nil>", answered: true,
		},
		{
			name: "question in other case",
			respond: func(t testing.TB, req []byte) [][]byte {
				m := replyTo(t, req, "H.EXAMPLE.TEST. 60 IN A 192.0.2.80")
				m.Question[0].Name = "H.Example.TEST."
				return [][]byte{pack(t, m)}
			},
			failure: "<nil>", answered: true,
		},
		{
			name: "query echoed back (QR clear) then answer",
			respond: func(t testing.TB, req []byte) [][]byte {
				return [][]byte{req, good(t, req)}
			},
			failure: "<nil>", answered: true,
		},
		{
			name: "runt datagrams then answer",
			respond: func(t testing.TB, req []byte) [][]byte {
				return [][]byte{{}, req[:2], req[:11], good(t, req)}
			},
			failure: "<nil>", answered: true,
		},
		{
			name: "duplicate responses",
			respond: func(t testing.TB, req []byte) [][]byte {
				return [][]byte{good(t, req), good(t, req), good(t, req)}
			},
			failure: "<nil>", answered: true,
		},
		{
			name: "only a wrong question",
			respond: func(t testing.TB, req []byte) [][]byte {
				m := replyTo(t, req, "evil.example.test. 60 IN A 10.10.34.34")
				m.Question[0].Name = "evil.example.test."
				return [][]byte{pack(t, m)}
			},
			failure: failure.GenericTimeout,
		},
		{
			name: "compression pointer loop in the question",
			respond: func(t testing.TB, req []byte) [][]byte {
				return [][]byte{compressionLoop(req, false)}
			},
			failure:  failure.DNSServerMisbehaving,
			keepsRaw: true,
		},
		{
			name: "compression pointer loop in an answer",
			respond: func(t testing.TB, req []byte) [][]byte {
				return [][]byte{compressionLoop(req, true)}
			},
			failure:  failure.DNSServerMisbehaving,
			keepsRaw: true,
		},
		{
			name: "response cut inside a record",
			respond: func(t testing.TB, req []byte) [][]byte {
				b := good(t, req)
				return [][]byte{b[:len(b)-3]}
			},
			failure: failure.DNSServerMisbehaving,
		},
		{
			name: "garbage after a valid header",
			respond: func(t testing.TB, req []byte) [][]byte {
				b := append(bytes.Clone(req[:12]), bytes.Repeat([]byte{0xff}, 40)...)
				b[2] |= 0x80
				b[5] = 1 // one question
				return [][]byte{b}
			},
			failure: failure.DNSServerMisbehaving,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startRawUDP(t, func(req []byte) [][]byte { return tc.respond(t, req) })
			// A short timeout where the outcome is one; a long one
			// where an answer is expected, so a loaded machine cannot
			// turn it into a timeout.
			timeout := 600 * time.Millisecond
			if tc.answered {
				timeout = 5 * time.Second
			}
			r := &DNSResolver{Exchanger: dnsx.NewDNSExchanger(srv.addr, loopbackOnly), Timeout: timeout, Retries: -1}
			start := time.Now()
			q := r.Lookup(context.Background(), "h.example.test", dns.TypeA, NewEpoch(nil))
			elapsed := time.Since(start)
			expectFailure(t, q, tc.failure)
			if elapsed > timeout+time.Second {
				t.Errorf("took %v; want within the %v timeout", elapsed, timeout)
			}
			if tc.answered {
				if len(q.Answers) != 1 || q.Answers[0].IPv4 != "192.0.2.80" {
					t.Errorf("answers %v; want the genuine 192.0.2.80", q.Answers)
				}
				expectRcode(t, q, 0)
			} else if q.Rcode != nil {
				t.Errorf("rcode = %d; want null (no parseable response)", *q.Rcode)
			}
			if tc.keepsRaw && q.RawResponse == nil {
				t.Error("malformed response not kept as raw_response")
			}
		})
	}
}

// compressionLoop returns a response to req whose first name (the
// question's, or with inAnswer an answer's owner) is a compression pointer
// to itself: offset 12 points to offset 12.
func compressionLoop(req []byte, inAnswer bool) []byte {
	b := bytes.Clone(req[:12])
	b[2] |= 0x80                         // QR
	binary.BigEndian.PutUint16(b[4:], 1) // QDCOUNT
	binary.BigEndian.PutUint16(b[6:], 0) // ANCOUNT
	binary.BigEndian.PutUint16(b[10:], 0)
	if !inAnswer {
		return append(b, 0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01)
	}
	// Copy the real question, then an answer whose owner loops.
	q := new(dns.Msg)
	q.Unpack(req)
	qb, _ := (&dns.Msg{Question: q.Question}).Pack()
	b = append(b, qb[12:]...)
	binary.BigEndian.PutUint16(b[6:], 1)
	loopAt := len(b)
	b = append(b, 0xC0|byte(loopAt>>8), byte(loopAt))
	b = append(b, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 80)
	return b
}

// TestDNSCompressionLoopUnpack shows that miekg/dns's Unpack itself
// rejects the hand-built loop, which is what dnsx.CheckResponse relies on.
func TestDNSCompressionLoopUnpack(t *testing.T) {
	t.Parallel()
	q := NewQuery("loop.example.test", dns.TypeA)
	req := pack(t, q)
	for _, inAnswer := range []bool{false, true} {
		raw := compressionLoop(req, inAnswer)
		err := new(dns.Msg).Unpack(raw)
		if err == nil || !strings.Contains(err.Error(), "compression pointer") {
			t.Errorf("Unpack(loop, inAnswer=%v) = %v; want a compression pointer error", inAnswer, err)
		}
		_, err = dnsx.CheckResponse(q, q.Id, raw)
		if got := failure.Classify(err); got != failure.DNSServerMisbehaving {
			t.Errorf("CheckResponse(loop, inAnswer=%v) = %s; want %s", inAnswer, got, failure.DNSServerMisbehaving)
		}
	}
}

func TestDNSFiveHundredAnswers(t *testing.T) {
	t.Parallel()
	srv := startRawUDP(t, func(req []byte) [][]byte {
		var rrs []string
		for i := range 500 {
			rrs = append(rrs, fmt.Sprintf("many.example.test. 60 IN A 192.0.%d.%d", 2+i/250, i%250))
		}
		m := replyTo(t, req, rrs...)
		m.Compress = true
		return [][]byte{pack(t, m)}
	})
	q := lookup(t, dnsx.NewDNSExchanger(srv.addr, loopbackOnly), "many.example.test", dns.TypeA, 5*time.Second)
	expectFailure(t, q, "<nil>")
	if len(q.Answers) != MaxRecordedAnswers || !q.AnswersTruncated {
		t.Errorf("recorded %d answers, truncated %v; want %d, true", len(q.Answers), q.AnswersTruncated, MaxRecordedAnswers)
	}
	raw := new(dns.Msg)
	if err := raw.Unpack(q.RawResponse); err != nil || len(raw.Answer) != 500 {
		t.Errorf("raw response: %d answers, err %v; want all 500", len(raw.Answer), err)
	}
}

func TestDNSResolverNeverAnswers(t *testing.T) {
	t.Parallel()
	srv := startRawUDP(t, func([]byte) [][]byte { return nil })
	const timeout = 300 * time.Millisecond
	start := time.Now()
	q := lookup(t, dnsx.NewDNSExchanger(srv.addr, loopbackOnly), "silent.example.test", dns.TypeA, timeout)
	elapsed := time.Since(start)
	expectFailure(t, q, failure.GenericTimeout)
	if q.Rcode != nil || q.RawResponse != nil {
		t.Errorf("rcode %v raw %v; want null, null", q.Rcode, q.RawResponse)
	}
	if q.Attempts != 3 {
		t.Errorf("attempts = %d; want 3 (2 retries by default)", q.Attempts)
	}
	if elapsed < timeout-20*time.Millisecond || elapsed > timeout+time.Second {
		t.Errorf("took %v; want about the %v timeout", elapsed, timeout)
	}
	time.Sleep(20 * time.Millisecond)
	if n := srv.received.Load(); n != 3 {
		t.Errorf("server received %d queries; want 3", n)
	}
}

func TestDNSGuardRefusalSendsNothing(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("127.0.0.2 not usable here: %v", err)
	}
	defer pc.Close()
	only1 := guard.New(netip.MustParsePrefix("127.0.0.1/32")).Dialer(nil)
	for _, ex := range []dnsx.Exchanger{dnsx.NewDNSExchanger(pc.LocalAddr().String(), only1), dnsx.NewTCPDNSExchanger(pc.LocalAddr().String(), only1)} {
		q := lookup(t, ex, "blocked.example.test", dns.TypeA, 5*time.Second)
		expectFailure(t, q, failure.BlockedByAllowNet)
		if q.Attempts != 1 || q.Rcode != nil {
			t.Errorf("%s: attempts %d rcode %v; want 1, null", ex.Engine(), q.Attempts, q.Rcode)
		}
	}
	pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _, err := pc.ReadFrom(make([]byte, 512)); err == nil {
		t.Errorf("listener outside the guard received %d bytes; want nothing", n)
	}
}

func TestDNSConnectionRefused(t *testing.T) {
	t.Parallel()
	// A port with nothing behind it: the kernel answers ICMP port
	// unreachable, which a connected UDP socket reports as refused.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	q := lookup(t, dnsx.NewDNSExchanger(addr, loopbackOnly), "closed.example.test", dns.TypeA, 5*time.Second)
	expectFailure(t, q, failure.ConnectionRefused)
	if q.Attempts != 1 {
		t.Errorf("attempts = %d; want 1 (refused is not retried)", q.Attempts)
	}
}

func TestDNSLookupCancelled(t *testing.T) {
	t.Parallel()
	srv := startRawUDP(t, func([]byte) [][]byte { return nil })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	q := (&DNSResolver{Exchanger: dnsx.NewDNSExchanger(srv.addr, loopbackOnly)}).Lookup(ctx, "c.example.test", dns.TypeA, NewEpoch(nil))
	expectFailure(t, q, failure.Interrupted)
	if time.Since(start) > time.Second {
		t.Errorf("took %v after cancellation; want prompt", time.Since(start))
	}
}

func TestDNSLookupBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		r    *DNSResolver
		host string
	}{
		{"no exchanger", &DNSResolver{}, "a.example.test"},
		{"label too long", &DNSResolver{Exchanger: dnsx.NewDNSExchanger("127.0.0.1:1", loopbackOnly)}, strings.Repeat("a", 64) + ".test"},
		{"empty label", &DNSResolver{Exchanger: dnsx.NewDNSExchanger("127.0.0.1:1", loopbackOnly)}, "a..test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.r.Lookup(context.Background(), tc.host, dns.TypeA, NewEpoch(nil))
			if q.Failure == nil || !strings.HasPrefix(*q.Failure, failure.UnknownPrefix) || q.Attempts != 0 {
				t.Errorf("failure %s attempts %d; want unknown_failure, 0", str(q.Failure), q.Attempts)
			}
		})
	}
}

func TestDNSLookupAllAndAddrs(t *testing.T) {
	t.Parallel()
	var seen atomic.Int32
	z := zone(
		"both.example.test. 60 IN A 192.0.2.1",
		"both.example.test. 60 IN A 192.0.2.2",
		"both.example.test. 60 IN A 192.0.2.1",
		"both.example.test. 60 IN AAAA 2001:db8::1",
	)
	addr := startDNS(t, func(w dns.ResponseWriter, r *dns.Msg) {
		// Both queries must be in flight together: each waits for the
		// other, so a sequential LookupAll would time out.
		seen.Add(1)
		for deadline := time.Now().Add(4 * time.Second); seen.Load() < 2 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		z(w, r)
	})
	r := &DNSResolver{Exchanger: dnsx.NewDNSExchanger(addr, loopbackOnly), Timeout: 5 * time.Second, Retries: -1}
	qs := LookupAll(context.Background(), r, "both.example.test", NewEpoch(nil))
	if len(qs) != 2 || qs[0].QueryType != "A" || qs[1].QueryType != "AAAA" {
		t.Fatalf("queries %+v; want A then AAAA", qs)
	}
	for _, q := range qs {
		expectFailure(t, q, "<nil>")
	}
	want := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::1")}
	if got := Addrs(qs); !slices.Equal(got, want) {
		t.Errorf("Addrs = %v; want %v", got, want)
	}
}

// FuzzDNSResponse feeds arbitrary bytes as the response to a query, with
// the query's ID patched in half the time so the parser is reached, and
// records whatever parses.
func FuzzDNSResponse(f *testing.F) {
	q := NewQuery("fuzz.example.test", dns.TypeA)
	req, _ := q.Pack()
	ok := new(dns.Msg).SetReply(q)
	for i := range 3 {
		rr, _ := dns.NewRR(fmt.Sprintf("fuzz.example.test. 60 IN A 192.0.2.%d", i))
		ok.Answer = append(ok.Answer, rr)
	}
	cname, _ := dns.NewRR("fuzz.example.test. 60 IN CNAME fuzz.example.test.")
	okb, _ := ok.Pack()
	ok.Answer = append(ok.Answer, cname)
	cyc, _ := ok.Pack()
	f.Add(okb, true)
	f.Add(cyc, true)
	f.Add(compressionLoop(req, false), true)
	f.Add(compressionLoop(req, true), true)
	f.Add(okb[:len(okb)-5], true)
	f.Add([]byte{}, false)
	f.Add(bytes.Repeat([]byte{0xc0}, 64), true)
	f.Fuzz(func(t *testing.T, raw []byte, patchID bool) {
		if patchID && len(raw) >= 2 {
			binary.BigEndian.PutUint16(raw, q.Id)
		}
		resp, err := dnsx.CheckResponse(q, q.Id, raw)
		if err != nil {
			if resp != nil {
				t.Fatal("error with a response")
			}
			return
		}
		var rec measurement.DNSQuery
		recordResponse(&rec, q.Question[0], resp)
		if len(rec.Answers) > MaxRecordedAnswers || len(rec.CNAMEs) > maxCNAMEHops {
			t.Fatalf("unbounded record: %d answers, %d cnames", len(rec.Answers), len(rec.CNAMEs))
		}
		if rec.Rcode == nil || (rec.Failure == nil && (*rec.Rcode != 0 || len(rec.Answers) == 0)) {
			t.Fatalf("inconsistent record: rcode %v failure %s answers %v", rec.Rcode, str(rec.Failure), rec.Answers)
		}
	})
}

func BenchmarkUDPLookup(b *testing.B) {
	addr := startDNS(b, zone("bench.example.test. 60 IN A 192.0.2.1"))
	r := &DNSResolver{Exchanger: dnsx.NewDNSExchanger(addr, loopbackOnly), Timeout: time.Second}
	ctx, t0 := context.Background(), NewEpoch(nil)
	b.ReportAllocs()
	for b.Loop() {
		if q := r.Lookup(ctx, "bench.example.test", dns.TypeA, t0); q.Failure != nil {
			b.Fatal(*q.Failure)
		}
	}
}

func BenchmarkRecordResponse(b *testing.B) {
	q := NewQuery("www.example.test", dns.TypeA)
	m := new(dns.Msg).SetReply(q)
	for _, s := range []string{
		"www.example.test. 300 IN CNAME edge.example.test.",
		"edge.example.test. 60 IN A 192.0.2.1",
		"edge.example.test. 60 IN A 192.0.2.2",
		"edge.example.test. 60 IN A 192.0.2.3",
	} {
		rr, _ := dns.NewRR(s)
		m.Answer = append(m.Answer, rr)
	}
	m.SetEdns0(dnsx.EDNS0BufferSize, false)
	raw := pack(b, m)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := dnsx.CheckResponse(q, q.Id, raw)
		if err != nil {
			b.Fatal(err)
		}
		var rec measurement.DNSQuery
		recordResponse(&rec, q.Question[0], resp)
	}
}
