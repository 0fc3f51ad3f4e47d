package lab

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// The lab's resolvers share one data set and differ in how they lie.
//
// The local ("ISP") resolver, on UDP and TCP, answers what Site.DNS says;
// the control resolver (DoH and DoT) is truthful except for
// DNSNonexistent (NXDOMAIN) and DNSControlServfail (SERVFAIL). Neither
// ever recurses: a name outside the scenario and the lab's own zone is
// NXDOMAIN. A site with a hostile DNS behaviour ([HostileDNSBehaviours])
// gets the truthful answer from the control and a misbehaving local
// resolver (hostile.go). A records exist for every address; AAAA (::1)
// only for IPv6 sites, where the resolver gives the site's own IPv4
// address for A (not a block page's or a bogon). Every other type gets an
// empty NOERROR answer for a name that exists.

// labZone is the lab's own zone: the control resolver's TLS name and the
// block page live under it.
const labZone = "lab.test"

// Names in the lab's zone.
const (
	ControlDNSName   = "dns." + labZone
	BlockpageDNSName = "blockpage." + labZone
)

// dnsTTL is the TTL of every answer, in seconds.
const dnsTTL = 300

// resolverView says whose answers to give.
type resolverView int

const (
	viewLocal resolverView = iota
	viewControl
)

// lookup returns the rcode and the IPv4 address (invalid for none) that a
// resolver gives for a name.
func (l *Lab) lookup(name string, view resolverView) (int, netip.Addr) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	switch name {
	case ControlDNSName:
		return dns.RcodeSuccess, l.dohAddr
	case BlockpageDNSName:
		return dns.RcodeSuccess, l.BlockpageAddr
	case labZone:
		return dns.RcodeSuccess, netip.Addr{}
	}
	i, ok := l.siteIndex(name)
	if !ok {
		return dns.RcodeNameError, netip.Addr{}
	}
	s := l.sites[i]
	if view == viewControl {
		switch s.DNS {
		case DNSNonexistent:
			return dns.RcodeNameError, netip.Addr{}
		case DNSControlServfail:
			return dns.RcodeServerFailure, netip.Addr{}
		}
		return dns.RcodeSuccess, s.Addr
	}
	switch s.DNS {
	case DNSBlockpage:
		return dns.RcodeSuccess, l.BlockpageAddr
	case DNSNXDOMAIN, DNSNonexistent:
		return dns.RcodeNameError, netip.Addr{}
	case DNSBogon:
		return dns.RcodeSuccess, netip.MustParseAddr(BogonAddr)
	}
	return dns.RcodeSuccess, s.Addr
}

// respond builds the answer to a query.
func (l *Lab) respond(req *dns.Msg, view resolverView) *dns.Msg {
	m := new(dns.Msg)
	switch {
	case req.Opcode != dns.OpcodeQuery:
		m.SetRcode(req, dns.RcodeNotImplemented)
		return m
	case len(req.Question) != 1:
		m.SetRcodeFormatError(req)
		return m
	}
	m.SetReply(req)
	m.RecursionAvailable = true
	q := req.Question[0]
	rcode, addr := l.lookup(q.Name, view)
	m.Rcode = rcode
	if rcode == dns.RcodeSuccess && addr.IsValid() && q.Qclass == dns.ClassINET {
		hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: dnsTTL}
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = []dns.RR{&dns.A{Hdr: hdr, A: net.IP(addr.AsSlice())}}
		case dns.TypeAAAA:
			// Only a site's own address (lookup gives no other site's)
			// has an IPv6 twin, and only for an IPv6 site.
			if i, ok := l.byPublic[addr]; ok && l.sites[i].Addr6.IsValid() {
				m.Answer = []dns.RR{&dns.AAAA{Hdr: hdr, AAAA: net.IP(l.sites[i].Addr6.AsSlice())}}
			}
		}
	}
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(1232, false)
	}
	return m
}

// dnsHandler serves one view over plain DNS (UDP or TCP) or DoT.
type dnsHandler struct {
	lab  *Lab
	view resolverView
}

// ServeDNS answers, after the scenario's latency for UDP (stream
// transports get theirs from their connection) and possibly not at all
// for the local resolver over UDP (Scenario.DNSDrop). The local resolver
// misbehaves as a site's hostile DNS behaviour says (hostile.go).
func (h dnsHandler) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	l := h.lab
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	if udp && h.view == viewLocal && l.dnsDrop > 0 && rand.Float64() < l.dnsDrop {
		return
	}
	hostile := ""
	if h.view == viewLocal {
		hostile = l.hostileDNS(req)
	}
	if hostile == DNSSilent {
		return
	}
	m := l.respond(req, h.view)
	if hostile == DNSManyAnswers {
		addManyAnswers(m)
	}
	if l.echo && h.view == viewLocal && hostile == "" {
		echoClientSubnet(m, w.RemoteAddr())
	}
	if udp {
		if !sleep(l.latency, l.done) {
			return
		}
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	if hostile != "" {
		l.logDNS(h.transport(udp), req, m, w.RemoteAddr(), hostile)
		writeHostileDNS(w, req, m, hostile, udp)
		return
	}
	l.logDNS(h.transport(udp), req, m, w.RemoteAddr(), "")
	w.WriteMsg(m)
}

// transport names the resolver and transport a query came by, for the
// request log.
func (h dnsHandler) transport(udp bool) string {
	switch {
	case h.view == viewControl:
		return "control resolver (DoT)"
	case udp:
		return "local resolver (UDP)"
	}
	return "local resolver (TCP)"
}

// logDNS writes a query and its answer to the request log: "local
// resolver (UDP) 127.0.0.1:40000: A regnum.ru -> 127.1.2.10".
func (l *Lab) logDNS(via string, req, m *dns.Msg, client net.Addr, hostile string) {
	if l.reqLog == nil || len(req.Question) == 0 {
		return
	}
	q := req.Question[0]
	var answers []string
	for _, rr := range m.Answer {
		switch a := rr.(type) {
		case *dns.A:
			answers = append(answers, a.A.String())
		case *dns.AAAA:
			answers = append(answers, a.AAAA.String())
		}
	}
	ans := strings.Join(answers, ", ")
	switch {
	case m.Rcode != dns.RcodeSuccess:
		ans = dns.RcodeToString[m.Rcode]
	case ans == "":
		ans = "no address"
	}
	if hostile != "" {
		ans = hostile
	}
	l.logRequest("%s %s: %s %s -> %s", via, client, dns.TypeToString[q.Qtype], strings.TrimSuffix(q.Name, "."), ans)
}

// echoClientSubnet adds to m an EDNS client-subnet option (RFC 7871)
// holding the whole of the client's address, as a resolver that echoes
// the subnet it forwarded does (Config.EchoClient).
func echoClientSubnet(m *dns.Msg, client net.Addr) {
	ap, err := netip.ParseAddrPort(client.String())
	if err != nil {
		return
	}
	a := ap.Addr().Unmap()
	ecs := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 32, Address: a.AsSlice()}
	if a.Is6() {
		ecs.Family, ecs.SourceNetmask = 2, 128
	}
	opt := m.IsEdns0()
	if opt == nil {
		m.SetEdns0(1232, false)
		opt = m.IsEdns0()
	}
	opt.Option = append(opt.Option, ecs)
}
