package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kzprobe/lab"
	"kzprobe/measurement"
)

// fileLab starts a lab of n sites that pass through, with latency per
// round trip, and returns its domains and the `kzprobe run` arguments for
// it without any target (the tests choose them).
func fileLab(t *testing.T, n int, latency time.Duration) (domains, args []string) {
	t.Helper()
	sc := lab.Scenario{Name: "files", Latency: latency}
	for i := range n {
		sc.Sites = append(sc.Sites, lab.Site{Domain: fmt.Sprintf("site-%03d.example", i), TLS: lab.Pass})
		domains = append(domains, sc.Sites[i].Domain)
	}
	l, dir, files := startLab(t, lab.Config{Scenario: sc})
	cfg := labConfig(l, files, dir)
	cfg.Targets.Domains = nil
	return domains, append([]string{"run", "-q", "--parallel", "2"}, strings.Fields(labCommandLine(cfg))[2:]...)
}

// withDomains returns args followed by -d for each domain.
func withDomains(args []string, domains ...string) []string {
	out := append([]string(nil), args...)
	for _, d := range domains {
		out = append(out, "-d", d)
	}
	return out
}

// runKzprobe runs the real binary with stdin and returns its exit code,
// stdout and stderr.
func runKzprobe(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(kzprobeBinary(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, o.String(), e.String()
}

// domainCounts returns how many complete records of each domain path
// holds, and the distinct report IDs in file order.
func domainCounts(t *testing.T, path string) (map[string]int, []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]int{}
	var reports []string
	if _, err := measurement.ReadJSONL(f, func(m *measurement.Measurement) error {
		if m.TestKeys.Verdict == "" {
			return errors.New("a record without a verdict")
		}
		seen[m.TestKeys.Domain]++
		if len(reports) == 0 || reports[len(reports)-1] != m.ReportID {
			reports = append(reports, m.ReportID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return seen, reports
}

// TestConcurrentRunsOnOneFile starts a real run, then, while it writes,
// two more on the same output file: a --resume (two concurrent resumes
// duplicated 237 of 277 targets) and an --append. Both must stop at once
// with exit 1 and a message naming the file and the other run; the first
// must finish, and the file hold each target once.
func TestConcurrentRunsOnOneFile(t *testing.T) {
	clearEnv(t)
	domains, args := fileLab(t, 30, 30*time.Millisecond)
	args = withDomains(args, domains...)
	out := filepath.Join(t.TempDir(), "shared.jsonl")

	first := exec.Command(kzprobeBinary(t), append(args, "-o", out)...)
	var firstErr bytes.Buffer
	first.Stderr = &firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	firstDone := make(chan struct{})
	var firstWait error
	go func() { firstWait = first.Wait(); close(firstDone) }()
	t.Cleanup(func() { first.Process.Kill() })
	waitLines(t, out, 2, 60*time.Second)

	for _, extra := range [][]string{{"--resume", out}, {"-o", out, "--append"}} {
		t.Run(extra[0], func(t *testing.T) {
			began := time.Now()
			code, _, stderr := runKzprobe(t, "", append(args, extra...)...)
			select {
			case <-firstDone:
				t.Fatalf("the first run ended before the second was refused; make it slower")
			default:
			}
			if code != exitOutputBusy {
				t.Errorf("second run on %s: exit %d; want %d\n%s", out, code, exitOutputBusy, stderr)
			}
			for _, want := range []string{out, "another kzprobe run is writing"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not contain %q:\n%s", want, stderr)
				}
			}
			t.Logf("refused after %s: %s", time.Since(began).Round(time.Millisecond), stderr)
		})
	}

	select {
	case <-firstDone:
		if firstWait != nil {
			t.Fatalf("first run: %v\n%s", firstWait, firstErr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the first run did not finish")
	}
	seen, _ := domainCounts(t, out)
	for _, d := range domains {
		if seen[d] != 1 {
			t.Errorf("%s appears %d times in %s; want once", d, seen[d], out)
		}
	}
}

// TestResumeMissingFile: --resume of a file that does not exist (a typo)
// is a usage error naming the file, before any packet is sent and without
// creating it; it used to start a fresh full run.
func TestResumeMissingFile(t *testing.T) {
	clearEnv(t)
	sink := startUDPSink(t)
	missing := filepath.Join(t.TempDir(), "nope.jsonl")
	code, _, stderr := runKzprobe(t, "", "run", "-q", "--resolver", sink.addr, "--control", "udp://"+sink.addr,
		"--allow-net", "127.0.0.0/8", "--dns-timeout", "300ms", "--timeout", "300ms",
		"-d", "a.example", "--resume", missing)
	if code != exitUsage {
		t.Errorf("exit %d; want %d\n%s", code, exitUsage, stderr)
	}
	for _, want := range []string{missing, "no such file", "-o"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, stderr)
		}
	}
	t.Log(stderr)
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists after a refused --resume (%v); want it not created", missing, err)
	}
	if n := sink.n.Load(); n != 0 {
		t.Errorf("%d DNS queries sent; want none", n)
	}
}

// TestOutputHoldingMeasurements: -o on a file that already holds
// measurements is refused unless --append says to add a second report
// (it used to append one silently); an empty file, and stdout, are
// written as before.
func TestOutputHoldingMeasurements(t *testing.T) {
	clearEnv(t)
	domains, args := fileLab(t, 2, 0)
	args = withDomains(args, domains...)
	dir := t.TempDir()
	measured := filepath.Join(dir, "measured.jsonl")
	if code, _, stderr := runKzprobe(t, "", append(args, "-o", measured)...); code != exitOK {
		t.Fatalf("first run: exit %d\n%s", code, stderr)
	}
	before, err := os.ReadFile(measured)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("refused without --append", func(t *testing.T) {
		code, _, stderr := runKzprobe(t, "", append(args, "-o", measured)...)
		if code != exitUsage {
			t.Errorf("exit %d; want %d\n%s", code, exitUsage, stderr)
		}
		for _, want := range []string{measured, "--append", "--resume", "another -o"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr does not contain %q:\n%s", want, stderr)
			}
		}
		t.Log(stderr)
		if after, _ := os.ReadFile(measured); !bytes.Equal(after, before) {
			t.Errorf("%s changed from %d to %d bytes; a refused run must leave it as it was", measured, len(before), len(after))
		}
	})

	t.Run("trace has no --resume to offer", func(t *testing.T) {
		code, _, stderr := runKzprobe(t, "", "trace", "--sni", "x.example", "--to", "127.0.0.1", "--allow-net", "127.0.0.0/8", "-o", measured)
		if code != exitUsage {
			t.Errorf("exit %d; want %d\n%s", code, exitUsage, stderr)
		}
		if !strings.Contains(stderr, "--append") || strings.Contains(stderr, "--resume") {
			t.Errorf("kzprobe trace on a file that is not empty says:\n%s\nwant --append offered and no --resume, a flag trace does not have", stderr)
		}
	})

	t.Run("--append adds a second report", func(t *testing.T) {
		appended := filepath.Join(t.TempDir(), "appended.jsonl")
		if err := os.WriteFile(appended, before, 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _, stderr := runKzprobe(t, "", append(args, "-o", appended, "--append")...); code != exitOK {
			t.Fatalf("exit %d; want 0\n%s", code, stderr)
		}
		seen, reports := domainCounts(t, appended)
		for _, d := range domains {
			if seen[d] != 2 {
				t.Errorf("%s appears %d times; want 2 (one a report)", d, seen[d])
			}
		}
		if len(reports) != 2 || reports[0] == reports[1] {
			t.Errorf("report IDs in file order %v; want two distinct reports", reports)
		}
	})

	t.Run("empty file", func(t *testing.T) {
		empty := filepath.Join(t.TempDir(), "empty.jsonl")
		if err := os.WriteFile(empty, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _, stderr := runKzprobe(t, "", append(args, "-o", empty)...); code != exitOK {
			t.Fatalf("exit %d; want 0\n%s", code, stderr)
		}
		if seen, _ := domainCounts(t, empty); len(seen) != len(domains) {
			t.Errorf("%d domains written; want %d", len(seen), len(domains))
		}
	})

	t.Run("stdout", func(t *testing.T) {
		for i := range 2 {
			code, stdout, stderr := runKzprobe(t, "", append(args, "-o", "-")...)
			if code != exitOK {
				t.Fatalf("run %d: exit %d; want 0\n%s", i+1, code, stderr)
			}
			st, err := measurement.ReadJSONL(strings.NewReader(stdout), func(*measurement.Measurement) error { return nil })
			if err != nil || st.Lines != len(domains) || st.Bad != 0 {
				t.Errorf("run %d: stdout held %+v (%v); want %d records", i+1, st, err, len(domains))
			}
		}
	})
}

// TestResumeNamesADifferentList resumes a file of three targets with
// other lists: the run says how many targets of the list are new and how
// many in the file are not in the list, before measuring when the list can
// be read twice (-d, a file) and once it is read when it cannot (stdin);
// the same list says nothing. It used to say nothing at all.
func TestResumeNamesADifferentList(t *testing.T) {
	clearEnv(t)
	domains, args := fileLab(t, 6, 30*time.Millisecond)
	dir := t.TempDir()
	measured := filepath.Join(dir, "abc.jsonl")
	if code, _, stderr := runKzprobe(t, "", append(withDomains(args, domains[:3]...), "-o", measured)...); code != exitOK {
		t.Fatalf("first run: exit %d\n%s", code, stderr)
	}
	base, err := os.ReadFile(measured)
	if err != nil {
		t.Fatal(err)
	}
	listFile := filepath.Join(dir, "list.txt")
	// domains[1] twice: a duplicate is one target.
	if err := os.WriteFile(listFile, []byte(strings.Join([]string{domains[1], domains[1], domains[2], domains[3], domains[4], domains[5]}, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		list   []string // arguments giving the list
		stdin  string
		before bool // the difference is said before any target is measured
		fresh  int  // targets of the list not in the file; -1: no warning
		gone   int  // targets of the file not in the list
	}{
		{name: "same list", list: withDomains(nil, domains[:3]...), fresh: -1},
		{name: "same list, other order and port spelled", list: withDomains(nil, domains[2], domains[0]+":"+portOf(t, args), domains[1]), fresh: -1},
		{name: "-d", list: withDomains(nil, domains[1], domains[2], domains[3], domains[4]), before: true, fresh: 2, gone: 1},
		{name: "list file", list: []string{"-i", listFile}, before: true, fresh: 3, gone: 1},
		{name: "stdin", list: []string{"-i", "-"}, stdin: domains[4] + "\n" + domains[0] + "\n", fresh: 1, gone: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "resumed.jsonl")
			if err := os.WriteFile(out, base, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(kzprobeBinary(t), append(append(append([]string(nil), args...), tc.list...), "--resume", out)...)
			cmd.Stdin = strings.NewReader(tc.stdin)
			errPipe, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			warned, linesWhenWarned := false, 0
			sc := bufio.NewScanner(errPipe)
			for sc.Scan() {
				stderr.WriteString(sc.Text() + "\n")
				if strings.Contains(sc.Text(), "different target list") && !warned {
					warned, linesWhenWarned = true, countLines(out)
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("resumed run: %v\n%s", err, stderr.String())
			}
			msg := stderr.String()
			if tc.fresh < 0 {
				if warned {
					t.Errorf("a warning for the same list:\n%s", msg)
				}
				return
			}
			if !warned {
				t.Fatalf("no warning for a different list:\n%s", msg)
			}
			for _, want := range []string{
				"--resume " + out,
				fmt.Sprintf("%d of the list's targets are new to the file", tc.fresh),
				fmt.Sprintf("%d of the file's targets are not in the list", tc.gone),
			} {
				if !strings.Contains(msg, want) {
					t.Errorf("stderr does not contain %q:\n%s", want, msg)
				}
			}
			t.Log(msg)
			if tc.before && linesWhenWarned != 3 {
				t.Errorf("the file had %d lines when the warning came; want 3 (said before measuring)", linesWhenWarned)
			}
			seen, reports := domainCounts(t, out)
			if len(reports) != 1 {
				t.Errorf("report IDs %v; a resumed run continues the file's report", reports)
			}
			for d, n := range seen {
				if n != 1 {
					t.Errorf("%s appears %d times; want once", d, n)
				}
			}
			if got := len(seen); got != 3+tc.fresh {
				t.Errorf("%d domains in the file; want %d", got, 3+tc.fresh)
			}
		})
	}
}

// portOf returns the --port value of a run's arguments.
func portOf(t *testing.T, args []string) string {
	t.Helper()
	for i, a := range args {
		if a == "--port" && i+1 < len(args) {
			return args[i+1]
		}
	}
	t.Fatal("no --port in the lab's arguments")
	return ""
}
