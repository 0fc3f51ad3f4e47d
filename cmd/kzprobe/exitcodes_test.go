package main

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"kzprobe/lab"
)

// TestExitCodes runs the real binary, for every command, on a usage error
// (exit 2), a runtime failure (exit 1) and work done (exit 0), and checks
// the one scheme that kzprobe --help and README state (exitCodesHelp).
// Before, cobra's own errors (an unknown flag or command, a wrong number
// of arguments, a flag value it cannot parse) exited 1 where kzprobe's own
// usage errors exited 2, an output folder that does not exist was 1 for
// run and 2 for analyze, and an input holding nothing to work on was 2 for
// run and 1 for analyze.
func TestExitCodes(t *testing.T) {
	clearEnv(t)
	t.Setenv("KZPROBE_NETWORK_ALLOW", "127.0.0.0/8,::1/128")
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	noFolder := filepath.Join(dir, "no-such-folder", "out")
	comments := write("comments.txt", "# nothing to measure\n")
	badKey := write("bad.yaml", "tls:\n  timout: 5s\n")
	lines := write("one.jsonl", `{"report_id":"r","measurement_uid":"u1234567"}`+"\n")
	wrongExpect := write("wrong.yaml", "sites:\n  - domain: clean.example\n    tls: pass\n    expect: mitm_isca\n")
	closed := closedTCP(t)
	inUse, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inUse.Close()

	// A measurement file to read, from a real run against the lab.
	_, labArgs := startLabRun(t, lab.Scenario{Name: "exit", Sites: []lab.Site{
		{Domain: "clean.example", TLS: lab.Pass}, {Domain: "isca.example", TLS: lab.InterceptISCA}}})
	measured := filepath.Join(dir, "m.jsonl")
	unanswered := []string{"run", "-q", "-d", "x.example", "--resolver", closed, "--control", "udp://" + closed,
		"--dns-timeout", "300ms", "-o", filepath.Join(dir, "unanswered.jsonl")}

	tests := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		// kzprobe itself.
		{"root: unknown command", []string{"rn"}, exitUsage, `unknown command "rn" for "kzprobe" (did you mean run?)`},
		{"root: unknown flag", []string{"--nope"}, exitUsage, "unknown flag --nope"},
		{"root: help", []string{"--help"}, exitOK, ""},
		{"help: a command", []string{"help", "run"}, exitOK, ""},
		{"help: unknown topic", []string{"help", "nope"}, exitUsage, `unknown help topic "nope"`},
		{"help: misspelt command", []string{"help", "anlyze"}, exitUsage, `unknown help topic "anlyze" (did you mean analyze?)`},
		{"help: unknown subcommand", []string{"help", "control", "nope"}, exitUsage, `unknown help topic "nope"`},
		{"version: extra argument", []string{"version", "extra"}, exitUsage, `unknown command "extra" for "kzprobe version"`},
		{"version", []string{"version"}, exitOK, ""},
		{"completion: unknown shell", []string{"completion", "nope"}, exitUsage, `unknown command "nope"`},

		// run.
		{"run: unknown flag", []string{"run", "--nope"}, exitUsage, "unknown flag --nope"},
		{"run: extra argument", []string{"run", "extra"}, exitUsage, `unknown command "extra" for "kzprobe run"`},
		{"run: duration flag without a unit", []string{"run", "--timeout", "10"}, exitUsage, `--timeout "10": not a duration`},
		{"run: bad value", []string{"run", "--parallel", "0"}, exitUsage, "run.parallel"},
		{"run: unknown key in the file", []string{"run", "-c", badKey}, exitUsage, `did you mean "tls.timeout"`},
		{"run: missing target list", []string{"run", "-i", filepath.Join(dir, "nope.txt")}, exitUsage, "nope.txt"},
		{"run: output folder missing", []string{"run", "-d", "x.example", "-o", noFolder}, exitUsage, "does not exist"},
		{"run: --fail-on not a verdict", []string{"run", "--fail-on", "mitm"}, exitUsage, `"mitm" is not a verdict`},
		{"run: target list with nothing to measure", []string{"run", "-q", "-i", comments, "-o", filepath.Join(dir, "c.jsonl")}, exitFailure, "no target was measured"},
		{"run: no control resolver answered", unanswered, exitFailure, "1 of 1 targets failed for a local reason"},
		{"run: disk full", []string{"run", "-q", "-d", "x.example", "--resolver", closed, "--control", "udp://" + closed, "-o", "/dev/full"}, exitFailure, "no space left on device"},
		{"run: done", append(slices.Clone(labArgs), "-o", measured), exitOK, ""},
		{"run: --fail-on found", append(slices.Clone(labArgs), "-o", filepath.Join(dir, "f.jsonl"), "--fail-on", "mitm_isca"), exitFailOn, "1 of 2 targets got a verdict of --fail-on (mitm_isca 1)"},

		// trace.
		{"trace: nothing to trace", []string{"trace"}, exitUsage, "nothing to trace"},
		{"trace: --to without --sni", []string{"trace", "--to", "127.0.0.1"}, exitUsage, "--to 127.0.0.1 needs --sni"},
		{"trace: an address as TARGET", []string{"trace", "127.0.0.1"}, exitUsage, "give --sni NAME --to 127.0.0.1"},
		{"trace: bad --max-hops", []string{"trace", "x.example", "--max-hops", "0"}, exitUsage, "--max-hops 0"},
		{"trace: bad --to", []string{"trace", "--sni", "x.example", "--to", "nope", "-o", filepath.Join(dir, "t0.jsonl")}, exitUsage, `--to "nope"`},

		// lab.
		{"lab: unknown flag", []string{"lab", "--nope"}, exitUsage, "unknown flag"},
		{"lab: missing scenario", []string{"lab", "--scenario", filepath.Join(dir, "nope.yaml")}, exitUsage, "nope.yaml"},
		{"lab: output folder missing", []string{"lab", "-q", "--dir", filepath.Join(dir, "lab-out"), "-o", noFolder}, exitUsage, "does not exist"},
		{"lab: verdicts differ from the scenario", []string{"lab", "-q", "--dir", filepath.Join(dir, "lab-wrong"), "--scenario", wrongExpect}, exitFailure, "1 of 1 lab verdicts differ"},

		// The reading commands.
		{"analyze: no argument", []string{"analyze"}, exitUsage, "no input: name files or folders to read, or --clickhouse URL"},
		{"analyze: missing input", []string{"analyze", filepath.Join(dir, "nope.jsonl")}, exitUsage, "nope.jsonl"},
		{"analyze: bad --format", []string{"analyze", "--format", "xml", measured}, exitUsage, `--format "xml"`},
		{"analyze: output folder missing", []string{"analyze", measured, "-o", noFolder}, exitUsage, "does not exist"},
		{"analyze: nothing read", []string{"analyze", empty}, exitFailure, "no measurement"},
		{"analyze: done", []string{"analyze", measured}, exitOK, ""},
		{"compare: no argument", []string{"compare"}, exitUsage, "no input: name files or folders to read, or --clickhouse URL"},
		{"compare: unknown flag", []string{"compare", "--nope", measured}, exitUsage, "unknown flag"},
		{"compare: nothing read", []string{"compare", empty}, exitFailure, "no measurement"},
		{"compare: done", []string{"compare", measured}, exitOK, ""},
		{"timeline: wrong output type", []string{"timeline", measured, "-o", filepath.Join(dir, "t.gif")}, exitUsage, ".svg or .png"},
		{"timeline: nothing read", []string{"timeline", empty, "-o", filepath.Join(dir, "t.svg")}, exitFailure, "no measurement"},
		{"timeline: done", []string{"timeline", measured, "-o", filepath.Join(dir, "t.svg")}, exitOK, ""},
		{"report: output is an input", []string{"report", measured, "-o", measured}, exitUsage, "would destroy its measurements"},
		{"report: nothing read", []string{"report", empty, "-o", filepath.Join(dir, "r.html")}, exitFailure, "no measurement"},
		{"report: done", []string{"report", measured, "-o", filepath.Join(dir, "r.html")}, exitOK, ""},

		// bench.
		{"bench: bad value", []string{"bench", "--n", "0"}, exitUsage, "must be positive"},
		{"bench: unknown scenario", []string{"bench", "--scenario", "rush"}, exitUsage, "rush"},
		{"bench: profile folder missing", []string{"bench", "--n", "5", "--cpuprofile", noFolder}, exitUsage, "does not exist"},
		{"bench: the run cannot write", []string{"bench", "--n", "5", "--parallel", "1", "--rtt", "0", "--baseline-ops", "1", "-o", "/dev/full"}, exitFailure, "no space left on device"},

		// control.
		{"control: no subcommand", []string{"control"}, exitUsage, "say what to do"},
		{"control: unknown subcommand", []string{"control", "nope"}, exitUsage, `unknown command "nope" for "kzprobe control"`},
		{"control serve: no certificate", []string{"control", "serve"}, exitUsage, "--tls-cert and --tls-key are required"},
		{"control serve: bad --listen", []string{"control", "serve", "--insecure-http", "--listen", "localhost:80"}, exitUsage, "IP literal"},
		{"control serve: address in use", []string{"control", "serve", "--insecure-http", "--listen", inUse.Addr().String()}, exitFailure, "address already in use"},

		// collector and submit.
		{"collector: no subcommand", []string{"collector"}, exitUsage, "say what to do"},
		{"collector serve: no store", []string{"collector", "serve"}, exitUsage, "--store DIR is required"},
		{"collector serve: bad --listen", []string{"collector", "serve", "--store", empty, "--listen", "localhost:80"}, exitUsage, "IP literal"},
		{"collector serve: one of cert and key", []string{"collector", "serve", "--store", empty, "--tls-cert", comments}, exitUsage, "give both --tls-cert and --tls-key"},
		{"collector serve: address in use", []string{"collector", "serve", "--store", empty, "--listen", inUse.Addr().String()}, exitFailure, "address already in use"},
		{"submit: no collector", []string{"submit", comments}, exitUsage, "--submit URL is required"},
		{"submit: no file", []string{"submit", filepath.Join(dir, "nope.jsonl"), "--submit", "https://127.0.0.1:1"}, exitUsage, "nope.jsonl"},
		{"submit: a name, not an IP", []string{"submit", comments, "--submit", "https://collector.example:8443"}, exitUsage, "IP literal"},
		{"submit: collector down", []string{"submit", lines, "--submit", "https://127.0.0.1:1", "--submit-pin", "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "--wait", "1s"}, exitFailure, "kzprobe submit again"},
		{"submit: nothing to send", []string{"submit", comments, "--submit", "https://127.0.0.1:1", "--submit-pin", "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "--wait", "1s"}, exitOK, "0 records submitted"},
		{"run: --submit with -o -", []string{"run", "-d", "x.example", "-o", "-", "--submit", "https://127.0.0.1:1"}, exitUsage, "needs an output file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runWrapped(t, nil, 90*time.Second, tc.args...)
			if r.code != tc.code {
				t.Errorf("kzprobe %s: exit code %d; want %d\n%s", strings.Join(tc.args, " "), r.code, tc.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, r.stderr)
			}
		})
	}
}
