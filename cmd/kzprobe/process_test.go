package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kzprobe/lab"
	"kzprobe/measurement"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// kzprobeBinary builds the real binary once per test process, or returns
// KZTEST_BIN when set (not KZPROBE_*: clearEnv clears those): a binary
// built from another commit, to see a regression test fail against the
// code before its fix.
func kzprobeBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("KZTEST_BIN"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kzprobe-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "kzprobe")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// slowLab starts a lab of n sites behind latency, so that a run takes long
// enough to be interrupted, and returns the `kzprobe run` arguments for it.
func slowLab(t *testing.T, n int, latency time.Duration) (*lab.Lab, []string) {
	t.Helper()
	sc := lab.Scenario{Name: "slow", Latency: latency}
	for i := range n {
		tlsb := lab.Pass
		if i%2 == 0 {
			tlsb = lab.InterceptISCA
		}
		sc.Sites = append(sc.Sites, lab.Site{Domain: fmt.Sprintf("site-%03d.example", i), TLS: tlsb})
	}
	l, dir, files := startLab(t, lab.Config{Scenario: sc})
	args := strings.Fields(labCommandLine(labConfig(l, files, dir)))[2:]
	return l, append([]string{"run", "-q", "--parallel", "2"}, args...)
}

// countLines returns the complete lines of path.
func countLines(path string) int {
	data, _ := os.ReadFile(path)
	return bytes.Count(data, []byte("\n"))
}

// waitLines waits until path has at least n complete lines.
func waitLines(t *testing.T, path string, n int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for countLines(path) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d lines after %s; want %d", path, countLines(path), limit, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKillAndResume kills a real `kzprobe run` with SIGKILL mid-run,
// resumes it with --resume, and checks that every target appears exactly
// once with a complete record.
func TestKillAndResume(t *testing.T) {
	bin := kzprobeBinary(t)
	l, args := slowLab(t, 40, 30*time.Millisecond)
	out := filepath.Join(t.TempDir(), "m.jsonl")

	first := exec.Command(bin, append(args, "-o", out)...)
	var stderr bytes.Buffer
	first.Stderr = &stderr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	waitLines(t, out, 5, 30*time.Second)
	first.Process.Kill() // SIGKILL: no chance to clean up
	first.Wait()
	killedAt := countLines(out)
	if killedAt >= len(l.Scenario.Sites) {
		t.Fatalf("the run finished (%d lines) before the kill; make it slower", killedAt)
	}

	second := exec.Command(bin, append(args, "--resume", out)...)
	msg, err := second.CombinedOutput()
	if err != nil {
		t.Fatalf("resumed run: %v\n%s", err, msg)
	}
	if !strings.Contains(string(msg), "resuming") {
		t.Errorf("resumed run did not say it resumed:\n%s", msg)
	}

	seen := map[string]int{}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []string
	st, err := measurement.ReadJSONL(f, func(m *measurement.Measurement) error {
		if m.TestKeys.Verdict == "" {
			return errors.New("record without a verdict")
		}
		seen[m.TestKeys.Domain]++
		ids = append(ids, m.ReportID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Scenario.Sites {
		if seen[s.Domain] != 1 {
			t.Errorf("%s appears %d times; want exactly once", s.Domain, seen[s.Domain])
		}
	}
	if len(seen) != len(l.Scenario.Sites) {
		t.Errorf("%d distinct domains in the file; want %d", len(seen), len(l.Scenario.Sites))
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Errorf("report_id %s differs from %s: a resumed run continues the same report", id, ids[0])
			break
		}
	}
	t.Logf("killed after %d lines; %d unreadable lines skipped (cut by the kill: %v)", killedAt, st.Bad, st.Truncated)
}

// TestInterruptWritesWhatCompleted sends SIGINT to a real run: it must
// stop within a few seconds, exit 130 with a clear message and the
// summary, and leave only complete records.
func TestInterruptWritesWhatCompleted(t *testing.T) {
	bin := kzprobeBinary(t)
	_, args := slowLab(t, 40, 30*time.Millisecond)
	out := filepath.Join(t.TempDir(), "m.jsonl")
	cmd := exec.Command(bin, append(args, "-o", out)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitLines(t, out, 3, 30*time.Second)
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	took := time.Since(sent)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Fatalf("exit = %v; want code %d\nstderr: %s", err, exitInterrupted, stderr.String())
	}
	if took > 5*time.Second {
		t.Errorf("took %s to stop after SIGINT; want about a second", took)
	}
	if !strings.Contains(stderr.String(), "interrupted") || !strings.Contains(stdout.String(), "targets:") {
		t.Errorf("want an 'interrupted' message and the summary\nstdout: %s\nstderr: %s", stdout.String(), stderr.String())
	}
	f, _ := os.Open(out)
	defer f.Close()
	st, _ := measurement.ReadJSONL(f, func(*measurement.Measurement) error { return nil })
	if st.Bad != 0 {
		t.Errorf("%d unreadable lines after a clean interrupt; want 0", st.Bad)
	}
}
