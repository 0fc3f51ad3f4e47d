package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// udpSink is a UDP listener on loopback that counts what it receives and
// never answers: a resolver that proves whether anything was sent.
type udpSink struct {
	addr string
	n    atomic.Int32
}

func startUDPSink(t *testing.T) *udpSink {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &udpSink{addr: pc.LocalAddr().String()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			s.n.Add(1)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return s
}

// runBinary runs the real kzprobe and returns its exit code and stderr.
func runBinary(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(kzprobeBinary(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Dir = t.TempDir()
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), stderr.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, stderr.String()
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("kzprobe %s: still running after 60s", strings.Join(args, " "))
		return 0, ""
	}
}

// TestBadInputNamesTheProblem runs the real binary on bad input (targets,
// config, flags, scenarios) and checks that each error names the file, field
// or flag and what to do, with the usage or failure exit code, before
// anything is sent to the network.
func TestBadInputNamesTheProblem(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sink := startUDPSink(t)
	base := []string{"run", "-q", "--resolver", sink.addr, "--control", "udp://" + sink.addr,
		"--allow-net", "127.0.0.0/8", "--dns-timeout", "300ms", "--timeout", "300ms"}
	out := filepath.Join(dir, "out.jsonl")
	missing := filepath.Join(dir, "missing.txt")
	empty := write("empty.txt", "# nothing to measure\n\n")
	tests := []struct {
		name string
		args []string
		code int
		want []string // substrings of stderr
	}{
		{"missing target list", []string{"-i", missing, "-o", out}, exitUsage, []string{missing, "does not exist", "check the path"}},
		{"target list is a folder", []string{"-i", dir, "-o", out}, exitUsage, []string{dir, "is a directory"}},
		{"empty target list", []string{"-i", empty, "-o", out}, exitFailure, []string{"target list is empty"}},
		{"invalid domain", []string{"-d", "bad name!", "-o", out}, exitUsage, []string{"-d/--domain", "bad name!"}},
		{"invalid config value", []string{"-d", "x.example", "-o", out, "--parallel", "0"}, exitUsage, []string{"--parallel", "run.parallel", "1-10000"}},
		{"missing trust roots", []string{"-d", "x.example", "-o", out, "--trust-roots", filepath.Join(dir, "roots.pem")}, exitUsage, []string{"tls.trust_roots", "roots.pem"}},
		{"unwritable output", []string{"-d", "x.example", "-o", filepath.Join(dir, "no-such-folder", "out.jsonl")}, exitUsage, []string{"no-such-folder/out.jsonl", "does not exist", "choose another path"}},
	}
	if os.Geteuid() != 0 { // root reads anything
		locked := write("locked.txt", "x.example\n")
		os.Chmod(locked, 0)
		tests = append(tests, struct {
			name string
			args []string
			code int
			want []string
		}{"unreadable target list", []string{"-i", locked, "-o", out}, exitUsage, []string{locked}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := sink.n.Load()
			code, stderr := runBinary(t, append(base, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit code %d; want %d\n%s", code, tc.code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
			if n := sink.n.Load() - before; n != 0 {
				t.Errorf("%d DNS queries sent; want none before the input is checked", n)
			}
		})
	}
}

// TestDiskFullStopsTheRun writes the output to /dev/full, where every
// write fails with ENOSPC: the run must stop with an error naming the file
// and the cause, and a failure exit code.
func TestDiskFullStopsTheRun(t *testing.T) {
	clearEnv(t)
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skipf("no /dev/full here: %v", err)
	}
	sink := startUDPSink(t)
	code, stderr := runBinary(t, "run", "-q", "--resolver", sink.addr, "--control", "udp://"+sink.addr,
		"--allow-net", "127.0.0.0/8", "--dns-timeout", "300ms", "--timeout", "300ms",
		"-d", "a.example", "-d", "b.example", "-o", "/dev/full")
	if code != exitFailure {
		t.Errorf("exit code %d; want %d\n%s", code, exitFailure, stderr)
	}
	for _, w := range []string{"/dev/full", "no space left on device", "0 measurements written"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr does not contain %q:\n%s", w, stderr)
		}
	}
}
