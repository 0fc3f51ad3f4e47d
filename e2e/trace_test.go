//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// The trace suite's network: a client, three routers and three servers,
// each server 4 hops from the client, in network namespaces of its own,
// IPv4 and IPv6:
//
//	client ── r1 ── r2 ── r3 ─┬─ A   (r2 intercepts tcp/443 to A)
//	                          ├─ B   (r3 kills tcp/443 to B by SNI)
//	                          └─ C   (untouched)
//
// The client's link is private (10.77.0.0/24, fd77::/64), so hop 1 is
// recorded as "private" with no address; the routers beyond use
// documentation ranges, recorded as /24 and /48 prefixes.
const (
	traceSNI        = "blocked.trace.test"
	traceControlSNI = "control.trace.test"
	// interceptPort and killPort are where r2's interceptor and r3's
	// haproxy listen; nftables redirects tcp/443 there.
	interceptPort = "8443"
	killPort      = "8444"
)

// traceServer is one of A, B, C: its addresses.
type traceServer struct {
	name   string
	v4, v6 string
}

var (
	serverA = traceServer{"A", "192.0.2.10", "2001:db8:10:a::10"}
	serverB = traceServer{"B", "192.0.2.74", "2001:db8:10:b::10"}
	serverC = traceServer{"C", "192.0.2.138", "2001:db8:10:c::10"}
)

// Prefixes the records must give the routers: r2 and r3 answer from
// their interfaces towards the client.
var (
	r2Prefix = map[bool]string{false: "198.51.100.0/24", true: "2001:db8:1::/48"}
	r3Prefix = map[bool]string{false: "203.0.113.0/24", true: "2001:db8:2::/48"}
)

// topology is the suite's namespaces.
type topology struct {
	client, r1, r2, r3, a, b, c *netns
}

// newTopology builds the network and deletes it at cleanup. Names carry
// the test's pid, so that two runs never meet.
func newTopology(t *testing.T) *topology {
	t.Helper()
	pfx := fmt.Sprintf("kzt%d-", os.Getpid())
	tp := &topology{}
	for _, n := range []struct {
		p    **netns
		name string
	}{{&tp.client, "client"}, {&tp.r1, "r1"}, {&tp.r2, "r2"}, {&tp.r3, "r3"}, {&tp.a, "a"}, {&tp.b, "b"}, {&tp.c, "c"}} {
		*n.p = newNetns(t, pfx+n.name)
	}
	for _, r := range []*netns{tp.r1, tp.r2, tp.r3} {
		r.forward(t)
	}
	link(t, tp.client, "eth0", []string{"10.77.0.2/24", "fd77::2/64"}, tp.r1, "down0", []string{"10.77.0.1/24", "fd77::1/64"})
	link(t, tp.r1, "up0", []string{"198.51.100.1/24", "2001:db8:1::1/64"}, tp.r2, "down0", []string{"198.51.100.2/24", "2001:db8:1::2/64"})
	link(t, tp.r2, "up0", []string{"203.0.113.2/24", "2001:db8:2::2/64"}, tp.r3, "down0", []string{"203.0.113.3/24", "2001:db8:2::3/64"})
	link(t, tp.r3, "a0", []string{"192.0.2.1/26", "2001:db8:10:a::1/64"}, tp.a, "eth0", []string{serverA.v4 + "/26", serverA.v6 + "/64"})
	link(t, tp.r3, "b0", []string{"192.0.2.65/26", "2001:db8:10:b::1/64"}, tp.b, "eth0", []string{serverB.v4 + "/26", serverB.v6 + "/64"})
	link(t, tp.r3, "c0", []string{"192.0.2.129/26", "2001:db8:10:c::1/64"}, tp.c, "eth0", []string{serverC.v4 + "/26", serverC.v6 + "/64"})

	tp.client.route(t, "default", "10.77.0.1")
	tp.client.route(t, "default", "fd77::1")
	tp.r1.route(t, "default", "198.51.100.2")
	tp.r1.route(t, "default", "2001:db8:1::2")
	tp.r2.route(t, "10.77.0.0/24", "198.51.100.1")
	tp.r2.route(t, "fd77::/64", "2001:db8:1::1")
	tp.r2.route(t, "192.0.2.0/24", "203.0.113.3")
	tp.r2.route(t, "2001:db8:10::/48", "2001:db8:2::3")
	tp.r3.route(t, "default", "203.0.113.2")
	tp.r3.route(t, "default", "2001:db8:2::2")
	tp.a.route(t, "default", "192.0.2.1")
	tp.a.route(t, "default", "2001:db8:10:a::1")
	tp.b.route(t, "default", "192.0.2.65")
	tp.b.route(t, "default", "2001:db8:10:b::1")
	tp.c.route(t, "default", "192.0.2.129")
	tp.c.route(t, "default", "2001:db8:10:c::1")
	return tp
}

// serveOrigin serves TLS on [::]:443 in ns with leaf (and its issuing CA)
// for every SNI, as a real origin: it answers, and closes when the client
// does. It returns the number of connections open at the moment.
func serveOrigin(t *testing.T, ns *netns, leaf tls.Certificate) *atomic.Int64 {
	t.Helper()
	ln := ns.listen(t, "[::]:443")
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf}}
	open := new(atomic.Int64)
	go acceptLoop(ln, func(c net.Conn) {
		open.Add(1)
		defer open.Add(-1)
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, cfg)
		if tc.Handshake() == nil {
			io.Copy(io.Discard, tc)
		}
	})
	return open
}

// acceptLoop serves every connection of ln in its own goroutine until ln
// is closed.
func acceptLoop(ln net.Listener, serve func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go serve(c)
	}
}

// interceptor is r2's transparent TLS interceptor for A: nftables
// redirects A's tcp/443 to it; it reads the ClientHello, answers the
// names in forge with a leaf forged under the ISCA intermediate, and
// splices every other name to A, unchanged.
type interceptor struct {
	ns     *netns
	forged tls.Certificate
	forge  string
	// upstream is A's address by the family the client came with.
	upstream4, upstream6 string
	mu                   sync.Mutex
	log                  []string
}

func (ic *interceptor) logf(format string, a ...any) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	ic.log = append(ic.log, fmt.Sprintf(format, a...))
}

// recorder keeps what is read through it and, once muted, swallows what
// is written: the TLS server that parsed a hello to be spliced sends no
// alert.
type recorder struct {
	net.Conn
	read  bytes.Buffer
	muted bool
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.read.Write(p[:n])
	return n, err
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.muted {
		return len(p), nil
	}
	return r.Conn.Write(p)
}

func (ic *interceptor) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	rec := &recorder{Conn: c}
	var sni string
	splice := false
	srv := tls.Server(rec, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		sni = h.ServerName
		if sni == ic.forge {
			return &tls.Config{Certificates: []tls.Certificate{ic.forged}}, nil
		}
		splice, rec.muted = true, true
		return nil, fmt.Errorf("splice %q", sni)
	}})
	err := srv.Handshake()
	if !splice {
		ic.logf("forged %q: %v", sni, err)
		if err == nil {
			io.Copy(io.Discard, srv)
		}
		return
	}
	upstream := ic.upstream4
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok && a.IP.To4() == nil {
		upstream = ic.upstream6
	}
	up, err := ic.ns.dial(upstream)
	if err != nil {
		ic.logf("splice %q to %s: %v", sni, upstream, err)
		return
	}
	defer up.Close()
	ic.logf("spliced %q to %s", sni, upstream)
	up.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := up.Write(rec.read.Bytes()); err != nil {
		return
	}
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
}

// killerConfig is r3's SNI killer for B: haproxy reads the ClientHello
// (req.ssl_sni) and rejects the connection for kill, passing every other
// name to B.
func killerConfig(kill string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("global")
	w("  maxconn 256")
	w("defaults")
	w("  mode tcp")
	w("  timeout connect 3s")
	w("  timeout client 10s")
	w("  timeout server 10s")
	for _, f := range []struct{ name, bind, server string }{
		{"v4", "0.0.0.0:" + killPort, serverB.v4 + ":443"},
		{"v6", ":::" + killPort + " v6only", serverB.v6 + ":443"},
	} {
		w("frontend kill%s", f.name)
		w("  bind %s", f.bind)
		w("  tcp-request inspect-delay 3s")
		w("  tcp-request content reject if { req.ssl_sni -i %s }", kill)
		w("  tcp-request content accept if { req.ssl_hello_type 1 }")
		w("  default_backend b%s", f.name)
		w("backend b%s", f.name)
		w("  server b %s", f.server)
	}
	return b.String()
}

// redirect is an nftables ruleset that sends tcp/443 for the server's
// two addresses to port on this router.
func redirect(s traceServer, port string) string {
	return fmt.Sprintf(`table inet kztrace {
	chain pre {
		type nat hook prerouting priority dstnat;
		ip daddr %s tcp dport 443 redirect to :%s
		ip6 daddr %s tcp dport 443 redirect to :%s
	}
}
`, s.v4, port, s.v6, port)
}

// traceRecord is the part of a kzprobe_trace record the suite checks,
// read as any reader of the format would.
type traceRecord struct {
	TestName string `json:"test_name"`
	Input    string `json:"input"`
	TestKeys struct {
		Address       string       `json:"address"`
		TCPTraceroute []traceProbe `json:"tcp_traceroute"`
		UDPTraceroute []traceProbe `json:"udp_traceroute"`
		TargetTrace   []traceIter  `json:"target_trace"`
		ControlTrace  []traceIter  `json:"control_trace"`
		Finding       struct {
			DestinationHops     *int      `json:"destination_hops"`
			DestinationHopsFrom string    `json:"destination_hops_from"`
			TCPAnswerHop        *int      `json:"tcp_answer_hop"`
			TransparentProxy    *bool     `json:"transparent_proxy"`
			TargetHop           *int      `json:"target_hop"`
			TargetAnswer        string    `json:"target_answer"`
			ControlHop          *int      `json:"control_hop"`
			ControlAnswer       string    `json:"control_answer"`
			Interference        string    `json:"interference"`
			InterferenceHop     *int      `json:"interference_hop"`
			ControlTravels      string    `json:"control_travels"`
			ControlTrusted      *bool     `json:"control_trusted"`
			AnsweringHop        *traceHop `json:"answering_hop"`
			BeforeHop           *traceHop `json:"before_hop"`
			SilentHops          []int     `json:"silent_hops"`
			Summary             string    `json:"summary"`
		} `json:"finding"`
		Failure *string `json:"failure"`
	} `json:"test_keys"`
}

type traceProbe struct {
	TTL      int       `json:"ttl"`
	Attempts int       `json:"attempts"`
	Answer   string    `json:"answer"`
	Hop      *traceHop `json:"hop"`
}

type traceHop struct {
	Class       string `json:"class"`
	Prefix      string `json:"prefix"`
	ASN         string `json:"asn"`
	CC          string `json:"cc"`
	Network     string `json:"network"`
	Destination bool   `json:"destination"`
}

type traceIter struct {
	TTL     int       `json:"ttl"`
	Answer  string    `json:"answer"`
	Hop     *traceHop `json:"hop"`
	HopFrom string    `json:"hop_from"`
	Chain   *struct {
		Trusted      bool          `json:"trusted"`
		Interception *interception `json:"interception"`
	} `json:"chain"`
}

// traceProbeRun runs `kzprobe trace` in the client's namespace to one
// server address and returns its record, the terminal output and how
// long it took.
func traceProbeRun(t *testing.T, bin, dir string, tp *topology, p *pki, dbs [2]string, addr string) (traceRecord, string, time.Duration) {
	t.Helper()
	out := filepath.Join(dir, "trace-"+strings.NewReplacer(":", "_", ".", "_").Replace(addr)+fmt.Sprint(time.Now().UnixNano())+".jsonl")
	argv := []string{"ip", "netns", "exec", tp.client.name, bin, "trace",
		"--sni", traceSNI, "--to", addr, "--control-sni", traceControlSNI,
		"--trust-roots", p.PublicRoot.CertFile, "--interception-roots", p.ISCARoot.CertFile,
		"--allow-net", "192.0.2.0/24,2001:db8:10::/48",
		"--asn-db", dbs[0], "--country-db", dbs[1],
		"--hop-timeout", "1s", "--max-hops", "8", "-o", out}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(argv, " "), err, stdout.String(), stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []traceRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r traceRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 1 {
		t.Fatalf("%s: %d records; want 1", out, len(recs))
	}
	return recs[0], stdout.String(), took
}

// TestTrace builds the namespaces above, runs the real kzprobe trace to
// A, B and C over IPv4 and IPv6, and checks that it finds the
// interception at hop 2 (A), the kill at hop 3 (B) and the real server at
// hop 4 (C), names A and B as transparent proxies (TCP answered before
// the destination's distance), and records routers as prefixes and the
// client's side as private. Then r2 goes silent and r3 rate-limits its
// ICMP errors, and the trace to C must still end within its bound and
// name hop 2 as silent.
func TestTrace(t *testing.T) {
	if os.Getenv(envRun) != "1" {
		t.Skipf("set %s=1 to run the end-to-end suite (root, ip, nft, haproxy; see e2e/README.md)", envRun)
	}
	if os.Geteuid() != 0 {
		cannotRun(t, "the trace suite creates network namespaces and must run as root; run scripts/e2e.sh as root")
	}
	var missing []string
	for _, tool := range []string{"ip", "nft", "haproxy", "sysctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		cannotRun(t, "missing %s; install with scripts/e2e.sh --install-only, or apt-get install -y iproute2 nftables haproxy procps", strings.Join(missing, ", "))
	}
	start := time.Now()
	dir := workDir(t)
	probeBin := buildProbe(t, dir)
	now := time.Now()
	p := newPKI(t, dir, now)
	origin := p.leaf(t, dir, "trace-origin", now, "*.trace.test", "trace.test")
	forged := p.forge(t, dir, "trace-forged", now, traceSNI)

	tp := newTopology(t)
	open := map[string]*atomic.Int64{}
	for name, s := range map[string]*netns{"A": tp.a, "B": tp.b, "C": tp.c} {
		open[name] = serveOrigin(t, s, tlsCert(t, origin, p.PublicInter))
	}
	ic := &interceptor{ns: tp.r2, forged: tlsCert(t, forged, p.ISCAInter), forge: traceSNI,
		upstream4: net.JoinHostPort(serverA.v4, "443"), upstream6: net.JoinHostPort(serverA.v6, "443")}
	go acceptLoop(tp.r2.listen(t, "[::]:"+interceptPort), ic.serve)
	tp.r2.nft(t, redirect(serverA, interceptPort))
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(killerConfig(traceSNI)), 0o644); err != nil {
		t.Fatal(err)
	}
	hp := startDaemon(t, dir, "haproxy", "ip", "netns", "exec", tp.r3.name, "haproxy", "-db", "-f", cfg)
	waitFor(t, hp, "r3:"+killPort, func() error {
		c, err := tp.r3.dial(net.JoinHostPort("127.0.0.1", killPort))
		if err == nil {
			c.Close()
		}
		return err
	})
	tp.r3.nft(t, redirect(serverB, killPort))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("interceptor log:\n%s", strings.Join(ic.log, "\n"))
		}
	})
	t.Logf("topology and servers up after %v", time.Since(start).Round(time.Millisecond))
	dbs := writeTraceMMDBs(t, dir)
	bin := probeBin()

	for _, v6 := range []bool{false, true} {
		family := map[bool]string{false: "ipv4", true: "ipv6"}[v6]
		for _, s := range []traceServer{serverA, serverB, serverC} {
			addr := s.v4
			if v6 {
				addr = s.v6
			}
			t.Run(family+"/"+s.name, func(t *testing.T) {
				rec, table, took := traceProbeRun(t, bin, dir, tp, p, dbs, addr)
				t.Logf("%s (%v):%s", addr, took.Round(time.Millisecond), table)
				checkTrace(t, rec, s, v6)
				if s.name == "C" {
					checkClosed(t, open["C"])
				}
			})
		}
	}

	// A silent router (r2 sends no time exceeded) and an ICMP rate limit
	// (r3 sends one a minute): the trace to C still ends within its bound
	// and says which hops were silent.
	tp.r2.nft(t, `table inet kzsilent {
	chain out {
		type filter hook output priority 0;
		icmp type time-exceeded drop
		icmpv6 type time-exceeded drop
	}
}
`)
	tp.r3.nft(t, `table inet kzlimit {
	chain out {
		type filter hook output priority 0;
		icmp type time-exceeded limit rate over 1/minute burst 1 packets drop
		icmpv6 type time-exceeded limit rate over 1/minute burst 1 packets drop
	}
}
`)
	for _, v6 := range []bool{false, true} {
		family := map[bool]string{false: "ipv4", true: "ipv6"}[v6]
		t.Run(family+"/silent-and-rate-limited", func(t *testing.T) {
			addr := serverC.v4
			if v6 {
				addr = serverC.v6
			}
			rec, table, took := traceProbeRun(t, bin, dir, tp, p, dbs, addr)
			t.Logf("%s (%v):%s", addr, took.Round(time.Millisecond), table)
			checkSilentTrace(t, rec, v6, took)
		})
	}
	t.Logf("trace suite took %v", time.Since(start).Round(time.Millisecond))
}

// checkTrace checks one trace to A, B or C in the healthy network.
func checkTrace(t *testing.T, rec traceRecord, s traceServer, v6 bool) {
	t.Helper()
	tk, f := rec.TestKeys, rec.TestKeys.Finding
	if rec.TestName != "kzprobe_trace" {
		t.Errorf("test_name %q; want kzprobe_trace", rec.TestName)
	}
	if tk.Failure != nil {
		t.Fatalf("failure %q; want null", *tk.Failure)
	}
	checkRouters(t, tk.TCPTraceroute, v6)
	// The destination is 4 hops away for every server, by UDP.
	if f.DestinationHops == nil || *f.DestinationHops != 4 || f.DestinationHopsFrom != "udp" {
		t.Errorf("destination_hops %v from %q; want 4 from udp", deref(f.DestinationHops), f.DestinationHopsFrom)
	}
	wantTCP, wantProxy := 4, false
	switch s.name {
	case "A":
		wantTCP, wantProxy = 2, true
	case "B":
		wantTCP, wantProxy = 3, true
	}
	if f.TCPAnswerHop == nil || *f.TCPAnswerHop != wantTCP {
		t.Errorf("tcp_answer_hop %v; want %d", deref(f.TCPAnswerHop), wantTCP)
	}
	if f.TransparentProxy == nil || *f.TransparentProxy != wantProxy {
		t.Errorf("transparent_proxy %v; want %v", derefB(f.TransparentProxy), wantProxy)
	}
	switch s.name {
	case "A":
		// Interception at hop 2, by r2: the forged chain leads to the
		// ISCA root; the control SNI is spliced through the same box.
		if f.Interference != "interception" || f.InterferenceHop == nil || *f.InterferenceHop != 2 {
			t.Errorf("interference %q at hop %v; want interception at 2", f.Interference, deref(f.InterferenceHop))
		}
		if it := lastIter(tk.TargetTrace); it == nil || it.Chain == nil || it.Chain.Interception == nil || it.Chain.Interception.RootName == "" {
			t.Errorf("the target trace's last iteration has no interception finding: %+v", it)
		}
		if f.ControlTravels != "same_hop" || f.ControlTrusted == nil || !*f.ControlTrusted {
			t.Errorf("control_travels %q, control_trusted %v; want same_hop with a trusted chain", f.ControlTravels, derefB(f.ControlTrusted))
		}
		checkAnswering(t, f.AnsweringHop, r2Prefix[v6], "r2")
		if h := f.AnsweringHop; h == nil || h.ASN != "AS64501" || h.CC != "KZ" || h.Network != "r2 Transit" {
			t.Errorf("answering hop %+v; want r2's network AS64501, KZ, r2 Transit (from --asn-db, --country-db)", h)
		}
	case "B":
		// The kill at hop 3, by haproxy in r3.
		if f.InterferenceHop == nil || *f.InterferenceHop != 3 || !slices.Contains([]string{"reset", "eof"}, f.Interference) {
			t.Errorf("interference %q at hop %v; want reset or eof at 3", f.Interference, deref(f.InterferenceHop))
		}
		if f.ControlTravels != "same_hop" || f.ControlTrusted == nil || !*f.ControlTrusted {
			t.Errorf("control_travels %q, control_trusted %v; want same_hop with a trusted chain", f.ControlTravels, derefB(f.ControlTrusted))
		}
		checkAnswering(t, f.AnsweringHop, r3Prefix[v6], "r3")
		checkAnswering(t, f.BeforeHop, r2Prefix[v6], "r2 (before)")
		if a, b := f.AnsweringHop, f.BeforeHop; a == nil || b == nil || a.ASN != "AS64502" || b.ASN != "AS64501" {
			t.Errorf("answering hop %+v, before %+v; want AS64502 (r3) after AS64501 (r2)", a, b)
		}
	case "C":
		// The real server, at hop 4, with its trusted chain.
		if f.Interference != "none" || f.TargetHop == nil || *f.TargetHop != 4 {
			t.Errorf("interference %q, target_hop %v; want none at 4", f.Interference, deref(f.TargetHop))
		}
		if h := f.AnsweringHop; h == nil || !h.Destination || h.Prefix != prefixOf(s, v6) {
			t.Errorf("answering_hop %+v; want the destination, %s", h, prefixOf(s, v6))
		}
	}
	if len(f.SilentHops) != 0 {
		t.Errorf("silent_hops %v; want none", f.SilentHops)
	}
}

// checkClosed checks that the trace left no connection open at the
// server: each TLS iteration's connection is closed with the TTL put back,
// so that its FIN reaches the server. With the TTL left lowered, the FIN
// of every iteration whose hello died on the way died there too, and the
// server held those connections until its own timeout (10 s here): one
// that serves a connection at a time never answered the next TTL.
func checkClosed(t *testing.T, open *atomic.Int64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for open.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := open.Load(); n > 0 {
		t.Errorf("%d connections still open at the server 3 s after the trace; want none", n)
	}
}

// checkRouters checks how the TCP traceroute recorded the routers: hop 1
// private with no address, hops 2 and 3 as prefixes (when the port was
// not answered there already).
func checkRouters(t *testing.T, ps []traceProbe, v6 bool) {
	t.Helper()
	for _, p := range ps {
		if p.Answer != "router" {
			continue
		}
		want := map[int]traceHop{1: {Class: "private"}, 2: {Class: "public", Prefix: r2Prefix[v6]}, 3: {Class: "public", Prefix: r3Prefix[v6]}}[p.TTL]
		if p.Hop == nil || p.Hop.Class != want.Class || p.Hop.Prefix != want.Prefix {
			t.Errorf("tcp_traceroute hop %d: %+v; want %+v", p.TTL, p.Hop, want)
		}
	}
	if len(ps) == 0 || ps[0].Answer != "router" {
		t.Errorf("tcp_traceroute %+v; want hop 1 answered by r1", ps)
	}
}

// checkAnswering checks a finding's hop is the router with prefix.
func checkAnswering(t *testing.T, h *traceHop, prefix, name string) {
	t.Helper()
	if h == nil || h.Class != "public" || h.Prefix != prefix || h.Destination {
		t.Errorf("%s: hop %+v; want the router at %s", name, h, prefix)
	}
}

// checkSilentTrace checks the trace to C with r2 silent and r3
// rate-limited.
func checkSilentTrace(t *testing.T, rec traceRecord, v6 bool, took time.Duration) {
	t.Helper()
	tk, f := rec.TestKeys, rec.TestKeys.Finding
	if !slices.Equal(f.SilentHops, []int{2}) {
		t.Errorf("silent_hops %v; want [2]", f.SilentHops)
	}
	if f.TargetHop == nil || *f.TargetHop != 4 || f.Interference != "none" {
		t.Errorf("target_hop %v, interference %q; want 4, none", deref(f.TargetHop), f.Interference)
	}
	if f.DestinationHops == nil || *f.DestinationHops != 4 {
		t.Errorf("destination_hops %v; want 4", deref(f.DestinationHops))
	}
	// r2 silent: every trace's hop 2 is silent, after 2 attempts for the
	// traceroutes.
	for _, ps := range [][]traceProbe{tk.TCPTraceroute, tk.UDPTraceroute} {
		if len(ps) < 2 || ps[1].Answer != "silent" || ps[1].Attempts != 2 {
			t.Errorf("hop 2 of a traceroute: %+v; want silent after 2 attempts", ps)
		}
	}
	// r3 rate-limited: it answered once (the TCP traceroute), and its
	// router is still named in the TLS traces from that answer.
	if p := probeAtTTL(tk.TCPTraceroute, 3); p == nil || p.Answer != "router" || p.Hop == nil || p.Hop.Prefix != r3Prefix[v6] {
		t.Errorf("tcp_traceroute hop 3: %+v; want r3 at %s", p, r3Prefix[v6])
	}
	if p := probeAtTTL(tk.UDPTraceroute, 3); p == nil || p.Answer != "silent" {
		t.Errorf("udp_traceroute hop 3: %+v; want silent (rate limit)", p)
	}
	// The bound: 4 traces, each at most 2 silent hops of 2 attempts of 1s
	// (the TLS traces 1 attempt), plus the work: well under 20s.
	if took > 20*time.Second {
		t.Errorf("took %v; want the trace to end within 20s", took)
	}
	if !strings.Contains(f.Summary, "Silent hops: 2.") {
		t.Errorf("summary %q does not name the silent hop", f.Summary)
	}
}

func probeAtTTL(ps []traceProbe, ttl int) *traceProbe {
	for i := range ps {
		if ps[i].TTL == ttl {
			return &ps[i]
		}
	}
	return nil
}

func lastIter(its []traceIter) *traceIter {
	if len(its) == 0 {
		return nil
	}
	return &its[len(its)-1]
}

func prefixOf(s traceServer, v6 bool) string {
	if v6 {
		return "2001:db8:10::/48"
	}
	return "192.0.2.0/24"
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func derefB(p *bool) any {
	if p == nil {
		return nil
	}
	return *p
}

// tlsCert is c with its issuer as a tls.Certificate, as a server sends it.
func tlsCert(t *testing.T, c, issuer *cert) tls.Certificate {
	t.Helper()
	return tls.Certificate{Certificate: [][]byte{c.Cert.Raw, issuer.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
}

// forge issues a leaf for names under the current ISCA intermediate, as
// the interceptor would forge it.
func (p *pki) forge(t *testing.T, dir, name string, now time.Time, names ...string) *cert {
	t.Helper()
	tmpl := template(pkix.Name{CommonName: names[0]}, now.Add(-time.Hour), now.Add(30*24*time.Hour), false)
	tmpl.DNSNames = names
	return issue(t, dir, name, tmpl, p.ISCAInter, ecKey(t))
}

// writeTraceMMDBs writes an ASN and a country MMDB (GeoLite2's shapes)
// for the topology's public prefixes: r2's network AS64501 "r2 Transit"
// and r3's AS64502 "r3 Backbone", both in KZ, the servers' AS64510 in NL.
func writeTraceMMDBs(t *testing.T, dir string) [2]string {
	t.Helper()
	nets := []struct {
		cidrs   []string
		asn     uint32
		name    string
		cc, ccn string
	}{
		{[]string{"198.51.100.0/24", "2001:db8:1::/48"}, 64501, "r2 Transit", "KZ", "Kazakhstan"},
		{[]string{"203.0.113.0/24", "2001:db8:2::/48"}, 64502, "r3 Backbone", "KZ", "Kazakhstan"},
		{[]string{"192.0.2.0/24", "2001:db8:10::/48"}, 64510, "Origins", "NL", "Netherlands"},
	}
	asn := map[string]mmdbtype.Map{}
	country := map[string]mmdbtype.Map{}
	for _, n := range nets {
		for _, c := range n.cidrs {
			asn[c] = mmdbtype.Map{
				"autonomous_system_number":       mmdbtype.Uint32(n.asn),
				"autonomous_system_organization": mmdbtype.String(n.name),
			}
			cc := mmdbtype.Map{"iso_code": mmdbtype.String(n.cc), "names": mmdbtype.Map{"en": mmdbtype.String(n.ccn)}}
			country[c] = mmdbtype.Map{"country": cc, "registered_country": cc}
		}
	}
	return [2]string{writeMMDB(t, dir, "GeoLite2-ASN", asn), writeMMDB(t, dir, "GeoLite2-Country", country)}
}

// writeMMDB writes an MMDB file of dbType holding recs (CIDR → record)
// into dir.
func writeMMDB(t *testing.T, dir, dbType string, recs map[string]mmdbtype.Map) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, IPVersion: 6, RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range recs {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, rec); err != nil {
			t.Fatalf("insert %s: %v", cidr, err)
		}
	}
	path := filepath.Join(dir, dbType+".mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	return path
}
