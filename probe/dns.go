package probe

// DNS: steps 1 and 2 of DESIGN.md. This file holds the plain DNS transport
// (UDP with fallback to TCP), the Exchanger interface that the control
// resolvers in control/ also implement, the resolver that turns one query
// into a DNSQuery record, and /etc/resolv.conf parsing.
//
// Everything here is written for a hostile network (issue 8): responses are
// matched to the query by ID and question, a response that does not match is
// ignored and reading goes on until the deadline (a spoofed or duplicated
// packet cannot end the exchange), every read is bounded in bytes and time,
// and miekg/dns's Unpack rejects compression-pointer loops.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"kzprobe/measurement"
	"kzprobe/probe/failure"
	"kzprobe/probe/guard"
)

// Exchanger is one DNS round trip to one resolver. Implementations are safe
// for concurrent use.
type Exchanger interface {
	// Exchange sends q and returns the matching response and its bytes as
	// received. A DNS error rcode (NXDOMAIN, SERVFAIL, ...) is a response,
	// not an error: err covers the transport and malformed responses only.
	// raw may be non-nil with a non-nil err when a response arrived but
	// could not be parsed; it is then the evidence.
	Exchange(ctx context.Context, q *dns.Msg) (resp *dns.Msg, raw []byte, err error)
	// Engine is "udp", "tcp", "doh" or "dot".
	Engine() string
	// Address is "ip:port", or the URL for DoH.
	Address() string
}

// ExchangeInfo says how one exchange was carried out, for what Exchanger
// alone cannot say: the transport that carried the final attempt (a UDP
// exchange that fell back to TCP is "tcp"), the resolver that answered (an
// exchanger with fallbacks), and the message ID on the wire (0 for DoH).
type ExchangeInfo struct {
	// Engine is "udp", "tcp", "doh" or "dot".
	Engine string
	// Address is the resolver's "ip:port" or DoH URL.
	Address string
	// ID is the message ID sent.
	ID uint16
	// Attempts counts the transport round trips tried: 2 after a TCP
	// fallback, one per resolver tried with fallbacks. Zero counts as 1.
	Attempts int
}

// InfoExchanger is an Exchanger that also reports an ExchangeInfo.
// [DNSResolver.Lookup] uses it when available. Every exchanger in this
// package and in control/ implements it.
type InfoExchanger interface {
	Exchanger
	// ExchangeWithInfo is Exchange plus how it was done. info is filled
	// in also when err is not nil.
	ExchangeWithInfo(ctx context.Context, q *dns.Msg) (resp *dns.Msg, raw []byte, info ExchangeInfo, err error)
}

// MaxDNSMessageSize is the largest DNS message accepted, the most that the
// TCP length prefix and a UDP datagram can carry. DoH bodies are read up to
// this size; a larger one is a failure.
const MaxDNSMessageSize = 65535

// DefaultDNSTimeout bounds an exchange whose context has no deadline, and
// is the zero value of [DNSResolver.Timeout].
const DefaultDNSTimeout = 5 * time.Second

// DefaultDNSRetries is the zero value of [DNSResolver.Retries]: a query
// that timed out is sent twice more.
const DefaultDNSRetries = 2

// EDNS0BufferSize is the UDP payload size advertised in queries: the DNS
// Flag Day 2020 value, small enough to avoid IP fragmentation.
const EDNS0BufferSize = 1232

// MaxRecordedAnswers bounds the answers kept in a DNSQuery; the rest are
// only in the raw response, and AnswersTruncated is set.
const MaxRecordedAnswers = 64

// ErrDNSMismatch is returned by [CheckResponse] for a response that does not
// answer the query (wrong ID, wrong question, not a response). Exchangers
// ignore such a message and keep reading.
var ErrDNSMismatch = errors.New("probe: DNS response does not match the query")

// ErrNoNameservers is wrapped by ReadResolvConf when the file lists none.
var ErrNoNameservers = errors.New("probe: no nameserver")

// dnsExchanger is plain DNS to one ip:port.
type dnsExchanger struct {
	addr    string
	dial    guard.DialFunc
	tcpOnly bool
}

var _ InfoExchanger = (*dnsExchanger)(nil)

// NewDNSExchanger returns plain DNS to addr ("ip:port"): UDP, and TCP again
// when the UDP response is truncated (TC bit). Every connection is made with
// dial (a zero net.Dialer when nil), so pass the guard's dialer.
//
// Each exchange dials its own connected UDP socket and closes it when done:
// the kernel then drops datagrams from any other source, a late or
// duplicated response to an earlier query lands on a closed port rather than
// confusing a later one, and no socket outlives its exchange (no descriptor
// or port exhaustion however many targets run). The response must carry the
// query's ID (the caller picks it: [DNSResolver] uses a random one) and
// question; anything else is ignored until the context's deadline
// ([DefaultDNSTimeout] when it has none). The returned value also has a
// no-op Close, like the control exchangers.
func NewDNSExchanger(addr string, dial guard.DialFunc) Exchanger {
	return &dnsExchanger{addr: addr, dial: dialOrDefault(dial)}
}

// NewTCPDNSExchanger returns plain DNS over TCP to addr ("ip:port"), with
// the same checks as [NewDNSExchanger].
func NewTCPDNSExchanger(addr string, dial guard.DialFunc) Exchanger {
	return &dnsExchanger{addr: addr, dial: dialOrDefault(dial), tcpOnly: true}
}

func dialOrDefault(dial guard.DialFunc) guard.DialFunc {
	if dial == nil {
		return (&net.Dialer{}).DialContext
	}
	return dial
}

func (d *dnsExchanger) Engine() string {
	if d.tcpOnly {
		return "tcp"
	}
	return "udp"
}

func (d *dnsExchanger) Address() string { return d.addr }

// Close does nothing: no connection outlives an exchange.
func (d *dnsExchanger) Close() error { return nil }

func (d *dnsExchanger) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, []byte, error) {
	resp, raw, _, err := d.ExchangeWithInfo(ctx, q)
	return resp, raw, err
}

func (d *dnsExchanger) ExchangeWithInfo(ctx context.Context, q *dns.Msg) (*dns.Msg, []byte, ExchangeInfo, error) {
	info := ExchangeInfo{Engine: d.Engine(), Address: d.addr, ID: q.Id, Attempts: 1}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultDNSTimeout)
		defer cancel()
	}
	packed, err := q.Pack()
	if err != nil {
		return nil, nil, info, fmt.Errorf("probe: packing DNS query: %w", err)
	}
	if d.tcpOnly {
		resp, raw, err := exchangeTCP(ctx, d.dial, d.addr, q, packed)
		return resp, raw, info, err
	}
	resp, raw, err := exchangeUDP(ctx, d.dial, d.addr, q, packed)
	if err != nil || !resp.Truncated {
		return resp, raw, info, err
	}
	// RFC 7766 section 5: retry over TCP on truncation.
	info.Engine, info.Attempts = "tcp", 2
	resp, raw, err = exchangeTCP(ctx, d.dial, d.addr, q, packed)
	return resp, raw, info, err
}

// udpBuffers recycles the read buffers of UDP exchanges, udpReadSize
// bytes. Where the kernel tells a datagram's size before it is read
// (Linux), they are 4 KiB and a longer answer gets a buffer of its own
// size: a thousand queries in flight hold 4 MiB rather than 64.
var udpBuffers = sync.Pool{New: func() any { b := make([]byte, udpReadSize); return &b }}

// longAgo is a deadline in the past, to unblock a read at once.
var longAgo = time.Unix(1, 0)

// WatchConn applies ctx's deadline to conn and interrupts it when ctx
// ends. Call the returned stop when done; it returns false when ctx ended
// first, and its interruption may yet move the deadline. The DNS
// exchangers here and in package control share it.
func WatchConn(ctx context.Context, conn net.Conn) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { conn.SetDeadline(longAgo) })
}

// ContextError prefers the context's error (timeout or cancellation) to
// the deadline error it caused on a connection (see WatchConn). A nil err
// stays nil.
func ContextError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && err != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

func exchangeUDP(ctx context.Context, dial guard.DialFunc, addr string, q *dns.Msg, packed []byte) (*dns.Msg, []byte, error) {
	conn, err := dial(ctx, "udp", addr)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	defer WatchConn(ctx, conn)()
	if _, err := conn.Write(packed); err != nil {
		return nil, nil, ContextError(ctx, err)
	}
	bp := udpBuffers.Get().(*[]byte)
	defer udpBuffers.Put(bp)
	buf := *bp
	for {
		data, err := readDatagram(conn, buf)
		if err != nil {
			return nil, nil, ContextError(ctx, err)
		}
		resp, err := CheckResponse(q, q.Id, data)
		if errors.Is(err, ErrDNSMismatch) {
			continue // not ours: spoofed, duplicated or stale; keep reading
		}
		raw := bytes.Clone(data)
		return resp, raw, err
	}
}

// exchangeTCP sends one query over a new TCP connection (RFC 1035 section
// 4.2.2: two-byte length prefix) and reads messages until one matches.
func exchangeTCP(ctx context.Context, dial guard.DialFunc, addr string, q *dns.Msg, packed []byte) (*dns.Msg, []byte, error) {
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	defer WatchConn(ctx, conn)()
	return StreamExchange(ctx, conn, q, q.Id, packed)
}

// StreamExchange writes the packed query on a stream connection (TCP, or
// TLS for DoT) with the two-byte length prefix and reads length-prefixed
// messages until one answers q with message ID id. Messages that do not
// match are skipped. The caller sets the connection's deadline; ctx only
// refines the error returned. It is exported for control's DoT exchanger.
func StreamExchange(ctx context.Context, conn net.Conn, q *dns.Msg, id uint16, packed []byte) (*dns.Msg, []byte, error) {
	if len(packed) > MaxDNSMessageSize {
		return nil, nil, fmt.Errorf("probe: DNS query of %d bytes is too large", len(packed))
	}
	out := make([]byte, 2+len(packed))
	binary.BigEndian.PutUint16(out, uint16(len(packed)))
	copy(out[2:], packed)
	if _, err := conn.Write(out); err != nil {
		return nil, nil, ContextError(ctx, err)
	}
	var lenBuf [2]byte
	for {
		if _, err := io.ReadFull(conn, lenBuf[:]); err != nil {
			return nil, nil, ContextError(ctx, err)
		}
		// The length prefix cannot exceed MaxDNSMessageSize, so this
		// allocation is bounded.
		raw := make([]byte, binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(conn, raw); err != nil {
			return nil, nil, ContextError(ctx, err)
		}
		resp, err := CheckResponse(q, id, raw)
		if errors.Is(err, ErrDNSMismatch) {
			continue
		}
		return resp, raw, err
	}
}

// CheckResponse parses raw as the response to q sent with message ID id.
// It returns an error wrapping [ErrDNSMismatch] when raw is not attributable
// to the query: shorter than a header, another ID, not a response, or
// another question (name compared case-insensitively, type, class). A
// message that carries the ID but does not parse (a compression-pointer
// loop, a record cut short, garbage) is a *failure.Error with
// failure.DNSServerMisbehaving: it claims to be our answer and is the
// evidence, so it ends the exchange.
//
// An empty question section is accepted only in an error response or a
// truncated one without answers: RFC 1035 does not require the question to
// be echoed and resolvers omit it in FORMERR/REFUSED (miekg/dns msg.go
// notes 9.9.9.9 does), but it never vouches for an answer.
func CheckResponse(q *dns.Msg, id uint16, raw []byte) (*dns.Msg, error) {
	if len(raw) < 12 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than a header", ErrDNSMismatch, len(raw))
	}
	if got := binary.BigEndian.Uint16(raw); got != id {
		return nil, fmt.Errorf("%w: ID %d, want %d", ErrDNSMismatch, got, id)
	}
	if raw[2]&0x80 == 0 {
		return nil, fmt.Errorf("%w: QR bit not set", ErrDNSMismatch)
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(raw); err != nil {
		return nil, &failure.Error{Failure: failure.DNSServerMisbehaving, Operation: "dns_round_trip",
			Err: fmt.Errorf("probe: malformed DNS response: %w", err)}
	}
	if len(resp.Question) == 0 {
		if (resp.Rcode != dns.RcodeSuccess || resp.Truncated) && len(resp.Answer) == 0 {
			return resp, nil
		}
		return nil, fmt.Errorf("%w: no question", ErrDNSMismatch)
	}
	if len(q.Question) != 1 || len(resp.Question) != 1 {
		return nil, fmt.Errorf("%w: %d questions", ErrDNSMismatch, len(resp.Question))
	}
	want, got := q.Question[0], resp.Question[0]
	if got.Qtype != want.Qtype || got.Qclass != want.Qclass || !strings.EqualFold(got.Name, want.Name) {
		return nil, fmt.Errorf("%w: question %s, want %s", ErrDNSMismatch, got.String(), want.String())
	}
	return resp, nil
}

// DNSResolver runs DNS lookups through an Exchanger and records each as a
// DNSQuery.
type DNSResolver struct {
	// Exchanger carries the queries; it must be set.
	Exchanger Exchanger
	// Timeout bounds one Lookup, every retry included. Zero means
	// DefaultDNSTimeout (5s).
	Timeout time.Duration
	// Retries is how many times a query that timed out is sent again,
	// each attempt getting an equal share of what is left of Timeout.
	// Zero means DefaultDNSRetries (2); negative means none. Only timeouts are retried: an
	// answer, a refused port or a malformed response is final.
	Retries int
}

func (r *DNSResolver) timeout() time.Duration {
	if r.Timeout <= 0 {
		return DefaultDNSTimeout
	}
	return r.Timeout
}

func (r *DNSResolver) attempts() int {
	switch {
	case r.Retries < 0:
		return 1
	case r.Retries == 0:
		return DefaultDNSRetries + 1
	}
	return r.Retries + 1
}

// randomID returns an unpredictable DNS message ID (crypto/rand, so an
// off-path attacker cannot guess it).
func randomID() uint16 {
	var b [2]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return binary.BigEndian.Uint16(b[:])
}

// NewQuery returns a recursive query (RD set, EDNS0 advertising
// EDNS0BufferSize) for name and qtype with a random message ID.
func NewQuery(name string, qtype uint16) *dns.Msg {
	q := new(dns.Msg)
	q.Id = randomID()
	q.RecursionDesired = true
	q.Question = []dns.Question{{Name: dns.Fqdn(name), Qtype: qtype, Qclass: dns.ClassINET}}
	q.SetEdns0(EDNS0BufferSize, false)
	return q
}

// since returns seconds from t0 to now.
func since(t0 time.Time) float64 { return time.Since(t0).Seconds() }

// Lookup resolves host for qtype and records the round trip. It never fails:
// every outcome, including bad input, is in the returned record, with times
// in seconds since t0. The whole lookup takes at most r.Timeout (or less,
// when ctx ends earlier).
func (r *DNSResolver) Lookup(ctx context.Context, host string, qtype uint16, t0 time.Time) (rec measurement.DNSQuery) {
	rec = measurement.DNSQuery{Hostname: host, QueryType: typeName(qtype), T0: since(t0)}
	defer func() { rec.T = since(t0) }()
	ex := r.Exchanger
	if ex == nil {
		rec.Failure = failure.Ptr(failure.UnknownPrefix + "probe: DNSResolver has no Exchanger")
		return rec
	}
	rec.Engine, rec.ResolverAddress = ex.Engine(), ex.Address()
	name := dns.Fqdn(host)
	if _, ok := dns.IsDomainName(name); !ok || len(name) > 254 {
		rec.Failure = failure.Ptr(failure.UnknownPrefix + fmt.Sprintf("probe: invalid hostname %q", host))
		return rec
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	deadline, _ := ctx.Deadline()
	tries := r.attempts()
	for i := range tries {
		q := NewQuery(name, qtype)
		// Each try gets an equal share of the time left, so a resolver
		// that drops one packet is retried within the budget.
		actx, acancel := context.WithTimeout(ctx, time.Until(deadline)/time.Duration(tries-i))
		resp, raw, info, err := exchange(actx, ex, q)
		acancel()
		rec.Attempts += max(info.Attempts, 1)
		rec.TransactionID = info.ID
		if info.Engine != "" {
			rec.Engine = info.Engine
		}
		if info.Address != "" {
			rec.ResolverAddress = info.Address
		}
		rec.RawResponse = raw
		if err == nil && resp != nil {
			recordResponse(&rec, q.Question[0], resp)
			return rec
		}
		if err == nil {
			err = errors.New("probe: exchanger returned no response and no error")
		}
		f := failure.Classify(err)
		rec.Failure = failure.Ptr(f)
		if f != failure.GenericTimeout || ctx.Err() != nil {
			return rec
		}
	}
	return rec
}

// exchange calls ExchangeWithInfo when ex has it.
func exchange(ctx context.Context, ex Exchanger, q *dns.Msg) (*dns.Msg, []byte, ExchangeInfo, error) {
	if ix, ok := ex.(InfoExchanger); ok {
		return ix.ExchangeWithInfo(ctx, q)
	}
	resp, raw, err := ex.Exchange(ctx, q)
	return resp, raw, ExchangeInfo{ID: q.Id, Attempts: 1}, err
}

func typeName(qtype uint16) string {
	if s, ok := dns.TypeToString[qtype]; ok {
		return s
	}
	return fmt.Sprintf("TYPE%d", qtype)
}

// maxCNAMEHops bounds the CNAME chain followed in one response.
const maxCNAMEHops = 16

// recordResponse fills rec's rcode, answers, CNAME chain and failure from
// resp, the response to question q.
//
// Only records owned by the queried name or a name on its CNAME chain are
// recorded (as a stub resolver would use them): an answer section padded
// with records for other names says nothing about this one, and the raw
// response keeps it anyway.
func recordResponse(rec *measurement.DNSQuery, q dns.Question, resp *dns.Msg) {
	rcode := resp.Rcode
	rec.Rcode = &rcode
	rec.Answers, rec.CNAMEs, rec.AnswersTruncated = nil, nil, false

	// Follow the chain from the queried name. Names compare
	// case-insensitively (RFC 4343).
	owners := []string{q.Name}
	for range maxCNAMEHops {
		cur, next := owners[len(owners)-1], ""
		for _, rr := range resp.Answer {
			if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, cur) {
				next = c.Target
				break
			}
		}
		if next == "" || ownedBy(owners, next) {
			break
		}
		rec.CNAMEs = append(rec.CNAMEs, strings.TrimSuffix(next, "."))
		owners = append(owners, next)
	}

	addrs := 0
	for _, rr := range resp.Answer {
		if !ownedBy(owners, rr.Header().Name) {
			continue
		}
		var a measurement.DNSAnswer
		switch v := rr.(type) {
		case *dns.A:
			ip, ok := netip.AddrFromSlice(v.A.To4())
			if !ok {
				continue
			}
			a = measurement.DNSAnswer{AnswerType: "A", IPv4: ip.String()}
		case *dns.AAAA:
			ip, ok := netip.AddrFromSlice(v.AAAA.To16())
			if !ok {
				continue
			}
			a = measurement.DNSAnswer{AnswerType: "AAAA", IPv6: ip.String()}
		case *dns.CNAME:
			a = measurement.DNSAnswer{AnswerType: "CNAME", Hostname: strings.TrimSuffix(v.Target, ".")}
		default:
			continue
		}
		if rr.Header().Rrtype == q.Qtype {
			addrs++
		}
		if len(rec.Answers) == MaxRecordedAnswers {
			rec.AnswersTruncated = true
			continue
		}
		a.TTL = rr.Header().Ttl
		rec.Answers = append(rec.Answers, a)
	}

	switch {
	case rcode == dns.RcodeNameError:
		rec.Failure = failure.Ptr(failure.DNSNXDOMAIN)
	case rcode == dns.RcodeServerFailure:
		rec.Failure = failure.Ptr(failure.DNSServfail)
	case rcode == dns.RcodeRefused:
		rec.Failure = failure.Ptr(failure.DNSRefused)
	case rcode != dns.RcodeSuccess:
		// FORMERR, NOTIMP, BADVERS, ...: the numeric rcode is kept beside.
		rec.Failure = failure.Ptr(failure.DNSServerMisbehaving)
	case addrs == 0:
		// NOERROR without a record of the queried type (NODATA), or
		// only a CNAME chain leading nowhere.
		rec.Failure = failure.Ptr(failure.DNSNoAnswer)
	default:
		rec.Failure = nil
	}
}

// ownedBy reports whether name is one of owners, ignoring case.
func ownedBy(owners []string, name string) bool {
	for _, o := range owners {
		if strings.EqualFold(o, name) {
			return true
		}
	}
	return false
}

// LookupAll resolves host for A and AAAA concurrently and returns the two
// records, A first.
func LookupAll(ctx context.Context, r *DNSResolver, host string, t0 time.Time) []measurement.DNSQuery {
	out := make([]measurement.DNSQuery, 2)
	// AAAA in a new goroutine, A in this one: its stack, grown by earlier
	// work, need not grow again.
	var wg sync.WaitGroup
	wg.Go(func() { out[1] = r.Lookup(ctx, host, dns.TypeAAAA, t0) })
	out[0] = r.Lookup(ctx, host, dns.TypeA, t0)
	wg.Wait()
	return out
}

// Addrs returns the unique addresses in the A and AAAA answers of queries,
// in first-seen order.
func Addrs(queries []measurement.DNSQuery) []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, q := range queries {
		for _, a := range q.Answers {
			var s string
			switch a.AnswerType {
			case "A":
				s = a.IPv4
			case "AAAA":
				s = a.IPv6
			default:
				continue
			}
			ip, err := netip.ParseAddr(s)
			if err != nil || seen[ip] {
				continue
			}
			seen[ip] = true
			out = append(out, ip)
		}
	}
	return out
}

// maxResolvConfSize bounds how much of a resolv.conf is read.
const maxResolvConfSize = 1 << 20

// ReadResolvConf returns the nameservers of the resolv.conf(5) file at path
// as "ip:53" ("[ipv6]:53"), in file order. Lines other than "nameserver
// ADDR", comments and addresses that do not parse are ignored, as the C
// library does. It is an error when the file cannot be read or lists no
// nameserver; the error names the file.
func ReadResolvConf(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("probe: reading resolver configuration: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxResolvConfSize))
	if err != nil {
		return nil, fmt.Errorf("probe: reading resolver configuration %s: %w", path, err)
	}
	servers := parseResolvConf(data)
	if len(servers) == 0 {
		return nil, fmt.Errorf("%w in %s: add a \"nameserver IP\" line or pass --resolver IP:53", ErrNoNameservers, path)
	}
	return servers, nil
}

// parseResolvConf extracts the nameserver lines of a resolv.conf.
func parseResolvConf(data []byte) []string {
	var out []string
	for line := range strings.Lines(string(data)) {
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		ip, err := netip.ParseAddr(f[1])
		if err != nil {
			continue
		}
		s := netip.AddrPortFrom(ip, 53).String()
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// readWhole reads one datagram from conn into buf, or into a buffer that
// holds any DNS message when buf is shorter.
func readWhole(conn net.Conn, buf []byte) ([]byte, error) {
	if len(buf) <= MaxDNSMessageSize {
		buf = make([]byte, MaxDNSMessageSize+1)
	}
	n, err := conn.Read(buf)
	return buf[:n], err
}
