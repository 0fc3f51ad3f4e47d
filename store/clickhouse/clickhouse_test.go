package clickhouse_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
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
	"kzprobe/measurement"
	"kzprobe/probe/chain"
	"kzprobe/store"
	"kzprobe/store/clickhouse"
	"kzprobe/store/clickhouse/clickhousetest"
)

// servers are two ClickHouse servers, the shards of one cluster, started
// once for the package (about a second); each test has its own database.
var servers *clickhousetest.Servers

func TestMain(m *testing.M) { os.Exit(clickhousetest.Main(m, &servers, 2)) }

func open(t testing.TB, cluster bool, judge *analysis.Judge) *clickhouse.DB {
	t.Helper()
	cfg, err := clickhouse.ParseURL(servers.URL(t, cluster))
	if err != nil {
		t.Fatal(err)
	}
	db, err := clickhouse.Open(context.Background(), cfg, judge)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func fixture(t testing.TB) (*analysistest.Fixture, *analysis.Judge) {
	t.Helper()
	fx, err := analysistest.WriteReportFixture(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	kb, err := chain.Default()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kb.AddRootsPEM(fx.PKI.RootsPEM(), "analysistest"); err != nil {
		t.Fatal(err)
	}
	return fx, &analysis.Judge{Analyzer: chain.NewAnalyzer(nil, kb)}
}

// fileResult is what `kzprobe analyze` computes from the files, with
// the filter applied to the records as the SQL applies it.
func fileResult(t testing.TB, paths []string, judge *analysis.Judge, f clickhouse.Filter) *analysis.Result {
	t.Helper()
	a := analysis.New(analysis.Config{Judge: judge, Since: f.Since, Until: f.Until})
	rd := &analysis.Reader{Warn: a.Warn}
	stats, err := rd.ReadPaths(paths, func(r *analysis.Record) error {
		if (len(f.CC) == 0 || slices.Contains(f.CC, r.ProbeCC)) && (len(f.ASN) == 0 || slices.Contains(f.ASN, r.ProbeASN)) {
			a.Add(r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	a.AddFileStats(stats...)
	return a.Result()
}

// fileMatrix is what `kzprobe compare` computes from the files.
func fileMatrix(t testing.TB, paths []string, judge *analysis.Judge, f clickhouse.Filter, derive bool) *analysis.Matrix {
	t.Helper()
	c := analysis.NewComparison(analysis.Config{Judge: judge, Since: f.Since, Until: f.Until, DeriveVerdicts: derive})
	rd := &analysis.Reader{Warn: c.Warn}
	stats, err := rd.ReadPaths(paths, func(r *analysis.Record) error {
		if (len(f.CC) == 0 || slices.Contains(f.CC, r.ProbeCC)) && (len(f.ASN) == 0 || slices.Contains(f.ASN, r.ProbeASN)) {
			c.Add(r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c.AddFileStats(stats...)
	return c.Matrix()
}

// withFileParts copies into got what only reading files knows: the files,
// their warnings, and the judge's counts.
func withFileParts(got, files *analysis.Result) {
	got.Files, got.Warnings = files.Files, files.Warnings
	s, fs := &got.Summary, files.Summary
	s.Files, s.UnreadableFiles, s.TruncatedFiles, s.BadLines = fs.Files, fs.UnreadableFiles, fs.TruncatedFiles, fs.BadLines
	s.ChainsJudged, s.CacheHits, s.WarningsOmitted = fs.ChainsJudged, fs.CacheHits, fs.WarningsOmitted
}

// TestAnalyzeEqualsFiles ingests the report fixture (every format analyze
// reads, a corrupt line, a cut last line) into one server and into two
// shards through a Distributed table, and checks that Analyze in SQL gives
// the file-based Result exactly, rendered the same in every format, with
// and without filters; ingesting again changes nothing.
func TestAnalyzeEqualsFiles(t *testing.T) {
	fx, judge := fixture(t)
	// kzprobe trace's records go to the where table only (not computed
	// in SQL): they must change none of the others.
	if _, err := analysistest.WriteTraceFixture(filepath.Join(fx.Dir, "trace")); err != nil {
		t.Fatal(err)
	}
	// So do kzprobe sweep's (the sweep tables).
	if _, err := analysistest.WriteSweepFixture(filepath.Join(fx.Dir, "sweep"), fx.PKI); err != nil {
		t.Fatal(err)
	}
	paths := []string{fx.Dir}
	filters := []struct {
		name string
		f    clickhouse.Filter
	}{
		{"all", clickhouse.Filter{}},
		{"since_until", clickhouse.Filter{Since: analysistest.Time("2021-09-01 00:00:00"), Until: analysistest.Time("2024-03-17 05:28:21")}},
		{"asn", clickhouse.Filter{ASN: []string{"AS9198", "AS48716"}}},
		{"cc_since", clickhouse.Filter{CC: []string{"KZ"}, Since: analysistest.Time("2023-01-01 00:00:00")}},
		{"cc_none", clickhouse.Filter{CC: []string{"ZZ"}}},
	}
	// The files' results, computed once.
	wants := map[string]*analysis.Result{}
	for _, fc := range filters {
		wants[fc.name] = fileResult(t, paths, judge, fc.f)
	}
	for _, setup := range []struct {
		name    string
		cluster bool
		chunk   int64
	}{
		{"one_server", false, 0},
		{"two_shards", true, 0},
		{"one_server_small_chunks", false, 700},
	} {
		t.Run(setup.name, func(t *testing.T) {
			db := open(t, setup.cluster, judge)
			var warnings []string
			opt := clickhouse.IngestOptions{ChunkBytes: setup.chunk, Warn: func(w analysis.Warning) { warnings = append(warnings, w.String()) }}
			st, err := db.Ingest(context.Background(), paths, opt)
			if err != nil {
				t.Fatal(err)
			}
			// 23 of the report fixture, 6 traces, 10 sweep records (whose
			// handshakes are in no sighting).
			if st.Records != 39 || st.Bad != 2 {
				t.Errorf("ingest read %d records, %d bad lines; want 39, 2", st.Records, st.Bad)
			}
			want := wants["all"]
			// Pieces are read in parallel: the warnings' order varies.
			slices.Sort(warnings)
			if ws := warningStrings(want.Warnings); !slices.Equal(warnings, slices.Sorted(slices.Values(ws))) {
				t.Errorf("ingest warnings:\n%s\nwant analyze's:\n%s", strings.Join(warnings, "\n"), strings.Join(warningStrings(want.Warnings), "\n"))
			}
			m1, s1, err := db.Count(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if m1 != 39 || s1 != 24 {
				t.Errorf("stored %d measurements, %d handshakes with a chain; want 39, 24", m1, s1)
			}
			// Idempotent: a second ingest adds nothing.
			if _, err := db.Ingest(context.Background(), paths, clickhouse.IngestOptions{}); err != nil {
				t.Fatal(err)
			}
			if m2, s2, err := db.Count(context.Background()); err != nil || m2 != m1 || s2 != s1 {
				t.Errorf("after a second ingest: %d measurements, %d handshakes (%v); want %d, %d", m2, s2, err, m1, s1)
			}
			for _, fc := range filters {
				t.Run(fc.name, func(t *testing.T) {
					want := wants[fc.name]
					got, err := db.Analyze(context.Background(), fc.f, analysis.Config{})
					if err != nil {
						t.Fatal(err)
					}
					withFileParts(got, want)
					if diff := cmp.Diff(want, got); diff != "" {
						t.Fatalf("Analyze differs from the files' analysis (-files +clickhouse):\n%s", diff)
					}
					for _, derive := range []bool{false, true} {
						want := fileMatrix(t, paths, judge, fc.f, derive)
						got, err := db.Compare(context.Background(), fc.f, analysis.Config{DeriveVerdicts: derive})
						if err != nil {
							t.Fatal(err)
						}
						// Reading files also warns of bad lines: the
						// matrix's own warnings must be among them.
						for _, w := range got.Warnings {
							if !slices.Contains(want.Warnings, w) {
								t.Errorf("compare warning %q not among the files' warnings", w)
							}
						}
						got.Files, got.Warnings, got.WarningsOmitted = want.Files, want.Warnings, want.WarningsOmitted
						if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(analysis.Matrix{}, analysis.Cell{})); diff != "" {
							t.Errorf("Compare (derive %v) differs from the files' (-files +clickhouse):\n%s", derive, diff)
						}
					}
					formats := render.AnalysisFormats
					if fc.name != "all" {
						formats = []string{render.FormatJSON}
					}
					for _, format := range formats {
						var wb, gb bytes.Buffer
						if err := render.Analysis(&wb, want, format, nil); err != nil {
							t.Fatal(err)
						}
						if err := render.Analysis(&gb, got, format, nil); err != nil {
							t.Fatal(err)
						}
						if wb.String() != gb.String() {
							t.Errorf("--format %s differs", format)
						}
					}
				})
			}
		})
	}
}

func warningStrings(ws []analysis.Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.String())
	}
	return out
}

// TestAnalyzeGoldenReport renders the tables computed in ClickHouse from
// the report fixture and compares them with analyze's golden files
// (analysis/testdata/report), table by table.
func TestAnalyzeGoldenReport(t *testing.T) {
	fx, judge := fixture(t)
	db := open(t, false, judge)
	if _, err := db.Ingest(context.Background(), []string{fx.Dir}, clickhouse.IngestOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Analyze(context.Background(), clickhouse.Filter{}, analysis.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tables := []string{render.TableIntermediates, render.TableNetworks, render.TableDomains, render.TableGaps}
	var b bytes.Buffer
	if err := render.Analysis(&b, got, render.FormatCSV, tables); err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile("../../analysis/testdata/report/analyze.csv")
	if err != nil {
		t.Fatal(err)
	}
	// The golden file holds every table; each of ours must be in it as is.
	for _, part := range strings.Split(strings.TrimSpace(b.String()), "\n\n") {
		if !strings.Contains(string(golden), part) {
			t.Errorf("table not in analyze.csv as computed from the files:\n%s", part)
		}
	}
	if n := strings.Count(b.String(), "\n\n"); n != len(tables)-1 {
		t.Errorf("%d tables rendered; want %d", n+1, len(tables))
	}
}

// TestPut stores records as the collector does: durable when Put returns,
// kept once when put twice, judged again (a submitted verdict is not
// trusted), refused after Close.
func TestPut(t *testing.T) {
	fx, judge := fixture(t)
	for _, cluster := range []bool{false, true} {
		name := "one_server"
		if cluster {
			name = "two_shards"
		}
		t.Run(name, func(t *testing.T) {
			db := open(t, cluster, judge)
			data, err := os.ReadFile(fx.Path(analysistest.FileKzprobe))
			if err != nil {
				t.Fatal(err)
			}
			lines := bytes.Split(data, []byte("\n"))
			lines = lines[:len(lines)-1] // the cut last line
			ctx := context.Background()
			for round := range 2 {
				for i, l := range lines {
					rec, _, err := analysis.DecodeRecord(l, analysis.Limits{})
					if err != nil {
						t.Fatal(err)
					}
					r := store.Record{UID: clickhouse.RecordUID(rec), ReportID: "r1", TestName: rec.TestName, ProbeCC: rec.ProbeCC, ProbeASN: rec.ProbeASN, Start: rec.Time, Raw: l}
					if err := db.Put(ctx, r); err != nil {
						t.Fatalf("round %d, record %d: %v", round, i, err)
					}
				}
			}
			m, s, err := db.Count(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m != int64(len(lines)) || s != int64(len(lines)) {
				t.Errorf("stored %d measurements, %d handshakes; want %d each", m, s, len(lines))
			}
			res, err := db.Analyze(ctx, clickhouse.Filter{}, analysis.Config{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Summary.Intercepted != 2 || len(res.Intermediates) != 1 {
				t.Errorf("intercepted %d, intermediates %d; want 2, 1", res.Summary.Intercepted, len(res.Intermediates))
			}
			db.Close()
			if err := db.Put(ctx, store.Record{UID: "x", Raw: lines[0]}); !errors.Is(err, store.ErrClosed) {
				t.Errorf("Put after Close: %v; want store.ErrClosed", err)
			}
		})
	}
}

// TestPutServerDown: when the server dies, Put returns an error, not nil
// (the collector answers 5xx and the probe keeps the record); a server
// that never answered fails Open.
func TestPutServerDown(t *testing.T) {
	servers.Need(t)
	fx, judge := fixture(t)
	own, err := clickhousetest.Start(1)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Stop()
	cfg, err := clickhouse.ParseURL("http://" + own.HTTP[0] + "/kzprobe")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db, err := clickhouse.Open(ctx, cfg, judge)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(fx.Path(analysistest.FileKzprobe))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(data, []byte("\n"))
	put := func(l []byte) error {
		rec, _, err := analysis.DecodeRecord(l, analysis.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return db.Put(ctx, store.Record{UID: clickhouse.RecordUID(rec), ReportID: "r1", Raw: l})
	}
	if err := put(lines[0]); err != nil {
		t.Fatalf("Put with the server up: %v", err)
	}
	own.Stop()
	if err := put(lines[1]); err == nil || errors.Is(err, store.ErrClosed) {
		t.Errorf("Put with the server down: %v; want a connection error", err)
	}
	if _, err := clickhouse.Open(ctx, cfg, judge); err == nil {
		t.Error("Open of a dead server succeeded")
	}
}

// TestOpenAddsColumns: tables made by a kzprobe before the side tables'
// columns (endpoint, sweep_inters, finding, format) get them when opened,
// on one server and on the shards and their Distributed table; a sweep
// record stored before has none of them and Analyze warns of it, while the
// records ingested after give the sweep's tables.
func TestOpenAddsColumns(t *testing.T) {
	fx, judge := fixture(t)
	sweepFile, err := analysistest.WriteSweepFixture(filepath.Join(fx.Dir, "sweep"), fx.PKI)
	if err != nil {
		t.Fatal(err)
	}
	for _, cluster := range []bool{false, true} {
		t.Run(fmt.Sprintf("cluster_%v", cluster), func(t *testing.T) {
			cfg, err := clickhouse.ParseURL(servers.URL(t, cluster))
			if err != nil {
				t.Fatal(err)
			}
			added := ",\n  endpoint String,\n  sweep_inters Array(String),\n  finding String,\n  format UInt8"
			for _, host := range cfg.Hosts {
				for _, stmt := range clickhouse.Schema(cfg) {
					if strings.Contains(stmt, "measurements") && !strings.Contains(stmt, added) && !strings.Contains(stmt, " AS ") {
						t.Fatalf("the schema no longer holds the added columns as this test removes them:\n%s", stmt)
					}
					chExec(t, host, strings.Replace(stmt, added, "", 1))
				}
			}
			chExec(t, cfg.Hosts[0], "INSERT INTO "+cfg.Database+".measurements (uid, ts, test_name, probe_asn, verdict) FORMAT JSONEachRow\n"+
				`{"uid":"old-sweep","ts":1731920000,"test_name":"`+measurement.SweepTestName+`","probe_asn":"AS9198","verdict":"clean"}`)
			db, err := clickhouse.Open(context.Background(), cfg, judge)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Ingest(context.Background(), []string{sweepFile}, clickhouse.IngestOptions{}); err != nil {
				t.Fatal(err)
			}
			got, err := db.Analyze(context.Background(), clickhouse.Filter{}, analysis.Config{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Sweep == nil || got.Sweep.Measurements != len(analysistest.SweepPlan)+1 || len(got.Sweep.Names) == 0 {
				t.Fatalf("sweep result %+v; want the %d planned records and the old one", got.Sweep, len(analysistest.SweepPlan))
			}
			if !slices.ContainsFunc(got.Warnings, func(w analysis.Warning) bool {
				return strings.Contains(w.Message, "1 kzprobe sweep or trace records were stored by an older kzprobe")
			}) {
				t.Errorf("no warning of the old sweep record: %v", got.Warnings)
			}
		})
	}
}

// chExec runs one statement on the HTTP interface at host.
func chExec(t *testing.T, host, sql string) {
	t.Helper()
	resp, err := http.Post("http://"+host+"/", "text/plain", strings.NewReader(sql))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s %s", sql, resp.Status, body)
	}
}

// TestSweepWithheldCertificates: a sweep record whose interception
// intermediate was withheld (it held the probe's address) is judged at
// ingest from the facts kept of it, as analyze judges it: the name's
// intermediates in ClickHouse are the files'.
func TestSweepWithheldCertificates(t *testing.T) {
	fx, judge := fixture(t)
	m, err := fx.PKI.SweepMeasurement(analysistest.SweepSighting{Inter: 6, Time: "2024-11-18 10:00:00", ASN: "AS9198", Domain: "compromat.ru",
		Verdict: measurement.VerdictSNIInterceptedISCA})
	if err != nil {
		t.Fatal(err)
	}
	der := m.TestKeys.TLSHandshakes[0].PeerCertificates
	if n := measurement.Withhold(m, func(b []byte) bool { return len(der) > 1 && bytes.Equal(b, der[1]) }); n != 1 {
		t.Fatalf("withheld %d certificates; want the intermediate", n)
	}
	line, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sweep.jsonl")
	if err := os.WriteFile(path, append(line, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	want := fileResult(t, []string{path}, judge, clickhouse.Filter{})
	if want.Sweep == nil || len(want.Sweep.Names) != 1 || len(want.Sweep.Names[0].Intermediates) != 1 {
		t.Fatalf("the files' sweep %+v; want the name with its withheld intermediate", want.Sweep)
	}
	db := open(t, false, judge)
	if _, err := db.Ingest(context.Background(), []string{path}, clickhouse.IngestOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Analyze(context.Background(), clickhouse.Filter{}, analysis.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want.Sweep, got.Sweep); diff != "" {
		t.Errorf("the sweep's tables differ (-files +clickhouse):\n%s", diff)
	}
}
