package control

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
	"kzprobe/probe"
)

func TestZZDebugDoHLatency(t *testing.T) {
	var worst time.Duration
	var slow int
	for i := 0; i < 60; i++ {
		pki := newTestPKI(t)
		doh := startDoH(t, pki, fixedA("192.0.2.80"))
		ex := newExchanger(t, doh.url, Options{RootCAs: pki.pool, ServerName: "resolver.example.test", Timeout: 20 * time.Second})
		for j := 0; j < 3; j++ {
			start := time.Now()
			r := &probe.DNSResolver{Exchanger: ex, Timeout: 20 * time.Second, Retries: -1}
			q := r.Lookup(context.Background(), "x.example.test", dns.TypeA, start)
			d := time.Since(start)
			if q.Failure != nil {
				t.Errorf("fail %s", *q.Failure)
			}
			if d > worst {
				worst = d
			}
			if d > 500*time.Millisecond {
				slow++
				t.Logf("iter %d query %d took %v", i, j, d)
			}
		}
	}
	t.Logf("worst %v slow %d", worst, slow)
}
