package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"kzprobe/collector/client"
	"kzprobe/lab"
	"kzprobe/store/files"
)

// collectorProc is a real `kzprobe collector serve` process.
type collectorProc struct {
	cmd    *exec.Cmd
	url    string
	pin    string
	store  string
	listen string
	logs   *lockedBuffer
}

// freeLoopback returns a loopback ip:port nobody listens on now.
func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startCollectorProc starts the collector binary on listen with its
// store in store and waits until it logs its URL; it is killed at the
// test's end.
func startCollectorProc(t *testing.T, store, listen string, extra ...string) *collectorProc {
	t.Helper()
	p := &collectorProc{store: store, listen: listen, logs: &lockedBuffer{}}
	args := append([]string{"collector", "serve", "--store", store, "--listen", listen, "--log-format", "json"}, extra...)
	p.cmd = exec.Command(kzprobeBinary(t), args...)
	p.cmd.Stderr = p.logs
	p.cmd.Env = append(os.Environ(), "KZPROBE_NETWORK_ALLOW=127.0.0.0/8,::1/128")
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	})
	urlRE := regexp.MustCompile(`"url":"(https://[0-9.]+:[0-9]+)".*"tls_pin":"(sha256:[^"]+)"`)
	for range 500 {
		if m := urlRE.FindStringSubmatch(p.logs.String()); m != nil {
			p.url, p.pin = m[1], m[2]
			return p
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the collector did not log its URL:\n%s", p.logs.String())
	return nil
}

// kill9 kills the collector with SIGKILL, as a crash would.
func (p *collectorProc) kill9(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

// stored returns every line of the store's files.
func storeLines(t *testing.T, dir string) []string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, files.Suffix) {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for l := range strings.SplitSeq(strings.TrimSuffix(string(b), "\n"), "\n") {
			lines = append(lines, l)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return lines
}

// fileLines returns the lines of a JSONL file, sorted.
func fileLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	sort.Strings(lines)
	return lines
}

// runLab runs the real binary's `kzprobe run` against the lab, with extra
// arguments, and returns its stderr.
func runArgsForLab(t *testing.T, l *lab.Lab, files lab.Files, dir string) []string {
	t.Helper()
	return strings.Fields(labCommandLine(labConfig(l, files, dir)))[2:]
}

// TestRunSubmitToCollector: the real `kzprobe run --submit` against the
// real collector: every record stored once, byte for byte the local
// file's line, readable by analyze; the live report at / shows them.
func TestRunSubmitToCollector(t *testing.T) {
	clearEnv(t)
	l, dir, files := startLab(t, lab.Config{Scenario: lab.DefaultScenario()})
	col := startCollectorProc(t, filepath.Join(dir, "store"), freeLoopback(t), "--interception-roots", files.ISCARoot)
	out := filepath.Join(dir, "m.jsonl")
	args := append([]string{"run", "-q", "-o", out, "--submit", col.url, "--submit-pin", col.pin}, runArgsForLab(t, l, files, dir)...)
	cmd := exec.Command(kzprobeBinary(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	local := fileLines(t, out)
	if got := storeLines(t, col.store); !slices.Equal(got, local) {
		t.Fatalf("the store holds %d lines, not the %d local lines byte for byte\n%s", len(got), len(local), stderr.String())
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("submitted %d records", len(local))) {
		t.Errorf("stderr does not say what was submitted:\n%s", stderr.String())
	}
	// The records carry the collector's report_id (opened before measuring).
	var rec struct {
		ReportID string `json:"report_id"`
	}
	json.Unmarshal([]byte(local[0]), &rec)
	if !strings.Contains(rec.ReportID, "_n1_") {
		t.Errorf("report_id %q: want the collector's", rec.ReportID)
	}
	// A run that submitted everything closes its report.
	if journal, _ := os.ReadFile(filepath.Join(col.store, "reports.journal")); !bytes.Contains(journal, []byte(`"id":"`+rec.ReportID+`"`)) || !bytes.Contains(journal, []byte(`"closed":true`)) {
		t.Errorf("the run's report is not closed in the journal:\n%s", journal)
	}
	an := exec.Command(kzprobeBinary(t), "analyze", "--format", "json", "--interception-roots", files.ISCARoot, col.store)
	if data, err := an.Output(); err != nil || !bytes.Contains(data, []byte(`"records"`)) {
		t.Errorf("analyze of the store: %v\n%.300s", err, data)
	}
	resp, err := pinnedClient(t, col.pin).Get(col.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte("<html")) || !bytes.Contains(page, []byte("clean-1.example")) {
		t.Errorf("GET /: %d, %d bytes; want the report with the lab's domains", resp.StatusCode, len(page))
	}
	t.Run("browser", func(t *testing.T) { checkPageInBrowser(t, col, "clean-1.example", "ukraina.ru") })
}

func pinnedClient(t *testing.T, pin string) *http.Client {
	t.Helper()
	want, err := client.ParsePin(pin)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo) != want {
				return fmt.Errorf("wrong key")
			}
			return nil
		},
	}}}
}

// TestCollectorKill9LosesNothing kills the collector with SIGKILL while a
// real run submits, starts it again on the same address and store: every
// record arrives, once.
func TestCollectorKill9LosesNothing(t *testing.T) {
	clearEnv(t)
	l, args := slowLab(t, 24, 30*time.Millisecond)
	_ = l
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	col := startCollectorProc(t, store, freeLoopback(t))
	out := filepath.Join(dir, "m.jsonl")
	run := exec.Command(kzprobeBinary(t), append(args, "-o", out, "--submit", col.url, "--submit-pin", col.pin, "--submit-wait", "60s")...)
	var stderr lockedBuffer
	run.Stderr = &stderr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run.Process.Kill(); run.Wait() })
	waitLines(t, out, 4, 60*time.Second)
	col.kill9(t)
	waitLines(t, out, 10, 60*time.Second) // records written while it is down
	startCollectorProc(t, store, col.listen)
	if err := run.Wait(); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	local := fileLines(t, out)
	if len(local) != 24 {
		t.Fatalf("the run wrote %d records; want 24", len(local))
	}
	if got := storeLines(t, store); !slices.Equal(got, local) {
		t.Fatalf("after kill -9: the store holds %d lines; want the %d local ones, once each\n%s", len(got), len(local), stderr.String())
	}
}

// TestCollectorFullDisk: a store on a full disk answers 503 and stores
// nothing; the probe keeps every record, and kzprobe submit sends them
// once there is room. As root (it mounts a small tmpfs).
func TestCollectorFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	clearEnv(t)
	l, dir, files := startLab(t, lab.Config{Scenario: lab.DefaultScenario()})
	mnt := filepath.Join(t.TempDir(), "disk")
	os.MkdirAll(mnt, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	store := filepath.Join(mnt, "store")
	col := startCollectorProc(t, store, freeLoopback(t))
	// Fill the disk but for a few KiB: the certificate and journal are made.
	filler := filepath.Join(mnt, "filler")
	f, _ := os.Create(filler)
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	out := filepath.Join(dir, "m.jsonl")
	args := append([]string{"run", "-q", "-o", out, "--submit", col.url, "--submit-pin", col.pin, "--submit-wait", "3s"}, runArgsForLab(t, l, files, dir)...)
	var stderr bytes.Buffer
	run := exec.Command(kzprobeBinary(t), args...)
	run.Stderr = &stderr
	if err := run.Run(); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "503") || !strings.Contains(stderr.String(), "kzprobe submit "+out) {
		t.Errorf("stderr does not show the 503 and the command that sends the rest:\n%s", stderr.String())
	}
	if got := storeLines(t, store); len(got) != 0 {
		t.Errorf("a full disk stored %d records", len(got))
	}
	if logs := col.logs.String(); !strings.Contains(logs, "no space left") {
		t.Errorf("the collector does not log the full disk:\n%s", logs)
	}
	os.Remove(filler)
	sub := exec.Command(kzprobeBinary(t), "submit", out, "--submit", col.url, "--submit-pin", col.pin, "--allow-net", "127.0.0.1/32")
	if data, err := sub.CombinedOutput(); err != nil {
		t.Fatalf("submit: %v\n%s", err, data)
	}
	// The disk was full when the run asked for its report too, so the
	// records carry the run's own report_id and were sent in a report
	// opened later: the report_id value is the one byte range that
	// differs.
	local := fileLines(t, out)
	var rec struct {
		ReportID string `json:"report_id"`
	}
	json.Unmarshal([]byte(local[0]), &rec)
	var got []string
	for _, line := range storeLines(t, store) {
		back, err := client.ReplaceReportID([]byte(line), rec.ReportID)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(back))
	}
	sort.Strings(got)
	if !slices.Equal(got, local) {
		t.Errorf("after kzprobe submit: %d stored; want the %d local lines (but for report_id)", len(got), len(local))
	}
}

// TestCollectorRefusesHostile: the real collector answers 4xx to hostile
// submissions and stores nothing (the table of every case is the
// collector package's TestHostileSubmissions).
func TestCollectorRefusesHostile(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	col := startCollectorProc(t, filepath.Join(dir, "store"), freeLoopback(t), "--max-body", "65536")
	c, err := client.New(col.url, client.Options{Pin: col.pin})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, err := c.Open(ctx, client.OpenRequestOf("0.2.0", "AS64500", "KZ", "kzprobe", "1.0", "kzprobe_tls_mitm", "0.2.0", ""))
	if err != nil {
		t.Fatal(err)
	}
	rec := func(report, extra string) []byte {
		return []byte(`{"data_format_version":"0.2.0","input":"x.example","report_id":"` + report + `","measurement_uid":"20261204000000.000000_KZ_kzprobetlsmitm_0000000000000001","measurement_start_time":"2026-12-04 00:00:00","test_start_time":"2026-12-04 00:00:00","test_name":"kzprobe_tls_mitm","test_version":"0.2.0","software_name":"kzprobe","software_version":"1.0","probe_asn":"AS64500","probe_cc":"KZ","test_runtime":0.1` + extra + `}`)
	}
	tests := []struct {
		name    string
		content []byte
		status  int
	}{
		{"bad keys", []byte(`{"report_id":"` + id + `"}`), 400},
		{"wrong report id", rec("other", `,"test_keys":{}`), 400},
		{"huge body", rec(id, `,"test_keys":{"x":"`+strings.Repeat("a", 70000)+`"}`), 413},
		{"not a chain", rec(id, `,"test_keys":{"tls_handshakes":[{"peer_certificates":[{"data":"bm90IGEgY2VydA==","format":"base64"}]}]}`), 400},
		{"a real probe_ip", rec(id, `,"probe_ip":"198.51.100.7","test_keys":{}`), 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Update(ctx, id, tc.content)
			se, ok := err.(*client.StatusError)
			if !ok || se.Status != tc.status {
				t.Errorf("got %v; want %d", err, tc.status)
			}
		})
	}
	if got := storeLines(t, col.store); len(got) != 0 {
		t.Errorf("stored %d records after hostile submissions", len(got))
	}
	if strings.Contains(col.logs.String(), "198.51.100.7") {
		t.Error("the collector logged a probe_ip")
	}
	if _, err := c.Update(ctx, id, rec(id, `,"test_keys":{}`)); err != nil {
		t.Errorf("a good record after them: %v", err)
	}
}

// TestSweepSubmitToCollector: kzprobe sweep --submit sends its records
// (test kzprobe_sni_sweep) as run does: stored once each, byte for byte.
func TestSweepSubmitToCollector(t *testing.T) {
	clearEnv(t)
	l, dir, files := startLab(t, lab.Config{})
	col := startCollectorProc(t, filepath.Join(dir, "store"), freeLoopback(t))
	var names []string
	for _, s := range l.Sites() {
		if lab.ExpectedSweepVerdict(s.TLS, false) != "" {
			names = append(names, "-d", s.Domain)
		}
	}
	args := sweepArgs(l, files, dir, append([]string{"--control-server", l.ControlServerURL, "--allow-net", "127.0.0.1/32",
		"--submit", col.url, "--submit-pin", col.pin}, names...)...)
	code, stderr := runBinary(t, args...)
	if code != 0 {
		t.Fatalf("kzprobe sweep --submit exited %d:\n%s", code, stderr)
	}
	local := fileLines(t, filepath.Join(dir, "sweep.jsonl"))
	if got := storeLines(t, col.store); !slices.Equal(got, local) {
		t.Fatalf("the store holds %d lines, not the sweep's %d byte for byte\n%s", len(got), len(local), stderr)
	}
	matches, _ := filepath.Glob(filepath.Join(col.store, "*", "*", "*", "kzprobe_sni_sweep.jsonl.gz"))
	if len(matches) != 1 {
		t.Errorf("sweep partitions %q; want one kzprobe_sni_sweep file", matches)
	}
}

// TestCollectorSecondOnOneFolder: a second kzprobe collector serve on the
// folder of a running one stops at once with exit 1 and a message naming
// the folder (it served beside the first before, both writing and
// deduplicating the same files); the first goes on serving. Once the
// first is killed (kill -9) the folder is free again: no stale lock.
func TestCollectorSecondOnOneFolder(t *testing.T) {
	clearEnv(t)
	store := filepath.Join(t.TempDir(), "store")
	first := startCollectorProc(t, store, freeLoopback(t))
	r := runWrapped(t, nil, 20*time.Second, "collector", "serve", "--store", store, "--listen", freeLoopback(t))
	abs, _ := filepath.Abs(store)
	if r.code != exitFailure || !strings.Contains(r.stderr, abs) || !strings.Contains(r.stderr, "another kzprobe collector is using this store folder") {
		t.Errorf("second collector: exit code %d, stderr %q; want 1 and a message naming %s", r.code, r.stderr, abs)
	}
	resp, err := pinnedClient(t, first.pin).Get(first.url + "/")
	if err != nil {
		t.Fatalf("the first collector after the second was refused: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the first collector's GET /: %d; want 200", resp.StatusCode)
	}
	first.kill9(t)
	startCollectorProc(t, store, freeLoopback(t))
}
