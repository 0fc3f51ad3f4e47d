package lab

// The lab's neutral SNI endpoint, for `kzprobe sweep`: the real one
// (package control's SNIEndpoint) on its hidden address, behind a
// middlebox address whose traffic passes the lab's middlebox, which
// intercepts or blocks by SNI whatever the destination. So a sweep of the
// scenario's names against [Lab.SNIEndpointAddr] finds what the scenario
// does by SNI ([ExpectedSweepVerdict]). Two more addresses stand for the
// endpoints that must end a sweep with an error: [Lab.SNIBlockedAddr]
// resets every connection (the endpoint's address itself blocked) and
// [Lab.SNIDeadAddr] has nothing listening (a dead endpoint).

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"time"

	"kzprobe/control"
	"kzprobe/measurement"
)

// Host numbers of the SNI endpoint's addresses (see the package
// documentation).
const (
	hostSNIEndpoint = 7   // the endpoint's public address: the middlebox, by SNI
	hostSNIOrigin   = 8   // the endpoint itself, hidden
	hostSNIBlocked  = 9   // an endpoint address the network resets
	hostSNIDead     = 250 // an endpoint address where nothing listens
)

// siteSNIEndpoint is the middlebox on the SNI endpoint's public address:
// the SNI picks the behaviour, and what passes reaches the endpoint.
const siteSNIEndpoint = -3

// startSNIEndpoint starts the endpoint on its hidden address and the
// middlebox and the resetting listener in front of it, on the listeners
// bound by start.
func (l *Lab) startSNIEndpoint(lns map[int]net.Listener) error {
	certPEM, keyPEM, err := control.NewSNIEndpointCertificate(time.Now())
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("lab: SNI endpoint certificate: %w", err)
	}
	ep, err := control.NewSNIEndpoint(cert)
	if err != nil {
		return err
	}
	l.sniEndpoint = ep
	l.SNIEndpointAddr = netip.AddrPortFrom(hostAddr(l.Net, hostSNIEndpoint), uint16(l.Port))
	l.SNIBlockedAddr = netip.AddrPortFrom(hostAddr(l.Net, hostSNIBlocked), uint16(l.Port))
	l.SNIDeadAddr = netip.AddrPortFrom(hostAddr(l.Net, hostSNIDead), uint16(l.Port))
	l.SNIEndpointPin = ep.Pin()
	l.wg.Add(3)
	go func() {
		defer l.wg.Done()
		ep.Serve(&trackingListener{Listener: lns[hostSNIOrigin], lab: l, latency: true})
	}()
	go l.serveMiddlebox(lns[hostSNIEndpoint], siteSNIEndpoint)
	go l.serveResetAll(lns[hostSNIBlocked])
	return nil
}

// sniEndpointInfo is the control API's answer about the endpoint.
func (l *Lab) sniEndpointInfo() *control.SNIEndpointResponse {
	return &control.SNIEndpointResponse{
		Address: l.SNIEndpointAddr.Addr().String(),
		Port:    int(l.SNIEndpointAddr.Port()),
		Pin:     l.SNIEndpointPin.String(),
	}
}

// serveResetAll resets every connection after one round trip: an address
// the network blocks whatever the SNI.
func (l *Lab) serveResetAll(ln net.Listener) {
	defer l.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		tc := l.track(c)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			if !sleep(l.latency, l.done) {
				tc.Close()
				return
			}
			if tcp, ok := tcpConn(tc); ok {
				tcp.SetLinger(0)
			}
			tc.Close()
		}()
	}
}

// Sweep verdicts, as [ExpectedSweepVerdict] names them.
const (
	SweepVerdictInterceptedISCA  = string(measurement.VerdictSNIInterceptedISCA)
	SweepVerdictInterceptedOther = string(measurement.VerdictSNIInterceptedOther)
	SweepVerdictBlocked          = string(measurement.VerdictSNIBlocked)
	SweepVerdictClean            = string(measurement.VerdictClean)
)

// ExpectedSweepVerdict is the verdict a sweep against [Lab.SNIEndpointAddr]
// should give a site's name, from its TLS behaviour alone (the DNS is
// never asked): clean where the middlebox lets the name pass (Pass,
// Unreachable: that is an address's property), intercepted where it
// intercepts, blocked where it resets, closes or stays silent. A
// ClientHello of at most 1 KiB (smallHello: the tls12 hello, the small
// fingerprint) is read whole by an InterceptISCASNIPeek middlebox, which
// intercepts it and closes on a larger one. The hostile behaviours give
// "": what they send is not a statement about SNI filtering.
func ExpectedSweepVerdict(tlsBehaviour string, smallHello bool) string {
	switch tlsBehaviour {
	case "", Pass, Unreachable:
		return SweepVerdictClean
	case InterceptISCA, InterceptISCAExpired:
		return SweepVerdictInterceptedISCA
	case InterceptCorporate:
		return SweepVerdictInterceptedOther
	case InterceptISCASNIPeek:
		if smallHello {
			return SweepVerdictInterceptedISCA
		}
		return SweepVerdictBlocked
	case Reset, EOF, Blackhole:
		return SweepVerdictBlocked
	}
	return ""
}
