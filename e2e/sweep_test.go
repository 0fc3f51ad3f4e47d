//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// The sweep's network, made of real parts: an
// SNI-selective middlebox made of haproxy (req.ssl_sni) in front of two
// neutral endpoints, sending chosen SNIs to sslsplit, rejecting others,
// and passing the rest through.
const (
	// sweepEndpointIP is `kzprobe control serve`: its API (plain HTTP) on
	// sweepAPIPort, its neutral SNI endpoint on tlsPort.
	sweepEndpointIP = "127.77.7.1"
	sweepAPIPort    = 9443
	// sweepAbroadIP is nginx as "any TLS server abroad": one certificate
	// for every SNI, pinned with --endpoint-pin.
	sweepAbroadIP = "127.77.7.2"
	// mbEndpointIP and mbAbroadIP are haproxy in front of the two
	// endpoints: what the probe dials (--endpoint), as a probe behind the
	// middlebox reaches the endpoint's address.
	mbEndpointIP = "127.77.6.1"
	mbAbroadIP   = "127.77.6.2"
	// mbKillIP is haproxy closing every connection as soon as it is
	// accepted: an endpoint whose address is itself blocked.
	mbKillIP = "127.77.6.3"
	// sweepDeadIP is where nothing listens: a dead endpoint.
	sweepDeadIP = "127.77.6.4"
	// mbAllIP is haproxy sending every name, the control SNI too, to
	// sslsplit (ISCA) in front of the server abroad (sweepAllSplitIP): an
	// endpoint whose whole address is intercepted.
	mbAllIP         = "127.77.6.5"
	sweepAllSplitIP = "127.77.6.15"
	// sweepControlSNI is the sweep's control name (--control-sni).
	sweepControlSNI = "control-sni.e2e.test"
)

// sweepInterceptor is one sslsplit behind the middlebox: the names haproxy
// sends it, the CA it forges with, and its address per endpoint.
type sweepInterceptor struct {
	name  string
	names []string
	ca    func(*pki) *cert
	// ip maps an endpoint's middlebox address to this interceptor's
	// address in front of that endpoint.
	ip map[string]string
}

// sweepInterceptors has one sslsplit per name and endpoint: sslsplit
// keeps one forged leaf per upstream certificate and adds each new SNI to
// its names (logged as "SNI mismatch"), so with two names on one instance
// the leaf a name gets depends on the order of the connections, and what
// the sweep recorded could not be compared with what openssl gets later.
var sweepInterceptors = []sweepInterceptor{
	{"isca", []string{"isca.e2e.test"}, func(p *pki) *cert { return p.ISCAInter },
		map[string]string{mbEndpointIP: "127.77.6.11", mbAbroadIP: "127.77.6.21"}},
	{"isca-expired", []string{"isca-expired.e2e.test"}, func(p *pki) *cert { return p.ISCAExpired },
		map[string]string{mbEndpointIP: "127.77.6.12", mbAbroadIP: "127.77.6.22"}},
	{"corp", []string{"corp.e2e.test"}, func(p *pki) *cert { return p.Corp },
		map[string]string{mbEndpointIP: "127.77.6.13", mbAbroadIP: "127.77.6.23"}},
	{"isca-shared", []string{"isca-shared.e2e.test"}, func(p *pki) *cert { return p.ISCAInter },
		map[string]string{mbEndpointIP: "127.77.6.14", mbAbroadIP: "127.77.6.24"}},
}

// sweepBlocked are the names the middlebox blocks, with the failure the
// handshake must record: the connection closed once haproxy has read the
// SNI (`tcp-request content reject`), or handed to a server that refuses
// the handshake with an alert (nginx's ssl_reject_handshake on rejectIP).
// haproxy closes a rejected connection with a FIN, even with option
// nolinger, so a reset for one SNI is not among them; the blocked
// endpoint's reset at connect is (endpoint-blocked).
var sweepBlocked = map[string]string{
	"tlsblock.e2e.test": "eof_error",
	"tcpblock.e2e.test": "ssl_alert_unrecognized_name",
}

// sweepWant is the verdict the sweep must give each name of its list,
// whichever endpoint: the e2e domains by what the middlebox does with
// their SNI, and names nobody knows (clean: passed through).
func sweepWant() map[string]string {
	w := map[string]string{
		"clean.e2e.test":      "clean",
		"dnslie.e2e.test":     "clean",
		"nxdomain.e2e.test":   "clean",
		"unlisted-1.e2e.test": "clean",
		"unlisted-2.e2e.test": "clean",
		"corp.e2e.test":       "sni_intercepted_other",
	}
	for _, n := range []string{"isca.e2e.test", "isca-shared.e2e.test", "isca-expired.e2e.test"} {
		w[n] = "sni_intercepted_isca"
	}
	for n := range sweepBlocked {
		w[n] = "sni_blocked"
	}
	return w
}

// sweepRecord is the part of a kzprobe_sni_sweep line the suite checks,
// decoded independently of package measurement.
type sweepRecord struct {
	TestName string `json:"test_name"`
	TestKeys struct {
		Domain        string `json:"domain"`
		Verdict       string `json:"verdict"`
		VerdictReason string `json:"verdict_reason"`
		TLSHandshakes []struct {
			Address          string  `json:"address"`
			ServerName       string  `json:"server_name"`
			Failure          *string `json:"failure"`
			PeerCertificates []struct {
				Data string `json:"data"`
			} `json:"peer_certificates"`
		} `json:"tls_handshakes"`
		Chains []*struct {
			Interception *interception `json:"interception"`
		} `json:"chains"`
		InterceptionChain *int `json:"interception_chain"`
		SNISweep          *struct {
			Endpoint     string `json:"endpoint"`
			EndpointPin  string `json:"endpoint_pin"`
			PinSource    string `json:"pin_source"`
			PresentedPin string `json:"presented_pin"`
			PinMatch     *bool  `json:"pin_match"`
			Hello        string `json:"hello"`
			ControlSNI   string `json:"control_sni"`
			Control      *struct {
				OK bool `json:"ok"`
			} `json:"control"`
			ReasonCode string `json:"reason_code"`
		} `json:"sni_sweep"`
	} `json:"test_keys"`
}

// chain is the DER chain recorded for the name's handshake.
func (r sweepRecord) chain(t *testing.T) [][]byte {
	t.Helper()
	if len(r.TestKeys.TLSHandshakes) == 0 {
		return nil
	}
	var ch [][]byte
	for _, pc := range r.TestKeys.TLSHandshakes[0].PeerCertificates {
		der, err := base64.StdEncoding.DecodeString(pc.Data)
		if err != nil {
			t.Fatalf("%s: peer certificate: %v", r.TestKeys.Domain, err)
		}
		ch = append(ch, der)
	}
	return ch
}

func (r sweepRecord) interception() *interception {
	i := r.TestKeys.InterceptionChain
	if i == nil || *i < 0 || *i >= len(r.TestKeys.Chains) || r.TestKeys.Chains[*i] == nil {
		return nil
	}
	return r.TestKeys.Chains[*i].Interception
}

// spkiPin is the key pin of c as kzprobe writes it: sha256: and the
// base64 of the SHA-256 of its SubjectPublicKeyInfo.
func spkiPin(c *x509.Certificate) string {
	s := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return "sha256:" + base64.StdEncoding.EncodeToString(s[:])
}

// sweepEnv is what the sweep's part of the suite runs against.
type sweepEnv struct {
	bin, dir string
	p        *pki
	chains   *chainCache
	// endpointPin and abroadPin are the two endpoints' pins; stalePin is
	// the pin of a certificate the abroad endpoint no longer serves.
	endpointPin, abroadPin, stalePin string
}

// testSweep is the part of TestE2E for `kzprobe sweep`: the
// middlebox, the sweeps through it against both endpoints with every
// verdict and chain checked, the three ways an endpoint fails, and
// --found confirmed by kzprobe run -i on the suite's resolvers.
func testSweep(t *testing.T, tl tools, dir, bin string, p *pki, now time.Time, want map[string]expectation) {
	start := time.Now()
	env := startSweepServers(t, tl, dir, bin, p, now)
	t.Logf("sweep servers up after %v", time.Since(start).Round(time.Millisecond))

	list := writeFile(t, dir, "sweep-list.txt", strings.Join(sortedKeys(sweepWant()), "\n")+"\n")
	found := filepath.Join(dir, "sweep-found.txt")
	// recorded holds the control-serve sweep's chains, by name.
	recorded := map[string][][]byte{}
	for _, ep := range []struct {
		name, addr, pin string
		// endpointChain is the chain the endpoint itself sends.
		endpointChain int
	}{
		{"control-serve", hostPort(mbEndpointIP, tlsPort), env.endpointPin, 1},
		{"nginx-abroad", hostPort(mbAbroadIP, tlsPort), env.abroadPin, 2},
	} {
		t.Run(ep.name, func(t *testing.T) {
			args := []string{"-i", list, "--endpoint", ep.addr, "--endpoint-pin", ep.pin}
			if ep.name == "control-serve" {
				args = append(args, "--found", found)
			}
			r := env.sweep(t, ep.name, args...)
			if r.code != 0 {
				t.Fatalf("exit code %d; want 0\n%s", r.code, r.stderr)
			}
			checkSweep(t, env, r.records, ep.addr, ep.pin, ep.endpointChain)
			if ep.name == "control-serve" {
				for _, rec := range r.records {
					recorded[rec.TestKeys.Domain] = rec.chain(t)
				}
			}
		})
	}

	// The same list with the endpoint asked of the control API
	// (--control-server): the API names the endpoint's own address, which
	// no middlebox sits in front of here, so every name is clean (the
	// verdicts above are the middlebox's doing) and the pin's source is
	// the control server.
	t.Run("control-server-direct", func(t *testing.T) {
		r := env.sweep(t, "control-server-direct", "-i", list, "--control-server", fmt.Sprintf("http://%s", hostPort(sweepEndpointIP, sweepAPIPort)))
		if r.code != 0 {
			t.Fatalf("exit code %d; want 0\n%s", r.code, r.stderr)
		}
		if len(r.records) != len(sweepWant()) {
			t.Errorf("%d records; want %d", len(r.records), len(sweepWant()))
		}
		for _, rec := range r.records {
			ss := rec.TestKeys.SNISweep
			if rec.TestKeys.Verdict != "clean" || ss == nil || ss.Endpoint != hostPort(sweepEndpointIP, tlsPort) || ss.EndpointPin != env.endpointPin || ss.PinSource != "control_server" {
				t.Errorf("%s: %s (%s), sni_sweep %+v; want clean at %s, pin %s from control_server", rec.TestKeys.Domain, rec.TestKeys.Verdict, rec.TestKeys.VerdictReason, ss, hostPort(sweepEndpointIP, tlsPort), env.endpointPin)
			}
		}
	})

	t.Run("found", func(t *testing.T) {
		b, err := os.ReadFile(found)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			names = append(names, strings.Fields(line)[0])
		}
		var wantFound []string
		for n, v := range sweepWant() {
			if v != "clean" {
				wantFound = append(wantFound, n)
			}
		}
		slices.Sort(names)
		slices.Sort(wantFound)
		if !slices.Equal(names, wantFound) {
			t.Fatalf("--found holds %v; want %v", names, wantFound)
		}
		// Confirm each on its real addresses, with DNS consistency.
		doh := fmt.Sprintf("https://%s/dns-query", hostPort(controlIP, dohPort))
		got := runProbe(t, bin, dir, p, "found", doh, []string{"-i", found})
		for _, n := range names {
			m, ok := got[n]
			switch {
			case !ok:
				t.Errorf("kzprobe run -i %s: no measurement for %s", found, n)
			case m.TestKeys.Verdict != want[n].Verdict:
				t.Errorf("kzprobe run -i %s: %s got %s (%s); want %s", found, n, m.TestKeys.Verdict, m.TestKeys.VerdictReason, want[n].Verdict)
			default:
				t.Logf("kzprobe run confirms %s: %s (%s)", n, m.TestKeys.Verdict, m.TestKeys.VerdictReason)
			}
		}
	})

	// An endpoint that fails: the control fails first, the sweep stops
	// with error and a message saying which, exit 1, and no finding.
	long := filepath.Join(dir, "sweep-long.txt")
	var lb strings.Builder
	for i := range 300 {
		fmt.Fprintf(&lb, "name-%03d.e2e.test\n", i)
	}
	writeFile(t, dir, filepath.Base(long), lb.String())
	for _, c := range []struct {
		name, addr, pin string
		// message must appear in stderr.
		message string
	}{
		{"dead", hostPort(sweepDeadIP, tlsPort), env.abroadPin, "connection_refused: the endpoint is down"},
		{"blocked", hostPort(mbKillIP, tlsPort), env.abroadPin, "the endpoint's address is blocked"},
		{"intercepted", hostPort(mbAllIP, tlsPort), env.abroadPin, "leads to Information Security Certification Authority"},
		{"pin-mismatch", hostPort(mbAbroadIP, tlsPort), env.stalePin, "pin mismatch"},
	} {
		t.Run("endpoint-"+c.name, func(t *testing.T) {
			r := env.sweep(t, "endpoint-"+c.name, "-i", long, "--endpoint", c.addr, "--endpoint-pin", c.pin)
			if r.code != 1 {
				t.Errorf("exit code %d; want 1 (the endpoint failed the control)", r.code)
			}
			if !strings.Contains(r.stderr, "the control SNI "+sweepControlSNI+" failed at the endpoint "+c.addr) || !strings.Contains(r.stderr, c.message) {
				t.Errorf("stderr does not say the control %s failed at %s with %q:\n%s", sweepControlSNI, c.addr, c.message, r.stderr)
			}
			for _, rec := range r.records {
				if v := rec.TestKeys.Verdict; v != "error" {
					t.Errorf("%s: verdict %s (%s); want error or no record", rec.TestKeys.Domain, v, rec.TestKeys.VerdictReason)
				}
			}
			if len(r.records) > 0 {
				t.Errorf("%d records; want none (the first control fails before any name)", len(r.records))
			}
			t.Logf("exit %d, %d records; kzprobe said: %s", r.code, len(r.records), lastLines(r.stderr, 3))
		})
	}

	// The TLS 1.2 hello (certificate in clear) through the same sslsplit:
	// kzprobe sweep --hello tls12 when it exists; and openssl limited to
	// TLS 1.2 in any case, whose chains must be the ones the default
	// hello's sweep recorded (the same forged leaf, the same CA).
	t.Run("hello-tls12", func(t *testing.T) {
		addr := hostPort(mbEndpointIP, tlsPort)
		same := 0
		for _, n := range sortedKeys(sweepWant()) {
			if sweepWant()[n] == "sni_blocked" {
				continue
			}
			out, err := run(t.Context(), "", env.chains.openssl, "s_client", "-tls1_2", "-showcerts", "-servername", n, "-connect", addr)
			if err != nil {
				t.Errorf("openssl s_client -tls1_2 -servername %s: %v", n, err)
				continue
			}
			ch := pemChain(out)
			if !slices.EqualFunc(ch, recorded[n], bytes.Equal) {
				t.Errorf("%s: a TLS 1.2 hello gets %s; the default hello's sweep recorded %s", n, describe(ch), describe(recorded[n]))
				continue
			}
			same++
		}
		t.Logf("openssl s_client -tls1_2 through %s: %d of %d names got the chain the default hello's sweep recorded", addr, same, len(sweepWant())-len(sweepBlocked))

		help, _ := exec.Command(bin, "sweep", "--help").CombinedOutput()
		if !bytes.Contains(help, []byte("--hello")) {
			t.Skip("kzprobe sweep has no --hello yet: kzprobe's TLS 1.2 hello not measured")
		}
		r := env.sweep(t, "hello-tls12", "-i", list, "--endpoint", addr, "--endpoint-pin", env.endpointPin, "--hello", "tls12")
		if r.code != 0 {
			t.Fatalf("exit code %d; want 0\n%s", r.code, r.stderr)
		}
		checkSweep(t, env, r.records, addr, env.endpointPin, 1)
		for _, rec := range r.records {
			if ss := rec.TestKeys.SNISweep; ss == nil || ss.Hello != "tls12" {
				t.Errorf("%s: sni_sweep %+v; want hello tls12", rec.TestKeys.Domain, ss)
			}
			if ch := rec.chain(t); !slices.EqualFunc(ch, recorded[rec.TestKeys.Domain], bytes.Equal) {
				t.Errorf("%s: --hello tls12 recorded %s; the default hello %s", rec.TestKeys.Domain, describe(ch), describe(recorded[rec.TestKeys.Domain]))
			}
		}
	})
	t.Logf("sweep part took %v", time.Since(start).Round(time.Millisecond))
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// checkSweep checks every record of a sweep against sweepWant, the
// interception evidence, and each recorded chain against openssl's
// through the same middlebox address.
func checkSweep(t *testing.T, env *sweepEnv, recs []sweepRecord, addr, pin string, endpointChain int) {
	t.Helper()
	want := sweepWant()
	got := map[string]sweepRecord{}
	for _, r := range recs {
		got[r.TestKeys.Domain] = r
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tWANT\tGOT\tMATCH\tREASON")
	for _, n := range sortedKeys(want) {
		mark := "ok"
		if got[n].TestKeys.Verdict != want[n] {
			mark = "WRONG"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n, want[n], got[n].TestKeys.Verdict, mark, got[n].TestKeys.VerdictReason)
	}
	tw.Flush()
	t.Logf("sweep verdicts through %s:\n%s", addr, b.String())
	if len(recs) != len(want) {
		t.Errorf("%d records; want %d, one per name", len(recs), len(want))
	}
	iscaCA := map[string]*cert{"isca.e2e.test": env.p.ISCAInter, "isca-shared.e2e.test": env.p.ISCAInter, "isca-expired.e2e.test": env.p.ISCAExpired}
	for _, n := range sortedKeys(want) {
		t.Run(n, func(t *testing.T) {
			r, ok := got[n]
			if !ok {
				t.Fatalf("no record for %s", n)
			}
			tk := r.TestKeys
			if r.TestName != "kzprobe_sni_sweep" {
				t.Errorf("test_name %q; want kzprobe_sni_sweep", r.TestName)
			}
			if tk.Verdict != want[n] {
				t.Errorf("verdict %s (%s); want %s", tk.Verdict, tk.VerdictReason, want[n])
			}
			ss := tk.SNISweep
			if ss == nil {
				t.Fatal("test_keys.sni_sweep is null")
			}
			if ss.Endpoint != addr || ss.EndpointPin != pin || ss.ControlSNI != sweepControlSNI {
				t.Errorf("sni_sweep endpoint %s, pin %s, control %s; want %s, %s, %s", ss.Endpoint, ss.EndpointPin, ss.ControlSNI, addr, pin, sweepControlSNI)
			}
			// A name refused before any certificate is tried a second
			// time once its control answered, and the second try decides
			// (measurement/sweep.go): two handshakes then, one otherwise.
			tries := 1
			if want[n] == "sni_blocked" {
				tries = 2
			}
			if len(tk.TLSHandshakes) != tries {
				t.Fatalf("%d tls_handshakes %+v; want %d", len(tk.TLSHandshakes), tk.TLSHandshakes, tries)
			}
			for _, h := range tk.TLSHandshakes {
				if h.ServerName != n {
					t.Fatalf("a handshake with SNI %q; want %s", h.ServerName, n)
				}
			}
			last := tk.TLSHandshakes[len(tk.TLSHandshakes)-1]
			if want[n] != "clean" && (ss.Control == nil || !ss.Control.OK) {
				t.Errorf("sni_sweep.control %+v; want a confirming control that got the pinned key", ss.Control)
			}
			recorded := r.chain(t)
			if want[n] == "sni_blocked" {
				if f := last.Failure; len(recorded) != 0 || f == nil || *f != sweepBlocked[n] {
					t.Errorf("handshake failure %v with %d certificates; want %s and none", f, len(recorded), sweepBlocked[n])
				}
				if _, err := env.chains.get(t.Context(), addr, n); err == nil {
					t.Errorf("openssl s_client -servername %s got a chain through %s; the middlebox should reject it", n, addr)
				}
				return
			}
			seen, err := env.chains.get(t.Context(), addr, n)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(recorded, seen, bytes.Equal) {
				t.Errorf("recorded chain %s; openssl s_client -servername %s -showcerts through %s saw %s", describe(recorded), n, addr, describe(seen))
			}
			switch want[n] {
			case "clean":
				if len(recorded) != endpointChain || ss.PinMatch == nil || !*ss.PinMatch || ss.PresentedPin != pin {
					t.Errorf("chain %s, presented pin %s (match %v); want the endpoint's own %d certificate(s), pin %s", describe(recorded), ss.PresentedPin, ss.PinMatch, endpointChain, pin)
				}
			case "sni_intercepted_isca":
				in := r.interception()
				if in == nil {
					t.Fatal("no interception finding")
				}
				if in.RootSHA1 != env.p.ISCARoot.SHA1() || in.Evidence != "signature" {
					t.Errorf("interception root %s by %s; want %s (the test ISCA root) by signature", in.RootSHA1, in.Evidence, env.p.ISCARoot.SHA1())
				}
				inter := iscaCA[n]
				expired := inter == env.p.ISCAExpired
				found := false
				for _, i := range in.Intermediates {
					found = found || i.SHA1 == inter.SHA1() && i.ValidAtMeasurement == !expired && i.SignerRootSHA1 == env.p.ISCARoot.SHA1()
				}
				if !found {
					t.Errorf("intermediates %+v; want %s, valid_at_measurement %v, signed by the ISCA root", in.Intermediates, inter.SHA1(), !expired)
				}
				if in.BrowserError != expired || (expired && !slices.Contains(in.BrowserErrorReasons, "intermediate_expired")) {
					t.Errorf("browser_error_even_with_root_installed %v %v; want %v", in.BrowserError, in.BrowserErrorReasons, expired)
				}
			case "sni_intercepted_other":
				if len(recorded) < 2 || !bytes.Equal(recorded[len(recorded)-1], env.p.Corp.Cert.Raw) || r.interception() != nil {
					t.Errorf("chain %s, interception %+v; want a forged leaf then the corporate CA, no ISCA finding", describe(recorded), r.interception())
				}
			}
		})
	}
}

// sweepResult is one run of kzprobe sweep.
type sweepResult struct {
	code    int
	stderr  string
	records []sweepRecord
}

// sweep runs kzprobe sweep with flags only (as runProbe runs kzprobe
// run), the suite's roots, no rate limit and the suite's control SNI.
func (env *sweepEnv) sweep(t *testing.T, name string, args ...string) sweepResult {
	t.Helper()
	out := filepath.Join(env.dir, "sweep-"+name+".jsonl")
	args = append([]string{"sweep", "-q", "-o", out,
		"--trust-roots", env.p.PublicRoot.CertFile,
		"--interception-roots", env.p.ISCARoot.CertFile,
		"--allow-net", "127.0.0.0/8",
		"--timeout", "3s",
		"--control-sni", sweepControlSNI,
		"--rate", "0",
		"--parallel", "8",
	}, args...)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.bin, args...)
	cmd.Dir = env.dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + env.dir}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	t.Logf("running %s %s", env.bin, strings.Join(args, " "))
	began := time.Now()
	err := cmd.Run()
	_ = os.WriteFile(filepath.Join(env.dir, "sweep-"+name+".log"), stderr.Bytes(), 0o644)
	r := sweepResult{stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("kzprobe sweep: %v", err)
	}
	t.Logf("kzprobe sweep (%s) exit %d in %v", name, r.code, time.Since(began).Round(time.Millisecond))
	f, err := os.Open(out)
	if errors.Is(err, os.ErrNotExist) {
		return r
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var rec sweepRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%s: bad JSON line: %v\n%s", out, err, sc.Bytes())
		}
		r.records = append(r.records, rec)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return r
}

// startSweepServers starts the two endpoints, the six interceptors and
// haproxy, checks them without kzprobe, and returns the pins.
func startSweepServers(t *testing.T, tl tools, dir, bin string, p *pki, now time.Time) *sweepEnv {
	t.Helper()
	env := &sweepEnv{bin: bin, dir: dir, p: p, chains: &chainCache{openssl: tl.openssl, m: map[string][][]byte{}}}
	day := 24 * time.Hour
	for _, a := range []string{hostPort(sweepEndpointIP, tlsPort), hostPort(sweepEndpointIP, sweepAPIPort), hostPort(sweepAbroadIP, tlsPort),
		hostPort(mbEndpointIP, tlsPort), hostPort(mbAbroadIP, tlsPort), hostPort(mbKillIP, tlsPort), hostPort(sweepDeadIP, tlsPort), hostPort(mbAllIP, tlsPort), hostPort(sweepAllSplitIP, tlsPort)} {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s is already in use: stop whatever listens there (a leftover e2e daemon?) and rerun", a)
		}
	}

	// The control server's SNI endpoint: a self-signed certificate of its
	// own, as kzprobe control serve generates, given by file so that the
	// suite knows its pin without asking.
	sni := issue(t, dir, "sni-endpoint", template(pkix.Name{CommonName: "kzprobe e2e SNI endpoint"}, now.Add(-day), now.Add(365*day), false), nil, ecKey(t))
	env.endpointPin = spkiPin(sni.Cert)
	// The server abroad: a leaf from the public PKI (sent with its
	// issuing CA), and the certificate it had before, now stale.
	abroad := p.leaf(t, dir, "abroad.e2e.test", now, "abroad.e2e.test")
	env.abroadPin = spkiPin(abroad.Cert)
	stale := p.leaf(t, dir, "abroad-old.e2e.test", now, "abroad.e2e.test")
	env.stalePin = spkiPin(stale.Cert)

	ctl := startDaemon(t, dir, "control-serve", bin, "control", "serve",
		"--listen", hostPort(sweepEndpointIP, sweepAPIPort), "--insecure-http",
		"--sni-endpoint", hostPort(sweepEndpointIP, tlsPort), "--sni-cert", sni.CertFile, "--sni-key", sni.KeyFile,
		"--resolver", "udp://127.77.7.53:53", "--allow-net", "127.0.0.0/8")
	abroadDir := filepath.Join(dir, "nginx-abroad")
	if err := os.Mkdir(abroadDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ngx := startDaemon(t, dir, "nginx-abroad", tl.nginx, "-p", abroadDir, "-c",
		writeFile(t, dir, "nginx-abroad.conf", nginxAbroadConfig(abroadDir, abroad)), "-e", "stderr")
	var splits []*daemon
	var splitAddrs []string
	for _, ic := range sweepInterceptors {
		for mb, ip := range ic.ip {
			upstream := sweepEndpointIP
			if mb == mbAbroadIP {
				upstream = sweepAbroadIP
			}
			name := "sslsplit-sweep-" + ic.name + "-" + upstream
			splits = append(splits, startDaemon(t, dir, name, sslsplitArgs(tl.sslsplit, dir, name, ip, upstream, ic.ca(p))...))
			splitAddrs = append(splitAddrs, hostPort(ip, tlsPort))
		}
	}
	splits = append(splits, startDaemon(t, dir, "sslsplit-sweep-all", sslsplitArgs(tl.sslsplit, dir, "sslsplit-sweep-all", sweepAllSplitIP, sweepAbroadIP, p.ISCAInter)...))
	splitAddrs = append(splitAddrs, hostPort(sweepAllSplitIP, tlsPort))
	hconf := writeFile(t, dir, "haproxy.cfg", haproxyConfig())
	if out, err := run(t.Context(), "", tl.haproxy, "-c", "-f", hconf); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	hap := startDaemon(t, dir, "haproxy", tl.haproxy, "-db", "-f", hconf)

	waitTCP(t, ctl, hostPort(sweepEndpointIP, sweepAPIPort))
	waitTCP(t, ctl, hostPort(sweepEndpointIP, tlsPort))
	waitTCP(t, ngx, hostPort(sweepAbroadIP, tlsPort))
	for i, d := range splits {
		waitTCP(t, d, splitAddrs[i])
	}
	for _, ip := range []string{mbEndpointIP, mbAbroadIP, mbKillIP, mbAllIP} {
		waitTCP(t, hap, hostPort(ip, tlsPort))
	}

	// The control API gives the pin the suite computed.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(fmt.Sprintf("http://%s/v1/sni-endpoint", hostPort(sweepEndpointIP, sweepAPIPort)))
	if err != nil {
		t.Fatalf("GET /v1/sni-endpoint: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var info struct {
		Address string `json:"address"`
		Port    int    `json:"port"`
		Pin     string `json:"pin"`
	}
	if err := json.Unmarshal(body, &info); err != nil || info.Pin != env.endpointPin || info.Address != sweepEndpointIP || info.Port != tlsPort {
		t.Fatalf("GET /v1/sni-endpoint: %s (%v); want address %s, port %d, pin %s", body, err, sweepEndpointIP, tlsPort, env.endpointPin)
	}
	// Through the middlebox without kzprobe: a clean name gets the
	// endpoint's certificate, an intercepted one a forged leaf under the
	// ISCA intermediate.
	for _, c := range []struct {
		addr, sni string
		want      []byte
		last      []byte
	}{
		{hostPort(mbEndpointIP, tlsPort), "clean.e2e.test", sni.Cert.Raw, sni.Cert.Raw},
		{hostPort(mbAbroadIP, tlsPort), "clean.e2e.test", abroad.Cert.Raw, p.PublicInter.Cert.Raw},
		{hostPort(mbEndpointIP, tlsPort), "isca.e2e.test", nil, p.ISCAInter.Cert.Raw},
		{hostPort(mbAbroadIP, tlsPort), "corp.e2e.test", nil, p.Corp.Cert.Raw},
	} {
		ch, err := env.chains.get(t.Context(), c.addr, c.sni)
		if err != nil {
			t.Fatal(err)
		}
		if (c.want != nil && !bytes.Equal(ch[0], c.want)) || !bytes.Equal(ch[len(ch)-1], c.last) {
			t.Fatalf("openssl through %s with SNI %s got %s", c.addr, c.sni, describe(ch))
		}
	}
	return env
}

// nginxAbroadConfig is a second nginx: the TLS server abroad, one
// certificate for every SNI (and none), on sweepAbroadIP.
func nginxAbroadConfig(dir string, c *cert) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("daemon off;")
	w("master_process off;")
	w("worker_processes 1;")
	w("pid %s;", filepath.Join(dir, "nginx.pid"))
	w("error_log stderr info;")
	w("events { worker_connections 256; }")
	w("http {")
	w("  access_log %s;", filepath.Join(dir, "access.log"))
	for _, p := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		w("  %s_temp_path %s;", p, filepath.Join(dir, p))
	}
	w("  ssl_protocols TLSv1.2 TLSv1.3;")
	w("  server {")
	w("    listen %s ssl default_server;", hostPort(sweepAbroadIP, tlsPort))
	w("    ssl_certificate %s;", c.CertFile)
	w("    ssl_certificate_key %s;", c.KeyFile)
	w("    location / { return 200 \"abroad\\n\"; }")
	w("  }")
	w("}")
	return b.String()
}

// haproxyConfig is the SNI-selective middlebox: in front of each endpoint
// a frontend that reads the SNI of the ClientHello (req.ssl_sni), closes
// or refuses the blocked names (sweepBlocked), sends the intercepted ones
// to their sslsplit and passes the rest to the endpoint; and a frontend
// that resets every connection as soon as it is accepted (mbKillIP), and
// one that intercepts every name (mbAllIP).
// haproxy stays in the foreground (-db).
func haproxyConfig() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("global")
	w("  maxconn 1024")
	w("  log stderr format raw local0 info")
	w("defaults")
	w("  mode tcp")
	w("  log global")
	w("  option tcplog")
	w("  timeout connect 3s")
	w("  timeout client 10s")
	w("  timeout server 10s")
	for _, mb := range []struct{ ip, endpoint, name string }{{mbEndpointIP, sweepEndpointIP, "endpoint"}, {mbAbroadIP, sweepAbroadIP, "abroad"}} {
		w("frontend mb-%s", mb.name)
		w("  bind %s", hostPort(mb.ip, tlsPort))
		w("  tcp-request inspect-delay 5s")
		w("  tcp-request content reject if { req.ssl_sni -i tlsblock.e2e.test }")
		w("  tcp-request content accept if { req.ssl_hello_type 1 }")
		for _, ic := range sweepInterceptors {
			w("  use_backend %s-%s if { req.ssl_sni -i %s }", ic.name, mb.name, strings.Join(ic.names, " "))
		}
		w("  use_backend refuse if { req.ssl_sni -i tcpblock.e2e.test }")
		w("  default_backend %s", mb.name)
		w("backend %s", mb.name)
		w("  server s %s", hostPort(mb.endpoint, tlsPort))
		for _, ic := range sweepInterceptors {
			w("backend %s-%s", ic.name, mb.name)
			w("  server s %s", hostPort(ic.ip[mb.ip], tlsPort))
		}
	}
	w("backend refuse")
	w("  server s %s", hostPort(rejectIP, tlsPort))
	w("frontend mb-kill")
	w("  bind %s", hostPort(mbKillIP, tlsPort))
	w("  tcp-request connection reject")
	w("  default_backend abroad")
	w("frontend mb-all")
	w("  bind %s", hostPort(mbAllIP, tlsPort))
	w("  default_backend all")
	w("backend all")
	w("  server s %s", hostPort(sweepAllSplitIP, tlsPort))
	return b.String()
}

// pemChain is the certificates of openssl's -showcerts output, in order.
func pemChain(out []byte) [][]byte {
	var ch [][]byte
	for rest := out; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return ch
		}
		if b.Type == "CERTIFICATE" {
			ch = append(ch, b.Bytes)
		}
	}
}
