package probe_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"log"
	"time"

	"kzprobe/dnsx"
	"kzprobe/lab"
	"kzprobe/probe"
	"kzprobe/probe/chain"
	"kzprobe/probe/guard"
)

// ExampleProber_Measure measures two sites of an in-process lab, a censored
// network on loopback: one behind a middlebox that intercepts with an ISCA
// chain, one left alone. The Prober is wired as `kzprobe lab` wires it:
// the lab's resolver as the local one, its DoH resolver as the control, its
// public root as the trust store and its ISCA root added to the knowledge
// base, and every connection confined to the lab's addresses.
func ExampleProber_Measure() {
	l, err := lab.Start(lab.Config{Scenario: lab.Scenario{Sites: []lab.Site{
		{Domain: "intercepted.example", TLS: lab.InterceptISCA},
		{Domain: "clean.example", TLS: lab.Pass},
	}}})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	g := guard.New(l.Nets()...)
	dial := g.Dialer(nil)
	trust := x509.NewCertPool()
	trust.AddCert(l.PKI.PublicRoot)
	kb, err := chain.Default()
	if err != nil {
		log.Fatal(err)
	}
	if _, err := kb.AddRootsPEM(l.PKI.ISCARootPEM(), "lab"); err != nil {
		log.Fatal(err)
	}
	doh, err := dnsx.New(l.DoHURL, dnsx.Options{ServerName: l.ControlServerName, RootCAs: trust, Dial: dial})
	if err != nil {
		log.Fatal(err)
	}
	defer doh.Close()

	p := &probe.Prober{
		Local:       &probe.DNSResolver{Exchanger: dnsx.NewDNSExchanger(l.LocalDNS, dial), Timeout: 2 * time.Second},
		Control:     &probe.DNSResolver{Exchanger: doh, Timeout: 2 * time.Second},
		Connector:   &probe.Connector{Dial: dial},
		Handshaker:  &probe.Handshaker{},
		Analyzer:    chain.NewAnalyzer(trust, kb),
		Port:        l.Port,
		Consistency: probe.ConsistencyOptions{Exempt: g.Prefixes()},
	}
	for _, domain := range []string{"intercepted.example", "clean.example"} {
		m := p.Measure(context.Background(), domain, 0)
		tk := m.TestKeys
		fmt.Printf("%s: %s (DNS %s, %s)\n", domain, tk.Verdict, tk.DNSConsistency.Status, tk.DNSConsistency.Reason)
		if in := tk.Interception; in != nil {
			fmt.Printf("  chain leads to %q, evidence: %s\n", in.RootName, in.Evidence)
		}
	}
	// Output:
	// intercepted.example: mitm_isca (DNS consistent, intersection)
	//   chain leads to "Information Security Certification Authority", evidence: signature
	// clean.example: ok (DNS consistent, intersection)
}
