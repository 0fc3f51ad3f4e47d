package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"kzprobe/control"
	"kzprobe/lab"
	"kzprobe/measurement"
	"kzprobe/probe/chain"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// writeKeyPair writes cert's chain and key as PEM files.
func writeKeyPair(t *testing.T, dir string, cert *tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	var chain bytes.Buffer
	for _, der := range cert.Certificate {
		pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(certFile, chain.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestControlServeCommand runs `kzprobe control serve` over HTTPS on
// loopback with the lab's DoH as its resolver, asks it about a lab site,
// and stops it as Ctrl-C would.
func TestControlServeCommand(t *testing.T) {
	clearEnv(t)
	l, dir, files := startLab(t, lab.Config{Scenario: lab.DefaultScenario()})
	cert, err := l.PKI.IssuePublic([]string{"control.example"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writeKeyPair(t, dir, cert)
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("lab-token\n"), 0o600)

	cmd := newControlServeCmd()
	args := []string{"--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile,
		"--resolver", l.DoHURL, "--resolver-name", l.ControlServerName, "--resolver-ca", files.PublicRoot,
		"--trust-roots", files.PublicRoot, "--port", strconv.Itoa(l.Port), "--allow-net", l.Net.String(),
		"--token-file", tokenFile, "--log-format", "json"}
	ctx, cancel := context.WithCancel(context.Background())
	var logs lockedBuffer
	done := make(chan error, 1)
	cmd.SetContext(ctx)
	cmd.SetErr(&logs)
	cmd.SetArgs(args)
	go func() { done <- cmd.Execute() }()

	urlRE := regexp.MustCompile(`"url":"(https://127\.0\.0\.1:[0-9]+)"`)
	var url string
	for range 200 {
		if m := urlRE.FindStringSubmatch(logs.String()); m != nil {
			url = m[1]
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if url == "" {
		cancel()
		t.Fatalf("the server did not log its URL: %s (%v)", logs.String(), <-done)
	}

	roots := x509.NewCertPool()
	roots.AddCert(l.PKI.PublicRoot)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}, Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	site, _ := l.Site("clean-1.example")
	ask := func(body, token string) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", url+control.CheckPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp, b.Bytes()
	}
	body := `{"version":1,"domain":"clean-1.example","port":` + strconv.Itoa(l.Port) + `,"addresses":["` + site.Addr.String() + `"]}`
	resp, data := ask(body, "lab-token")
	if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" {
		t.Fatalf("status %d over %s: %s", resp.StatusCode, resp.Proto, data)
	}
	var r control.CheckResponse
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Endpoints) != 1 || r.Endpoints[0].Chain == nil || !r.Endpoints[0].Chain.Trusted {
		t.Errorf("endpoints %+v; want one trusted chain", r.Endpoints)
	}
	if resp, _ := ask(body, ""); resp.StatusCode != 401 {
		t.Errorf("without the token: %d; want 401", resp.StatusCode)
	}
	if resp, _ := ask(`{"domain":"clean-1.example","addresses":["127.0.0.1"],"port":`+strconv.Itoa(l.Port)+`}`, "lab-token"); resp.StatusCode != 403 {
		t.Errorf("127.0.0.1 outside --allow-net: %d; want 403", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v after cancel; want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop within 15s of the cancel")
	}
	if strings.Contains(logs.String(), "lab-token") {
		t.Error("the token was logged")
	}
}

// TestControlServeUsage checks that bad flags are usage errors, before
// anything listens.
func TestControlServeUsage(t *testing.T) {
	clearEnv(t)
	for _, args := range [][]string{
		{"control", "serve", "--listen", "127.0.0.1:0"},                       // no certificate
		{"control", "serve", "--listen", "localhost:8443", "--insecure-http"}, // a name to resolve
		{"control", "serve", "--insecure-http", "--tls-cert", "x", "--tls-key", "y"},
		{"control", "serve", "--insecure-http", "--listen", "127.0.0.1:0", "--allow-net", "10.0.0.0/33"},
		{"control", "serve", "--insecure-http", "--listen", "127.0.0.1:0", "--log-format", "xml"},
		{"control", "serve", "--insecure-http", "--listen", "127.0.0.1:0", "--port", "0"},
		{"control"},
	} {
		if code := execute(args); code != exitUsage {
			t.Errorf("kzprobe %s: exit %d; want %d", strings.Join(args, " "), code, exitUsage)
		}
	}
}

// TestRunWithLabControlServer runs `kzprobe run` as `kzprobe lab --serve`
// tells users to, control server included, and checks that every record
// carries what the control server said and that an intercepted domain's
// verdict cites both views.
func TestRunWithLabControlServer(t *testing.T) {
	clearEnv(t)
	l, dir, files := startLab(t, lab.Config{Scenario: lab.DefaultScenario()})
	cfg := labConfig(l, files, dir)
	cfg.Targets.Domains = []string{"rutracker.org", "dns-blockpage.example"}
	line := labCommandLine(cfg)
	if !strings.Contains(line, "--control-server "+l.ControlServerURL) {
		t.Fatalf("lab command line %q does not name the control server", line)
	}
	out := filepath.Join(dir, "run.jsonl")
	args := append([]string{"run", "-q", "-o", out}, strings.Fields(line)[2:]...)
	if code := execute(args); code != exitOK {
		t.Fatalf("kzprobe %s: exit %d", strings.Join(args, " "), code)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := 0
	if _, err := measurement.ReadJSONL(f, func(m *measurement.Measurement) error {
		seen++
		tk := m.TestKeys
		if tk.Control == nil || tk.Control.Failure != nil || tk.Control.Response == nil {
			t.Errorf("%s: test_keys.control = %+v", tk.Domain, tk.Control)
			return nil
		}
		if tk.Domain == "rutracker.org" && !strings.Contains(tk.VerdictReason, "control saw a trusted chain at the same address") {
			t.Errorf("rutracker.org: reason %q does not cite the control", tk.VerdictReason)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seen != 2 {
		t.Errorf("%d records; want 2", seen)
	}
}

// TestControlServeSNIEndpoint runs `kzprobe control serve --sni-endpoint`:
// the API gives the endpoint's address and pin only with the token, the
// endpoint completes a handshake for any SNI with the certificate so
// pinned, and the certificate generated into --sni-cert/--sni-key is read
// back at the next start: the pin is kept.
func TestControlServeSNIEndpoint(t *testing.T) {
	clearEnv(t)
	l, dir, files := startLab(t, lab.Config{})
	cert, err := l.PKI.IssuePublic([]string{"control.example"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writeKeyPair(t, dir, cert)
	sniCert, sniKey := filepath.Join(dir, "sni.pem"), filepath.Join(dir, "sni.key")
	roots := x509.NewCertPool()
	roots.AddCert(l.PKI.PublicRoot)

	serve := func() (url string, stop func()) {
		cmd := newControlServeCmd()
		ctx, cancel := context.WithCancel(context.Background())
		var logs lockedBuffer
		done := make(chan error, 1)
		cmd.SetContext(ctx)
		cmd.SetErr(&logs)
		cmd.SetArgs([]string{"--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile,
			"--resolver", l.DoHURL, "--resolver-name", l.ControlServerName, "--resolver-ca", files.PublicRoot,
			"--token", "lab-token", "--log-format", "json",
			"--sni-endpoint", "127.0.0.1:0", "--sni-cert", sniCert, "--sni-key", sniKey})
		go func() { done <- cmd.Execute() }()
		urlRE := regexp.MustCompile(`"url":"(https://127\.0\.0\.1:[0-9]+)"`)
		for range 300 {
			if m := urlRE.FindStringSubmatch(logs.String()); m != nil && strings.Contains(logs.String(), "SNI endpoint listening") {
				url = m[1]
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if url == "" {
			cancel()
			t.Fatalf("the server did not log its URL and its SNI endpoint: %s (%v)", logs.String(), <-done)
		}
		return url, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	}
	ask := func(url, token string) (netip.AddrPort, chain.Pin, error) {
		c, err := control.NewClient(url, control.ClientOptions{Token: token, RootCAs: roots})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.SNIEndpoint(context.Background())
	}

	url, stop := serve()
	if _, _, err := ask(url, ""); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("without the token: %v; want HTTP 401", err)
	}
	addr, pin, err := ask(url, "lab-token")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(sniCert)
	if err != nil {
		t.Fatalf("the generated certificate was not kept: %v", err)
	}
	block, _ := pem.Decode(data)
	if filePin, err := chain.SPKIPin(block.Bytes); err != nil || filePin != pin {
		t.Errorf("API pin %s; the certificate in --sni-cert has %s (%v)", pin, filePin, err)
	}
	for _, sni := range []string{"rutracker.org", "example.com", ""} {
		conn, err := tls.Dial("tcp", addr.String(), &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("handshake with SNI %q: %v", sni, err)
		}
		got, _ := chain.SPKIPin(conn.ConnectionState().PeerCertificates[0].Raw)
		conn.Close()
		if got != pin {
			t.Errorf("SNI %q: presented key %s; want the pin %s", sni, got, pin)
		}
	}
	stop()

	url, stop = serve()
	defer stop()
	if _, again, err := ask(url, "lab-token"); err != nil || again != pin {
		t.Errorf("after a restart: pin %s, %v; want the kept %s", again, err, pin)
	}
}
