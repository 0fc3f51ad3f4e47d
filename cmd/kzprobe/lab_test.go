package main

import (
	"path/filepath"
	"strings"
	"testing"

	"kzprobe/lab"
)

// TestRunAgainstLab runs `kzprobe run` with flags only (the command line
// that `kzprobe lab --serve` prints) against a lab and checks every
// scenario's verdict in the JSONL it wrote.
func TestRunAgainstLab(t *testing.T) {
	clearEnv(t)
	l, err := lab.Start(lab.Config{Scenario: lab.DefaultScenario()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	files, err := l.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
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
}
