package dnsx

// Plain DNS over UDP and TCP, the Exchanger interfaces every transport in
// this package implements, and the checks they share.
//
// Everything here is written for a hostile network: responses are matched
// to the query by ID and question, a response that does not match is
// ignored and reading goes on until the deadline (a spoofed or duplicated
// packet cannot end the exchange), every read is bounded in bytes and
// time, and miekg/dns's Unpack rejects compression-pointer loops.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

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
	// Close releases the connections the exchanger keeps between
	// exchanges (DoH, DoT); exchanges in flight finish. Plain DNS keeps
	// none, and its Close does nothing.
	Close() error
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
	// Tries lists each resolver asked during the exchange, in order, with
	// its own outcome: an exchanger with fallbacks ([NewWithFallbacks])
	// fills it, one entry per resolver. Nil for an exchanger that asks one
	// resolver: Engine, Address and the error then say it all.
	Tries []Try
}

// Try is one resolver asked during an exchange: which one, when, and how
// it ended.
type Try struct {
	// Engine is "udp", "tcp", "doh" or "dot": the transport that carried
	// the try's last round trip.
	Engine string
	// Address is the resolver's "ip:port" or DoH URL.
	Address string
	// Start and End bound the try, read on the clock the exchange's
	// context carries ([WithClock]), else time.Now.
	Start, End time.Time
	// Err is the transport's error, nil when the resolver answered (an
	// NXDOMAIN or SERVFAIL is an answer).
	Err error
}

// InfoExchanger is an Exchanger that also reports an ExchangeInfo.
// probe's DNSResolver.Lookup uses it when available. Every exchanger in
// this package implements it.
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

// DefaultTimeout bounds a plain DNS exchange whose context has no
// deadline, and is the zero value of [Options.Timeout] and of probe's
// DNSResolver.Timeout.
const DefaultTimeout = 5 * time.Second

// EDNS0BufferSize is the UDP payload size advertised in queries: the DNS
// Flag Day 2020 value, small enough to avoid IP fragmentation.
const EDNS0BufferSize = 1232

// ErrDNSMismatch is returned by [CheckResponse] for a response that does not
// answer the query (wrong ID, wrong question, not a response). Exchangers
// ignore such a message and keep reading.
var ErrDNSMismatch = errors.New("dnsx: DNS response does not match the query")

// ErrNoNameservers is wrapped by ReadResolvConf when the file lists none.
var ErrNoNameservers = errors.New("dnsx: no nameserver")

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
// ([DefaultTimeout] when it has none). Its Close does nothing.
func NewDNSExchanger(addr string, dial guard.DialFunc) InfoExchanger {
	return &dnsExchanger{addr: addr, dial: dialOrDefault(dial)}
}

// NewTCPDNSExchanger returns plain DNS over TCP to addr ("ip:port"), with
// the same checks as [NewDNSExchanger].
func NewTCPDNSExchanger(addr string, dial guard.DialFunc) InfoExchanger {
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
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	packed, err := q.Pack()
	if err != nil {
		return nil, nil, info, fmt.Errorf("dnsx: packing DNS query: %w", err)
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
// first, and its interruption may yet move the deadline. Every stream and
// datagram exchanger here uses it.
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
// refines the error returned. Plain TCP and DoT both use it.
func StreamExchange(ctx context.Context, conn net.Conn, q *dns.Msg, id uint16, packed []byte) (*dns.Msg, []byte, error) {
	if len(packed) > MaxDNSMessageSize {
		return nil, nil, fmt.Errorf("dnsx: DNS query of %d bytes is too large", len(packed))
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
			Err: fmt.Errorf("dnsx: malformed DNS response: %w", err)}
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

// readWhole reads one datagram from conn into buf, or into a buffer that
// holds any DNS message when buf is shorter.
func readWhole(conn net.Conn, buf []byte) ([]byte, error) {
	if len(buf) <= MaxDNSMessageSize {
		buf = make([]byte, MaxDNSMessageSize+1)
	}
	n, err := conn.Read(buf)
	return buf[:n], err
}
