//go:build unix

package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// hostileRSSBound is the peak resident set `kzprobe analyze` may reach on
// any input, however its lines are built.
const hostileRSSBound = 256 << 20

// writeHostile writes a gzip file of lines, each built of a head, an
// element repeated to fill about size bytes, and a tail: a few kilobytes
// of gzip that decode to lines near the 64 MiB bound.
func writeHostile(t *testing.T, path string, lines int, head, elem, tail string, size int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	bw := bufio.NewWriterSize(zw, 1<<20)
	n := (size - len(head) - len(tail) - len(elem)) / (len(elem) + 1)
	per := max(1, (1<<20)/(len(elem)+1)) // elements per write, about 1 MiB
	block := strings.Repeat(elem+",", per)
	for range lines {
		bw.WriteString(head)
		for i := 0; i < n; i += per {
			bw.WriteString(block[:min(per, n-i)*(len(elem)+1)])
		}
		bw.WriteString(elem + tail + "\n")
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAnalyzeHostileInputBoundedMemory runs the real `kzprobe analyze` on
// small gzip files whose lines decode to millions of objects (a 16 KB file
// of `"intermediates":[{},{},...]` took 3.0 GB, tls_handshakes of {} 4.8 GB,
// peer_certificates of "" 2.6 GB) and checks the peak resident set the
// kernel reports for the process (ru_maxrss) stays under 256 MB (an upper
// bound: Linux counts in it the test's own resident set at the fork, which
// this test keeps small), and that the record is read in part with a warning
// naming what was skipped. A watchdog kills a run past 1 GB, so that a
// regression fails the test instead of exhausting the machine.
func TestAnalyzeHostileInputBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and reads 64 MiB lines")
	}
	clearEnv(t)
	bin := kzprobeBinary(t)
	dir := t.TempDir()
	const size = 63 << 20 // under the 64 MiB line bound: read, not skipped
	env := `{"measurement_start_time":"2024-01-01 00:00:00","probe_asn":"AS1","test_name":"web_connectivity","input":"https://a.example/","test_keys":`
	cert := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x30, 0x82}, 30<<10))
	for _, tc := range []struct {
		name             string
		lines            int
		head, elem, tail string
		want             string // in the warning
		pretty           bool   // a JSON document over many lines
	}{
		{name: "intermediates", lines: 1, head: env + `{"interception":{"intermediates":[`, elem: `{}`, tail: `]}}}`,
			want: "test_keys.interception list entries past the first 64"},
		{name: "tls_handshakes", lines: 1, head: env + `{"tls_handshakes":[`, elem: `{}`, tail: `]}}`,
			want: "handshake(s) past the first 256"},
		{name: "peer_certificates", lines: 1, head: env + `{"tls_handshakes":[{"peer_certificates":[`, elem: `""`, tail: `]}]}}`,
			want: "1 chain(s) cut at 64 certificates"},
		{name: "pings", lines: 1, head: env + `{"pings":[`, elem: `{"tls_handshake":{}}`, tail: `]}}`,
			want: "ping(s) past the first 256"},
		{name: "certificate_bytes", lines: 1, head: env + `{"tls_handshakes":[`, elem: `{"peer_certificates":[` + strings.Repeat(`"`+cert+`",`, 63) + `"` + cert + `"]}`, tail: `]}}`,
			want: "chain(s) cut at 16777216 certificate bytes per record"},
		{name: "many_long_lines", lines: 4, head: env + `{"tls_handshakes":[`, elem: `{"server_name":"a"}`, tail: `]}}`,
			want: "handshake(s) past the first 256"},
		{name: "json_document", lines: 1, head: "{\n" + strings.TrimPrefix(env, "{") + `{"tls_handshakes":[`, elem: `{}`, tail: `]}}`,
			want: "handshake(s) past the first 256", pretty: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".jsonl.gz")
			writeHostile(t, path, tc.lines, tc.head, tc.elem, tc.tail, size)
			fi, _ := os.Stat(path)
			stdout := runBounded(t, bin, "analyze", path, "--format", "json", "--table", "warnings")
			t.Logf("%s: %d KB of gzip, %d line(s) of %d MiB", tc.name, fi.Size()>>10, tc.lines, size>>20)
			src := path + ":1"
			if tc.pretty {
				src = path + ":@0"
			}
			if n := strings.Count(stdout, tc.want); n != tc.lines || !strings.Contains(stdout, src) {
				t.Errorf("warnings name %q %d times (want %d) at %s:\n%s", tc.want, n, tc.lines, src, truncateOutput(stdout))
			}
		})
	}

	// A million distinct networks and domains in a few MB of gzip: the
	// tables stop at their bound (analysis.Config.MaxTableBytes) where
	// two million took 3.9 GB.
	t.Run("distinct_networks_and_domains", func(t *testing.T) {
		path := filepath.Join(dir, "distinct.jsonl.gz")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		zw := gzip.NewWriter(f)
		bw := bufio.NewWriterSize(zw, 1<<20)
		for i := range 1_000_000 {
			fmt.Fprintf(bw, `{"measurement_start_time":"2024-01-01 00:00:00","probe_asn":"AS%d","probe_network_name":"Network %d","test_name":"kzprobe_tls_mitm","test_keys":{"domain":"d%d.example","verdict":"ok"}}`+"\n", i+1, i, i)
		}
		bw.Flush()
		zw.Close()
		f.Close()
		for _, args := range [][]string{
			{"analyze", path, "--format", "json", "--table", "summary,warnings"},
			{"compare", path, "--format", "json"},
		} {
			out := runBounded(t, bin, args...)
			if !strings.Contains(out, "reached its") && !strings.Contains(out, "reached their") {
				t.Errorf("%s: no warning that the tables are full:\n%s", args[0], truncateOutput(out))
			}
		}
	})
}

// runBounded runs the real kzprobe, checks it exits 0 and that its peak
// resident set stays under hostileRSSBound, and returns its stdout.
func runBounded(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := watchRSS(cmd.Process.Pid, 1<<30)
	err := cmd.Wait()
	if killed.Load() {
		t.Fatalf("kzprobe %s: killed past 1 GB of resident memory", strings.Join(args, " "))
	}
	if err != nil {
		t.Fatalf("kzprobe %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	rss := maxRSS(t, cmd.ProcessState)
	t.Logf("kzprobe %s: peak RSS %d MiB", args[0], rss>>20)
	if rss > hostileRSSBound {
		t.Errorf("kzprobe %s: peak RSS %d MiB; want under %d MiB", strings.Join(args, " "), rss>>20, hostileRSSBound>>20)
	}
	return stdout.String()
}

// watchRSS polls the resident set of pid (Linux's /proc) and kills the
// process past limit bytes; the flag is set when it did. It stops when
// the process is gone.
func watchRSS(pid int, limit int64) *atomic.Bool {
	killed := new(atomic.Bool)
	if runtime.GOOS != "linux" {
		return killed
	}
	go func() {
		status := fmt.Sprintf("/proc/%d/status", pid)
		for {
			b, err := os.ReadFile(status)
			if err != nil {
				return // gone
			}
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
					if kb, _ := strconv.ParseInt(f[1], 10, 64); kb<<10 > limit {
						killed.Store(true)
						syscall.Kill(pid, syscall.SIGKILL)
						return
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return killed
}

// maxRSS is the peak resident set of a finished process, in bytes
// (ru_maxrss is in KiB on Linux and the BSDs, in bytes on macOS).
func maxRSS(t *testing.T, ps *os.ProcessState) int64 {
	t.Helper()
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Skip("no rusage on this system")
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return int64(ru.Maxrss)
	}
	return int64(ru.Maxrss) << 10
}

func truncateOutput(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "…"
	}
	return s
}
