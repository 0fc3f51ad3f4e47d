package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kzprobe/analysis/analysistest"
	"kzprobe/lab"
	"kzprobe/store/clickhouse/clickhousetest"
)

// chServers are two ClickHouse servers (the shards of one cluster),
// started by the first test that needs them and stopped by TestMain: one
// start for the package.
var chServers struct {
	once sync.Once
	s    *clickhousetest.Servers
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	chServers.s.Stop()
	os.Exit(code)
}

func clickhouseServers(t *testing.T) *clickhousetest.Servers {
	t.Helper()
	chServers.once.Do(func() { chServers.s, chServers.err = clickhousetest.Start(2) })
	if chServers.err != nil {
		t.Fatal(chServers.err)
	}
	chServers.s.Need(t)
	return chServers.s
}

// readTables are the tables that depend only on the measurements (the
// summary and the warnings also say which files were read).
const readTables = "intermediates,networks,domains,gaps"

// TestIngestAnalyzeClickHouse runs the real binary: kzprobe ingest of the
// report fixture and of a lab run (twice: the second adds nothing), then
// analyze --clickhouse and timeline --clickhouse, on one server and
// through a Distributed table over two shards, print exactly what they
// print from the files, with and without --since, --cc and --asn.
func TestIngestAnalyzeClickHouse(t *testing.T) {
	srv := clickhouseServers(t)
	fx, err := analysistest.WriteReportFixture(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	labDir := t.TempDir()
	if code, _, stderr := runKzprobe(t, "", "lab", "-q", "--dir", labDir); code != 0 {
		t.Fatalf("kzprobe lab: exit %d\n%s", code, stderr)
	}
	inputs := []struct {
		name  string
		paths []string
		roots string
	}{
		{"report_fixture", []string{fx.Dir}, fx.RootsPEM},
		{"lab", []string{filepath.Join(labDir, "lab-measurements.jsonl")}, filepath.Join(labDir, "lab-measurements-isca-root.pem")},
	}
	filters := [][]string{
		nil,
		{"--since", "2023-01-01", "--until", "2024-06-01 12:00:00"},
		{"--cc", "kz", "--asn", "9198,AS48716"},
	}
	for _, in := range inputs {
		for _, cluster := range []bool{false, true} {
			name := in.name + "/one_server"
			if cluster {
				name = in.name + "/two_shards"
			}
			t.Run(name, func(t *testing.T) {
				url := srv.URL(t, cluster)
				for i := range 2 {
					args := append([]string{"ingest", "--clickhouse", url, "--interception-roots", in.roots}, in.paths...)
					code, stdout, stderr := runKzprobe(t, "", args...)
					if code != 0 || !strings.Contains(stdout, "ingested") {
						t.Fatalf("kzprobe ingest (%d): exit %d\n%s%s", i+1, code, stdout, stderr)
					}
				}
				for _, f := range filters {
					for _, format := range []string{"table", "csv", "json"} {
						common := append([]string{"analyze", "--format", format, "--table", readTables}, f...)
						code, want, stderr := runKzprobe(t, "", append(append(common, "--interception-roots", in.roots), in.paths...)...)
						if code != 0 {
							t.Fatalf("analyze files %v: exit %d\n%s", f, code, stderr)
						}
						code, got, stderr := runKzprobe(t, "", append(common, "--clickhouse", url)...)
						if code != 0 {
							t.Fatalf("analyze --clickhouse %v: exit %d\n%s", f, code, stderr)
						}
						if got != want {
							t.Errorf("analyze --clickhouse %v --format %s differs from the files':\n--- files\n%s\n--- clickhouse\n%s", f, format, want, got)
						}
					}
				}
				for _, f := range filters {
					for _, extra := range [][]string{{"--format", "csv"}, {"--format", "table", "--ooni"}} {
						common := append(append([]string{"compare"}, extra...), f...)
						// Both exit 1 where the filter leaves no kzprobe
						// measurement to compare.
						wcode, want, _ := runKzprobe(t, "", append(append(common, "--interception-roots", in.roots), in.paths...)...)
						gcode, got, stderr := runKzprobe(t, "", append(common, "--clickhouse", url)...)
						if gcode != wcode {
							t.Fatalf("compare --clickhouse %v %v: exit %d; files: %d\n%s", extra, f, gcode, wcode, stderr)
						}
						// The warnings of reading files (bad lines) are
						// ingest's to report.
						if diff := cmp.Diff(withoutWarnings(want), withoutWarnings(got)); diff != "" {
							t.Errorf("compare --clickhouse %v %v differs from the files' (-files +clickhouse):\n%s", extra, f, diff)
						}
					}
				}
				dir := t.TempDir()
				report := filepath.Join(dir, "report.html")
				if code, _, stderr := runKzprobe(t, "", "report", "--clickhouse", url, "-o", report); code != 0 {
					t.Fatalf("report --clickhouse: exit %d\n%s", code, stderr)
				}
				if page, _ := os.ReadFile(report); !strings.Contains(string(page), "</html>") {
					t.Errorf("report --clickhouse wrote no page")
				}
				fromFiles, fromCH := filepath.Join(dir, "files.svg"), filepath.Join(dir, "ch.svg")
				if code, _, stderr := runKzprobe(t, "", append([]string{"timeline", "--interception-roots", in.roots, "-o", fromFiles}, in.paths...)...); code != 0 {
					t.Fatalf("timeline: exit %d\n%s", code, stderr)
				}
				if code, _, stderr := runKzprobe(t, "", "timeline", "--clickhouse", url, "-o", fromCH); code != 0 {
					t.Fatalf("timeline --clickhouse: exit %d\n%s", code, stderr)
				}
				a, _ := os.ReadFile(fromFiles)
				b, _ := os.ReadFile(fromCH)
				if len(a) == 0 || string(a) != string(b) {
					t.Errorf("timeline --clickhouse differs from the files' (%d and %d bytes)", len(a), len(b))
				}
			})
		}
	}
}

// TestClickHouseUsage: the reading commands take files or --clickhouse,
// not both; ingest needs --clickhouse and refuses reading filters.
func TestClickHouseUsage(t *testing.T) {
	for _, args := range [][]string{
		{"analyze"},
		{"analyze", "x.jsonl", "--clickhouse", "http://127.0.0.1:1/db"},
		{"analyze", "--clickhouse", "ftp://127.0.0.1/db"},
		{"ingest", "x.jsonl"},
		{"ingest", "x.jsonl", "--clickhouse", "http://127.0.0.1:1/db", "--since", "2024-01-01"},
		{"compare", "x.jsonl", "--clickhouse", "http://127.0.0.1:1/db"},
	} {
		t.Run(strings.Join(args, "_"), func(t *testing.T) {
			if code, _, stderr := runKzprobe(t, "", args...); code != exitUsage {
				t.Errorf("kzprobe %s: exit %d; want %d (usage)\n%s", strings.Join(args, " "), code, exitUsage, stderr)
			}
		})
	}
}

// withoutWarnings returns the lines of a table-format output without its
// Warnings table.
func withoutWarnings(out string) []string {
	var keep []string
	lines := strings.Split(out, "\n")
	for i := 0; i < len(lines); i++ {
		if lines[i] == "Warnings" && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "====") {
			for i < len(lines) && lines[i] != "" {
				i++
			}
			continue
		}
		keep = append(keep, lines[i])
	}
	return keep
}

// chQuery runs sql on the HTTP interface at addr and returns its
// answer's lines (TabSeparatedRaw), sorted.
func chQuery(t *testing.T, addr, sql string) []string {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader(sql+" FORMAT TabSeparatedRaw"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %s %s", sql, resp.Status, body)
	}
	out := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if len(out) == 1 && out[0] == "" {
		out = nil
	}
	sort.Strings(out)
	return out
}

// TestCollectorClickHouse: the real collector with --clickhouse and the
// real kzprobe run --submit: every record is in ClickHouse byte for byte
// (judged, in the tables analyze reads); with ClickHouse down the
// collector answers 503 and the probe keeps the records, which kzprobe
// submit sends once ClickHouse is back, and the live report reads
// ClickHouse.
func TestCollectorClickHouse(t *testing.T) {
	clickhouseServers(t)                // skip or fail, as for every ClickHouse test
	own, err := clickhousetest.Start(1) // this test stops it midway
	if err != nil {
		t.Fatal(err)
	}
	defer own.Stop()
	url := own.URL(t, false)
	db := url[strings.LastIndex(url, "/")+1:]
	clearEnv(t)
	l, dir, files := startLab(t, lab.Config{Scenario: lab.DefaultScenario()})
	col := startCollectorProc(t, filepath.Join(dir, "store"), freeLoopback(t), "--interception-roots", files.ISCARoot, "--clickhouse", url)
	run := func(out string) string {
		args := append([]string{"run", "-q", "-o", out, "--submit", col.url, "--submit-pin", col.pin, "--submit-wait", "3s"}, runArgsForLab(t, l, files, dir)...)
		cmd := exec.Command(kzprobeBinary(t), args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("run: %v\n%s", err, stderr.String())
		}
		return stderr.String()
	}
	out1 := filepath.Join(dir, "m1.jsonl")
	stderr := run(out1)
	local := fileLines(t, out1)
	if got := chQuery(t, own.HTTP[0], "SELECT raw FROM "+db+".measurements FINAL"); !slices.Equal(got, local) {
		t.Fatalf("ClickHouse holds %d records, not the %d local lines byte for byte\n%s", len(got), len(local), stderr)
	}
	if n := chQuery(t, own.HTTP[0], "SELECT count() FROM "+db+".chain_sightings FINAL WHERE intercepted = 1"); len(n) != 1 || n[0] == "0" {
		t.Errorf("intercepted handshakes in chain_sightings: %v; want some (the lab's ISCA sites)", n)
	}

	// ClickHouse dies: 503, and the probe keeps what it could not send.
	if err := own.Pause(); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(dir, "m2.jsonl")
	stderr = run(out2)
	if !strings.Contains(stderr, "503") || !strings.Contains(stderr, "kzprobe submit "+out2) {
		t.Errorf("stderr does not show the 503 and the command that sends the rest:\n%s", stderr)
	}
	if logs := col.logs.String(); !regexp.MustCompile(`"msg":"storing a measurement","error":"clickhouse: storing [^\n]*connection refused \(in INSERT INTO`).MatchString(logs) {
		t.Errorf("the collector does not log ClickHouse's failure:\n%.2000s", logs)
	}
	if err := own.Resume(); err != nil {
		t.Fatal(err)
	}
	sub := exec.Command(kzprobeBinary(t), "submit", out2, "--submit", col.url, "--submit-pin", col.pin, "--allow-net", "127.0.0.1/32")
	if data, err := sub.CombinedOutput(); err != nil {
		t.Fatalf("submit: %v\n%s", err, data)
	}
	uids := func(lines []string) []string {
		var out []string
		for _, l := range lines {
			var rec struct {
				UID string `json:"measurement_uid"`
			}
			json.Unmarshal([]byte(l), &rec)
			out = append(out, rec.UID)
		}
		sort.Strings(out)
		return out
	}
	want := uids(append(local, fileLines(t, out2)...))
	if got := chQuery(t, own.HTTP[0], "SELECT uid FROM "+db+".measurements FINAL"); !slices.Equal(got, want) {
		t.Errorf("after kzprobe submit ClickHouse holds %d measurements; want the %d of both runs, once each", len(got), len(want))
	}
	resp, err := pinnedClient(t, col.pin).Get(col.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte("clean-1.example")) || !bytes.Contains(page, []byte("ClickHouse")) {
		t.Errorf("GET /: %d, %d bytes; want the report from ClickHouse with the lab's domains", resp.StatusCode, len(page))
	}
}

// TestClickHouseRootsRefused: --trust-roots and --interception-roots with
// --clickhouse are a usage error naming both flags, before any connection
// (the tables keep judgements, not certificates: the roots cannot apply).
func TestClickHouseRootsRefused(t *testing.T) {
	pem := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(pem, []byte("not read"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"analyze"}, {"compare"}, {"timeline", "-o", filepath.Join(t.TempDir(), "t.svg")}, {"report", "-o", filepath.Join(t.TempDir(), "r.html")}} {
		for _, flag := range []string{"--trust-roots", "--interception-roots"} {
			args := append(slices.Clone(cmd), "--clickhouse", "http://127.0.0.1:1/db", flag, pem)
			t.Run(strings.Join(args[:1], "")+flag, func(t *testing.T) {
				code, _, stderr := runKzprobe(t, "", args...)
				if code != exitUsage || !strings.Contains(stderr, "--trust-roots and --interception-roots cannot apply with --clickhouse") ||
					!strings.Contains(stderr, "kzprobe ingest") {
					t.Errorf("kzprobe %s: exit %d\n%s\nwant %d and the usage error naming both flags and ingest", strings.Join(args, " "), code, stderr, exitUsage)
				}
			})
		}
	}
}
