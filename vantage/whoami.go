package vantage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DialFunc is the signature of net.Dialer.DialContext. Pass the network
// guard's dialer (probe/guard's Guard.Dialer) so that --allow-net applies;
// a guard.DialFunc value can be passed as is.
type DialFunc = func(ctx context.Context, network, address string) (net.Conn, error)

// Well-known "whoami" names. Each is answered by its operator's
// authoritative servers with the address the query came from.
const (
	// GoogleWhoamiTXT is Google's name, queried with type TXT: the first TXT
	// string is the source address (a second one may describe the EDNS
	// client subnet).
	GoogleWhoamiTXT = "o-o.myaddr.l.google.com."
	// AkamaiWhoamiA is Akamai's name, queried with type A (or AAAA over
	// IPv6): the answer is the source address.
	AkamaiWhoamiA = "whoami.akamai.net."
)

// DefaultWhoamiTimeout bounds [WhoamiDNS] when ctx has no deadline.
const DefaultWhoamiTimeout = 5 * time.Second

// ErrWhoami is wrapped by every [WhoamiDNS] error about the answer.
var ErrWhoami = errors.New("vantage: whoami")

// WhoamiDNS asks server ("ip:port", an IP literal: a hostname is refused)
// for qname with type qtype (dns.TypeTXT, dns.TypeA or dns.TypeAAAA) and
// returns the address in the answer: the first A or AAAA record, or the
// first TXT string that is an IP address. Every connection is made with dial
// (a zero net.Dialer when nil): UDP first, TCP again when the answer is
// truncated.
//
// What the address means depends on where the query goes:
//
//   - Sent straight to the name's authoritative server (Google's
//     ns1.google.com for [GoogleWhoamiTXT], Akamai's for [AkamaiWhoamiA]),
//     it is the probe's own public address. That server must be IP-pinned:
//     its address written in the configuration, resolved once by the
//     operator out of band. Resolving the server's name at run time would
//     go through the very resolver that may lie, and the answer would be
//     the attacker's to choose.
//   - Sent to a recursive resolver (the network's own), it is the address
//     from which that resolver reaches the authoritative server: the
//     resolver's egress, which [Resolve] turns into the resolver's network.
//
// The address is the volunteer's: pass it to [Resolve] and [NewScrubber],
// never to output. For the same reason, errors never quote the answer.
func WhoamiDNS(ctx context.Context, dial DialFunc, server, qname string, qtype uint16) (netip.Addr, error) {
	ap, err := netip.ParseAddrPort(server)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: server %q is not an ip:port literal (whoami servers must be IP-pinned)", ErrWhoami, server)
	}
	if qtype != dns.TypeA && qtype != dns.TypeAAAA && qtype != dns.TypeTXT {
		return netip.Addr{}, fmt.Errorf("%w: query type %s: want A, AAAA or TXT", ErrWhoami, dns.TypeToString[qtype])
	}
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultWhoamiTimeout)
		defer cancel()
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(qname), qtype)
	q.RecursionDesired = true // ignored by an authoritative server, needed by a recursive one
	packed, err := q.Pack()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: packing query for %q: %v", ErrWhoami, qname, err)
	}
	addr := ap.String()
	resp, err := exchange(ctx, dial, "udp", addr, q, packed)
	if err == nil && resp.Truncated {
		resp, err = exchange(ctx, dial, "tcp", addr, q, packed)
	}
	if err != nil {
		return netip.Addr{}, err
	}
	if resp.Rcode != dns.RcodeSuccess {
		return netip.Addr{}, fmt.Errorf("%w: %s answered %s for %s %s", ErrWhoami, addr,
			dns.RcodeToString[resp.Rcode], qname, dns.TypeToString[qtype])
	}
	if a, ok := answerAddr(resp, qtype); ok {
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("%w: %s gave no address for %s %s", ErrWhoami, addr, qname, dns.TypeToString[qtype])
}

// answerAddr finds the address in the answer section.
func answerAddr(resp *dns.Msg, qtype uint16) (netip.Addr, bool) {
	for _, rr := range resp.Answer {
		switch r := rr.(type) {
		case *dns.A:
			if qtype == dns.TypeA {
				if a, ok := netip.AddrFromSlice(r.A.To4()); ok {
					return a, true
				}
			}
		case *dns.AAAA:
			if qtype == dns.TypeAAAA {
				if a, ok := netip.AddrFromSlice(r.AAAA.To16()); ok {
					return a.Unmap(), true
				}
			}
		case *dns.TXT:
			if qtype == dns.TypeTXT {
				for _, s := range r.Txt {
					if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil {
						return a.Unmap().WithZone(""), true
					}
				}
			}
		}
	}
	return netip.Addr{}, false
}

// exchange sends the query over one new connection and reads until a
// message answers it: same ID, a response, the same question. Anything else
// (spoofed, stale, garbage) is skipped until ctx ends.
func exchange(ctx context.Context, dial DialFunc, network, addr string, q *dns.Msg, packed []byte) (*dns.Msg, error) {
	conn, err := dial(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("vantage: whoami dial %s %s: %w", network, addr, dropSource(err))
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	fail := func(op string, err error) error {
		err = dropSource(err)
		cerr := ctx.Err()
		if dl, ok := ctx.Deadline(); cerr == nil && ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
			// The connection's deadline is ctx's, and may fire before
			// ctx's own timer does.
			cerr = context.DeadlineExceeded
		}
		if cerr != nil {
			err = fmt.Errorf("%w (%v)", cerr, err)
		}
		return fmt.Errorf("vantage: whoami %s %s %s: %w", op, network, addr, err)
	}
	if network == "tcp" {
		out := make([]byte, 2+len(packed))
		binary.BigEndian.PutUint16(out, uint16(len(packed)))
		copy(out[2:], packed)
		packed = out
	}
	if _, err := conn.Write(packed); err != nil {
		return nil, fail("write", err)
	}
	buf := make([]byte, dns.MaxMsgSize)
	for {
		var raw []byte
		if network == "tcp" {
			if _, err := io.ReadFull(conn, buf[:2]); err != nil {
				return nil, fail("read", err)
			}
			raw = buf[:binary.BigEndian.Uint16(buf[:2])]
			if _, err := io.ReadFull(conn, raw); err != nil {
				return nil, fail("read", err)
			}
		} else {
			n, err := conn.Read(buf)
			if err != nil {
				return nil, fail("read", err)
			}
			raw = buf[:n]
		}
		resp := new(dns.Msg)
		if err := resp.Unpack(raw); err != nil || !answers(q, resp) {
			continue
		}
		return resp, nil
	}
}

func answers(q, resp *dns.Msg) bool {
	if resp.Id != q.Id || !resp.Response || len(resp.Question) != 1 {
		return false
	}
	a, b := resp.Question[0], q.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// dropSource removes the local address from a *net.OpError: its text reads
// "read udp 192.0.2.7:40000->...", and the local address may be the
// volunteer's public one.
func dropSource(err error) error {
	if op, ok := err.(*net.OpError); ok && op.Source != nil {
		c := *op
		c.Source = nil
		return &c
	}
	return err
}
