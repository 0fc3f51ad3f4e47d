package lab

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestCanonicalSiteName(t *testing.T) {
	for in, want := range map[string]string{
		"*.Bench.TEST.": "*.bench.test",
		"*.a.b.test":    "*.a.b.test",
		"x.bench.test":  "x.bench.test",
	} {
		if got, err := canonicalSiteName(in); err != nil || got != want {
			t.Errorf("canonicalSiteName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"*.test", "*.*.bench.test", "a.*.bench.test", "*bench.test", "*."} {
		if got, err := canonicalSiteName(in); err == nil {
			t.Errorf("canonicalSiteName(%q) = %q; want an error", in, got)
		}
	}
	if err := (Scenario{Sites: []Site{{Domain: "*.lab.test"}}}).Validate(); err == nil {
		t.Error("a wildcard over the lab's zone validated")
	}
	if err := (Scenario{Sites: []Site{{Domain: "*.bench.test"}, {Domain: "*.BENCH.test"}}}).Validate(); err == nil {
		t.Error("duplicate wildcards validated")
	}
}

func wildcardLab(t *testing.T) *Lab {
	t.Helper()
	return startLab(t, Config{Scenario: Scenario{Sites: []Site{
		{Domain: "*.pass.bench.test"},
		{Domain: "*.isca.bench.test", TLS: InterceptISCA},
		{Domain: "exact.isca.bench.test"}, // an exact site wins over the wildcard
		{Domain: "*.sub.isca.bench.test", TLS: Reset},
		{Domain: "*.nx.bench.test", DNS: DNSNXDOMAIN},
	}}})
}

func TestWildcardDNS(t *testing.T) {
	l := wildcardLab(t)
	site := func(d string) SiteInfo { return wildcardSite(t, l, d) }
	cases := []struct {
		name        string
		local, ctrl answer
	}{
		{"t1.pass.bench.test", answer{dns.RcodeSuccess, site("*.pass.bench.test").Addr}, answer{dns.RcodeSuccess, site("*.pass.bench.test").Addr}},
		{"a.b.pass.bench.test", answer{dns.RcodeSuccess, site("*.pass.bench.test").Addr}, answer{dns.RcodeSuccess, site("*.pass.bench.test").Addr}},
		{"T2.ISCA.bench.test", answer{dns.RcodeSuccess, site("*.isca.bench.test").Addr}, answer{dns.RcodeSuccess, site("*.isca.bench.test").Addr}},
		{"exact.isca.bench.test", answer{dns.RcodeSuccess, site("exact.isca.bench.test").Addr}, answer{dns.RcodeSuccess, site("exact.isca.bench.test").Addr}},
		{"x.sub.isca.bench.test", answer{dns.RcodeSuccess, site("*.sub.isca.bench.test").Addr}, answer{dns.RcodeSuccess, site("*.sub.isca.bench.test").Addr}},
		{"t3.nx.bench.test", answer{rcode: dns.RcodeNameError}, answer{dns.RcodeSuccess, site("*.nx.bench.test").Addr}},
		{"pass.bench.test", answer{rcode: dns.RcodeNameError}, answer{rcode: dns.RcodeNameError}}, // the zone itself is not under it
		{"t4.other.test", answer{rcode: dns.RcodeNameError}, answer{rcode: dns.RcodeNameError}},
	}
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	for _, tc := range cases {
		r, _, err := c.Exchange(query(tc.name, dns.TypeA), l.LocalDNS)
		if err != nil {
			t.Fatalf("%s: local: %v", tc.name, err)
		}
		if got := gotAnswer(t, r); got != tc.local {
			t.Errorf("%s: local = %v; want %v", tc.name, got, tc.local)
		}
		if got := gotAnswer(t, dohGet(t, l, query(tc.name, dns.TypeA))); got != tc.ctrl {
			t.Errorf("%s: control = %v; want %v", tc.name, got, tc.ctrl)
		}
	}
}

func TestWildcardMiddlebox(t *testing.T) {
	l := wildcardLab(t)

	// Pass: the origin's wildcard leaf, valid for the name.
	pass := wildcardSite(t, l, "*.pass.bench.test")
	c, err := handshake(t, l, pass.Addr, "t1.pass.bench.test", 5*time.Second)
	if err != nil {
		t.Fatalf("pass: %v", err)
	}
	if err := verifyChain(c.ConnectionState().PeerCertificates, l.PKI.PublicRoots(), "t1.pass.bench.test", time.Now()); err != nil {
		t.Errorf("pass: origin chain: %v", err)
	}

	// Intercepted: a leaf forged for the SNI itself, by the ISCA intermediate.
	isca := wildcardSite(t, l, "*.isca.bench.test")
	c, err = handshake(t, l, isca.Addr, "t2.isca.bench.test", 5*time.Second)
	if err != nil {
		t.Fatalf("isca: %v", err)
	}
	leaf := c.ConnectionState().PeerCertificates[0]
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "t2.isca.bench.test" || leaf.Issuer.String() != l.PKI.ISCAIntermediate.Subject.String() {
		t.Errorf("isca: leaf for %v issued by %v; want a leaf for t2.isca.bench.test by the ISCA intermediate", leaf.DNSNames, leaf.Issuer)
	}

	// The exact site passes; the deeper wildcard resets.
	c, err = handshake(t, l, isca.Addr, "exact.isca.bench.test", 5*time.Second)
	if err != nil {
		t.Fatalf("exact: %v", err)
	}
	if iss := c.ConnectionState().PeerCertificates[0].Issuer; iss.String() == l.PKI.ISCAIntermediate.Subject.String() {
		t.Errorf("exact site was intercepted; want it passed")
	}
	if _, err := handshake(t, l, isca.Addr, "x.sub.isca.bench.test", 5*time.Second); err == nil {
		t.Errorf("x.sub.isca.bench.test: handshake succeeded; want the reset of *.sub.isca.bench.test")
	}
}

// wildcardSite finds a site by its Domain as written (Lab.Site takes host
// names only).
func wildcardSite(t testing.TB, l *Lab, domain string) SiteInfo {
	t.Helper()
	for _, s := range l.Sites() {
		if s.Domain == domain {
			return s
		}
	}
	t.Fatalf("lab has no site %q", domain)
	return SiteInfo{}
}
