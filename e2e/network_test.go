//go:build linux

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The network, all on 127.77.0.0/16 (Linux routes the whole of 127/8 to
// lo, so any of these addresses can be bound without configuration). The
// ports are high so that nothing else on the machine is likely to hold
// them.
const (
	// ispResolverAddr is unbound #1, the network's own resolver (UDP and
	// TCP). It lies for dnslie.e2e.test and says NXDOMAIN for
	// nxdomain.e2e.test.
	ispResolverAddr = "127.77.0.53:15353"
	// controlIP is unbound #2, the control resolver, serving DoT on
	// dotPort and DoH on dohPort with a certificate for controlName from
	// the public test PKI.
	controlIP   = "127.77.0.54"
	dotPort     = 18853
	dohPort     = 18443
	controlName = "control.e2e.test"
	// tlsPort is where every site listens; the probe is told with --port.
	tlsPort = 8443
	// originIP is nginx as a shared host: every origin behind it, found
	// by SNI (an unknown or missing SNI is refused), leaves from the
	// public test PKI.
	originIP = "127.77.1.1"
	// iscaOriginIP, iscaExpiredOriginIP and corpOriginIP are nginx as
	// dedicated origins, one domain each, whose certificate is also served
	// without SNI: they sit behind the interceptors. sslsplit 0.5.5 reads
	// the SNI by peeking at most 1 KiB of the ClientHello; a Chrome
	// ClientHello (post-quantum key share, padding) is larger, so sslsplit
	// reports "SNI peek: [n/a] [incomplete]" and dials upstream without
	// SNI. A shared host would refuse that; a dedicated one answers.
	iscaOriginIP        = "127.77.1.2"
	iscaExpiredOriginIP = "127.77.1.3"
	corpOriginIP        = "127.77.1.4"
	// iscaIP, iscaExpiredIP and corpIP are sslsplit instances in front of
	// those origins, forging leaves under the current ISCA intermediate,
	// the expired one and the corporate CA.
	iscaIP        = "127.77.2.1"
	iscaExpiredIP = "127.77.2.2"
	corpIP        = "127.77.2.3"
	// peekIP is sslsplit forging under the current ISCA intermediate in
	// front of the shared host: a Chrome hello leaves it without the SNI,
	// the shared host refuses it, and only the probe's small-hello retry
	// (under 1 KiB) is intercepted.
	peekIP = "127.77.2.4"
	// blockPageIP is nginx serving a block page, where the ISP's lie points.
	blockPageIP = "127.77.3.1"
	// silentIP is where nothing listens.
	silentIP = "127.77.4.1"
	// rejectIP is nginx refusing every handshake (ssl_reject_handshake).
	rejectIP = "127.77.5.1"
)

// site is one test domain: what each resolver says and where it leads.
type site struct {
	// Domain is the name measured.
	Domain string
	// Local is the ISP resolver's A record; empty means NXDOMAIN.
	Local string
	// Control is the control resolver's A record, the truth.
	Control string
	// Origin is where nginx serves the domain's genuine certificate:
	// originIP (by SNI), a dedicated address (with or without SNI), or
	// empty for nowhere.
	Origin string
}

// sites is the topology. The expected verdicts are in e2e_test.go.
var sites = []site{
	{Domain: "clean.e2e.test", Local: originIP, Control: originIP, Origin: originIP},
	{Domain: "isca.e2e.test", Local: iscaIP, Control: iscaIP, Origin: iscaOriginIP},
	{Domain: "isca-expired.e2e.test", Local: iscaExpiredIP, Control: iscaExpiredIP, Origin: iscaExpiredOriginIP},
	{Domain: "corp.e2e.test", Local: corpIP, Control: corpIP, Origin: corpOriginIP},
	{Domain: "isca-shared.e2e.test", Local: peekIP, Control: peekIP, Origin: originIP},
	{Domain: "dnslie.e2e.test", Local: blockPageIP, Control: originIP, Origin: originIP},
	{Domain: "nxdomain.e2e.test", Local: "", Control: originIP, Origin: originIP},
	{Domain: "tcpblock.e2e.test", Local: silentIP, Control: silentIP},
	{Domain: "tlsblock.e2e.test", Local: rejectIP, Control: rejectIP},
}

// hostPort joins an IP and a port.
func hostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }

// unboundConfig is the configuration of one unbound instance that answers
// only from local-data: the root zone is static, so nothing is ever looked
// up elsewhere, and do-not-query-address covers every address in case it
// tried. It reads no file outside dir and runs in the foreground.
func unboundConfig(dir, name string, interfaces []string, extra []string, data map[string]string, nxdomain []string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("server:")
	w("  username: \"\"")
	w("  chroot: \"\"")
	w("  directory: %q", dir)
	w("  pidfile: %q", filepath.Join(dir, name+".pid"))
	w("  use-syslog: no")
	w("  logfile: \"\"")
	w("  verbosity: 1")
	w("  log-queries: yes")
	w("  num-threads: 1")
	w("  do-ip4: yes")
	w("  do-ip6: no")
	w("  do-udp: yes")
	w("  do-tcp: yes")
	for _, i := range interfaces {
		w("  interface: %s", i)
	}
	w("  access-control: 127.0.0.0/8 allow")
	// Never recurse: no validator (no trust anchor to fetch), a static
	// root zone, no address worth querying, and outgoing queries (there
	// are none) would leave from loopback.
	w("  module-config: \"iterator\"")
	w("  outgoing-interface: %s", strings.Split(interfaces[0], "@")[0])
	w("  do-not-query-localhost: yes")
	w("  do-not-query-address: 0.0.0.0/0")
	w("  do-not-query-address: ::/0")
	// unbound shuffles its permitted outgoing ports at start, one
	// getrandom call each: over all 64K ports that took 2s idle and 18s on
	// a loaded machine. It never queries out here, so 16 ports will do.
	w("  outgoing-port-avoid: 0-65535")
	w("  outgoing-port-permit: 61000-61015")
	w("  outgoing-range: 16")
	w("  local-zone: \".\" static")
	for _, n := range nxdomain {
		w("  local-zone: %q always_nxdomain", n+".")
	}
	for _, s := range sortedKeys(data) {
		w("  local-data: %q", fmt.Sprintf("%s. 60 IN A %s", s, data[s]))
	}
	for _, e := range extra {
		w("  %s", e)
	}
	w("remote-control:")
	w("  control-enable: no")
	return b.String()
}

// nginxConfig serves every origin of sites (origins holds their
// certificates), the block page on blockPageIP and a handshake-refusing
// server on rejectIP. nginx stays in the foreground as a single process
// (master_process off), so its pid is all there is to stop.
func nginxConfig(dir string, origins map[string]*cert, blockPage *cert) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("daemon off;")
	w("master_process off;")
	w("worker_processes 1;")
	w("pid %s;", filepath.Join(dir, "nginx.pid"))
	w("error_log stderr info;")
	w("events { worker_connections 256; }")
	w("http {")
	w("  access_log %s;", filepath.Join(dir, "nginx-access.log"))
	for _, p := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		w("  %s_temp_path %s;", p, filepath.Join(dir, "nginx-"+p))
	}
	w("  default_type text/plain;")
	w("  ssl_protocols TLSv1.2 TLSv1.3;")
	// On the shared host an unknown or missing SNI is refused.
	w("  server { listen %s ssl http2 default_server; ssl_reject_handshake on; }", hostPort(originIP, tlsPort))
	for _, s := range sites {
		if s.Origin == "" {
			continue
		}
		c := origins[s.Domain]
		w("  server {")
		if s.Origin == originIP {
			w("    listen %s ssl http2;", hostPort(s.Origin, tlsPort))
		} else {
			w("    listen %s ssl http2 default_server;", hostPort(s.Origin, tlsPort))
		}
		w("    server_name %s;", s.Domain)
		w("    ssl_certificate %s;", c.CertFile)
		w("    ssl_certificate_key %s;", c.KeyFile)
		w("    location / { return 200 \"origin of %s\\n\"; }", s.Domain)
		w("  }")
	}
	w("  server {")
	w("    listen %s ssl http2 default_server;", hostPort(blockPageIP, tlsPort))
	w("    ssl_certificate %s;", blockPage.CertFile)
	w("    ssl_certificate_key %s;", blockPage.KeyFile)
	w("    location / { return 451 \"blocked\\n\"; }")
	w("  }")
	w("  server { listen %s ssl default_server; ssl_reject_handshake on; }", hostPort(rejectIP, tlsPort))
	w("}")
	return b.String()
}

// sslsplitArgs is the command line of one sslsplit instance: a static
// "ssl" proxyspec from listenIP to upstreamIP (sslsplit passes the
// client's SNI upstream when it can read it), forging leaves with ca, logging connections to
// dir/name-connect.log. sslsplit sends the forged leaf followed by ca's
// certificate by itself, so no -C is given: -C would only add further
// certificates (here it would send the intermediate twice). The forged
// leaf copies the origin's subject and SANs and is valid from a day ago
// for a year. sslsplit stays in the foreground (no -d), opens its files as
// root and then drops to nobody.
func sslsplitArgs(bin, dir, name, listenIP, upstreamIP string, ca *cert) []string {
	return []string{bin, "-k", ca.KeyFile, "-c", ca.CertFile,
		"-l", filepath.Join(dir, name+"-connect.log"),
		"ssl", listenIP, strconv.Itoa(tlsPort), upstreamIP, strconv.Itoa(tlsPort)}
}

// writeFile writes s to dir/name and returns the path.
func writeFile(t testing.TB, dir, name, s string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
