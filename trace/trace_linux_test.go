//go:build linux

package trace

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/netip"
	"testing"
	"time"

	"kzprobe/measurement"
	"kzprobe/probe/chain"
	"kzprobe/probe/failure"
	"kzprobe/probe/guard"
)

// tlsServer serves TLS on a loopback address of the network ("tcp4",
// "tcp6") with a self-signed certificate for *.example.test, and returns
// its address and a pool that trusts it.
func tlsServer(t *testing.T, network, addr string) (netip.AddrPort, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "trace test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"*.example.test"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	t.Cleanup(func() { ln.Close() })
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				tc := tls.Server(c, cfg)
				if tc.Handshake() == nil {
					io.Copy(io.Discard, tc)
				}
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String()), pool
}

// TestRunLoopback traces a TLS server on loopback, IPv4 and IPv6: the
// destination is hop 1 for TCP (connected) and UDP (its port
// unreachable), both SNIs get the trusted chain there, and the loopback
// hop is recorded by its class, with no address.
func TestRunLoopback(t *testing.T) {
	for _, fam := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		t.Run(fam.network, func(t *testing.T) {
			addr, pool := tlsServer(t, fam.network, fam.addr)
			var steps []Step
			res, err := Run(t.Context(), Config{
				Address: addr, SNI: "target.example.test", ControlSNI: "control.example.test",
				HopTimeout: time.Second, MaxHops: 3,
				Analyzer: chain.NewAnalyzer(pool, nil),
				Guard:    guard.New(netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")),
				Progress: func(s Step) { steps = append(steps, s) },
			})
			if err != nil {
				t.Fatal(err)
			}
			tk := res.TestKeys
			if tk.Failure != nil {
				t.Fatalf("failure %s", *tk.Failure)
			}
			if len(tk.TCPTraceroute) != 1 || !tk.TCPTraceroute[0].Connected || tk.TCPTraceroute[0].Answer != measurement.AnswerDestination {
				t.Errorf("tcp_traceroute %+v; want connected at hop 1", tk.TCPTraceroute)
			}
			if len(tk.UDPTraceroute) != 1 || tk.UDPTraceroute[0].ICMP == nil || tk.UDPTraceroute[0].Answer != measurement.AnswerDestination {
				t.Errorf("udp_traceroute %+v; want the port unreachable at hop 1", tk.UDPTraceroute)
			}
			if h := tk.UDPTraceroute[0].Hop; h == nil || h.Class != measurement.HopOther || h.Prefix != "" || !h.Destination {
				t.Errorf("hop %+v; want the loopback destination with no prefix", h)
			}
			for name, its := range map[string][]measurement.TLSIteration{"target": tk.TargetTrace, "control": tk.ControlTrace} {
				if len(its) != 1 || its[0].Answer != measurement.AnswerServer || its[0].Chain == nil || !its[0].Chain.Trusted {
					t.Errorf("%s trace %+v; want a trusted chain at hop 1", name, its)
				}
			}
			f := tk.Finding
			if f.Interference != measurement.InterferenceNone || f.TransparentProxy == nil || *f.TransparentProxy || f.DestinationHopsFrom != "udp" {
				t.Errorf("finding %+v; want no interference, no proxy, distance by udp", f)
			}
			if len(steps) != 4 {
				t.Errorf("%d progress steps; want 4: %+v", len(steps), steps)
			}
			if res.Runtime <= 0 || res.Start.IsZero() {
				t.Errorf("start %v, runtime %v", res.Start, res.Runtime)
			}
		})
	}
}

// TestRunOutsideGuard: an address outside --allow-net is recorded as
// blocked_by_allow_net, and nothing is sent.
func TestRunOutsideGuard(t *testing.T) {
	res, err := Run(t.Context(), Config{
		Address: netip.MustParseAddrPort("192.0.2.1:443"), SNI: "x.example.test",
		Guard: guard.New(netip.MustParsePrefix("127.0.0.0/8")),
	})
	if err != nil {
		t.Fatal(err)
	}
	tk := res.TestKeys
	if tk.Failure == nil || *tk.Failure != failure.BlockedByAllowNet {
		t.Errorf("failure %v; want %s", tk.Failure, failure.BlockedByAllowNet)
	}
	if len(tk.TCPTraceroute)+len(tk.UDPTraceroute)+len(tk.TargetTrace)+len(tk.ControlTrace) != 0 {
		t.Errorf("probes were sent: %+v", tk)
	}
}

// TestRunInterrupted: a cancelled context ends the trace with its error.
func TestRunInterrupted(t *testing.T) {
	addr, _ := tlsServer(t, "tcp4", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Run(ctx, Config{Address: addr, SNI: "x.example.test"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v; want context.Canceled", err)
	}
}

func TestRunNoAddress(t *testing.T) {
	if _, err := Run(t.Context(), Config{SNI: "x"}); !errors.Is(err, ErrNoAddress) {
		t.Errorf("err %v; want ErrNoAddress", err)
	}
}
