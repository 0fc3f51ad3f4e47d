package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"kzprobe/bench"
	"kzprobe/collector"
	"kzprobe/store/files"
)

// labRecordsN is how many lab records a collector bench measures first
// and submits in turn: 10 of each behaviour of the mix scenario.
const labRecordsN = 70

// runBenchCollector is `kzprobe bench --collector`: lab records measured
// by the real engine, then submitted a.n times by a.parallel probes to a
// real `kzprobe collector serve` in a child process, its store in a
// temporary folder.
func runBenchCollector(ctx context.Context, a benchArgs, stdout, stderr io.Writer) error {
	switch {
	case a.sweep || a.controlServer:
		return usageError("--collector benches the collector; --sweep and --control-server are for the probe's benches")
	case a.n <= 0 || a.parallel <= 0:
		return usageError("--n and --parallel must be positive")
	case a.rate < 0:
		return usageError("--rate %g: give a number of submissions per second, or 0 for as fast as the collector answers", a.rate)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "kzprobe-bench-collector-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	recordsFile := filepath.Join(dir, "records.jsonl")
	labCfg := bench.Config{Scenario: bench.ScenarioMix, N: labRecordsN, Parallel: labRecordsN, Timeout: a.timeout,
		Output: recordsFile, Engine: benchEngine}
	if !a.labInProcess {
		labCfg.LabCommand = func() *exec.Cmd { return exec.Command(exe, "bench", "--lab-only") }
	}
	if _, err := bench.Run(ctx, labCfg, stderr); err != nil {
		return fmt.Errorf("measuring the lab records: %w", err)
	}
	records, err := bench.LabRecords(recordsFile)
	if err != nil {
		return err
	}

	storeDir := filepath.Join(dir, "store")
	col, err := startBenchCollector(ctx, exe, storeDir, a.parallel)
	if err != nil {
		return err
	}
	defer col.kill()
	fsync50, fsync99, err := bench.FsyncLatency(storeDir, 100)
	if err != nil {
		return err
	}
	res, runErr := bench.RunCollector(ctx, bench.CollectorConfig{N: a.n, Parallel: a.parallel, Rate: a.rate,
		Records: records, URL: col.url, Pin: col.pin})
	res.FsyncP50, res.FsyncP99 = fsync50, fsync99
	res.SoftwareVersion = softwareVersion()
	res.CollectorCPU, res.CollectorRSS, err = col.stop()
	if err != nil {
		return fmt.Errorf("the collector: %w\n%s", err, col.logs())
	}
	if runErr != nil && ctx.Err() != nil {
		return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted: %w", runErr)}
	}
	if runErr != nil {
		return fmt.Errorf("%d of %d submissions failed, the first: %w\n%s", res.Failed, res.N, runErr, col.logs())
	}
	// Every acknowledged record must be in the store, read back as the
	// next collector would.
	st, err := files.Open(storeDir, files.Options{})
	if err != nil {
		return err
	}
	res.Stored = st.Len()
	st.Close()
	if res.Stored != res.Acked {
		return fmt.Errorf("the collector acknowledged %d records and its store holds %d", res.Acked, res.Stored)
	}
	if a.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printBenchCollector(stdout, res)
	return nil
}

// benchCollector is a `kzprobe collector serve` child process.
type benchCollector struct {
	cmd      *exec.Cmd
	url, pin string
	exited   bool

	logMu sync.Mutex
	log   []string // the collector's log lines
}

// logs returns the collector's log so far.
func (c *benchCollector) logs() string {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	return strings.Join(c.log, "\n")
}

// startBenchCollector starts the collector on a free loopback port with
// its store in storeDir, no limit per client (the probes share one
// address) and room for every probe at once, and waits for its URL.
func startBenchCollector(ctx context.Context, exe, storeDir string, probes int) (*benchCollector, error) {
	cmd := exec.Command(exe, "collector", "serve", "--store", storeDir, "--listen", "127.0.0.1:0",
		"--log-format", "json", "--rate", "-1", "--max-concurrent", fmt.Sprint(max(collector.DefaultMaxConcurrent, probes)),
		"--max-conns", fmt.Sprint(max(4096, 2*probes)))
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the collector: %w", err)
	}
	c := &benchCollector{cmd: cmd}
	found := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			c.logMu.Lock()
			c.log = append(c.log, sc.Text())
			c.logMu.Unlock()
			var line struct {
				URL string `json:"url"`
				Pin string `json:"tls_pin"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.URL != "" && line.Pin != "" {
				select {
				case found <- [2]string{line.URL, line.Pin}:
				default:
				}
			}
		}
	}()
	select {
	case f := <-found:
		c.url, c.pin = f[0], f[1]
		return c, nil
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	c.kill()
	return nil, fmt.Errorf("the collector did not say its URL:\n%s", c.logs())
}

// stop ends the collector as a signal would and returns its CPU, s, and
// its peak RSS, MiB.
func (c *benchCollector) stop() (cpu, rss float64, err error) {
	if runtime.GOOS == "windows" {
		err = c.cmd.Process.Kill()
	} else {
		err = c.cmd.Process.Signal(os.Interrupt)
	}
	if err != nil {
		return 0, 0, err
	}
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		err = errors.Join(errors.New("it did not stop within 30 s of an interrupt"), <-done)
	}
	c.exited = true
	ps := c.cmd.ProcessState
	if ps == nil {
		return 0, 0, err
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && runtime.GOOS == "windows" {
		err = nil // killed: Windows has no interrupt to send
	}
	return (ps.UserTime() + ps.SystemTime()).Seconds(), bench.ProcessPeakRSSMiB(ps), err
}

// kill ends the collector if it still runs.
func (c *benchCollector) kill() {
	if !c.exited {
		c.cmd.Process.Kill()
		c.cmd.Wait()
		c.exited = true
	}
}

// printBenchCollector writes a collector bench's result as a table.
func printBenchCollector(w io.Writer, r bench.CollectorResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	pace := "as fast as the collector answers"
	if r.Rate > 0 {
		pace = fmt.Sprintf("%g/s in all (latency counted from when each was due)", r.Rate)
	}
	fmt.Fprintf(tw, "kzprobe\t%s\n", r.SoftwareVersion)
	fmt.Fprintf(tw, "collector\tN=%d from P=%d probes, %s\n", r.N, r.Parallel, pace)
	fmt.Fprintf(tw, "records\tlab records of the mix scenario, %d bytes on average\n", r.RecordBytes)
	fmt.Fprintf(tw, "acknowledged\t%d (stored %d), %.1f/s over %.3f s\n", r.Acked, r.Stored, r.AcksPerSec, r.Wall)
	fmt.Fprintf(tw, "latency\tp50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n", r.P50, r.P90, r.P99, r.Max)
	fmt.Fprintf(tw, "fsync\tp50 %.2f ms, p99 %.2f ms (4 KiB appends in the store's folder)\n", r.FsyncP50, r.FsyncP99)
	fmt.Fprintf(tw, "collector\t%.1f s CPU (%.3f ms an ack), peak RSS %.1f MiB\n", r.CollectorCPU, 1000*r.CollectorCPU/float64(max(r.Acked, 1)), r.CollectorRSS)
	fmt.Fprintf(tw, "probes\t%.1f s CPU, peak RSS %.1f MiB (this process, lab records included)\n", r.ClientCPU, r.ClientRSS)
	fmt.Fprintf(tw, "cores\t%d\n", r.Cores)
	tw.Flush()
}
