//go:build unix

package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"kzprobe/collector"
	"kzprobe/store/files"
)

// benchCollector starts a real collector over HTTPS with its file store on
// disk, no rate limit per client (the benchmark's probes share one
// address), and returns W clients, each with its own connection and its
// own open report.
func benchCollector(b *testing.B, workers int) (clients []*Client, ids []string, st *files.Store) {
	b.Helper()
	st, err := files.Open(filepath.Join(b.TempDir(), "store"), files.Options{})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := collector.NewServer(collector.Config{Store: st, ReportsFile: filepath.Join(b.TempDir(), "reports.journal"), Rate: -1})
	if err != nil {
		b.Fatal(err)
	}
	// The server kzprobe collector serve runs (HTTP/2 and HTTP/1.1 over
	// TLS, its timeouts), on httptest's certificate.
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	cert := ts.TLS
	ts.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := srv.HTTPServer(&tls.Config{Certificates: cert.Certificates})
	go hs.ServeTLS(ln, "", "")
	b.Cleanup(func() { hs.Close(); srv.Close(); st.Close() })
	leaf, _ := x509.ParseCertificate(cert.Certificates[0].Certificate[0])
	pin := FormatPin(sha256.Sum256(leaf.RawSubjectPublicKeyInfo))
	for range workers {
		c, err := New("https://"+ln.Addr().String(), Options{Pin: pin})
		if err != nil {
			b.Fatal(err)
		}
		id, err := c.Open(context.Background(), OpenRequestOf("0.2.0", "AS64500", "KZ", "kzprobe", "golden", "kzprobe_tls_mitm", "0.2.0", ""))
		if err != nil {
			b.Fatal(err)
		}
		clients, ids = append(clients, c), append(ids, id)
	}
	return clients, ids, st
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadResult reports latency percentiles, the rate achieved and the CPU
// time per acknowledgement (the probes' side included: an upper bound of
// the collector's).
func loadResult(b *testing.B, lat []time.Duration, elapsed, cpu time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		return
	}
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "acks/s")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(lat)), "cpu-ms/ack")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkCollectorLoad: 100 probes, each on its own HTTPS connection,
// submit the engine's golden mitm_isca record (with a unique
// measurement_uid each time) at 1 000 measurements/s in total, each probe
// every 100 ms on its own schedule, to a real collector and its file
// store (fsync before every 200). The latency of an acknowledgement is
// counted from the time the submission was due, so a collector that falls
// behind shows it (no coordinated omission). b.N is the number of
// measurements: -benchtime 10000x is ten seconds.
func BenchmarkCollectorLoad(b *testing.B) {
	const workers, rate = 100, 1000
	clients, ids, st := benchCollector(b, workers)
	per := max(1, b.N/workers)
	interval := time.Second * workers / rate
	bases := make([][]byte, workers)
	for w := range workers {
		bases[w] = records(b, 1, ids[w])[0]
	}
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, per)
			due := start.Add(interval * time.Duration(w) / workers)
			for i := range per {
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				content := replaceUID(bases[w], fmt.Sprintf("20250601120000.000000_KZ_kzprobetlsmitm_%08x%08x", w, i))
				if _, err := clients[w].Update(context.Background(), ids[w], content); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(due))
				due = due.Add(interval)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	if st.Len() != per*workers {
		b.Errorf("stored %d; want %d", st.Len(), per*workers)
	}
	loadResult(b, lat, elapsed, cpu)
}

// BenchmarkCollectorMax: the same 100 probes submitting as fast as the
// collector answers: its throughput and latency under saturation.
func BenchmarkCollectorMax(b *testing.B) {
	const workers = 100
	clients, ids, _ := benchCollector(b, workers)
	per := max(1, b.N/workers)
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := records(b, 1, ids[w])[0]
			for i := range per {
				content := replaceUID(base, fmt.Sprintf("20250601120000.000000_KZ_kzprobetlsmitm_%08x%08x", w, i))
				t0 := time.Now()
				if _, err := clients[w].Update(context.Background(), ids[w], content); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	loadResult(b, lat, elapsed, cpu)
}

// replaceUID returns a copy of the golden record with measurement_uid uid
// (of the same length).
func replaceUID(rec []byte, uid string) []byte {
	const golden = "20250601120000.000000_KZ_kzprobetlsmitm_0000000000000000"
	return bytes.Replace(rec, []byte(golden), []byte(uid), 1)
}
