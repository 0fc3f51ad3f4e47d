package bench

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"kzprobe/lab"
	"kzprobe/sweep"
)

// The scenarios: which behaviours the targets cycle through.
const (
	// ScenarioMix is pass, ISCA and corporate interception, reset, EOF and
	// a DNS block page.
	ScenarioMix = "mix"
	// ScenarioPass is every target intercepted by nobody.
	ScenarioPass = "pass"
	// ScenarioBlackhole is no server flight ever: every handshake waits
	// for its timeout.
	ScenarioBlackhole = "blackhole"
)

// zone is the parent of every bench name.
const zone = "bench.test"

// baseZone is the wildcard site the baseline hand-shakes with.
const baseZone = "base." + zone

// sites returns the wildcard sites of a scenario: the behaviours target i
// cycles through, and the baseline's pass site.
func sites(scenario string) (behaviours []lab.Site, base lab.Site, err error) {
	switch scenario {
	case ScenarioPass:
		behaviours = []lab.Site{{TLS: lab.Pass}}
	case ScenarioMix:
		// Each behaviour's lab round trips: roundTrips.
		behaviours = []lab.Site{
			{TLS: lab.Pass}, {TLS: lab.InterceptISCA}, {TLS: lab.InterceptISCAExpired},
			{TLS: lab.InterceptCorporate}, {TLS: lab.Reset}, {TLS: lab.EOF},
			{TLS: lab.Pass, DNS: lab.DNSBlockpage},
		}
	case ScenarioBlackhole:
		behaviours = []lab.Site{{TLS: lab.Blackhole}}
	default:
		return nil, lab.Site{}, fmt.Errorf("%w: unknown bench scenario %q; want %s, %s or %s", ErrBadConfig, scenario, ScenarioMix, ScenarioPass, ScenarioBlackhole)
	}
	for i := range behaviours {
		behaviours[i].Domain = "*." + label(behaviours[i]) + "." + zone
	}
	return behaviours, lab.Site{Domain: "*." + baseZone, TLS: lab.Pass}, nil
}

// label names a behaviour in target names.
func label(s lab.Site) string {
	if s.DNS != "" && s.DNS != lab.DNSTruthful {
		return strings.ReplaceAll(s.DNS, "_", "-")
	}
	return strings.ReplaceAll(s.TLS, "_", "-")
}

// roundTrips is the number of lab round trips on the critical path of a
// target with behaviour s, from what the engine does (probe.Prober.Measure)
// and what the lab delays (lab.Scenario.Latency):
//
//  1. DNS: the local A and AAAA queries (UDP) and the control's (DoH, on
//     its one kept HTTP/2 connection) all run at once: 1 RTT.
//  2. TCP connect: done by the kernel, which the lab does not delay: 0.
//  3. TLS: the server's first flight answers the ClientHello: 1 RTT
//     (TLS 1.3; the client's Finished and close_notify need no answer).
//     Reset and EOF wait one RTT before closing: 1 RTT too, and then the
//     small-hello retry (probe.Prober.SmallHelloRetry, on in kzprobe run)
//     is refused the same way: 1 RTT more. A blackhole never answers: the
//     handshake timeout instead (Result.Wait), and no retry.
//  4. The control server's check runs concurrently with step 3; its own
//     DNS and handshake run concurrently too, 1 RTT.
//  5. Chain analysis and classification: CPU only.
//
// On a real network the TCP connect adds one more RTT; the lab cannot
// delay it, so it is not counted.
func roundTrips(s lab.Site) int {
	if s.TLS == lab.Reset || s.TLS == lab.EOF {
		return 3
	}
	return 2
}

// sweepControlEvery is the names between two periodic controls of the
// benched sweep (kzprobe sweep's default).
const sweepControlEvery = sweep.DefaultControlEvery

// sweepRoundTrips is the number of lab round trips on the critical path
// of a swept name with behaviour s (sweep.Sweeper.Run): no DNS; the TCP
// connect, which the lab does not delay; the server's first flight, 1
// RTT (through the middlebox, whose splice or forged handshake the lab
// delays once). A name that is not clean is followed by a confirming
// control handshake, 1 RTT more: intercepted, reset and EOF (which wait 1
// RTT before closing) fail before any certificate, so after the control
// they are tried again: 3. A blackhole waits for the timeout instead of
// the first flight, then its control, then the timeout of its second try:
// 1 round trip and two timeouts (Result.Wait). A periodic control every
// sweepControlEvery names adds 1/sweepControlEvery on average (newResult).
func sweepRoundTrips(s lab.Site) int {
	switch s.TLS {
	case lab.Pass, "":
		return 1
	case lab.Blackhole:
		return 1
	case lab.Reset, lab.EOF:
		return 3
	}
	return 2
}

// writeTargets writes n target names to path, cycling through behaviours.
func writeTargets(path string, n int, behaviours []lab.Site) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing the targets: %w", err)
	}
	w := bufio.NewWriter(f)
	for i := range n {
		fmt.Fprintf(w, "t%d.%s.%s\n", i, label(behaviours[i%len(behaviours)]), zone)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("writing the targets: %w", err)
	}
	return f.Close()
}
