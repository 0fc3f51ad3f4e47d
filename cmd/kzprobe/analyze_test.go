package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kzprobe/analysis"
	"kzprobe/analysis/analysistest"
	"kzprobe/lab"
)

// kzprobe runs the command line args and returns stdout, stderr and the
// exit code, as execute does.
func kzprobe(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.Execute()
	if err != nil {
		errb.WriteString("kzprobe: " + err.Error() + "\n")
	}
	return out.String(), errb.String(), exitCode(err)
}

// TestAnalyzeCommandReportFixture runs `kzprobe analyze` on the fixture
// that mirrors the report, with its test roots as --interception-roots, and
// checks the JSON against the report's facts.
func TestAnalyzeCommandReportFixture(t *testing.T) {
	clearEnv(t)
	fx, err := analysistest.WriteReportFixture(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, code := kzprobe(t, "analyze", fx.Dir, "--interception-roots", fx.RootsPEM, "--format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "2 bad lines skipped") {
		t.Errorf("stderr %q; want the bad lines counted", stderr)
	}
	var res analysis.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Intermediates) != 7 || len(res.Networks) != 19 || len(res.Domains) != 14 || len(res.Gaps) != 5 {
		t.Fatalf("%d intermediates, %d networks, %d domains, %d gaps; want 7, 19, 14, 5",
			len(res.Intermediates), len(res.Networks), len(res.Domains), len(res.Gaps))
	}
	for i, r := range res.Intermediates {
		f := analysistest.ReportIntermediates[i]
		if r.Serial != f.Serial || !r.NotBefore.Equal(f.NotBefore) || !r.NotAfter.Equal(f.NotAfter) || r.SHA1 != fx.PKI.Intermediates[i].SHA1() {
			t.Errorf("row %d: %s %s %s–%s; want the report's serial %s and window %s–%s", i, r.SHA1, r.Serial, r.NotBefore, r.NotAfter, f.Serial, f.NotBefore, f.NotAfter)
		}
	}
	if len(res.Warnings) != 2 || !strings.HasSuffix(res.Warnings[1].Source, "2021.jsonl:3") {
		t.Errorf("warnings %v; want the corrupt line 2021.jsonl:3 and the cut line", res.Warnings)
	}

	// --table and csv: a plain CSV of the gaps.
	out, _, code = kzprobe(t, "analyze", fx.Dir, "--interception-roots", fx.RootsPEM, "--format", "csv", "--table", "gaps")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "gap,from,to,days") || !strings.HasPrefix(lines[1], "1,2021-11-02 12:39:14,2023-08-09 06:33:35,644.7,") {
		t.Errorf("gaps CSV:\n%s", out)
	}
}

// TestAnalyzeCommandErrors: bad flags and inputs are named, exit 2.
func TestAnalyzeCommandErrors(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "m.jsonl")
	os.WriteFile(good, nil, 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"format", []string{"analyze", good, "--format", "xml"}, `--format "xml"`},
		{"table", []string{"analyze", good, "--table", "roots"}, `--table "roots"`},
		{"missing", []string{"analyze", filepath.Join(dir, "nope.jsonl")}, "nope.jsonl does not exist"},
		{"since", []string{"analyze", good, "--since", "yesterday"}, `--since "yesterday"`},
		{"until_before_since", []string{"compare", good, "--since", "2024-02-01", "--until", "2024-01-01"}, "is not after"},
		{"roots", []string{"analyze", good, "--interception-roots", good}, "no PEM certificate"},
		{"out_dir", []string{"report", good, "-o", filepath.Join(dir, "no", "r.html")}, "does not exist"},
		{"timeline_gif", []string{"timeline", good, "-o", filepath.Join(dir, "t.gif")}, ".svg or .png"},
		{"no_args", []string{"compare"}, "no input: name files or folders to read, or --clickhouse URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := kzprobe(t, tc.args...)
			if code == exitOK || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want an error naming %q", code, stderr, tc.want)
			}
		})
	}
}

// labRun is one lab run labelled as a network.
type labRun struct {
	asn, name string
	sites     []lab.Site
}

// runLabAs runs `kzprobe run` against a new lab with sites, labelled with
// --asn and --network-name, and returns the JSONL path and the lab's
// intermediates' SHA-1s (current, expired) and ISCA root file.
func runLabAs(t *testing.T, dir string, r labRun) (out, current, expired, root string) {
	t.Helper()
	l, err := lab.Start(lab.Config{Scenario: lab.Scenario{Name: r.name, Sites: r.sites}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ldir := filepath.Join(dir, r.asn)
	files, err := l.WriteFiles(ldir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := labConfig(l, files, ldir)
	out = filepath.Join(dir, r.asn+".jsonl")
	args := strings.Fields(labCommandLine(cfg))[2:]
	args = append([]string{"run", "-q", "-o", out, "--cc", "KZ", "--asn", r.asn, "--network-name", r.name}, args...)
	if _, stderr, code := kzprobe(t, args...); code != exitOK {
		t.Fatalf("kzprobe run (%s): exit %d: %s", r.asn, code, stderr)
	}
	h := func(der []byte) string { s := sha1.Sum(der); return hex.EncodeToString(s[:]) }
	return out, h(l.PKI.ISCAIntermediate.Raw), h(l.PKI.ISCAExpiredIntermediate.Raw), files.ISCARoot
}

// TestCompareThreeLabRuns runs the real probe against three labs, each
// configured as a different network, and checks the domain x network
// matrix `kzprobe compare` prints, then analyses the same runs.
func TestCompareThreeLabRuns(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	runs := []labRun{
		{"AS9198", "JSC Kazakhtelecom", []lab.Site{
			{Domain: "rutracker.org", TLS: lab.InterceptISCA},
			{Domain: "regnum.ru", TLS: lab.InterceptISCAExpired},
			{Domain: "xakep.ru"},
			{Domain: "kz.tsargrad.tv", DNS: lab.DNSBlockpage},
		}},
		{"AS29355", "Kcell JSC", []lab.Site{
			{Domain: "rutracker.org"},
			{Domain: "regnum.ru", TLS: lab.InterceptISCA},
			{Domain: "xakep.ru", TLS: lab.InterceptISCA},
			{Domain: "kz.tsargrad.tv", TLS: lab.Reset},
		}},
		{"AS21299", "Kar-Tel LLC", []lab.Site{
			{Domain: "rutracker.org", TLS: lab.EOF},
			{Domain: "regnum.ru"},
			{Domain: "xakep.ru", TLS: lab.InterceptCorporate},
			{Domain: "kz.tsargrad.tv"},
		}},
	}
	var outs, roots []string
	cur, exp := map[string]string{}, map[string]string{}
	for _, r := range runs {
		out, c, e, root := runLabAs(t, dir, r)
		outs, roots = append(outs, out), append(roots, root)
		cur[r.asn], exp[r.asn] = c, e
	}

	stdout, stderr, code := kzprobe(t, append([]string{"compare", "--format", "json"}, outs...)...)
	if code != exitOK {
		t.Fatalf("compare: exit %d: %s", code, stderr)
	}
	var m analysis.Matrix
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, v := range m.Networks {
		cols = append(cols, v.Label())
	}
	if diff := cmp.Diff([]string{"AS9198 JSC Kazakhtelecom", "AS21299 Kar-Tel LLC", "AS29355 Kcell JSC"}, cols); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	type cell struct{ Verdict, Intermediate string }
	got := map[[2]string]cell{}
	for _, c := range m.Cells {
		got[[2]string{c.Domain, c.Network}] = cell{c.Verdict, c.Intermediate}
	}
	want := map[[2]string]cell{
		{"kz.tsargrad.tv", "AS9198"}:  {"dns_tampering", ""},
		{"kz.tsargrad.tv", "AS21299"}: {"ok", ""},
		{"kz.tsargrad.tv", "AS29355"}: {"tls_blocking", ""},
		{"regnum.ru", "AS9198"}:       {"mitm_isca", exp["AS9198"]},
		{"regnum.ru", "AS21299"}:      {"ok", ""},
		{"regnum.ru", "AS29355"}:      {"mitm_isca", cur["AS29355"]},
		{"rutracker.org", "AS9198"}:   {"mitm_isca", cur["AS9198"]},
		{"rutracker.org", "AS21299"}:  {"tls_blocking", ""},
		{"rutracker.org", "AS29355"}:  {"ok", ""},
		{"xakep.ru", "AS9198"}:        {"ok", ""},
		{"xakep.ru", "AS21299"}:       {"mitm_other", ""},
		{"xakep.ru", "AS29355"}:       {"mitm_isca", cur["AS29355"]},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("matrix (-want +got):\n%s", diff)
	}
	if c := m.Cell("regnum.ru", "AS9198"); c == nil || !c.BrowserError {
		t.Errorf("regnum.ru on AS9198 (expired intermediate): %+v; want browser_error", c)
	}

	// The terminal table shows the same, "!" on the expired intermediate.
	stdout, _, _ = kzprobe(t, append([]string{"compare"}, outs...)...)
	for _, w := range []string{"AS9198 JSC Kazakhtelecom", "mitm_isca " + exp["AS9198"][:8] + "!", "mitm_other", "dns_tampering"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("table lacks %q:\n%s", w, stdout)
		}
	}

	// analyze over the three runs, with the labs' roots: the lab's
	// intermediates, the expired one seen outside its window.
	args := []string{"analyze", "--format", "json"}
	for _, r := range roots {
		args = append(args, "--interception-roots", r)
	}
	stdout, stderr, code = kzprobe(t, append(args, outs...)...)
	if code != exitOK {
		t.Fatalf("analyze: exit %d: %s", code, stderr)
	}
	var res analysis.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	seen := map[string]analysis.IntermediateRow{}
	for _, r := range res.Intermediates {
		seen[r.SHA1] = r
	}
	for _, w := range []struct {
		sha1    string
		outside int
		network string
	}{{cur["AS9198"], 0, "AS9198"}, {exp["AS9198"], 1, "AS9198"}, {cur["AS29355"], 0, "AS29355"}} {
		r, ok := seen[w.sha1]
		if !ok {
			t.Errorf("intermediate %s not in the table", w.sha1)
			continue
		}
		if r.OutsideWindow != w.outside || len(r.Networks) != 1 || r.Networks[0] != w.network {
			t.Errorf("intermediate %s: outside %d, networks %v; want %d, [%s]", w.sha1, r.OutsideWindow, r.Networks, w.outside, w.network)
		}
	}
	if res.Summary.Measurements != 12 || res.Summary.Intercepted != 4 || res.Summary.InterceptedNetworks != 2 {
		t.Errorf("summary %+v; want 12 measurements, 4 intercepted on 2 networks", res.Summary)
	}
}

// TestTimelineAndReportCommands write the SVG and the HTML page for the
// report fixture.
func TestTimelineAndReportCommands(t *testing.T) {
	clearEnv(t)
	fx, err := analysistest.WriteReportFixture(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svg := filepath.Join(t.TempDir(), "timeline.svg")
	if _, stderr, code := kzprobe(t, "timeline", fx.Dir, "--interception-roots", fx.RootsPEM, "-o", svg); code != exitOK {
		t.Fatalf("timeline: exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	rows := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("timeline.svg is not XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			for _, a := range se.Attr {
				if a.Name.Local == "class" && a.Value == "row" {
					rows++
				}
			}
		}
	}
	if rows != 7 {
		t.Errorf("%d rows; want 7", rows)
	}

	// .png: the same picture, rasterized.
	pngPath := filepath.Join(t.TempDir(), "timeline.png")
	if _, stderr, code := kzprobe(t, "timeline", fx.Dir, "--interception-roots", fx.RootsPEM, "-o", pngPath, "--width", "900"); code != exitOK {
		t.Fatalf("timeline -o .png: exit %d: %s", code, stderr)
	}
	pf, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(pf)
	pf.Close()
	if err != nil || cfg.Width != 900 {
		t.Errorf("timeline.png: %+v, %v; want a PNG 900 pixels wide", cfg, err)
	}

	page := filepath.Join(t.TempDir(), "report.html")
	if _, stderr, code := kzprobe(t, "report", fx.Dir, "--interception-roots", fx.RootsPEM, "-o", page); code != exitOK {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"<svg", "Validity gaps", "Domains by network", fx.PKI.Intermediates[0].SHA1()} {
		if !bytes.Contains(html, []byte(w)) {
			t.Errorf("report lacks %q", w)
		}
	}
	if bytes.Contains(html, []byte("<script")) || bytes.Contains(html, []byte(" src=")) {
		t.Error("report has a script or an external source")
	}
}
