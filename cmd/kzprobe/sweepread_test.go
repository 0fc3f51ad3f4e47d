package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"kzprobe/analysis"
	"kzprobe/lab"
)

// sweepFromLab runs the lab's default scenario with `kzprobe run`
// from AS9198 and sweeps its names by SNI, with the sweep's own code,
// from AS9198 and from AS48716 (which has no run): real records, written
// by the real commands. It returns the run's file and the two sweeps'.
func sweepFromLab(t *testing.T) (dir, run string, sweeps []string, sc lab.Scenario) {
	t.Helper()
	l, dir, files := startLab(t, lab.Config{Scenario: lab.DefaultScenario()})
	cfg := labConfig(l, files, dir)
	run = filepath.Join(dir, "run.jsonl")
	args := strings.Fields(labCommandLine(cfg))[2:] // drop "kzprobe run"
	args = append([]string{"run", "-q", "-o", run, "--cc", "KZ", "--asn", "AS9198"}, args...)
	if code := execute(args); code != exitOK {
		t.Fatalf("kzprobe %s: exit %d", strings.Join(args, " "), code)
	}
	for _, asn := range []string{"AS9198", "AS48716"} {
		sw := *cfg
		sw.Vantage.ASN, sw.Vantage.CC = asn, "KZ"
		sw.Run.Output = filepath.Join(dir, "sweep-"+asn+".jsonl")
		sw.Run.Quiet = true
		sw.Sweep.Rate = "0"
		if err := runSweep(context.Background(), &sw, strings.NewReader(""), io.Discard, io.Discard); err != nil {
			t.Fatalf("sweep from %s: %v", asn, err)
		}
		sweeps = append(sweeps, sw.Run.Output)
	}
	return dir, run, sweeps, l.Scenario
}

// analyzeJSON runs kzprobe analyze --format json on paths.
func analyzeJSON(t *testing.T, root string, paths ...string) analysis.Result {
	t.Helper()
	out, stderr, code := kzprobe(t, append([]string{"analyze", "--format", "json", "--interception-roots", root}, paths...)...)
	if code != exitOK {
		t.Fatalf("analyze: exit %d: %s", code, stderr)
	}
	var res analysis.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestSweepReadFromLab reads a lab run and two lab sweeps (AS9198 with the
// run, AS48716 without) with analyze, compare and report: the sweep's
// names are listed per network with the run's confirmation, and every
// table the run alone gives (summary, intermediates, networks, domains,
// gaps, the matrix, the report's sections) is unchanged by the sweeps.
func TestSweepReadFromLab(t *testing.T) {
	clearEnv(t)
	dir, run, sweeps, sc := sweepFromLab(t)
	root := filepath.Join(dir, "isca-root.pem")
	only := analyzeJSON(t, root, run)
	mixed := analyzeJSON(t, root, append([]string{run}, sweeps...)...)

	// The run's tables, with and without the sweeps beside it.
	ignore := cmp.Options{
		cmpopts.IgnoreFields(analysis.Result{}, "Files", "Sweep"),
		cmpopts.IgnoreFields(analysis.Summary{}, "Files", "SweepMeasurements", "ChainsJudged", "CacheHits"),
		cmpopts.EquateEmpty(),
	}
	if d := cmp.Diff(only, mixed, ignore); d != "" {
		t.Errorf("the sweeps changed the run's tables (-run only +run and sweeps):\n%s", d)
	}
	if only.Sweep != nil || mixed.Sweep == nil {
		t.Fatalf("sweep result %v without sweeps, %v with; want none, then one", only.Sweep, mixed.Sweep)
	}
	s := mixed.Sweep
	if mixed.Summary.SweepMeasurements != 2*len(sc.Sites) || s.Measurements != 2*len(sc.Sites) || len(s.Networks) != 2 {
		t.Fatalf("%d sweep records, %d in the sweep result, %d networks; want %d, %d, 2",
			mixed.Summary.SweepMeasurements, s.Measurements, len(s.Networks), 2*len(sc.Sites), 2*len(sc.Sites))
	}

	// Every name found, as the scenario says, confirmed as the run's
	// verdict says.
	runVerdict := map[string]string{}
	verdicts, err := readVerdicts(run)
	if err != nil {
		t.Fatal(err)
	}
	for d, v := range verdicts {
		runVerdict[d] = v
	}
	type key struct{ asn, domain string }
	got := map[key]analysis.SweepRow{}
	for _, r := range s.Names {
		got[key{r.ASN, r.Domain}] = r
	}
	wantRows := 0
	for _, site := range sc.Sites {
		want := lab.ExpectedSweepVerdict(site.TLS, false)
		if want == "" {
			continue // hostile behaviours: not a statement about SNI
		}
		for _, asn := range []string{"AS9198", "AS48716"} {
			r, ok := got[key{asn, site.Domain}]
			if want == lab.SweepVerdictClean {
				if ok {
					t.Errorf("%s on %s: listed as %s; want a clean name not listed", site.Domain, asn, r.Verdict)
				}
				continue
			}
			wantRows++
			if !ok {
				t.Errorf("%s on %s: not listed; want %s", site.Domain, asn, want)
				continue
			}
			confirmed := analysis.RunNotMeasured
			if asn == "AS9198" {
				rv := runVerdict[site.Domain]
				confirmed = analysis.RunNotConfirmed
				if want == lab.SweepVerdictBlocked && rv == "tls_blocking" || want != lab.SweepVerdictBlocked && (rv == "mitm_isca" || rv == "mitm_other") {
					confirmed = analysis.RunConfirmed
				}
			}
			if r.Verdict != want || r.ConfirmedByRun != confirmed || r.FirstSeen.IsZero() {
				t.Errorf("%s on %s: %s, confirmed by run %q (run verdicts %v), first seen %v; want %s, %q",
					site.Domain, asn, r.Verdict, r.ConfirmedByRun, r.RunVerdicts, r.FirstSeen, want, confirmed)
			}
			if want == lab.SweepVerdictInterceptedISCA && len(r.Intermediates) != 1 {
				t.Errorf("%s on %s: intermediates %v; want the lab's one", site.Domain, asn, r.Intermediates)
			}
		}
	}
	if len(s.Names) != wantRows {
		t.Errorf("%d names listed; want %d", len(s.Names), wantRows)
	}
	// sni-peek.example: blocked by SNI, intercepted on its real address:
	// the run does not confirm a block.
	if r := got[key{"AS9198", "sni-peek.example"}]; r.ConfirmedByRun != analysis.RunNotConfirmed || !strings.Contains(strings.Join(r.RunVerdicts, " "), "mitm_isca") {
		t.Errorf("sni-peek.example on AS9198: %+v; want blocked, not confirmed, run saw mitm_isca", r)
	}

	// compare: the matrix is the run's, the sweep beside it.
	cmpOnly, stderr, code := kzprobe(t, "compare", "--format", "json", run)
	if code != exitOK {
		t.Fatalf("compare: exit %d: %s", code, stderr)
	}
	cmpMixed, stderr, code := kzprobe(t, append([]string{"compare", "--format", "json", run}, sweeps...)...)
	if code != exitOK {
		t.Fatalf("compare: exit %d: %s", code, stderr)
	}
	var mo, mm analysis.Matrix
	if err := json.Unmarshal([]byte(cmpOnly), &mo); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(cmpMixed), &mm); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(mo, mm, cmpopts.IgnoreFields(analysis.Matrix{}, "Files", "Sweep"), cmpopts.IgnoreUnexported(analysis.Matrix{}, analysis.Cell{}), cmpopts.EquateEmpty()); d != "" {
		t.Errorf("the sweeps changed compare's matrix (-run only +run and sweeps):\n%s", d)
	}
	if mm.Sweep == nil || len(mm.Sweep.Names) != wantRows {
		t.Errorf("compare's sweep: %v; want the %d names", mm.Sweep, wantRows)
	}
	text, _, code := kzprobe(t, append([]string{"compare", run}, sweeps...)...)
	if code != exitOK || !strings.Contains(text, "Names found by SNI sweep, by network") {
		t.Errorf("compare's table: exit %d, no sweep section:\n%s", code, text)
	}

	// report: the run's sections are the same bytes, the sweep's added.
	sections := func(page string) map[string]string {
		out := map[string]string{}
		parts := regexp.MustCompile(`<h[23] id="`).Split(page, -1)
		for _, p := range parts[1:] {
			id, _, _ := strings.Cut(p, `"`)
			// The timeline's subtitle counts the files read.
			out[id] = regexp.MustCompile(`from \d+ files?<`).ReplaceAllString(p, "from the files<")
		}
		return out
	}
	report := func(paths ...string) map[string]string {
		page := filepath.Join(t.TempDir(), "report.html")
		if _, stderr, code := kzprobe(t, append([]string{"report", "-o", page, "--interception-roots", root}, paths...)...); code != exitOK {
			t.Fatalf("report: exit %d: %s", code, stderr)
		}
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		return sections(string(b))
	}
	ro, rm := report(run), report(append([]string{run}, sweeps...)...)
	for _, id := range []string{"timeline", "intermediates", "gaps", "matrix", "networks", "domains"} {
		if ro[id] == "" || ro[id] != rm[id] {
			t.Errorf("report section %q differs with the sweeps (or is missing)", id)
		}
	}
	if rm["sni-sweep"] == "" || rm["sweep-networks"] == "" || ro["sni-sweep"] != "" {
		t.Errorf("report sections %v; want the sweep's only with the sweeps", keys(rm))
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestWhereFromTraceRecords reads trace's golden record (a real
// kzprobe_trace record of the e2e interception case) and a copy of it
// taken from another network, through analyze, compare and report: one
// where row each, and one box, shared by both networks.
func TestWhereFromTraceRecords(t *testing.T) {
	clearEnv(t)
	golden, err := os.ReadFile(filepath.Join("..", "..", "trace", "testdata", "golden", "trace.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(golden, &rec); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, asn := range []string{"AS64500", "AS64510"} {
		rec["probe_asn"], rec["measurement_uid"] = asn, "uid-"+asn
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	in := filepath.Join(t.TempDir(), "traces.jsonl")
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := kzprobe(t, "analyze", "--format", "json", in)
	if code != exitOK {
		t.Fatalf("analyze: exit %d: %s", code, stderr)
	}
	var res analysis.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Summary.Measurements != 0 || res.Summary.TraceMeasurements != 2 || len(res.Networks) != 0 || res.Where == nil || len(res.Where.Rows) != 2 {
		t.Fatalf("summary %+v, %d networks, where %+v; want the 2 traces in the where table only", res.Summary, len(res.Networks), res.Where)
	}
	for _, r := range res.Where.Rows {
		f := r.Finding
		if f.Interference != "interception" || f.InterferenceHop == nil || *f.InterferenceHop != 2 || f.DestinationHops == nil || *f.DestinationHops != 4 ||
			analysis.HopText(f.AnsweringHop) != "198.51.100.0/24 AS64501" || analysis.HopText(f.BeforeHop) != "private" {
			t.Errorf("%s %s: %+v; want interception at hop 2 of 4 by 198.51.100.0/24 AS64501, a private hop before", r.ASN, r.Domain, f)
		}
	}
	if b := res.Where.Boxes; len(b) != 1 || !b[0].Shared || strings.Join(b[0].Networks, " ") != "AS64500 AS64510" {
		t.Errorf("boxes %+v; want one, shared by AS64500 and AS64510", b)
	}
	csvOut, _, code := kzprobe(t, "analyze", "--format", "csv", "--table", "where", in)
	if code != exitOK || !strings.HasPrefix(csvOut, "asn,network,domain,interference,interference_hop,destination_hops,") || strings.Count(csvOut, "\n") != 3 {
		t.Errorf("analyze --table where --format csv: exit %d:\n%s", code, csvOut)
	}
	text, _, code := kzprobe(t, "compare", in)
	if code != exitOK || !regexp.MustCompile(`198\.51\.100\.0/24 +AS64501 +- +AS64500 AS64510 +yes`).MatchString(text) {
		t.Errorf("compare: exit %d; want the shared box:\n%s", code, text)
	}
	page := filepath.Join(t.TempDir(), "report.html")
	if _, stderr, code := kzprobe(t, "report", "-o", page, in); code != exitOK {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(page); !strings.Contains(string(b), `<h2 id="where">Where on the path</h2>`) || !strings.Contains(string(b), `<h3 id="boxes">`) {
		t.Error("report: no where table or boxes")
	}
}
