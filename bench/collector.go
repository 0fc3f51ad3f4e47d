package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"kzprobe/collector"
	"kzprobe/collector/client"
	"kzprobe/measurement"
)

// CollectorConfig is a bench of a collector under load: N submissions
// from Parallel probes, each with its own connection and its own report,
// of lab records, to a collector already listening (kzprobe bench
// --collector starts one in a child process).
type CollectorConfig struct {
	// N is the number of submissions, Parallel the probes submitting at
	// once; both positive.
	N, Parallel int
	// Rate is the submissions per second of all the probes together,
	// each probe on its own schedule; a submission's latency is then
	// counted from when it was due, so a collector that falls behind shows
	// it (no coordinated omission). Zero means as fast as the collector
	// answers: each probe sends its next record once the last is
	// acknowledged.
	Rate float64
	// Records are the records submitted in turn, one JSON line each
	// (LabRecords): each submission is one of them with a measurement_uid
	// of its own and the probe's report_id.
	Records [][]byte
	// URL and Pin are the collector's (kzprobe collector serve prints
	// both).
	URL, Pin string
}

// CollectorResult is what a collector bench measured; durations in ms,
// CPU in seconds, memory in MiB.
type CollectorResult struct {
	SoftwareVersion string  `json:"software_version"`
	N               int     `json:"n"`
	Parallel        int     `json:"parallel"`
	Rate            float64 `json:"rate"`
	RecordBytes     int     `json:"record_bytes"`
	// Acked is how many submissions the collector answered 200; Failed
	// how many it did not (each a failure of the bench).
	Acked  int `json:"acked"`
	Failed int `json:"failed"`
	// Stored is how many records the collector's store holds after the
	// bench (the caller counts them; -1 when not counted).
	Stored       int     `json:"stored"`
	Wall         float64 `json:"wall_s"`
	AcksPerSec   float64 `json:"acks_per_s"`
	P50          float64 `json:"p50_ms"`
	P90          float64 `json:"p90_ms"`
	P99          float64 `json:"p99_ms"`
	Max          float64 `json:"max_ms"`
	ClientCPU    float64 `json:"client_cpu_s"`
	ClientRSS    float64 `json:"client_peak_rss_mib"`
	CollectorCPU float64 `json:"collector_cpu_s"`
	CollectorRSS float64 `json:"collector_peak_rss_mib"`
	// Fsync is the latency of one fsync of a 4 KiB append in the
	// collector's store folder, p50 and p99 over 100, ms: the floor under
	// an acknowledgement, which waits for one.
	FsyncP50 float64 `json:"fsync_p50_ms"`
	FsyncP99 float64 `json:"fsync_p99_ms"`
	Cores    int     `json:"cores"`
}

// RunCollector submits cfg.N records to the collector at cfg.URL and
// measures each acknowledgement's latency. A submission that fails is
// counted and its error kept; the first such error is returned with the
// result.
func RunCollector(ctx context.Context, cfg CollectorConfig) (CollectorResult, error) {
	res := CollectorResult{N: cfg.N, Parallel: cfg.Parallel, Rate: cfg.Rate, Stored: -1}
	if cfg.N <= 0 || cfg.Parallel <= 0 || cfg.Rate < 0 || len(cfg.Records) == 0 {
		return res, fmt.Errorf("%w: N and Parallel must be positive, Rate not negative, and there must be records", ErrBadConfig)
	}
	for _, r := range cfg.Records {
		res.RecordBytes += len(r)
	}
	res.RecordBytes /= len(cfg.Records)
	probes := make([]*client.Client, cfg.Parallel)
	ids := make([]string, cfg.Parallel)
	q, err := openRequestOf(cfg.Records[0])
	if err != nil {
		return res, err
	}
	for i := range probes {
		c, err := client.New(cfg.URL, client.Options{Pin: cfg.Pin})
		if err != nil {
			return res, err
		}
		defer c.CloseIdle()
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		ids[i], err = c.Open(octx, q)
		cancel()
		if err != nil {
			return res, fmt.Errorf("opening probe %d's report: %w", i, err)
		}
		probes[i] = c
	}

	var (
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, cfg.N)
		firstErr error
		failed   int
	)
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(cfg.Parallel) / cfg.Rate)
	}
	cpu0, start := cpuSeconds(), time.Now()
	var wg sync.WaitGroup
	for w := range cfg.Parallel {
		// Probe w submits the submissions w, w+P, w+2P...
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, cfg.N/cfg.Parallel+1)
			due := start.Add(interval * time.Duration(w) / time.Duration(cfg.Parallel))
			for i := w; i < cfg.N && ctx.Err() == nil; i += cfg.Parallel {
				rec, err := submission(cfg.Records[i%len(cfg.Records)], ids[w], uint64(i))
				if err == nil {
					if interval > 0 {
						if d := time.Until(due); d > 0 {
							time.Sleep(d)
						}
					} else {
						due = time.Now()
					}
					_, err = probes[w].Update(ctx, ids[w], rec)
					if err == nil {
						mine = append(mine, time.Since(due))
					}
					due = due.Add(interval)
				}
				if err != nil {
					mu.Lock()
					failed++
					if firstErr == nil {
						firstErr = fmt.Errorf("submission %d: %w", i, err)
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	res.ClientCPU = cpuSeconds() - cpu0
	res.ClientRSS = peakRSSMiB()
	res.Cores = runtime.NumCPU()
	res.Failed = failed
	res.Acked = len(lat)
	res.Wall = wall.Seconds()
	res.AcksPerSec = float64(res.Acked) / wall.Seconds()
	res.P50, res.P90, res.P99, res.Max = percentiles(lat)
	if err := ctx.Err(); err != nil && firstErr == nil {
		firstErr = err
	}
	return res, firstErr
}

// percentiles are the 50th, 90th and 99th percentiles and the largest of
// lat, in ms (0 for none).
func percentiles(lat []time.Duration) (p50, p90, p99, largest float64) {
	if len(lat) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	at := func(p float64) float64 {
		return ms(lat[min(len(lat)-1, int(math.Ceil(float64(len(lat))*p))-1)])
	}
	return at(0.50), at(0.90), at(0.99), ms(lat[len(lat)-1])
}

// openRequestOf is the report a probe opens for records like rec.
func openRequestOf(rec []byte) (q collector.OpenRequest, err error) {
	var e measurement.Envelope
	if err := json.Unmarshal(rec, &e); err != nil {
		return q, fmt.Errorf("a lab record: %w", err)
	}
	return client.OpenRequestOf(e.DataFormatVersion, e.ProbeASN, e.ProbeCC, e.SoftwareName, e.SoftwareVersion,
		e.TestName, e.TestVersion, e.TestStartTime), nil
}

// uidKey is where a compact record's measurement_uid starts.
var uidKey = []byte(`"measurement_uid":"`)

// submission is rec in the report id with the n-th measurement_uid: its
// last 16 characters (hex in kzprobe's UIDs) replaced by n in hex.
func submission(rec []byte, id string, n uint64) ([]byte, error) {
	out, err := client.ReplaceReportID(rec, id)
	if err != nil {
		return nil, err
	}
	i := bytes.Index(out, uidKey)
	if i < 0 {
		return nil, errors.New("a lab record without a measurement_uid")
	}
	start := i + len(uidKey)
	end := bytes.IndexByte(out[start:], '"')
	if end < 16 {
		return nil, fmt.Errorf("a lab record's measurement_uid is too short: %q", out[start:start+max(end, 0)])
	}
	copy(out[start+end-16:], fmt.Sprintf("%016x", n))
	return out, nil
}

// LabRecords reads the records of a JSONL file a bench run wrote
// (Config.Output), one line each.
func LabRecords(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			out = append(out, bytes.Clone(line))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no record", path)
	}
	return out, nil
}

// FsyncLatency measures n fsyncs of a 4 KiB append to a file in dir (then
// removed): their p50 and p99, ms.
func FsyncLatency(dir string, n int) (p50, p99 float64, err error) {
	f, err := os.CreateTemp(dir, "fsync-*")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	lat := make([]time.Duration, 0, n)
	for range n {
		if _, err := f.Write(buf); err != nil {
			return 0, 0, err
		}
		t := time.Now()
		if err := f.Sync(); err != nil {
			return 0, 0, fmt.Errorf("fsync in %s: %w", filepath.Base(dir), err)
		}
		lat = append(lat, time.Since(t))
	}
	p50, _, p99, _ = percentiles(lat)
	return p50, p99, nil
}
