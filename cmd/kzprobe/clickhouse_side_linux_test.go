//go:build linux

package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"kzprobe/analysis"
	"kzprobe/analysis/analysistest"
	"kzprobe/analysis/render"
)

// TestAnalyzeClickHouseSideTables ingests real lab files (a run and two
// sweeps from AS9198, which has the run, and AS48716, which has none; a
// run --trace from AS206026 with its trace record) and the planned traces
// of three networks sharing a box, into one server and into two shards,
// and checks that analyze --clickhouse prints every table as analyze of
// the files does (sni_sweep with "confirmed by run", sweep_networks,
// where, boxes and the report's own), the whole Result with and without
// filters; and compare --clickhouse the same matrix, names found and
// boxes.
func TestAnalyzeClickHouseSideTables(t *testing.T) {
	srv := clickhouseServers(t)
	clearEnv(t)
	dir, run, sweeps, _ := sweepFromLab(t)
	roots := []string{filepath.Join(dir, "isca-root.pem")}

	_, base := startLabRun(t, traceScenario)
	traced := filepath.Join(t.TempDir(), "traced.jsonl")
	args := append(slices.Clone(base), "-o", traced, "--cc", "KZ", "--asn", "AS206026",
		"-d", "isca.example", "-d", "clean.example", "--trace", "--trace-control-sni", "clean.example")
	if r := runWrapped(t, nil, 90*time.Second, args...); r.code != exitOK {
		t.Fatalf("run --trace: exit %d\n%s", r.code, r.stderr)
	}
	roots = append(roots, base[slices.Index(base, "--interception-roots")+1])
	planned, err := analysistest.WriteTraceFixture(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	paths := append([]string{run, traced, strings.TrimSuffix(traced, ".jsonl") + "-trace.jsonl", planned}, sweeps...)
	var rootArgs []string
	for _, r := range roots {
		rootArgs = append(rootArgs, "--interception-roots", r)
	}

	// The side tables, and the report's: what files and ClickHouse agree on.
	tables := []string{render.TableSweep, render.TableSweepNetworks, render.TableWhere, render.TableBoxes,
		render.TableIntermediates, render.TableNetworks, render.TableDomains, render.TableGaps, render.TableGapSightings}
	filters := [][]string{
		nil,
		{"--asn", "AS48716,AS206026"},
		{"--since", "2024-11-19", "--cc", "KZ"},
	}
	for _, cluster := range []bool{false, true} {
		name := "one_server"
		if cluster {
			name = "two_shards"
		}
		t.Run(name, func(t *testing.T) {
			url := srv.URL(t, cluster)
			ingest := append(append([]string{"ingest", "--clickhouse", url}, rootArgs...), paths...)
			if code, stdout, stderr := runKzprobe(t, "", ingest...); code != 0 {
				t.Fatalf("kzprobe ingest: exit %d\n%s%s", code, stdout, stderr)
			}
			for _, f := range filters {
				files := func(args ...string) []string {
					return append(append(append(args, rootArgs...), f...), paths...)
				}
				ch := func(args ...string) []string { return append(append(args, f...), "--clickhouse", url) }
				// Every table as a whole, but for what only reading files
				// knows (the files, their warnings, the judge's counts).
				want := analyzeResult(t, files("analyze", "--format", "json")...)
				// Without the side tables' records in the files the test
				// would prove nothing.
				if res := want; f == nil && (res.Sweep == nil || res.Where == nil || len(res.Where.Boxes) == 0 ||
					!slices.ContainsFunc(res.Sweep.Names, func(r analysis.SweepRow) bool { return r.ConfirmedByRun == analysis.RunConfirmed }) ||
					!slices.ContainsFunc(res.Sweep.Names, func(r analysis.SweepRow) bool { return r.ConfirmedByRun == analysis.RunNotMeasured })) {
					t.Fatalf("the files give no sweep names confirmed and not run, or no boxes: %+v %+v", res.Sweep, res.Where)
				}
				got := analyzeResult(t, ch("analyze", "--format", "json")...)
				ignore := cmp.Options{
					cmpopts.IgnoreFields(analysis.Result{}, "Files", "Warnings"),
					cmpopts.IgnoreFields(analysis.Summary{}, "Files", "BadLines", "ChainsJudged", "CacheHits", "WarningsOmitted"),
				}
				if d := cmp.Diff(want, got, ignore); d != "" {
					t.Errorf("analyze --clickhouse %v differs from the files' (-files +clickhouse):\n%s", f, d)
				}
				// And table by table as printed.
				for _, table := range tables {
					if f != nil {
						break
					}
					want := runOK(t, files("analyze", "--table", table)...)
					got := runOK(t, ch("analyze", "--table", table)...)
					if got != want {
						t.Errorf("analyze --clickhouse --table %s differs from the files':\n--- files\n%s\n--- clickhouse\n%s", table, want, got)
					}
				}
				for _, extra := range [][]string{{"--format", "table"}, {"--format", "csv", "--ooni"}, {"--format", "json"}} {
					wcode, want, _ := runKzprobe(t, "", files(append([]string{"compare"}, extra...)...)...)
					gcode, got, stderr := runKzprobe(t, "", ch(append([]string{"compare"}, extra...)...)...)
					if gcode != wcode {
						t.Fatalf("compare --clickhouse %v %v: exit %d; files: %d\n%s", extra, f, gcode, wcode, stderr)
					}
					if extra[1] == "json" {
						want, got = matrixParts(t, want), matrixParts(t, got)
					}
					if d := cmp.Diff(withoutWarnings(want), withoutWarnings(got)); d != "" {
						t.Errorf("compare --clickhouse %v %v differs from the files' (-files +clickhouse):\n%s", extra, f, d)
					}
				}
			}
		})
	}
}

// runOK runs kzprobe and returns its stdout, failing t unless it exits 0.
func runOK(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := runKzprobe(t, "", args...)
	if code != exitOK {
		t.Fatalf("kzprobe %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// analyzeResult runs analyze --format json and decodes its Result.
func analyzeResult(t *testing.T, args ...string) analysis.Result {
	t.Helper()
	var res analysis.Result
	if err := json.Unmarshal([]byte(runOK(t, args...)), &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// matrixParts is compare's JSON without what only reading files knows
// (files, warnings), indented for a readable diff.
func matrixParts(t *testing.T, out string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	delete(m, "files")
	delete(m, "warnings")
	delete(m, "warnings_omitted")
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
