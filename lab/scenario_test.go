package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"kzprobe/measurement"
)

// reportDomains are the 14 domains of the published report
// (../shared/data/report-facts.json "domains").
var reportDomains = []string{
	"360tv.ru", "astrakhan.sm.news", "compromat.ru", "cont.ws", "knews.kg", "kz.tsargrad.tv", "regnum.ru",
	"rutracker.org", "sproot.it", "stanradar.com", "ukraina.ru", "www.for.kg", "www.pinterest.com", "xakep.ru",
}

func TestDefaultScenario(t *testing.T) {
	t.Parallel()
	s := DefaultScenario()
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	by := map[string]Site{}
	verdicts, tlsB, dnsB := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, site := range s.Sites {
		by[site.Domain] = site
		verdicts[site.Expect] = true
		tlsB[site.TLS] = true
		dnsB[site.DNS] = true
		if site.Expect == "" {
			t.Errorf("%s: no expected verdict", site.Domain)
		}
	}
	for _, v := range Verdicts() {
		if !verdicts[v] {
			t.Errorf("no site expects verdict %q", v)
		}
	}
	// Hostile behaviours are HostileScenario's (TestHostileScenario).
	for _, b := range TLSBehaviours() {
		if !tlsB[b] && !oneOf(b, HostileTLSBehaviours()) {
			t.Errorf("no site has TLS behaviour %q", b)
		}
	}
	for _, b := range DNSBehaviours() {
		if !dnsB[b] && !oneOf(b, HostileDNSBehaviours()) {
			t.Errorf("no site has DNS behaviour %q", b)
		}
	}
	var isca, expired int
	for _, d := range reportDomains {
		site, ok := by[d]
		if !ok {
			t.Errorf("report domain %s missing", d)
			continue
		}
		switch site.TLS {
		case InterceptISCA:
			isca++
		case InterceptISCAExpired:
			expired++
		}
	}
	if isca < len(reportDomains)/2 || expired < 1 || expired > 2 {
		t.Errorf("report domains: %d intercept_isca, %d expired; want most current and one or two expired", isca, expired)
	}
	for _, d := range []string{"clean-1.example", "wikipedia.org"} {
		if by[d].Expect != VerdictOK {
			t.Errorf("%s expects %q; want ok", d, by[d].Expect)
		}
	}
}

func TestExpectedVerdict(t *testing.T) {
	t.Parallel()
	tests := []struct{ tls, dns, want string }{
		{Pass, DNSTruthful, VerdictOK},
		{"", "", VerdictOK},
		{InterceptISCA, DNSTruthful, VerdictMITMISCA},
		{InterceptISCAExpired, DNSTruthful, VerdictMITMISCA},
		{InterceptCorporate, DNSTruthful, VerdictMITMOther},
		{Reset, DNSTruthful, VerdictTLSBlocking},
		{EOF, DNSTruthful, VerdictTLSBlocking},
		{Blackhole, DNSTruthful, VerdictTLSBlocking},
		{Unreachable, DNSTruthful, VerdictTCPBlocking},
		{Pass, DNSBlockpage, VerdictDNSTampering},
		{InterceptISCA, DNSNXDOMAIN, VerdictDNSTampering},
		{Pass, DNSBogon, VerdictDNSTampering},
		{"", DNSNonexistent, VerdictDown},
		{Reset, DNSControlServfail, VerdictError},
		{Pass, DNSControlServfail, ""},
	}
	for _, tc := range tests {
		if got := ExpectedVerdict(tc.tls, tc.dns); got != tc.want {
			t.Errorf("ExpectedVerdict(%q, %q) = %q; want %q", tc.tls, tc.dns, got, tc.want)
		}
	}
}

func TestLoadScenario(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", `name: mine
latency: 30ms
dns_drop: 0.25
sites:
  - domain: RuTracker.org.
    tls: intercept_isca
    ipv6: true
  - domain: example.org
    dns: nxdomain
  - domain: gone.example
    dns: nonexistent
  - domain: odd.example
    tls: pass
    dns: control_servfail
    expect: ok
`)
	s, err := LoadScenario(good)
	if err != nil {
		t.Fatalf("LoadScenario: %v", err)
	}
	if s.Name != "mine" || s.Latency != 30*time.Millisecond || s.DNSDrop != 0.25 || len(s.Sites) != 4 {
		t.Fatalf("got %+v", s)
	}
	if got, want := s.Sites[0], (Site{Domain: "rutracker.org", TLS: InterceptISCA, DNS: DNSTruthful, Expect: VerdictMITMISCA, IPv6: true}); got != want {
		t.Errorf("sites[0] = %+v; want it normalised to %+v", got, want)
	}
	if got := s.Sites[1].TLS; got != Pass {
		t.Errorf("sites[1].TLS = %q; want the default %q made explicit", got, Pass)
	}
	for i, want := range []string{VerdictMITMISCA, VerdictDNSTampering, VerdictDown, VerdictOK} {
		if s.Sites[i].Expect != want {
			t.Errorf("sites[%d].Expect = %q; want %q", i, s.Sites[i].Expect, want)
		}
	}
	l := startLab(t, Config{Scenario: s})
	if _, ok := l.Site("rutracker.org"); !ok {
		t.Errorf("domain not normalised: %v", l.Sites())
	}

	tests := []struct {
		name, body string
		want       []string // substrings of the error
	}{
		{"unknown top-level key", "name: x\nlantency: 5ms\nsites:\n  - domain: a.example\n", []string{"line 2", "lantency", "unknown at the top level"}},
		{"unknown site key", "sites:\n  - domain: a.example\n    tsl: pass\n", []string{"line 3", "tsl", "unknown in a site"}},
		{"unknown tls behaviour", "sites:\n  - domain: a.example\n  - domain: b.example\n    tls: intercept\n", []string{"line 4", "sites[1] (b.example).tls", `unknown behaviour "intercept"`, "intercept_isca"}},
		{"unknown dns behaviour", "sites:\n  - domain: a.example\n    dns: liar\n", []string{"line 3", "sites[0] (a.example).dns", `"liar"`}},
		{"unknown verdict", "sites:\n  - domain: a.example\n    expect: blocked\n", []string{"sites[0] (a.example).expect", `"blocked"`}},
		{"bad domain", "sites:\n  - domain: not a name\n", []string{"sites[0] (not a name).domain"}},
		{"single label", "sites:\n  - domain: localhost\n", []string{"domain", "one label"}},
		{"lab zone", "sites:\n  - domain: dns.lab.test\n", []string{"domain", "lab.test"}},
		{"duplicate", "sites:\n  - domain: a.example\n  - domain: A.example\n", []string{"line 3", "sites[1] (A.example).domain", "duplicate of sites[0]"}},
		{"nonexistent with tls", "sites:\n  - domain: a.example\n    dns: nonexistent\n    tls: reset\n", []string{"sites[0] (a.example).tls", "nonexistent"}},
		{"ipv6 nonexistent", "sites:\n  - domain: a.example\n    dns: nonexistent\n    ipv6: true\n", []string{"sites[0] (a.example).ipv6", "no address"}},
		{"ipv6 unreachable", "sites:\n  - domain: a.example\n    tls: unreachable\n    ipv6: true\n", []string{"sites[0] (a.example).ipv6", "no listener"}},
		{"ipv6 not a bool", "sites:\n  - domain: a.example\n    ipv6: maybe\n", []string{"line 3"}},
		{"latency", "latency: 1h\nsites:\n  - domain: a.example\n", []string{"line 1", "latency", "out of range"}},
		{"latency not a duration", "latency: 5\nsites:\n  - domain: a.example\n", []string{"line 1", "duration", `"50ms"`}},
		{"drop", "sites:\n  - domain: a.example\ndns_drop: 1.5\n", []string{"line 3", "dns_drop", "probability"}},
		{"site not a mapping", "sites:\n  - a.example\n", []string{"line 2", "want a mapping with domain"}},
		{"no sites", "name: x\n", []string{"sites", "at least one"}},
		{"empty file", "", []string{"empty scenario"}},
		{"two documents", "sites:\n  - domain: a.example\n---\nsites: []\n", []string{"second YAML document"}},
		{"not a mapping", "- a\n- b\n", []string{"line 1", "want a mapping with name, sites"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := write(strings.ReplaceAll(tc.name, " ", "-")+".yaml", tc.body)
			_, err := LoadScenario(path)
			if err == nil {
				t.Fatalf("LoadScenario succeeded; want an error containing %q", tc.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q; want it to contain %q", msg, w)
				}
			}
		})
	}

	if _, err := LoadScenario(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v; want os.ErrNotExist", err)
	}
}

func TestValidateTooManySites(t *testing.T) {
	t.Parallel()
	s := Scenario{}
	for i := range MaxSites + 1 {
		s.Sites = append(s.Sites, Site{Domain: fmt.Sprintf("site-%d.example", i)})
	}
	var ve *ValidationError
	if err := s.Validate(); !errors.As(err, &ve) || ve.Field != "sites" {
		t.Errorf("Validate with %d sites: %v; want a sites error", len(s.Sites), err)
	}
	if _, err := Start(Config{Scenario: s}); err == nil {
		t.Errorf("Start with %d sites succeeded", len(s.Sites))
	}
}

// TestVerdictsAreTheRecords: the verdicts a scenario may expect are the
// record's, all of them, in the same order.
func TestVerdictsAreTheRecords(t *testing.T) {
	var want []string
	for _, v := range measurement.Verdicts() {
		want = append(want, string(v))
	}
	if got := Verdicts(); !slices.Equal(got, want) {
		t.Errorf("Verdicts() = %v; want measurement.Verdicts(), %v", got, want)
	}
}
