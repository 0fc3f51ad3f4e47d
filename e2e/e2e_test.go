//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"
)

// Environment switches.
const (
	// envRun must be "1" for the suite to run at all.
	envRun = "KZPROBE_E2E"
	// envBin names a prebuilt kzprobe to test instead of building one.
	envBin = "KZPROBE_E2E_BIN"
	// envKeep keeps the work folder (configs, logs, output) even on success.
	envKeep = "KZPROBE_E2E_KEEP"
	// envBreak swaps two expectations, to show that the suite fails when
	// a verdict is wrong.
	envBreak = "KZPROBE_E2E_BREAK"
	// envRequire turns "cannot run here" (not root, a package missing)
	// from a skip into a failure, for CI, where a skipped suite must not
	// pass unnoticed.
	envRequire = "KZPROBE_E2E_REQUIRE"
)

// cannotRun skips the test with a message saying why it did not run, or
// fails it when KZPROBE_E2E_REQUIRE=1.
func cannotRun(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := "SKIP (not run): " + fmt.Sprintf(format, args...)
	if os.Getenv(envRequire) == "1" {
		t.Fatalf("%s (%s=1: failing instead of skipping)", msg, envRequire)
	}
	t.Skip(msg)
}

// expectation is what kzprobe must say about one domain.
type expectation struct {
	Verdict string
	// Consistency is test_keys.dns_consistency.status.
	Consistency string
	// Handshake is true when at least one TLS handshake must succeed.
	Handshake bool
	// SmallHelloRetry is true when the Chrome handshake must be refused
	// and the small-hello retry get through.
	SmallHelloRetry bool
	// Interception is nil when test_keys.interception must be null.
	Interception *wantInterception
}

// wantInterception is the interception finding expected. The evidence is
// always "signature" (the chain verifies up to the test ISCA root given
// with --interception-roots) and the root's name is the ISCA one.
type wantInterception struct {
	// Root and Intermediate are the certificates whose SHA-1s must be
	// reported as root_sha1 and among intermediates[].sha1 (with
	// signer_root_sha1 = Root's).
	Root, Intermediate *cert
	// ValidAtMeasurement is the intermediate's valid_at_measurement.
	ValidAtMeasurement bool
	// BrowserError is browser_error_even_with_root_installed, and Reasons
	// must all be among browser_error_reasons.
	BrowserError bool
	Reasons      []string
}

// expectations is the scenario catalog: per domain of sites, the verdict
// and evidence kzprobe must report.
func expectations(p *pki) map[string]expectation {
	return map[string]expectation{
		"clean.e2e.test": {Verdict: "ok", Consistency: "consistent", Handshake: true},
		"isca.e2e.test": {Verdict: "mitm_isca", Consistency: "consistent", Handshake: true,
			Interception: &wantInterception{Root: p.ISCARoot, Intermediate: p.ISCAInter, ValidAtMeasurement: true}},
		"isca-expired.e2e.test": {Verdict: "mitm_isca", Consistency: "consistent", Handshake: true,
			Interception: &wantInterception{Root: p.ISCARoot, Intermediate: p.ISCAExpired, ValidAtMeasurement: false,
				BrowserError: true, Reasons: []string{"intermediate_expired"}}},
		"corp.e2e.test": {Verdict: "mitm_other", Consistency: "consistent", Handshake: true},
		// Seen by the small-hello retry only (sslsplit's 1 KiB SNI peek).
		"isca-shared.e2e.test": {Verdict: "mitm_isca", Consistency: "consistent", Handshake: true, SmallHelloRetry: true,
			Interception: &wantInterception{Root: p.ISCARoot, Intermediate: p.ISCAInter, ValidAtMeasurement: true}},
		"dnslie.e2e.test":   {Verdict: "dns_tampering", Consistency: "inconsistent"},
		"nxdomain.e2e.test": {Verdict: "dns_tampering", Consistency: "inconsistent"},
		"tcpblock.e2e.test": {Verdict: "tcp_blocking", Consistency: "consistent"},
		"tlsblock.e2e.test": {Verdict: "tls_blocking", Consistency: "consistent"},
	}
}

// measurement is the part of one kzprobe JSON line the suite checks. It is
// decoded independently of package probe, so the suite checks the
// documented output format, not the Go types.
type measurement struct {
	Input    string `json:"input"`
	TestKeys struct {
		Domain         string `json:"domain"`
		Verdict        string `json:"verdict"`
		VerdictReason  string `json:"verdict_reason"`
		DNSConsistency *struct {
			Status string `json:"status"`
			Reason string `json:"reason"`
		} `json:"dns_consistency"`
		TLSHandshakes []struct {
			Address          string  `json:"address"`
			ServerName       string  `json:"server_name"`
			Fingerprint      string  `json:"fingerprint"`
			SmallHelloRetry  bool    `json:"small_hello_retry"`
			Failure          *string `json:"failure"`
			PeerCertificates []struct {
				Data   string `json:"data"`
				Format string `json:"format"`
			} `json:"peer_certificates"`
		} `json:"tls_handshakes"`
		// Chains are the judgements of tls_handshakes; InterceptionChain
		// names the one holding the strongest finding (format 0.2.0: the
		// finding is written once, in its chain).
		Chains []*struct {
			Interception *interception `json:"interception"`
		} `json:"chains"`
		InterceptionChain *int `json:"interception_chain"`
	} `json:"test_keys"`
}

// interception is a chain's interception finding as the record writes it.
type interception struct {
	Evidence      string `json:"evidence"`
	RootSHA1      string `json:"root_sha1"`
	RootName      string `json:"root_name"`
	Intermediates []struct {
		SHA1               string `json:"sha1"`
		SHA256             string `json:"sha256"`
		Serial             string `json:"serial"`
		NotBefore          string `json:"not_before"`
		NotAfter           string `json:"not_after"`
		ValidAtMeasurement bool   `json:"valid_at_measurement"`
		SignerRootSHA1     string `json:"signer_root_sha1"`
	} `json:"intermediates"`
	BrowserError        bool     `json:"browser_error_even_with_root_installed"`
	BrowserErrorReasons []string `json:"browser_error_reasons"`
}

// Interception is the record's strongest interception finding: the one in
// the chain interception_chain names, nil when it names none.
func (m measurement) Interception() *interception {
	i := m.TestKeys.InterceptionChain
	if i == nil || *i < 0 || *i >= len(m.TestKeys.Chains) || m.TestKeys.Chains[*i] == nil {
		return nil
	}
	return m.TestKeys.Chains[*i].Interception
}

// tools are the third-party programs the suite runs.
type tools struct{ unbound, nginx, sslsplit, openssl, haproxy string }

// findTools returns the programs, or skips the test naming what is missing.
func findTools(t *testing.T) tools {
	t.Helper()
	var missing []string
	find := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"} {
			if p := filepath.Join(d, name); isExecutable(p) {
				return p
			}
		}
		missing = append(missing, name)
		return ""
	}
	tl := tools{unbound: find("unbound"), nginx: find("nginx"), sslsplit: find("sslsplit"), openssl: find("openssl"), haproxy: find("haproxy")}
	if len(missing) > 0 {
		cannotRun(t, "missing %s; install with scripts/e2e.sh --install-only, or apt-get install -y unbound nginx-light sslsplit openssl haproxy", strings.Join(missing, ", "))
	}
	return tl
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// TestE2E runs the real kzprobe against unbound, nginx and sslsplit on
// loopback and checks every domain of sites against expectations.
func TestE2E(t *testing.T) {
	if os.Getenv(envRun) != "1" {
		t.Skipf("set %s=1 to run the end-to-end suite (root, unbound, nginx, sslsplit, openssl, haproxy; see e2e/README.md)", envRun)
	}
	if os.Geteuid() != 0 {
		cannotRun(t, "the end-to-end suite must run as root (sslsplit, started as root, drops to nobody; the packages need installing); run scripts/e2e.sh as root")
	}
	tl := findTools(t)
	ctx := t.Context()
	start := time.Now()

	dir := workDir(t)
	probeBin := buildProbe(t, dir)

	now := time.Now()
	p := newPKI(t, dir, now)
	t.Logf("test PKI generated in %v", time.Since(start).Round(time.Millisecond))
	want := expectations(p)
	if os.Getenv(envBreak) == "1" {
		t.Logf("%s=1: swapping the expectations of isca.e2e.test and corp.e2e.test; the suite must fail", envBreak)
		want["isca.e2e.test"], want["corp.e2e.test"] = want["corp.e2e.test"], want["isca.e2e.test"]
	}

	checkFree(t)
	startServers(t, tl, dir, p, now)
	t.Logf("servers listening after %v", time.Since(start).Round(time.Millisecond))
	chains := &chainCache{openssl: tl.openssl, m: map[string][][]byte{}}
	checkServers(t, p, chains)
	t.Logf("servers checked after %v", time.Since(start).Round(time.Millisecond))

	var domains []string
	for _, s := range sites {
		domains = append(domains, s.Domain)
	}
	doh := fmt.Sprintf("https://%s/dns-query", hostPort(controlIP, dohPort))
	bin := probeBin()
	got := runProbe(t, bin, dir, p, "doh", doh, targetFlags(domains))
	printTable(t, got, want)

	for _, s := range sites {
		t.Run(s.Domain, func(t *testing.T) {
			m, ok := got[s.Domain]
			if !ok {
				t.Fatalf("no measurement for %s in the output", s.Domain)
			}
			checkMeasurement(ctx, t, m, want[s.Domain], chains)
		})
	}

	// The same probe with the control over DoT, on the two domains whose
	// verdict depends on the control's answers.
	dot := "tls://" + hostPort(controlIP, dotPort)
	gotDoT := runProbe(t, bin, dir, p, "dot", dot, targetFlags([]string{"clean.e2e.test", "dnslie.e2e.test"}))
	for _, d := range []string{"clean.e2e.test", "dnslie.e2e.test"} {
		t.Run("dot/"+d, func(t *testing.T) {
			m, ok := gotDoT[d]
			if !ok {
				t.Fatalf("no measurement for %s in the DoT run's output", d)
			}
			if g, w := m.TestKeys.Verdict, want[d].Verdict; g != w {
				t.Errorf("verdict with a DoT control: got %s (%s); want %s", g, m.TestKeys.VerdictReason, w)
			}
		})
	}

	// kzprobe sweep through an SNI-selective middlebox (sweep_test.go).
	t.Run("sweep", func(t *testing.T) { testSweep(t, tl, dir, bin, p, now, want) })
	t.Logf("end-to-end suite took %v", time.Since(start).Round(time.Millisecond))
}

// targetFlags gives each domain to kzprobe run with -d.
func targetFlags(domains []string) []string {
	var args []string
	for _, d := range domains {
		args = append(args, "-d", d)
	}
	return args
}

// workDir makes the folder for configs, keys, logs and output. It is kept
// when the test fails (or with KZPROBE_E2E_KEEP=1), and its path is logged.
func workDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kzprobe-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	// sslsplit drops to nobody after opening its files; nothing in dir
	// needs to be readable by it afterwards, but its connect log is
	// reopened on SIGUSR1, so keep the folder traversable.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv(envKeep) == "1" {
			t.Logf("work folder kept: %s (daemon logs *.log, configs, certificates, probe output *.jsonl)", dir)
			if t.Failed() {
				dumpLogs(t, dir)
			}
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// dumpLogs logs every log file in dir, for CI where the folder is gone.
func dumpLogs(t *testing.T, dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if len(b) > 8000 {
			b = append([]byte("...\n"), b[len(b)-8000:]...)
		}
		t.Logf("==== %s ====\n%s", filepath.Base(l), b)
	}
}

// buildProbe starts building kzprobe from this module into dir, while the
// servers start, and returns a function that waits for the binary. With
// KZPROBE_E2E_BIN set it tests that binary instead.
func buildProbe(t *testing.T, dir string) (wait func() string) {
	t.Helper()
	if b := os.Getenv(envBin); b != "" {
		t.Logf("testing %s (%s)", b, envBin)
		return func() string { return b }
	}
	// go test puts its own GOROOT/bin first in the test's PATH.
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building kzprobe: %v (or set %s)", err, envBin)
	}
	statSources(t)
	bin := filepath.Join(dir, "kzprobe")
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := exec.CommandContext(t.Context(), gobin, "build", "-o", bin, "kzprobe/cmd/kzprobe").CombinedOutput()
		done <- result{out, err}
	}()
	return func() string {
		t.Helper()
		r := <-done
		if r.err != nil {
			t.Fatalf("go build kzprobe/cmd/kzprobe: %v\n%s", r.err, r.out)
		}
		return bin
	}
}

// statSources looks at every Go source file of the module and its go.mod
// and go.sum, so that go test's cache, which keys a result on the files a
// test looked at, runs the suite again when the probe's code changed: the
// binary is built by a go subprocess the cache does not see (a cached
// "ok" once hid a change to the sweep's output from this suite).
func statSources(t *testing.T) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root:
			return filepath.SkipDir
		case d.IsDir():
			return nil
		case strings.HasSuffix(path, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum":
			_, err := os.Stat(path)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("looking at the module's sources: %v", err)
	}
}

// checkFree fails when something already answers on the suite's
// addresses (a leftover from an earlier run would be tested instead).
func checkFree(t *testing.T) {
	t.Helper()
	addrs := []string{hostPort(controlIP, dotPort), hostPort(controlIP, dohPort), ispResolverAddr}
	for _, ip := range []string{originIP, iscaOriginIP, iscaExpiredOriginIP, corpOriginIP, iscaIP, iscaExpiredIP, corpIP, peekIP, blockPageIP, silentIP, rejectIP} {
		addrs = append(addrs, hostPort(ip, tlsPort))
	}
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s is already in use: stop whatever listens there (a leftover e2e daemon?) and rerun", a)
		}
	}
}

// startServers writes the configurations and starts every daemon, waiting
// until each one listens.
func startServers(t *testing.T, tl tools, dir string, p *pki, now time.Time) {
	t.Helper()
	local, truth := map[string]string{}, map[string]string{}
	var nx []string
	origins := map[string]*cert{}
	for _, s := range sites {
		if s.Local == "" {
			nx = append(nx, s.Domain)
		} else {
			local[s.Domain] = s.Local
		}
		truth[s.Domain] = s.Control
		if s.Origin != "" {
			origins[s.Domain] = p.leaf(t, dir, s.Domain, now, s.Domain)
		}
	}
	controlLeaf := p.leaf(t, dir, controlName, now, controlName, controlIP)
	blockPage := p.leaf(t, dir, "blocked.e2e.test", now, "blocked.e2e.test")

	ispAddr, ispPort, _ := net.SplitHostPort(ispResolverAddr)
	ispConf := writeFile(t, dir, "unbound-isp.conf", unboundConfig(dir, "unbound-isp",
		[]string{ispAddr + "@" + ispPort}, nil, local, nx))
	controlConf := writeFile(t, dir, "unbound-control.conf", unboundConfig(dir, "unbound-control",
		[]string{fmt.Sprintf("%s@%d", controlIP, dotPort), fmt.Sprintf("%s@%d", controlIP, dohPort)},
		[]string{
			fmt.Sprintf("tls-port: %d", dotPort),
			fmt.Sprintf("https-port: %d", dohPort),
			fmt.Sprintf("tls-service-key: %q", controlLeaf.KeyFile),
			fmt.Sprintf("tls-service-pem: %q", controlLeaf.CertFile),
			`http-endpoint: "/dns-query"`,
			"http-notls-downstream: no",
		}, truth, nil))
	if checkconf := tl.unbound + "-checkconf"; isExecutable(checkconf) {
		for _, c := range []string{ispConf, controlConf} {
			if out, err := run(t.Context(), "", checkconf, c); err != nil {
				t.Fatalf("unbound-checkconf %s: %v\n%s", c, err, out)
			}
		}
	}
	nginxConf := writeFile(t, dir, "nginx.conf", nginxConfig(dir, origins, blockPage))
	isp := startDaemon(t, dir, "unbound-isp", tl.unbound, "-d", "-p", "-c", ispConf)
	control := startDaemon(t, dir, "unbound-control", tl.unbound, "-d", "-p", "-c", controlConf)
	ngx := startDaemon(t, dir, "nginx", tl.nginx, "-p", dir, "-c", nginxConf, "-e", "stderr")
	sslISCA := startDaemon(t, dir, "sslsplit-isca", sslsplitArgs(tl.sslsplit, dir, "sslsplit-isca", iscaIP, iscaOriginIP, p.ISCAInter)...)
	sslExpired := startDaemon(t, dir, "sslsplit-isca-expired", sslsplitArgs(tl.sslsplit, dir, "sslsplit-isca-expired", iscaExpiredIP, iscaExpiredOriginIP, p.ISCAExpired)...)
	sslCorp := startDaemon(t, dir, "sslsplit-corp", sslsplitArgs(tl.sslsplit, dir, "sslsplit-corp", corpIP, corpOriginIP, p.Corp)...)
	sslPeek := startDaemon(t, dir, "sslsplit-peek", sslsplitArgs(tl.sslsplit, dir, "sslsplit-peek", peekIP, originIP, p.ISCAInter)...)

	waitDNS(t, isp, ispResolverAddr, "clean.e2e.test")
	waitTCP(t, control, hostPort(controlIP, dotPort))
	waitTCP(t, control, hostPort(controlIP, dohPort))
	for _, ip := range []string{originIP, iscaOriginIP, iscaExpiredOriginIP, corpOriginIP} {
		waitTCP(t, ngx, hostPort(ip, tlsPort))
	}
	waitTCP(t, ngx, hostPort(blockPageIP, tlsPort))
	waitTCP(t, ngx, hostPort(rejectIP, tlsPort))
	waitTCP(t, sslISCA, hostPort(iscaIP, tlsPort))
	waitTCP(t, sslExpired, hostPort(iscaExpiredIP, tlsPort))
	waitTCP(t, sslCorp, hostPort(corpIP, tlsPort))
	waitTCP(t, sslPeek, hostPort(peekIP, tlsPort))
}

// checkServers checks the servers without kzprobe, so that a broken setup
// is not mistaken for a probe bug: the ISP resolver over UDP and TCP, the
// control over DoT and DoH (HTTP/2), that silentIP refuses, and with
// openssl s_client that each TLS server sends the chain it is meant to
// (leaf for the domain, then the issuing CA).
func checkServers(t *testing.T, p *pki, chains *chainCache) {
	t.Helper()
	for _, c := range []struct {
		domain, ip string
		issuer     *cert
	}{
		{"clean.e2e.test", originIP, p.PublicInter},
		{"isca.e2e.test", iscaIP, p.ISCAInter},
		{"isca-expired.e2e.test", iscaExpiredIP, p.ISCAExpired},
		{"corp.e2e.test", corpIP, p.Corp},
		{"isca-shared.e2e.test", peekIP, p.ISCAInter}, // openssl's hello is small
	} {
		ch, err := chains.get(t.Context(), hostPort(c.ip, tlsPort), c.domain)
		if err != nil {
			t.Fatal(err)
		}
		if len(ch) != 2 || !bytes.Equal(ch[1], c.issuer.Cert.Raw) {
			t.Fatalf("%s at %s sends %s; want the leaf then %q", c.domain, c.ip, describe(ch), c.issuer.Cert.Subject)
		}
		leaf, err := x509.ParseCertificate(ch[0])
		if err != nil {
			t.Fatalf("%s at %s: leaf: %v", c.domain, c.ip, err)
		}
		if err := leaf.CheckSignatureFrom(c.issuer.Cert); err != nil {
			t.Fatalf("%s at %s: leaf not signed by %q: %v", c.domain, c.ip, c.issuer.Cert.Subject, err)
		}
		if err := leaf.VerifyHostname(c.domain); err != nil {
			t.Fatalf("%s at %s: %v", c.domain, c.ip, err)
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.PublicRoot.Cert)
	tlsConf := &tls.Config{RootCAs: roots, ServerName: controlName}
	for _, s := range sites {
		for _, c := range []struct {
			name, addr, want string
			client           *dns.Client
		}{
			{"isp/udp", ispResolverAddr, s.Local, &dns.Client{Net: "udp"}},
			{"isp/tcp", ispResolverAddr, s.Local, &dns.Client{Net: "tcp"}},
			{"control/dot", hostPort(controlIP, dotPort), s.Control, &dns.Client{Net: "tcp-tls", TLSConfig: tlsConf}},
		} {
			c.client.Timeout = 3 * time.Second
			r, _, err := c.client.Exchange(query(s.Domain), c.addr)
			if err != nil {
				t.Fatalf("%s %s: %v", c.name, s.Domain, err)
			}
			if got := answerA(r); got != c.want {
				t.Fatalf("%s %s: got A %q (rcode %s); want %q", c.name, s.Domain, got, dns.RcodeToString[r.Rcode], c.want)
			}
		}
	}
	// DoH over HTTP/2, as kzprobe speaks it (RFC 8484 POST).
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf.Clone(), ForceAttemptHTTP2: true}}
	defer hc.CloseIdleConnections()
	wire, _ := query("clean.e2e.test").Pack()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, fmt.Sprintf("https://%s/dns-query", hostPort(controlIP, dohPort)), bytes.NewReader(wire))
	req.Header.Set("Content-Type", "application/dns-message")
	req.Header.Set("Accept", "application/dns-message")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("control/doh: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("control/doh: got %s over %s; want 200 over HTTP/2", resp.Status, resp.Proto)
	}
	r := new(dns.Msg)
	if err := r.Unpack(body); err != nil {
		t.Fatalf("control/doh: %v", err)
	}
	if got := answerA(r); got != originIP {
		t.Fatalf("control/doh clean.e2e.test: got A %q; want %q", got, originIP)
	}
	if c, err := net.DialTimeout("tcp", hostPort(silentIP, tlsPort), time.Second); err == nil {
		c.Close()
		t.Fatalf("something listens on %s, which must stay silent", hostPort(silentIP, tlsPort))
	}
}

func query(name string) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	return m
}

// answerA is the first A record of r, "" when none.
func answerA(r *dns.Msg) string {
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return ""
}

// runProbe runs `kzprobe run` with flags only, the control at control,
// the targets given by targetArgs (-d NAME..., or -i FILE), and returns
// its measurements by domain. Its environment holds no
// KZPROBE_* variable and HOME is dir, so no configuration but the flags
// applies.
func runProbe(t *testing.T, bin, dir string, p *pki, name, control string, targetArgs []string) map[string]measurement {
	t.Helper()
	out := filepath.Join(dir, "probe-"+name+".jsonl")
	args := []string{"run", "-q", "-o", out,
		"--resolver", ispResolverAddr,
		"--control", control,
		"--control-name", controlName,
		"--control-ca", p.PublicRoot.CertFile,
		"--trust-roots", p.PublicRoot.CertFile,
		"--interception-roots", p.ISCARoot.CertFile,
		"--port", strconv.Itoa(tlsPort),
		"--allow-net", "127.0.0.0/8",
		"--timeout", "3s",
		"--fingerprint", "chrome",
	}
	args = append(args, targetArgs...)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir}
	logFile := filepath.Join(dir, "probe-"+name+".log")
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	t.Logf("running %s %s", bin, strings.Join(args, " "))
	err := cmd.Run()
	_ = os.WriteFile(logFile, output.Bytes(), 0o644)
	if err != nil {
		t.Fatalf("kzprobe run (%s control): %v\n%s", name, err, output.String())
	}
	if output.Len() > 0 {
		t.Logf("kzprobe run (%s control) said:\n%s", name, output.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]measurement{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var m measurement
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: bad JSON line: %v\n%s", out, err, sc.Bytes())
		}
		got[m.TestKeys.Domain] = m
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// printTable logs the verdict table: expected, got, and why.
func printTable(t *testing.T, got map[string]measurement, want map[string]expectation) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tWANT\tGOT\tMATCH\tREASON\tROOT SHA-1\tINTERMEDIATE SHA-1")
	for _, s := range sites {
		m := got[s.Domain]
		mark := "ok"
		if m.TestKeys.Verdict != want[s.Domain].Verdict {
			mark = "WRONG"
		}
		root, inter := "-", "-"
		if i := m.Interception(); i != nil {
			root = i.RootSHA1
			if len(i.Intermediates) > 0 {
				inter = i.Intermediates[0].SHA1
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Domain, want[s.Domain].Verdict, m.TestKeys.Verdict, mark, m.TestKeys.VerdictReason, root, inter)
	}
	tw.Flush()
	t.Logf("verdicts:\n%s", b.String())
}

// checkMeasurement compares one measurement with its expectation, and
// every chain kzprobe recorded with what openssl sees.
func checkMeasurement(ctx context.Context, t *testing.T, m measurement, w expectation, chains *chainCache) {
	tk := m.TestKeys
	if tk.Verdict != w.Verdict {
		t.Errorf("verdict: got %s (%s); want %s", tk.Verdict, tk.VerdictReason, w.Verdict)
	}
	if tk.DNSConsistency == nil {
		t.Errorf("dns_consistency: got null; want status %s", w.Consistency)
	} else if tk.DNSConsistency.Status != w.Consistency {
		t.Errorf("dns_consistency.status: got %s (%s); want %s", tk.DNSConsistency.Status, tk.DNSConsistency.Reason, w.Consistency)
	}

	succeeded := 0
	for i, h := range tk.TLSHandshakes {
		if h.Failure != nil {
			continue
		}
		succeeded++
		var recorded [][]byte
		for j, pc := range h.PeerCertificates {
			der, err := base64.StdEncoding.DecodeString(pc.Data)
			if err != nil || pc.Format != "base64" {
				t.Fatalf("tls_handshakes[%d].peer_certificates[%d]: format %q: %v", i, j, pc.Format, err)
			}
			recorded = append(recorded, der)
		}
		seen, err := chains.get(ctx, h.Address, h.ServerName)
		if err != nil {
			t.Errorf("tls_handshakes[%d]: %v", i, err)
			continue
		}
		if !slices.EqualFunc(recorded, seen, bytes.Equal) {
			t.Errorf("tls_handshakes[%d] (%s, SNI %s): recorded chain %s; openssl s_client -showcerts saw %s",
				i, h.Address, h.ServerName, describe(recorded), describe(seen))
		} else {
			t.Logf("tls_handshakes[%d] (%s, SNI %s): recorded chain equals what openssl s_client saw: %s", i, h.Address, h.ServerName, describe(recorded))
		}
	}
	if w.Handshake && succeeded == 0 {
		t.Errorf("no successful TLS handshake recorded; want at least one")
	}
	if w.SmallHelloRetry {
		// The Chrome hello refused before any certificate, then the retry
		// with the small fingerprint intercepted.
		hs := tk.TLSHandshakes
		if len(hs) != 2 || hs[0].Failure == nil || len(hs[0].PeerCertificates) != 0 ||
			!hs[1].SmallHelloRetry || hs[1].Fingerprint != "small" || hs[1].Failure != nil {
			t.Errorf("handshakes %+v; want chrome refused, then the small-hello retry through", hs)
		}
	}

	got := m.Interception()
	switch {
	case w.Interception == nil && got != nil:
		t.Errorf("interception: got %+v; want null", *got)
	case w.Interception != nil && got == nil:
		t.Errorf("interception: got null; want root %s, intermediate %s", w.Interception.Root.SHA1(), w.Interception.Intermediate.SHA1())
	case w.Interception != nil:
		wi := w.Interception
		if got.Evidence != "signature" {
			t.Errorf("interception.evidence: got %q; want signature", got.Evidence)
		}
		if got.RootSHA1 != wi.Root.SHA1() {
			t.Errorf("interception.root_sha1: got %q; want %s (the test ISCA root)", got.RootSHA1, wi.Root.SHA1())
		}
		if got.RootName != wi.Root.Cert.Subject.CommonName {
			t.Errorf("interception.root_name: got %q; want %q", got.RootName, wi.Root.Cert.Subject.CommonName)
		}
		found := false
		for _, in := range got.Intermediates {
			if in.SHA1 != wi.Intermediate.SHA1() {
				continue
			}
			found = true
			if in.SignerRootSHA1 != wi.Root.SHA1() {
				t.Errorf("intermediate %s: signer_root_sha1 got %q; want %s", in.SHA1, in.SignerRootSHA1, wi.Root.SHA1())
			}
			if in.ValidAtMeasurement != wi.ValidAtMeasurement {
				t.Errorf("intermediate %s: valid_at_measurement got %v; want %v", in.SHA1, in.ValidAtMeasurement, wi.ValidAtMeasurement)
			}
			ic := wi.Intermediate.Cert
			if in.SHA256 != wi.Intermediate.SHA256() {
				t.Errorf("intermediate %s: sha256 got %s; want %s", in.SHA1, in.SHA256, wi.Intermediate.SHA256())
			}
			if in.Serial != ic.SerialNumber.String() {
				t.Errorf("intermediate %s: serial got %s; want %s", in.SHA1, in.Serial, ic.SerialNumber)
			}
			for _, f := range []struct {
				name, got string
				want      time.Time
			}{{"not_before", in.NotBefore, ic.NotBefore}, {"not_after", in.NotAfter, ic.NotAfter}} {
				if g, err := time.Parse(time.RFC3339, f.got); err != nil || !g.Equal(f.want) {
					t.Errorf("intermediate %s: %s got %q; want %s", in.SHA1, f.name, f.got, f.want.UTC().Format(time.RFC3339))
				}
			}
		}
		if !found {
			var have []string
			for _, in := range got.Intermediates {
				have = append(have, in.SHA1)
			}
			t.Errorf("interception.intermediates: got SHA-1s %v; want %s among them", have, wi.Intermediate.SHA1())
		}
		if got.BrowserError != wi.BrowserError {
			t.Errorf("browser_error_even_with_root_installed: got %v (%v); want %v", got.BrowserError, got.BrowserErrorReasons, wi.BrowserError)
		}
		for _, r := range wi.Reasons {
			if !slices.Contains(got.BrowserErrorReasons, r) {
				t.Errorf("browser_error_reasons: got %v; want %s among them", got.BrowserErrorReasons, r)
			}
		}
	}
}

// chainCache runs openssl s_client once per address and SNI.
type chainCache struct {
	openssl string
	m       map[string][][]byte
}

// get returns the chain `openssl s_client -showcerts` sees at addr with
// SNI serverName, in the order sent.
func (c *chainCache) get(ctx context.Context, addr, serverName string) ([][]byte, error) {
	key := addr + "|" + serverName
	if ch, ok := c.m[key]; ok {
		return ch, nil
	}
	out, err := run(ctx, "", c.openssl, "s_client", "-showcerts", "-servername", serverName, "-connect", addr)
	if err != nil {
		return nil, fmt.Errorf("openssl s_client: %w", err)
	}
	var ch [][]byte
	for rest := out; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			ch = append(ch, b.Bytes)
		}
	}
	if len(ch) == 0 {
		return nil, fmt.Errorf("openssl s_client -connect %s -servername %s printed no certificate:\n%s", addr, serverName, out)
	}
	c.m[key] = ch
	return ch, nil
}

// describe names each certificate of a chain by subject and SHA-1 prefix.
func describe(chain [][]byte) string {
	var parts []string
	for _, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			parts = append(parts, "unparsable")
			continue
		}
		parts = append(parts, fmt.Sprintf("%q", c.Subject.String()))
	}
	return fmt.Sprintf("%d certs [%s]", len(chain), strings.Join(parts, ", "))
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
