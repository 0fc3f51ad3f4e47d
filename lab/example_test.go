package lab_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"kzprobe/lab"
)

// A client inside the lab resolves a name with the local resolver and
// hand-shakes with the address it got: the middlebox presents a leaf forged
// under the lab's ISCA intermediate.
func ExampleStart() {
	l, err := lab.Start(lab.Config{}) // the default scenario
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()

	q := new(dns.Msg)
	q.SetQuestion("rutracker.org.", dns.TypeA)
	r, _, err := new(dns.Client).Exchange(q, l.LocalDNS)
	if err != nil {
		fmt.Println(err)
		return
	}
	ip, _ := netip.AddrFromSlice(r.Answer[0].(*dns.A).A.To4())
	site, _ := l.Site("rutracker.org")
	fmt.Println("answer is the site's public address:", ip == site.Addr)

	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp4",
		netip.AddrPortFrom(ip, uint16(l.Port)).String(),
		&tls.Config{ServerName: "rutracker.org", InsecureSkipVerify: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	chain := conn.ConnectionState().PeerCertificates
	fmt.Println("leaf:", chain[0].DNSNames)
	fmt.Println("issuer:", chain[0].Issuer)
	fmt.Println("chain length:", len(chain))
	// Output:
	// answer is the site's public address: true
	// leaf: [rutracker.org]
	// issuer: CN=Information Security Certification Authority,O=ISCA,C=KZ
	// chain length: 2
}
