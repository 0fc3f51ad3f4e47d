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

// TestLabCommand runs the offline demo as the README tells users to.
func TestLabCommand(t *testing.T) {
	clearEnv(t)
	if code := execute([]string{"lab", "-q", "--dir", t.TempDir()}); code != exitOK {
		t.Fatalf("kzprobe lab: exit %d; want 0", code)
	}
}
