package lab

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// verifyChain verifies a presented chain against roots at now, using the
// presented intermediates.
func verifyChain(chain []*x509.Certificate, roots *x509.CertPool, name string, now time.Time) error {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter, CurrentTime: now})
	return err
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func expectExpired(t *testing.T, err error) {
	t.Helper()
	var ce x509.CertificateInvalidError
	if !errors.As(err, &ce) || ce.Reason != x509.Expired {
		t.Errorf("err = %v; want x509.CertificateInvalidError{Reason: Expired}", err)
	}
}

func expectUnknownAuthority(t *testing.T, err error) {
	t.Helper()
	var ue x509.UnknownAuthorityError
	if !errors.As(err, &ue) {
		t.Errorf("err = %v; want x509.UnknownAuthorityError", err)
	}
}

func TestInterception(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{})
	p := l.PKI
	tests := []struct {
		name         string
		domain       string
		intermediate *x509.Certificate // nil: the leaf alone
		root         *x509.Certificate
		expired      bool
	}{
		{"isca current", "rutracker.org", p.ISCAIntermediate, p.ISCARoot, false},
		{"isca expired", "knews.kg", p.ISCAExpiredIntermediate, p.ISCARoot, true},
		{"corporate", "corp-proxy.example", nil, p.CorporateRoot, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := mustSite(t, l, tc.domain)
			// Upper case SNI: the middlebox matches case-insensitively.
			c, err := handshake(t, l, s.Addr, strings.ToUpper(tc.domain), 5*time.Second)
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			chain := c.ConnectionState().PeerCertificates
			wantLen := 1
			if tc.intermediate != nil {
				wantLen = 2
			}
			if len(chain) != wantLen {
				t.Fatalf("chain length %d; want %d (leaf + intermediate, never the root)", len(chain), wantLen)
			}
			if got := chain[0].DNSNames; len(got) != 1 || got[0] != tc.domain {
				t.Errorf("leaf DNSNames = %v; want [%s]", got, tc.domain)
			}
			if tc.intermediate != nil && !bytes.Equal(chain[1].Raw, tc.intermediate.Raw) {
				t.Errorf("chain[1] is %s serial %v; want the chosen intermediate", chain[1].Subject, chain[1].SerialNumber)
			}
			if got, want := chain[0].Issuer.String(), chain[len(chain)-1].Issuer.String(); tc.intermediate != nil && got != want {
				t.Errorf("leaf issuer %q; want the intermediate's subject %q", got, want)
			}
			err = verifyChain(chain, pool(tc.root), tc.domain, time.Now())
			if tc.expired {
				expectExpired(t, err)
				var ce x509.CertificateInvalidError
				if errors.As(err, &ce) && !bytes.Equal(ce.Cert.Raw, tc.intermediate.Raw) {
					t.Errorf("expired certificate is %s serial %v; want the intermediate", ce.Cert.Subject, ce.Cert.SerialNumber)
				}
			} else if err != nil {
				t.Errorf("verify against the lab root only: %v", err)
			}
			// Not trusted as web PKI.
			if err := verifyChain(chain, p.PublicRoots(), tc.domain, time.Now()); tc.expired {
				if err == nil {
					t.Errorf("verify against the public root succeeded")
				}
			} else {
				expectUnknownAuthority(t, err)
			}
			// A second connection gets the cached leaf.
			c2, err := handshake(t, l, s.Addr, tc.domain, 5*time.Second)
			if err != nil {
				t.Fatalf("second handshake: %v", err)
			}
			if !bytes.Equal(c2.ConnectionState().PeerCertificates[0].Raw, chain[0].Raw) {
				t.Errorf("second connection got another forged leaf; want the cached one")
			}
		})
	}
}

func TestInterceptionServesHTTP(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{})
	s := mustSite(t, l, "rutracker.org")
	c := httpClient(t, l, s.Addr)
	c.Transport.(*http.Transport).TLSClientConfig.RootCAs = pool(l.PKI.ISCARoot) // a user who installed the root
	resp, err := c.Get("https://rutracker.org/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || !strings.Contains(string(body), "intercepted rutracker.org") {
		t.Errorf("got %s %q; want HTTP/2 and the middlebox's page", resp.Proto, body)
	}
}

func TestPassSplicesOriginChain(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{})
	for _, domain := range []string{"clean-1.example", "wikipedia.org", "dns-nxdomain.example"} {
		s := mustSite(t, l, domain)
		c, err := handshake(t, l, s.Addr, domain, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: handshake: %v", domain, err)
		}
		got := c.ConnectionState().PeerCertificates
		// The origin's own chain, fetched from outside.
		raw, err := l.OutsideDialer()(t.Context(), "tcp", netip.AddrPortFrom(s.Addr, uint16(l.Port)).String())
		if err != nil {
			t.Fatal(err)
		}
		oc := tls.Client(raw, &tls.Config{ServerName: domain, RootCAs: l.PKI.PublicRoots()})
		if err := oc.Handshake(); err != nil {
			t.Fatalf("%s: origin handshake: %v", domain, err)
		}
		want := oc.ConnectionState().PeerCertificates
		oc.Close()
		if len(got) != len(want) || len(got) != 2 {
			t.Fatalf("%s: chain of %d through the middlebox, %d from the origin; want 2 and 2", domain, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i].Raw, want[i].Raw) {
				t.Errorf("%s: chain[%d] differs from the origin's", domain, i)
			}
		}
		if err := verifyChain(got, l.PKI.PublicRoots(), domain, time.Now()); err != nil {
			t.Errorf("%s: origin chain does not verify: %v", domain, err)
		}
	}
	// A whole HTTP/2 exchange through the splice.
	s := mustSite(t, l, "clean-1.example")
	resp, err := httpClient(t, l, s.Addr).Get("https://clean-1.example/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "kzprobe lab origin of clean-1.example\n" {
		t.Errorf("got %s %q; want HTTP/2 and the origin's page", resp.Proto, body)
	}
}

func TestMiddleboxBySNI(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{})
	clean := mustSite(t, l, "clean-1.example")
	isca := mustSite(t, l, "rutracker.org")
	originLeaf := func(t *testing.T, c *tls.Conn, domain string) {
		t.Helper()
		leaf := c.ConnectionState().PeerCertificates[0]
		if leaf.Issuer.CommonName != PublicIntermediateCommonName || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != domain {
			t.Errorf("leaf %v issued by %q; want the origin's leaf for %s", leaf.DNSNames, leaf.Issuer.CommonName, domain)
		}
	}
	t.Run("intercepted SNI at a clean address", func(t *testing.T) {
		c, err := handshake(t, l, clean.Addr, "rutracker.org", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.ConnectionState().PeerCertificates[0].Issuer.CommonName; got != ISCACommonName {
			t.Errorf("issuer %q; want %q (behaviour follows the SNI)", got, ISCACommonName)
		}
	})
	t.Run("unknown SNI passes to the address's origin", func(t *testing.T) {
		c, err := handshake(t, l, isca.Addr, "unknown.example", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		originLeaf(t, c, "rutracker.org")
	})
	t.Run("no SNI passes", func(t *testing.T) {
		c, err := handshake(t, l, isca.Addr, "", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		originLeaf(t, c, "rutracker.org")
	})
	t.Run("unreachable site's SNI elsewhere passes", func(t *testing.T) {
		c, err := handshake(t, l, clean.Addr, "tcp-unreachable.example", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		originLeaf(t, c, "clean-1.example")
	})
	t.Run("not TLS passes", func(t *testing.T) {
		c, err := net.Dial("tcp4", netip.AddrPortFrom(isca.Addr, uint16(l.Port)).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: rutracker.org\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("reading the origin's answer: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d; want 400 from the origin's TLS server", resp.StatusCode)
		}
	})
}

func TestBlocking(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{})
	tests := []struct {
		domain  string
		timeout time.Duration
		check   func(error) bool
		want    string
	}{
		{"tls-reset.example", 5 * time.Second, isConnReset, "ECONNRESET"},
		{"control-servfail.example", 5 * time.Second, isConnReset, "ECONNRESET"},
		{"tls-eof.example", 5 * time.Second, func(err error) bool { return errors.Is(err, io.EOF) }, "io.EOF"},
		{"tls-blackhole.example", 300 * time.Millisecond, func(err error) bool {
			var ne net.Error
			return errors.As(err, &ne) && ne.Timeout()
		}, "a timeout"},
		{"tcp-unreachable.example", 5 * time.Second, func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }, "ECONNREFUSED"},
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			t.Parallel()
			s := mustSite(t, l, tc.domain)
			start := time.Now()
			_, err := handshake(t, l, s.Addr, tc.domain, tc.timeout)
			if err == nil || !tc.check(err) {
				t.Errorf("handshake err = %v; want %s", err, tc.want)
			}
			if elapsed := time.Since(start); tc.timeout < time.Second && elapsed < tc.timeout {
				t.Errorf("failed after %v; want the client's %v deadline", elapsed, tc.timeout)
			}
		})
	}
}

// TestIPv6Sites: sites with ipv6 get ::1 for AAAA where their A answer is
// their own address, and the middlebox on [::1] picks the site by SNI.
func TestIPv6Sites(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{Scenario: Scenario{Sites: []Site{
		{Domain: "v6-isca.example", TLS: InterceptISCA, IPv6: true},
		{Domain: "v6-clean.example", TLS: Pass, IPv6: true},
		{Domain: "v6-reset.example", TLS: Reset, IPv6: true},
		{Domain: "v6-blockpage.example", TLS: Pass, DNS: DNSBlockpage, IPv6: true},
		{Domain: "v4-only.example", TLS: InterceptISCA},
	}}})
	v6 := netip.IPv6Loopback()
	if got, want := fmt.Sprint(l.Nets()), fmt.Sprintf("[%v ::1/128]", l.Net); got != want {
		t.Errorf("Nets() = %s; want %s", got, want)
	}
	if s := mustSite(t, l, "v4-only.example"); s.Addr6.IsValid() {
		t.Errorf("v4-only.example: Addr6 %v; want none", s.Addr6)
	}

	t.Run("AAAA", func(t *testing.T) {
		udp := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		for _, tc := range []struct {
			domain         string
			local, control netip.Addr
		}{
			{"v6-isca.example", v6, v6},
			{"v6-blockpage.example", netip.Addr{}, v6}, // the block page is IPv4 only
			{"v4-only.example", netip.Addr{}, netip.Addr{}},
		} {
			q := query(tc.domain, dns.TypeAAAA)
			m, _, err := udp.Exchange(q, l.LocalDNS)
			if err != nil {
				t.Fatal(err)
			}
			if got := gotAnswer(t, m); got != (answer{dns.RcodeSuccess, tc.local}) {
				t.Errorf("%s: local AAAA %v; want %v", tc.domain, got, tc.local)
			}
			if got := gotAnswer(t, dohGet(t, l, q)); got != (answer{dns.RcodeSuccess, tc.control}) {
				t.Errorf("%s: control AAAA %v; want %v", tc.domain, got, tc.control)
			}
		}
	})
	t.Run("intercepted", func(t *testing.T) {
		c, err := handshake(t, l, v6, "v6-isca.example", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		certs := c.ConnectionState().PeerCertificates
		if len(certs) != 2 || !bytes.Equal(certs[1].Raw, l.PKI.ISCAIntermediate.Raw) || certs[0].DNSNames[0] != "v6-isca.example" {
			t.Errorf("chain %v; want a leaf for v6-isca.example under the ISCA intermediate", certs)
		}
	})
	t.Run("pass splices to the site's origin", func(t *testing.T) {
		c, err := handshake(t, l, v6, "v6-clean.example", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := verifyChain(c.ConnectionState().PeerCertificates, l.PKI.PublicRoots(), "v6-clean.example", time.Now()); err != nil {
			t.Errorf("origin chain: %v", err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		if _, err := handshake(t, l, v6, "v6-reset.example", 5*time.Second); !isConnReset(err) {
			t.Errorf("err %v; want a reset", err)
		}
	})
	for _, sni := range []string{"v4-only.example", "unknown.example", ""} {
		t.Run("closed for SNI "+strconv.Quote(sni), func(t *testing.T) {
			if _, err := handshake(t, l, v6, sni, 5*time.Second); err == nil || isConnReset(err) || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("err %v; want the connection closed (not reset, not a timeout)", err)
			}
		})
	}
}

// TestEchoClient: with Config.EchoClient the middlebox writes the client's
// address into the leaf it forges (subject, DNS and IP names) and the
// local resolver echoes it in a client-subnet option; without it neither
// does, and the chain verifies the same way.
func TestEchoClient(t *testing.T) {
	t.Parallel()
	for _, echo := range []bool{false, true} {
		t.Run(fmt.Sprintf("echo=%v", echo), func(t *testing.T) {
			t.Parallel()
			l := startLab(t, Config{EchoClient: echo})
			// The client dials from a lab address of its own, as the
			// probe's --bind does.
			client := hostAddr(l.Net, 250)
			s := mustSite(t, l, "rutracker.org")
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: client.AsSlice()}}
			raw, err := d.Dial("tcp", netip.AddrPortFrom(s.Addr, uint16(l.Port)).String())
			if err != nil {
				t.Fatal(err)
			}
			c := tls.Client(raw, &tls.Config{ServerName: s.Domain, InsecureSkipVerify: true})
			defer c.Close()
			if err := c.Handshake(); err != nil {
				t.Fatal(err)
			}
			chain := c.ConnectionState().PeerCertificates
			leaf := chain[0]
			if err := verifyChain(chain, pool(l.PKI.ISCARoot), s.Domain, time.Now()); err != nil {
				t.Errorf("forged chain does not verify against the ISCA root: %v", err)
			}
			named := strings.Contains(leaf.Subject.String(), client.String()) &&
				slices.Contains(leaf.DNSNames, strings.ReplaceAll(client.String(), ".", "-")+".client.lab.test") &&
				len(leaf.IPAddresses) == 1 && leaf.IPAddresses[0].Equal(client.AsSlice())
			if named != echo {
				t.Errorf("leaf %s (DNS %v, IP %v) names the client %s: %v; want %v", leaf.Subject, leaf.DNSNames, leaf.IPAddresses, client, named, echo)
			}

			q := new(dns.Msg)
			q.SetQuestion(dns.Fqdn(s.Domain), dns.TypeA)
			q.SetEdns0(1232, false)
			dc := &dns.Client{Net: "udp", Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: client.AsSlice()}}, Timeout: 5 * time.Second}
			m, _, err := dc.Exchange(q, l.LocalDNS)
			if err != nil {
				t.Fatal(err)
			}
			if got := gotAnswer(t, m); got.addr != s.Addr {
				t.Errorf("answer %v; want %s", got, s.Addr)
			}
			var ecs *dns.EDNS0_SUBNET
			if opt := m.IsEdns0(); opt != nil {
				for _, o := range opt.Option {
					if e, ok := o.(*dns.EDNS0_SUBNET); ok {
						ecs = e
					}
				}
			}
			switch {
			case echo && (ecs == nil || ecs.SourceNetmask != 32 || !ecs.Address.Equal(client.AsSlice())):
				t.Errorf("client subnet %v; want %s/32", ecs, client)
			case !echo && ecs != nil:
				t.Errorf("client subnet %v without EchoClient", ecs)
			}
		})
	}
}
