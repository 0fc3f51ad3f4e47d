package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kzprobe/lab"
	"kzprobe/measurement"
)

// TestRunAgainstLab runs `kzprobe run` with flags only (the command line
// that `kzprobe lab --serve` prints) against a lab and checks every
// scenario's verdict in the JSONL it wrote.
func TestRunAgainstLab(t *testing.T) {
	clearEnv(t)
	l, dir, files := startLab(t, lab.Config{Scenario: lab.DefaultScenario()})
	cfg := labConfig(l, files, dir)
	out := filepath.Join(dir, "run.jsonl")
	args := strings.Fields(labCommandLine(cfg))[2:] // drop "kzprobe run"
	args = append([]string{"run", "-q", "-o", out, "--cc", "KZ", "--asn", "AS9198"}, args...)
	if code := execute(args); code != exitOK {
		t.Fatalf("kzprobe %s: exit %d", strings.Join(args, " "), code)
	}
	got, err := readVerdicts(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Scenario.Sites {
		if got[s.Domain] != s.Expect {
			t.Errorf("%s (dns=%s tls=%s): verdict %q; want %q", s.Domain, s.DNS, s.TLS, got[s.Domain], s.Expect)
		}
	}
}

// TestLabCommand runs the offline demo as the README tells users to,
// twice in one folder: the second run replaces the lab's measurements
// rather than being refused for a file that is not empty.
func TestLabCommand(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	for i := range 2 {
		if code := execute([]string{"lab", "-q", "--dir", dir}); code != exitOK {
			t.Fatalf("kzprobe lab, run %d: exit %d; want 0", i+1, code)
		}
	}
	got, err := readVerdicts(filepath.Join(dir, "lab-measurements.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := countLines(filepath.Join(dir, "lab-measurements.jsonl")); n != len(got) {
		t.Errorf("%d lines for %d domains; want one record a domain (the last run's)", n, len(got))
	}
	// The sweep beside the run: every name swept once, by the last lab,
	// each as its TLS behaviour says (checkSweep made the lab exit 1
	// otherwise).
	sweepFile := filepath.Join(dir, "lab-measurements-sweep.jsonl")
	swept, err := readVerdicts(sweepFile)
	if err != nil {
		t.Fatal(err)
	}
	if n := countLines(sweepFile); n != len(swept) || len(swept) != len(got) {
		t.Errorf("sweep: %d lines for %d names, the run %d; want one record a name (the last lab's)", n, len(swept), len(got))
	}
	for _, s := range lab.DefaultScenario().Sites {
		if want := lab.ExpectedSweepVerdict(s.TLS, false); swept[s.Domain] != want {
			t.Errorf("sweep %s (tls %s): %q; want %q", s.Domain, s.TLS, swept[s.Domain], want)
		}
	}
}

// labTemps lists the lab's temporary folders in dir.
func labTemps(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "kzprobe-lab-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// printedCommand finds the command line starting with prefix in out and
// returns its words after "kzprobe".
func printedCommand(t *testing.T, out, prefix string) []string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, prefix) {
			return strings.Fields(l)[1:]
		}
	}
	t.Fatalf("no %q command printed:\n%s", prefix, out)
	return nil
}

// checkAnalyzeJudges runs a printed analyze command and checks that every
// intermediate the lab's measurements hold is judged as the run judged
// it: signed by the lab's root, on the evidence of its signature.
func checkAnalyzeJudges(t *testing.T, args []string, measurements string) {
	t.Helper()
	root := newRootCmd()
	var stdout, stderr bytes.Buffer
	root.SetArgs(append(args, "--format", "json", "--table", "intermediates"))
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	if err := root.Execute(); err != nil {
		t.Fatalf("kzprobe %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	var res struct {
		Intermediates []struct {
			SHA1           string `json:"sha1"`
			Evidence       string `json:"evidence"`
			SignerRootSHA1 string `json:"signer_root_sha1"`
		} `json:"intermediates"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	// What the run said: the root its chains lead to, on what evidence.
	f, err := os.Open(measurements)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runRoot, runEvidence := "", ""
	if _, err := measurement.ReadJSONL(f, func(m *measurement.Measurement) error {
		if in := m.TestKeys.Interception; in != nil {
			runRoot, runEvidence = in.RootSHA1, in.Evidence
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if runEvidence != "signature" || len(res.Intermediates) == 0 {
		t.Fatalf("run: evidence %q; analyze: %d intermediates", runEvidence, len(res.Intermediates))
	}
	for _, im := range res.Intermediates {
		if im.Evidence != runEvidence || im.SignerRootSHA1 != runRoot {
			t.Errorf("analyze judged %s: evidence %q, signer %q; the run: %q, %q", im.SHA1, im.Evidence, im.SignerRootSHA1, runEvidence, runRoot)
		}
	}
}

// TestLabKeepsMeasurementsNotItsFolder runs kzprobe lab as a newcomer
// does, with no flag: its temporary folder is gone at the end, the
// measurements are kept in a folder of their own here with the lab's
// root beside them, and the analyze command it prints judges them as the
// run did.
func TestLabKeepsMeasurementsNotItsFolder(t *testing.T) {
	clearEnv(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	here := t.TempDir()
	t.Chdir(here)
	root := newRootCmd()
	var stdout, stderr bytes.Buffer
	root.SetArgs([]string{"lab", "-q"})
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	if err := root.Execute(); err != nil {
		t.Fatalf("kzprobe lab: %v\n%s", err, stderr.Bytes())
	}
	if left := labTemps(t, tmp); len(left) > 0 {
		t.Errorf("the lab's temporary folder is left: %s", left)
	}
	kept := labTemps(t, here)
	if len(kept) != 1 {
		t.Fatalf("folders for the measurements here: %q; want one", kept)
	}
	jsonl := filepath.Join(kept[0], "lab-measurements.jsonl")
	if _, err := os.Stat(filepath.Join(kept[0], "lab-measurements-isca-root.pem")); err != nil {
		t.Errorf("no lab root beside the measurements: %v", err)
	}
	args := printedCommand(t, stdout.String(), "kzprobe analyze ")
	if !strings.Contains(strings.Join(args, " "), filepath.Base(kept[0])) {
		t.Errorf("the analyze command %q does not read %s", args, kept[0])
	}
	checkAnalyzeJudges(t, args, jsonl)
	printedCommand(t, stdout.String(), "kzprobe report ")
}

// TestLabRemovesItsFolderWhenInterrupted: an interrupted lab removes its
// temporary folder too.
func TestLabRemovesItsFolderWhenInterrupted(t *testing.T) {
	clearEnv(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Chdir(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := runLab(ctx, labArgs{quiet: true, parallel: 8}, io.Discard, io.Discard)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitInterrupted {
		t.Fatalf("runLab with Ctrl-C at once: %v; want interrupted", err)
	}
	if left := labTemps(t, tmp); len(left) > 0 {
		t.Errorf("the lab's temporary folder is left: %s", left)
	}
}

// TestLabServe runs kzprobe lab --serve as a person does, from two
// terminals: the short command it prints measures it, the requests are
// logged, Ctrl-C stops it with a goodbye and removes its temporary
// folder, and the analyze command it printed judges the measurements as
// the run did.
func TestLabServe(t *testing.T) {
	clearEnv(t)
	bin := kzprobeBinary(t)
	tmp, here := t.TempDir(), t.TempDir()
	serve := exec.Command(bin, "lab", "--serve")
	serve.Dir = here
	serve.Env = append(os.Environ(), "TMPDIR="+tmp)
	var stderr bytes.Buffer
	serve.Stderr = &stderr
	pr, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer serve.Process.Kill()
	var banner strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		banner.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "Ctrl-C stops the lab") {
			break
		}
	}
	run := printedCommand(t, banner.String(), "kzprobe run ")
	if len(run) > 4 {
		t.Errorf("the run command is %q; want kzprobe run -c FILE", run)
	}
	measure := exec.Command(bin, append(run, "-q")...)
	measure.Dir = t.TempDir() // another terminal, elsewhere
	if out, err := measure.CombinedOutput(); err != nil {
		t.Fatalf("kzprobe %s: %v\n%s", strings.Join(run, " "), err, out)
	}
	if err := serve.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(pr)
	if err := serve.Wait(); err != nil {
		t.Fatalf("lab --serve after Ctrl-C: %v\n%s", err, stderr.Bytes())
	}
	if !strings.Contains(string(rest), "Goodbye.") {
		t.Errorf("no goodbye on Ctrl-C: %q", rest)
	}
	for _, want := range []string{"local resolver (UDP)", "control resolver (DoH)", `sni "regnum.ru": intercept_isca`, "control server client=127.0.0.1 method=POST path=/v1/check"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("no %q in the request log:\n%s", want, stderr.String())
		}
	}
	if left := labTemps(t, tmp); len(left) > 0 {
		t.Errorf("the lab's temporary folder is left: %s", left)
	}
	kept := labTemps(t, here)
	if len(kept) != 1 {
		t.Fatalf("folders for the measurements: %q; want one", kept)
	}
	checkAnalyzeJudges(t, printedCommand(t, banner.String(), "kzprobe analyze "), filepath.Join(kept[0], "lab-measurements.jsonl"))
}

// TestLabConfigFile: the configuration lab --serve writes loads as the
// run configuration it stands for.
func TestLabConfigFile(t *testing.T) {
	clearEnv(t)
	l, dir, files := startLab(t, lab.Config{Scenario: lab.DefaultScenario()})
	want := labConfig(l, files, dir)
	want.Targets.Files = []string{filepath.Join(dir, "targets.txt")}
	want.Targets.Domains = nil
	path := filepath.Join(dir, "lab.yaml")
	if err := writeLabConfig(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := loadConfig(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// What labConfig leaves to the defaults.
	want.Targets.Domains = []string{}
	want.Control.Fallbacks = got.Control.Fallbacks
	want.Run.FailOn = []measurement.Verdict{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lab.yaml loads as (-want +got):\n%s", diff)
	}
}

// TestCheckLabFits: the lab's comparison table fits 80 columns.
func TestCheckLabFits(t *testing.T) {
	sc := lab.DefaultScenario()
	dir := t.TempDir()
	path := filepath.Join(dir, "m.jsonl")
	var lines strings.Builder
	for _, s := range sc.Sites {
		fmt.Fprintf(&lines, `{"input":%q,"test_keys":{"domain":%q,"verdict":%q}}`+"\n", s.Domain, s.Domain, s.Expect)
	}
	if err := os.WriteFile(path, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := checkLab(path, sc, &out, 80); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if textWidth(l) >= 80 {
			t.Errorf("line of %d columns: %q", textWidth(l), l)
		}
	}
	if !strings.Contains(out.String(), "all 27 verdicts match the scenario") {
		t.Errorf("no match line:\n%s", out.String())
	}
}
