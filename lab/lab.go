package lab

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"

	"kzprobe/control"
	"kzprobe/probe/chain"
)

// Host numbers in the lab's /24 (see the package documentation).
const (
	hostLocalDNS  = 1
	hostDoH       = 2
	hostDoT       = 3
	hostControl   = 4 // the control server (package control's own)
	hostBlockpage = 5
	hostOutside6  = 6   // the outside view of ::1: splices by SNI to the IPv6 sites' origins
	hostFirstSite = 10  // site i's public address is .10+i
	hostFirstOrig = 130 // site i's origin address is .130+i
)

// ipv6Addr is every IPv6 site's address: loopback has no other.
var ipv6Addr = netip.IPv6Loopback()

// Preferred ports, used when they can be bound.
const (
	preferredPort    = 443
	preferredDNSPort = 53
)

// startAttempts is how many random /24s Start tries before giving up.
const startAttempts = 32

// errBind marks a failure to bind that another /24 or port may not have.
var errBind = errors.New("lab: bind")

// errBindIPv6 is errBind on ::1, which all labs share: another port may
// not have it, another /24 will.
var errBindIPv6 = fmt.Errorf("%w: IPv6 middlebox on ::1", errBind)

// Config configures [Start].
type Config struct {
	// Scenario is the network to simulate. A scenario without sites means
	// [DefaultScenario] (with this one's Latency and DNSDrop).
	Scenario Scenario
	// Port is the TCP port of every TLS address (origins, middlebox, block
	// page, DoH, DoT). Zero means 443 if it can be bound, else a free
	// high port shared by all of the lab's addresses.
	Port int
	// DNSPort is the local resolver's UDP and TCP port. Zero means 53 if
	// it can be bound, else a free high port.
	DNSPort int
	// EchoClient makes the network leak the client's address into raw
	// evidence: the middlebox writes it into every leaf it forges
	// ([PKI.ForgeFor]), and the local resolver echoes it, as a /32 (or
	// /128), in an EDNS client-subnet option of every answer it gives
	// normally. Verdicts are those of the scenario without it.
	EchoClient bool
	// ErrorLog receives the servers' errors (TLS handshakes that failed,
	// and the like). Nil means they are discarded: a lab sees many on
	// purpose.
	ErrorLog *log.Logger
	// RequestLog receives one line per request the lab answers: each DNS
	// query (local resolver, DoH, DoT) with its answer, each connection
	// to a site's address with the SNI and what the middlebox did, and
	// each request to the control server. Nil means none.
	RequestLog *log.Logger
}

// SiteInfo is a site of the running lab with its addresses.
type SiteInfo struct {
	Site
	// Addr is the site's public address: what a truthful resolver
	// answers, and where the middlebox listens (nothing listens there for
	// Unreachable). Invalid for DNSNonexistent.
	Addr netip.Addr
	// OriginAddr is the real origin's hidden address, reached through the
	// middlebox or with [Lab.OutsideDialer]. Invalid for DNSNonexistent.
	OriginAddr netip.Addr
	// Addr6 is the site's IPv6 address, ::1, where Site.IPv6 is set:
	// what a resolver answers for AAAA where it answers Addr for A. The
	// middlebox listens there for every IPv6 site. Invalid otherwise.
	Addr6 netip.Addr
}

// Lab is a running censored network on loopback. Create it with [Start]
// and stop it with [Lab.Close]. Its exported fields are read-only.
type Lab struct {
	// Net is the loopback /24 the lab owns, e.g. 127.42.17.0/24, chosen at
	// random so that several labs coexist.
	Net netip.Prefix
	// Port is the TCP port every TLS address listens on.
	Port int
	// DNSPort is the local resolver's port.
	DNSPort int
	// LocalDNS is the local ISP resolver, "ip:port", UDP and TCP.
	LocalDNS string
	// DoHURL is the control resolver's DoH endpoint,
	// "https://ip:port/dns-query" (HTTP/2, RFC 8484 GET and POST).
	DoHURL string
	// DoTAddr is the control resolver's DoT address, "ip:port".
	DoTAddr string
	// ControlServerName is the DNS name in the DoH/DoT certificate (which
	// also carries both IP addresses).
	ControlServerName string
	// BlockpageAddr is the block-page server's address, which the local
	// resolver answers for DNSBlockpage sites. It serves TLS on Port with
	// a public-root certificate for [BlockpageDNSName] only, so it is not
	// valid for the blocked domain, and a 451 page.
	BlockpageAddr netip.Addr
	// ControlAddr is the control server's address (lab/controlserver.go).
	ControlAddr netip.Addr
	// ControlServerURL is the control server's URL, "https://ip:port" (the
	// API is POST /v1/check), with a public-root certificate for
	// ControlAddr and [ControlServerDNSName].
	ControlServerURL string
	// Scenario is the scenario being run, with defaults filled in.
	Scenario Scenario
	// PKI holds the lab's certificate authorities.
	PKI *PKI
	// SNIEndpointAddr is the neutral SNI endpoint's address, "ip:port",
	// for kzprobe sweep: the lab's middlebox is on the way, and what it
	// lets pass reaches a control.SNIEndpoint (lab/sniendpoint.go). The
	// control server returns it (GET /v1/sni-endpoint).
	SNIEndpointAddr netip.AddrPort
	// SNIEndpointPin is the endpoint's key pin.
	SNIEndpointPin chain.Pin
	// SNIBlockedAddr is an endpoint address the network resets, whatever
	// the SNI; SNIDeadAddr one where nothing listens.
	SNIBlockedAddr, SNIDeadAddr netip.AddrPort

	latency  time.Duration
	dnsDrop  float64
	echo     bool // Config.EchoClient
	errorLog *log.Logger
	reqLog   *log.Logger // Config.RequestLog, nil for none
	dohAddr  netip.Addr
	control  *controlServer

	sniEndpoint *control.SNIEndpoint

	sites       []SiteInfo
	byName      map[string]int
	byPublic    map[netip.Addr]int
	byOrigin    map[netip.Addr]int
	originCerts []*tls.Certificate

	done        chan struct{}
	wg          sync.WaitGroup
	listeners   []net.Listener
	httpServers []*http.Server
	dnsServers  []*dns.Server
	interceptLn *chanListener

	mu    sync.Mutex
	conns map[*trackedConn]struct{}

	closeOnce sync.Once
	closeErr  error
}

// Start builds the PKI, binds every address in a random loopback /24 and
// starts the servers. It retries on another /24 (and port) when a bind
// fails.
func Start(cfg Config) (*Lab, error) {
	if err := cfg.Scenario.Validate(); err != nil {
		return nil, fmt.Errorf("lab: scenario %q: %w", cfg.Scenario.Name, err)
	}
	if cfg.Port < 0 || cfg.Port > 65535 || cfg.DNSPort < 0 || cfg.DNSPort > 65535 {
		return nil, fmt.Errorf("lab: port %d or DNS port %d out of range", cfg.Port, cfg.DNSPort)
	}
	sc := cfg.Scenario.normalized()
	pki, err := NewPKI(time.Now())
	if err != nil {
		return nil, err
	}
	// Origin leaves do not depend on addresses: issue them once.
	certs := make([]*tls.Certificate, len(sc.Sites))
	for i, s := range sc.Sites {
		if s.DNS == DNSNonexistent {
			continue
		}
		if certs[i], err = pki.IssuePublic([]string{s.Domain}, nil); err != nil {
			return nil, err
		}
	}
	var lastErr error
	port := preferredPort
	for range startAttempts {
		l, err := start(cfg, sc, pki, certs, randomPrefix(), port, preferredDNSPort)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, errBind) {
			return nil, err
		}
		lastErr = err
		if errors.Is(err, errBindIPv6) {
			// Another /24 frees the IPv4 addresses, not ::1, which every
			// lab with IPv6 sites shares: try a free port from now on.
			port = 0
		}
	}
	return nil, fmt.Errorf("lab: no loopback /24 could be bound in %d attempts: %w", startAttempts, lastErr)
}

// randomPrefix picks 127.a.b.0/24 with a in 1..254, avoiding 127.0.0.0/16
// (127.0.0.1, and 127.0.1.1 that Debian gives the hostname) and
// 127.255.0.0/16.
func randomPrefix() netip.Prefix {
	a, b := 1+rand.IntN(254), rand.IntN(256)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(a), byte(b), 0}), 24)
}

// hostAddr is host h of a /24.
func hostAddr(p netip.Prefix, h int) netip.Addr {
	a := p.Addr().As4()
	a[3] = byte(h)
	return netip.AddrFrom4(a)
}

// start starts a lab in the given /24, binding TCP on cfg.Port (or
// preferPort, or a free one) and DNS on cfg.DNSPort (or preferDNS, or a
// free one).
func start(cfg Config, sc Scenario, pki *PKI, certs []*tls.Certificate, prefix netip.Prefix, preferPort, preferDNS int) (_ *Lab, err error) {
	l := &Lab{
		Net:               prefix,
		ControlServerName: ControlDNSName,
		BlockpageAddr:     hostAddr(prefix, hostBlockpage),
		ControlAddr:       hostAddr(prefix, hostControl),
		Scenario:          sc,
		PKI:               pki,
		latency:           sc.Latency,
		dnsDrop:           sc.DNSDrop,
		echo:              cfg.EchoClient,
		errorLog:          cfg.ErrorLog,
		reqLog:            cfg.RequestLog,
		dohAddr:           hostAddr(prefix, hostDoH),
		byName:            make(map[string]int),
		byPublic:          make(map[netip.Addr]int),
		byOrigin:          make(map[netip.Addr]int),
		originCerts:       certs,
		done:              make(chan struct{}),
		conns:             make(map[*trackedConn]struct{}),
	}
	if l.errorLog == nil {
		l.errorLog = log.New(io.Discard, "", 0)
	}
	for i, s := range sc.Sites {
		info := SiteInfo{Site: s}
		if s.DNS != DNSNonexistent {
			info.Addr = hostAddr(prefix, hostFirstSite+i)
			info.OriginAddr = hostAddr(prefix, hostFirstOrig+i)
			l.byPublic[info.Addr] = i
			l.byOrigin[info.OriginAddr] = i
		}
		if s.IPv6 && info.Addr.IsValid() {
			info.Addr6 = ipv6Addr
		}
		l.byName[s.Domain] = i
		l.sites = append(l.sites, info)
	}

	// Bind everything first, so that a conflict costs no goroutine.
	hosts := []int{hostDoH, hostDoT, hostBlockpage, hostSNIEndpoint, hostSNIOrigin, hostSNIBlocked}
	if l.hasIPv6() {
		hosts = append(hosts, hostOutside6)
	}
	for _, s := range l.sites {
		if !s.Addr.IsValid() {
			continue
		}
		if s.TLS != Unreachable {
			hosts = append(hosts, int(s.Addr.As4()[3]))
		}
		hosts = append(hosts, int(s.OriginAddr.As4()[3]))
	}
	lns, port, err := bindTCP(prefix, hosts, cfg.Port, preferPort)
	if err != nil {
		return nil, err
	}
	all := make([]net.Listener, 0, len(lns)+2)
	for _, h := range hosts {
		all = append(all, lns[h])
	}
	var ln6 net.Listener // the IPv6 sites' middlebox, nil when none
	if l.hasIPv6() {
		if ln6, err = net.Listen("tcp6", netip.AddrPortFrom(ipv6Addr, uint16(port)).String()); err != nil {
			for _, ln := range all {
				ln.Close()
			}
			return nil, fmt.Errorf("%w: %w", errBindIPv6, err)
		}
		all = append(all, ln6)
	}
	dnsTCP, dnsUDP, dnsPort, err := bindDNS(hostAddr(prefix, hostLocalDNS), cfg.DNSPort, preferDNS)
	if err != nil {
		for _, ln := range all {
			ln.Close()
		}
		return nil, err
	}
	l.Port, l.DNSPort = port, dnsPort
	l.LocalDNS = netip.AddrPortFrom(hostAddr(prefix, hostLocalDNS), uint16(dnsPort)).String()
	l.DoHURL = "https://" + netip.AddrPortFrom(l.dohAddr, uint16(port)).String() + dohPath
	l.DoTAddr = netip.AddrPortFrom(hostAddr(prefix, hostDoT), uint16(port)).String()
	l.listeners = append(all, dnsTCP)
	defer func() {
		if err != nil {
			l.Close()
			dnsUDP.Close()
		}
	}()

	// Certificates that name addresses.
	controlCert, err := pki.IssuePublic([]string{ControlDNSName},
		[]net.IP{hostAddr(prefix, hostDoH).AsSlice(), hostAddr(prefix, hostDoT).AsSlice()})
	if err != nil {
		return nil, err
	}
	blockCert, err := pki.IssuePublic([]string{BlockpageDNSName}, []net.IP{l.BlockpageAddr.AsSlice()})
	if err != nil {
		return nil, err
	}
	alpn := []string{"h2", "http/1.1"}

	// Origins: one server for every origin address.
	origins := l.newHTTPServer(http.HandlerFunc(l.serveOrigin), &tls.Config{GetCertificate: l.originCertificate, NextProtos: alpn})
	blockpage := l.newHTTPServer(http.HandlerFunc(l.serveBlockpage), &tls.Config{Certificates: []tls.Certificate{*blockCert}, NextProtos: alpn})
	doh := l.newHTTPServer(http.HandlerFunc(l.serveDoH), &tls.Config{Certificates: []tls.Certificate{*controlCert}, NextProtos: alpn})
	intercepted := l.newHTTPServer(http.HandlerFunc(l.serveIntercepted), nil)
	l.httpServers = []*http.Server{origins, blockpage, doh, intercepted}

	serveTLS := func(srv *http.Server, ln net.Listener) {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			srv.ServeTLS(&trackingListener{Listener: ln, lab: l, latency: true}, "", "")
		}()
	}
	serveTLS(doh, lns[hostDoH])
	serveTLS(blockpage, lns[hostBlockpage])
	for i, s := range l.sites {
		if !s.Addr.IsValid() {
			continue
		}
		serveTLS(origins, lns[int(s.OriginAddr.As4()[3])])
		if s.TLS != Unreachable {
			l.wg.Add(1)
			go l.serveMiddlebox(lns[int(s.Addr.As4()[3])], i)
		}
	}
	if ln6 != nil {
		l.wg.Add(1)
		go l.serveMiddlebox(ln6, siteByIPv6SNI)
		l.wg.Add(1)
		go l.serveMiddlebox(lns[hostOutside6], siteOutside6)
	}
	if err := l.startSNIEndpoint(lns); err != nil {
		return nil, err
	}
	l.interceptLn = newChanListener(&net.TCPAddr{IP: l.Net.Addr().AsSlice()})
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		intercepted.Serve(l.interceptLn)
	}()

	// Resolvers.
	dotCfg := &tls.Config{Certificates: []tls.Certificate{*controlCert}, NextProtos: []string{"dot"}}
	servers := []*dns.Server{
		{PacketConn: dnsUDP, Handler: dnsHandler{l, viewLocal}},
		{Listener: &trackingListener{Listener: dnsTCP, lab: l, latency: true}, Handler: dnsHandler{l, viewLocal}},
		{Listener: tls.NewListener(&trackingListener{Listener: lns[hostDoT], lab: l, latency: true}, dotCfg), Handler: dnsHandler{l, viewControl}},
	}
	for _, srv := range servers {
		if err := l.startDNS(srv); err != nil {
			return nil, err
		}
	}
	if err := l.startControlServer(); err != nil {
		return nil, err
	}
	return l, nil
}

// startDNS runs a miekg/dns server and waits until it serves, so that
// Close can shut it down.
func (l *Lab) startDNS(srv *dns.Server) error {
	started := make(chan struct{})
	failed := make(chan error, 1)
	srv.NotifyStartedFunc = func() { close(started) }
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		if err := srv.ActivateAndServe(); err != nil {
			failed <- err
		}
	}()
	select {
	case <-started:
		l.dnsServers = append(l.dnsServers, srv)
		return nil
	case err := <-failed:
		return fmt.Errorf("lab: dns server: %w", err)
	}
}

// bindTCP listens on every host of prefix on one port: port if non-zero,
// else preferPort if the first host can bind it, else a free port chosen
// by the first host's bind. Errors wrap errBind.
func bindTCP(prefix netip.Prefix, hosts []int, port, preferPort int) (map[int]net.Listener, int, error) {
	lns := make(map[int]net.Listener, len(hosts))
	fail := func(err error) (map[int]net.Listener, int, error) {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, 0, fmt.Errorf("%w: %w", errBind, err)
	}
	listen := func(h, p int) (net.Listener, error) {
		return net.Listen("tcp4", netip.AddrPortFrom(hostAddr(prefix, h), uint16(p)).String())
	}
	for k, h := range hosts {
		if k == 0 && port == 0 {
			ln, err := listen(h, preferPort)
			if err != nil {
				ln, err = listen(h, 0)
			}
			if err != nil {
				return fail(err)
			}
			lns[h] = ln
			port = ln.Addr().(*net.TCPAddr).Port
			continue
		}
		ln, err := listen(h, port)
		if err != nil {
			return fail(err)
		}
		lns[h] = ln
	}
	return lns, port, nil
}

// bindDNS binds TCP and UDP on the same port of addr: port if non-zero,
// else preferPort if both can bind it, else a free one. Errors wrap
// errBind.
func bindDNS(addr netip.Addr, port, preferPort int) (net.Listener, net.PacketConn, int, error) {
	try := func(p int) (net.Listener, net.PacketConn, error) {
		ln, err := net.Listen("tcp4", netip.AddrPortFrom(addr, uint16(p)).String())
		if err != nil {
			return nil, nil, err
		}
		p = ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp4", netip.AddrPortFrom(addr, uint16(p)).String())
		if err != nil {
			ln.Close()
			return nil, nil, err
		}
		return ln, pc, nil
	}
	ports := []int{port}
	if port == 0 {
		ports = []int{preferPort, 0, 0, 0}
	}
	var lastErr error
	for _, p := range ports {
		ln, pc, err := try(p)
		if err == nil {
			return ln, pc, ln.Addr().(*net.TCPAddr).Port, nil
		}
		lastErr = err
	}
	return nil, nil, 0, fmt.Errorf("%w: %w", errBind, lastErr)
}

// track registers a connection so that Close can end it.
func (l *Lab) track(c net.Conn) net.Conn {
	tc := &trackedConn{Conn: c, lab: l}
	l.mu.Lock()
	closed := l.conns == nil
	if !closed {
		l.conns[tc] = struct{}{}
	}
	l.mu.Unlock()
	if closed {
		c.Close()
	}
	return tc
}

func (l *Lab) untrack(c *trackedConn) {
	l.mu.Lock()
	if l.conns != nil {
		delete(l.conns, c)
	}
	l.mu.Unlock()
}

// Close stops every listener, connection and goroutine of the lab and
// waits for them. It is idempotent; later calls return the first result.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		var errs []error
		for _, ln := range l.listeners {
			ln.Close()
		}
		if l.interceptLn != nil {
			l.interceptLn.Close()
		}
		for _, srv := range l.httpServers {
			// Their listeners are closed above already.
			if err := srv.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		l.mu.Lock()
		conns := l.conns
		l.conns = nil // track() now closes late arrivals
		l.mu.Unlock()
		for c := range conns {
			c.Conn.Close()
		}
		for _, srv := range l.dnsServers {
			srv.Shutdown()
		}
		if l.sniEndpoint != nil {
			l.sniEndpoint.Close()
		}
		l.wg.Wait()
		l.stopControlServer()
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// Site returns a site of the running lab by domain (case-insensitive).
func (l *Lab) Site(domain string) (SiteInfo, bool) {
	name, err := canonicalName(domain)
	if err != nil {
		return SiteInfo{}, false
	}
	i, ok := l.byName[name]
	if !ok {
		return SiteInfo{}, false
	}
	return l.sites[i], true
}

// Sites returns the lab's sites in scenario order.
func (l *Lab) Sites() []SiteInfo {
	return append([]SiteInfo(nil), l.sites...)
}

// Nets returns the prefixes the lab's addresses are in: Net, and ::1/128
// when the scenario has IPv6 sites. A probe pointed at the lab allows
// these (--allow-net) and nothing else.
func (l *Lab) Nets() []netip.Prefix {
	nets := []netip.Prefix{l.Net}
	if l.hasIPv6() {
		nets = append(nets, netip.PrefixFrom(ipv6Addr, 128))
	}
	return nets
}

// hasIPv6 reports whether some site has an IPv6 address.
func (l *Lab) hasIPv6() bool {
	return slices.ContainsFunc(l.sites, func(s SiteInfo) bool { return s.Addr6.IsValid() })
}

// OutsideDialer returns a dial function for a vantage point outside the
// censored network, for the control server: a site's public address is
// rewritten to its origin's hidden address, so the middlebox is bypassed and
// an Unreachable site answers; ::1, when the lab has IPv6 sites, is
// rewritten to a splicer that reaches the origin of the site the SNI names.
// It dials IP literals in the lab's /24 only: a hostname is refused (it is
// never resolved), and so is any other address, such as the bogon
// 10.10.34.34.
func (l *Lab) OutsideDialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		switch network {
		case "tcp", "tcp4", "tcp6", "udp", "udp4":
		default:
			return nil, fmt.Errorf("lab: outside dialer: network %q not supported", network)
		}
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return nil, fmt.Errorf("lab: outside dialer: %q is not ip:port (the lab never resolves names): %w", addr, err)
		}
		ip := ap.Addr().Unmap()
		if i, ok := l.byPublic[ip]; ok {
			ip = l.sites[i].OriginAddr
		} else if ip == ipv6Addr && l.hasIPv6() && (network == "tcp" || network == "tcp6") {
			// The IPv6 sites share ::1: a splicer on the lab's /24 picks
			// the origin by SNI.
			ip, network = hostAddr(l.Net, hostOutside6), "tcp4"
		}
		if !l.Net.Contains(ip) {
			return nil, fmt.Errorf("lab: outside dialer: %v is outside the lab's network %v", ip, l.Net)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, netip.AddrPortFrom(ip, ap.Port()).String())
	}
}

// logRequest writes a line to the request log, if any.
func (l *Lab) logRequest(format string, a ...any) {
	if l.reqLog != nil {
		l.reqLog.Printf(format, a...)
	}
}
