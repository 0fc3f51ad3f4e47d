package bench

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"kzprobe/probe"
	"kzprobe/probe/chain"
	"kzprobe/probe/guard"
)

// baselineTimeout bounds one baseline connect and one handshake: loopback,
// so only a machine that has stopped makes it expire.
const baselineTimeout = 10 * time.Second

// baseline is the CPU reference of a run: one handshake of the engine's
// own with the lab's baseline origin, from the dial to the judgement of
// the chain.
type baseline struct {
	addr netip.Addr
	port int
	// sweep: the lab's SNI endpoint (through its middlebox), with hello,
	// whose chain must have the pin instead of being trusted.
	sweep     bool
	hello     string
	pin       chain.Pin
	connector *probe.Connector
	handshake *probe.Handshaker
	analyzer  *chain.Analyzer
}

// newBaseline prepares the baseline against the lab of info: its baseline
// origin, judged against the lab's public root, over loopback only.
func newBaseline(info labInfo) (*baseline, error) {
	return newRunOrSweepBaseline(info, false, "")
}

// newSweepBaseline is the baseline of a sweep: a handshake with hello (""
// for the default) to the lab's neutral SNI endpoint, as the sweep
// reaches it (through the middlebox), whose key must be its pin, and the
// chain judged.
func newSweepBaseline(info labInfo, hello string) (*baseline, error) {
	return newRunOrSweepBaseline(info, true, hello)
}

func newRunOrSweepBaseline(info labInfo, sweep bool, hello string) (*baseline, error) {
	b := &baseline{port: info.Port, sweep: sweep, hello: cmp.Or(hello, probe.DefaultFingerprint)}
	for _, s := range info.Sites {
		if s.Domain == "*."+baseZone {
			b.addr = s.OriginAddr
		}
	}
	if sweep {
		pin, err := chain.ParsePin(info.SNIEndpointPin)
		if err != nil {
			return nil, fmt.Errorf("the lab's SNI endpoint: %w", err)
		}
		b.addr, b.port, b.pin = info.SNIEndpoint.Addr(), int(info.SNIEndpoint.Port()), pin
	}
	if !b.addr.IsValid() {
		return nil, errors.New("the lab has no baseline site")
	}
	pem, err := os.ReadFile(info.Files.PublicRoot)
	if err != nil {
		return nil, fmt.Errorf("the lab's public root: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("the lab's public root: %s holds no PEM certificate", info.Files.PublicRoot)
	}
	kb, err := chain.Default()
	if err != nil {
		return nil, fmt.Errorf("loading the embedded knowledge base: %w", err)
	}
	g, err := guard.Parse("127.0.0.0/8")
	if err != nil {
		return nil, err
	}
	b.connector = &probe.Connector{Dial: g.Dialer(nil), Timeout: baselineTimeout}
	b.handshake = &probe.Handshaker{Timeout: baselineTimeout}
	b.analyzer = chain.NewAnalyzer(roots, kb)
	return b, nil
}

// one connects, hand-shakes with the default fingerprint for the i-th
// baseline name and judges the chain, which must be trusted.
func (b *baseline) one(ctx context.Context, i int) error {
	name := fmt.Sprintf("b%d.%s", i, baseZone)
	t0 := probe.NewEpoch(nil)
	conn, c := b.connector.Connect(ctx, b.addr, b.port, t0)
	if conn == nil {
		return fmt.Errorf("connect: %s", deref(c.Status.Failure))
	}
	h := b.handshake.Handshake(ctx, conn, name, b.hello, t0)
	if h.Failure != nil {
		return fmt.Errorf("handshake: %s", *h.Failure)
	}
	der := make([][]byte, len(h.PeerCertificates))
	for j, c := range h.PeerCertificates {
		der[j] = c
	}
	j := b.analyzer.Judge(der, name, t0.Start())
	if b.sweep {
		if len(der) == 0 {
			return errors.New("the SNI endpoint presented no certificate")
		}
		if pin, err := chain.SPKIPin(der[0]); err != nil || pin != b.pin {
			return fmt.Errorf("the SNI endpoint's key is not its pin %s", b.pin)
		}
		return nil
	}
	if !j.Trusted {
		return fmt.Errorf("the baseline chain is not trusted: %s", deref(j.TrustFailure))
	}
	return nil
}

// cpuPerOp runs ops baseline operations par at a time, after one to warm
// up (and fail early), and returns the client CPU per operation, s.
func (b *baseline) cpuPerOp(ctx context.Context, ops, par int) (float64, error) {
	if err := b.one(ctx, -1); err != nil {
		return 0, err
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     = make(chan int)
	)
	cpu0 := cpuSeconds()
	for range par {
		wg.Go(func() {
			for i := range next {
				if err := b.one(ctx, i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range ops {
		next <- i
	}
	close(next)
	wg.Wait()
	cpu := cpuSeconds() - cpu0
	if firstErr != nil {
		return 0, firstErr
	}
	return cpu / float64(ops), nil
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
