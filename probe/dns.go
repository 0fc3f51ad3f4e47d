package probe

// DNS: steps 1 and 2 of a measurement (local and control DNS), the
// resolver step. A DNSResolver sends each query through a dnsx.Exchanger
// (plain DNS for the local resolver; DoH, DoT or plain DNS for the
// control) and turns the round trip into a DNSQuery record: rcode, answers
// on the queried name's CNAME chain, the raw response and the failure. The
// transports themselves are in dnsx.

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"kzprobe/dnsx"
	"kzprobe/measurement"
	"kzprobe/probe/failure"
)

// DefaultDNSTimeout is the zero value of [DNSResolver.Timeout]: the
// transports' own default, dnsx.DefaultTimeout.
const DefaultDNSTimeout = dnsx.DefaultTimeout

// DefaultDNSRetries is the zero value of [DNSResolver.Retries]: a query
// that timed out is sent twice more.
const DefaultDNSRetries = 2

// MaxRecordedAnswers bounds the answers kept in a DNSQuery; the rest are
// only in the raw response, and AnswersTruncated is set.
const MaxRecordedAnswers = 64

// DNSResolver runs DNS lookups through an Exchanger and records each as a
// DNSQuery.
type DNSResolver struct {
	// Exchanger carries the queries; it must be set.
	Exchanger dnsx.Exchanger
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
	q.SetEdns0(dnsx.EDNS0BufferSize, false)
	return q
}

// Lookup resolves host for qtype and records the round trip. It never fails:
// every outcome, including bad input, is in the returned record, with times
// in seconds since t0's start. The whole lookup takes at most r.Timeout (or less,
// when ctx ends earlier).
func (r *DNSResolver) Lookup(ctx context.Context, host string, qtype uint16, t0 Epoch) measurement.DNSQuery {
	return r.lookup(ctx, host, qtype, t0, nil)
}

// lookup is Lookup, telling step (unless nil) of the query as it starts
// and ends, and of each resolver asked when it asks more than one.
func (r *DNSResolver) lookup(ctx context.Context, host string, qtype uint16, t0 Epoch, step stepFunc) (rec measurement.DNSQuery) {
	rec = measurement.DNSQuery{Hostname: host, QueryType: typeName(qtype), T0: t0.Since()}
	ex := r.Exchanger
	if ex != nil {
		rec.Engine, rec.ResolverAddress = ex.Engine(), ex.Address()
	}
	// The copies are made only when told: taking the address of one
	// declared here would put it on the heap in every lookup.
	var started *measurement.DNSQuery
	if step != nil {
		c := rec
		started = &c
		step(Step{Kind: StepDNS, T: rec.T0, Query: started})
	}
	defer func() {
		rec.T = t0.Since()
		if step != nil {
			done := rec
			step(Step{Kind: StepDNS, Done: true, T: rec.T, Query: &done})
		}
	}()
	if ex == nil {
		rec.Failure = failure.Ptr(failure.UnknownPrefix + "probe: DNSResolver has no Exchanger")
		return rec
	}
	name := dns.Fqdn(host)
	if _, ok := dns.IsDomainName(name); !ok || len(name) > 254 {
		rec.Failure = failure.Ptr(failure.UnknownPrefix + fmt.Sprintf("probe: invalid hostname %q", host))
		return rec
	}
	ctx, cancel := context.WithTimeout(dnsx.WithClock(ctx, t0.Now), r.timeout())
	defer cancel()
	deadline, _ := ctx.Deadline()
	tries := r.attempts()
	for i := range tries {
		q := NewQuery(name, qtype)
		// Each try gets an equal share of the time left, so a resolver
		// that drops one packet is retried within the budget.
		actx, acancel := context.WithTimeout(ctx, time.Until(deadline)/time.Duration(tries-i))
		tryStart := t0.Now()
		resp, raw, info, err := exchange(actx, ex, q)
		acancel()
		if err == nil && resp == nil {
			err = errors.New("probe: exchanger returned no response and no error")
		}
		asked := len(rec.Tries)
		rec.Tries = appendTries(rec.Tries, info, ex, tryStart, err, t0)
		if step != nil && (len(rec.Tries) > 1 || willRetry(ctx, err, i, tries)) {
			// More than one resolver asked: each is told as it ends, the
			// first once a second is sure to follow.
			for k := range rec.Tries[asked:] {
				try := rec.Tries[asked+k]
				step(Step{Kind: StepDNSTry, Done: true, T: try.T, Query: started, Try: &try})
			}
		}
		rec.Attempts += max(info.Attempts, 1)
		rec.MessageID = info.ID
		if info.Engine != "" {
			rec.Engine = info.Engine
		}
		if info.Address != "" {
			rec.ResolverAddress = info.Address
		}
		rec.RawResponse = raw
		if err == nil {
			recordResponse(&rec, q.Question[0], resp)
			return rec
		}
		f := failure.Classify(err)
		rec.Failure = failure.Ptr(f)
		if f != failure.GenericTimeout || ctx.Err() != nil {
			return rec
		}
	}
	return rec
}

// willRetry reports whether Lookup's try i of tries, which ended with
// err, is followed by another: a timeout with time left.
func willRetry(ctx context.Context, err error, i, tries int) bool {
	return err != nil && i < tries-1 && ctx.Err() == nil && failure.Classify(err) == failure.GenericTimeout
}

// appendTries records the resolvers asked by one exchange: each of
// info.Tries (an exchanger with fallbacks), else the one resolver, asked
// from start until now and ending with err. Times are read on t0's clock.
func appendTries(tries []measurement.DNSTry, info dnsx.ExchangeInfo, ex dnsx.Exchanger, start time.Time, err error, t0 Epoch) []measurement.DNSTry {
	if len(info.Tries) == 0 {
		info.Tries = []dnsx.Try{{Engine: cmp.Or(info.Engine, ex.Engine()), Address: cmp.Or(info.Address, ex.Address()),
			Start: start, End: t0.Now(), Err: err}}
	}
	for _, t := range info.Tries {
		tries = append(tries, measurement.DNSTry{Engine: t.Engine, ResolverAddress: t.Address, Failure: failure.Of(t.Err),
			T0: t0.At(t.Start), T: t0.At(t.End)})
	}
	return tries
}

// exchange calls ExchangeWithInfo when ex has it.
func exchange(ctx context.Context, ex dnsx.Exchanger, q *dns.Msg) (*dns.Msg, []byte, dnsx.ExchangeInfo, error) {
	if ix, ok := ex.(dnsx.InfoExchanger); ok {
		return ix.ExchangeWithInfo(ctx, q)
	}
	resp, raw, err := ex.Exchange(ctx, q)
	return resp, raw, dnsx.ExchangeInfo{ID: q.Id, Attempts: 1}, err
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
func LookupAll(ctx context.Context, r *DNSResolver, host string, t0 Epoch) []measurement.DNSQuery {
	return r.lookupAll(ctx, host, t0, nil)
}

// lookupAll is LookupAll, telling step (unless nil) of each query.
func (r *DNSResolver) lookupAll(ctx context.Context, host string, t0 Epoch, step stepFunc) []measurement.DNSQuery {
	out := make([]measurement.DNSQuery, 2)
	// AAAA in a new goroutine, A in this one: its stack, grown by earlier
	// work, need not grow again.
	var wg sync.WaitGroup
	wg.Go(func() { out[1] = r.lookup(ctx, host, dns.TypeAAAA, t0, step) })
	out[0] = r.lookup(ctx, host, dns.TypeA, t0, step)
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
