package vantage_test

import (
	"fmt"
	"net/netip"

	"kzprobe/vantage"
)

// The volunteer's address is replaced in a failure string, whatever its
// spelling; other addresses, evidence of the measurement, stay.
func ExampleScrubber() {
	public := netip.MustParseAddr("192.0.2.7")
	s := vantage.NewScrubber(public)
	fmt.Println(s.Scrub("read udp 192.0.2.7:5353->198.51.100.53:53: i/o timeout"))
	fmt.Println(s.Scrub("dial tcp [::ffff:c000:207]:443"))
	// Output:
	// read udp [scrubbed]:5353->198.51.100.53:53: i/o timeout
	// dial tcp [scrubbed]:443
}

// Configured values are normalised and win; with no address and no
// database, nothing else is known.
func ExampleResolve() {
	info := vantage.Resolve(vantage.Configured{ASN: "9198", CC: "kz"}, netip.Addr{}, nil)
	fmt.Printf("%+v\n", info)
	// Output:
	// {ASN:AS9198 CC:KZ Network: Method:configured}
}
