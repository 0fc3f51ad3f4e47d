package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// runCLI runs a command line as main does and returns its exit code and
// the message it prints for an error. A run is confined to loopback and
// measures example.test into a temporary file, whatever else it is given,
// should it get past the error it is meant to stop at.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	if len(args) > 0 && args[0] == "run" {
		args = append([]string{"run", "--allow-net", "127.0.0.1/32", "-d", "example.test", "-o", filepath.Join(t.TempDir(), "m.jsonl")}, args[1:]...)
	}
	root := newRootCmd()
	var out bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.Execute()
	if err == nil {
		return exitOK, out.String()
	}
	return exitCode(err), "kzprobe: " + err.Error()
}

// goInternals are what a message for a person must not show.
var goInternals = []string{"strconv", "ParseInt", "ParseBool", "mapstructure", "'int'", "stat ", "open ", "invalid syntax", "kzprobe: kzprobe"}

func checkPlain(t *testing.T, msg string) {
	t.Helper()
	for _, g := range goInternals {
		if strings.Contains(msg, g) {
			t.Errorf("message shows %q: %s", g, msg)
		}
	}
}

// TestFlagErrors: an unknown flag gets "did you mean" as an unknown
// command does; a bad value says what the flag wants; both are usage
// errors (exit 2) and name the help.
func TestFlagErrors(t *testing.T) {
	clearEnv(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--paralel", "3"}, "kzprobe: unknown flag --paralel; did you mean --parallel? (see kzprobe run --help)"},
		{[]string{"run", "--fingerprints", "chrome"}, "unknown flag --fingerprints; did you mean --fingerprint?"},
		{[]string{"run", "-Q"}, "unknown flag -Q; did you mean -q?"},
		{[]string{"run", "--zzzzzz"}, "kzprobe: unknown flag --zzzzzz (see kzprobe run --help)"},
		{[]string{"lab", "--serv"}, "unknown flag --serv; did you mean --serve? (see kzprobe lab --help)"},
		{[]string{"analyze", "--formt", "json", "x.jsonl"}, "did you mean --format?"},
		{[]string{"control", "serve", "--tls-crt", "c.pem"}, "did you mean --tls-cert? (see kzprobe control serve --help)"},
		{[]string{"--verison"}, "did you mean --version?"},
		{[]string{"run", "--port", "abc"}, `kzprobe: --port "abc": not a whole number (see kzprobe run --help)`},
		{[]string{"run", "--timeout", "10"}, `--timeout "10": not a duration such as 10s, 500ms or 1m30s`},
		{[]string{"run", "--small-hello-retry=maybe"}, `--small-hello-retry "maybe": not true or false`},
		{[]string{"run", "--port"}, "--port needs a value"},
	}
	for _, tc := range cases {
		code, msg := runCLI(t, tc.args...)
		if code != exitUsage || !strings.Contains(msg, tc.want) {
			t.Errorf("kzprobe %s: exit %d, %q; want exit %d and %q", strings.Join(tc.args, " "), code, msg, exitUsage, tc.want)
		}
		checkPlain(t, msg)
	}
}

// TestMissingFilesPlain: a list, an input or a root file that is not
// there gets one plain message of the same shape in run and in the
// reading commands.
func TestMissingFilesPlain(t *testing.T) {
	clearEnv(t)
	missing := filepath.Join(t.TempDir(), "nope")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "-i", missing + ".txt"}, "kzprobe: target list " + missing + ".txt does not exist; check the path, or give - to read from stdin"},
		{[]string{"analyze", missing + ".jsonl"}, "kzprobe: input " + missing + ".jsonl does not exist; check the path, or give - to read from stdin"},
		{[]string{"report", missing + ".jsonl", "-o", filepath.Join(t.TempDir(), "r.html")}, "kzprobe: input " + missing + ".jsonl does not exist"},
		{[]string{"analyze", "--trust-roots", missing + ".pem", "-"}, "kzprobe: --trust-roots " + missing + ".pem does not exist; check the path"},
		{[]string{"analyze", "--interception-roots", missing + ".pem", "-"}, "kzprobe: --interception-roots " + missing + ".pem does not exist; check the path"},
		{[]string{"run", "--interception-roots", missing + ".pem"}, "interception.extra_roots: " + missing + ".pem does not exist"},
		{[]string{"control"}, "kzprobe: say what to do with the control server, e.g. kzprobe control serve"},
	}
	for _, tc := range cases {
		code, msg := runCLI(t, tc.args...)
		if code != exitUsage || !strings.Contains(msg, tc.want) {
			t.Errorf("kzprobe %s: exit %d, %q; want exit %d and %q", strings.Join(tc.args, " "), code, msg, exitUsage, tc.want)
		}
		checkPlain(t, msg)
	}
}

// TestConfigErrorsPlain: a value of the wrong kind is named with its key,
// where it came from and what it should be, never with Go's strconv
// message; a YAML syntax error names the line that is wrong, with its
// text.
func TestConfigErrorsPlain(t *testing.T) {
	clearEnv(t)
	cases := []struct {
		name, yaml string
		env        []string
		want       []string
	}{
		{"word for a number", "run:\n  parallel: abc\n", nil, []string{`c.yaml:2: key "run.parallel" is "abc", not a whole number`}},
		{"fraction", "run:\n  parallel: 3.5\n", nil, []string{`c.yaml:2: key "run.parallel" is 3.5, not a whole number`}},
		{"word for a boolean", "run:\n  quiet: maybe\n", nil, []string{`c.yaml:2: key "run.quiet" is "maybe", not true or false`}},
		{"list for a number", "targets:\n  port: [1, 2]\n", nil, []string{`c.yaml:2: key "targets.port" is a list, not a whole number`}},
		{"environment", "", []string{"KZPROBE_RUN_PARALLEL", "x"}, []string{`environment KZPROBE_RUN_PARALLEL: key "run.parallel" is "x", not a whole number`}},
		{"indented too far", "run:\n  parallel: 3\n tls:\n  timeout: 5s\n", nil, []string{`c.yaml:3: not valid YAML (did not find expected key): " tls:"`}},
		{"unclosed quote", "run:\n  parallel: 3\ntls:\n  timeout: \"5s\n  x: 1\n", nil, []string{`c.yaml:4: not valid YAML (found unexpected end of stream): "  timeout: \"5s"`}},
		{"tab", "run:\n\tparallel: 3\n", nil, []string{`c.yaml:2: not valid YAML (found character that cannot start any token)`}},
		{"unclosed list", "tls:\n  fingerprints: [chrome, firefox\nrun:\n  parallel: 2\n", nil, []string{`c.yaml:2: not valid YAML`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"run"}
			if tc.yaml != "" {
				p := filepath.Join(t.TempDir(), "c.yaml")
				if err := os.WriteFile(p, []byte(tc.yaml), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, "-c", p)
			}
			if tc.env != nil {
				t.Setenv(tc.env[0], tc.env[1])
			}
			code, msg := runCLI(t, args...)
			if code != exitUsage {
				t.Errorf("exit %d; want %d (%s)", code, exitUsage, msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q; want %q", msg, w)
				}
			}
			checkPlain(t, msg)
		})
	}
}

// TestCommandLines: a command printed for a terminal fits its width,
// broken between words with line continuations, and a real shell reads
// the lines back as the same words; on a pipe it is one whole line.
func TestCommandLines(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("PowerShell continuations are not read by sh")
	}
	long := "/home/volunteer/kzprobe-lab-20261204T195145Z/lab-measurements.jsonl"
	root := "/home/volunteer/kzprobe-lab-20261204T195145Z/lab-measurements-isca-root.pem"
	tests := []struct {
		name  string
		width int
		words []string
		lines int
	}{
		{"pipe keeps one line", 0, []string{"kzprobe", "analyze", long, "--interception-roots", root}, 1},
		{"short fits", 80, []string{"kzprobe", "run", "-c", "lab.yaml"}, 1},
		{"analyze at 80", 80, []string{"kzprobe", "analyze", long, "--interception-roots", root}, 4},
		{"report at 80", 80, []string{"kzprobe", "report", long, "--interception-roots", root, "-o", "/home/volunteer/report.html"}, 5},
		{"quoted words at 40", 40, []string{"kzprobe", "run", "-d", "it's here", "--network-name", "a b c", "-o", "out put.jsonl"}, 3},
		{"a word wider than the line", 20, []string{"kzprobe", "analyze", long}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := commandLines(tt.width, "  ", tt.words...)
			if len(lines) != tt.lines {
				t.Errorf("%d lines; want %d:\n%s", len(lines), tt.lines, strings.Join(lines, "\n"))
			}
			for _, l := range lines {
				if tt.width > 0 && textWidth(l) > tt.width && len(strings.Fields(l)) > 2 {
					t.Errorf("line of %d columns at width %d: %q", textWidth(l), tt.width, l)
				}
			}
			for i, l := range lines {
				if w := strings.Fields(l); i > 0 && len(w) > 0 && strings.HasPrefix(w[len(w)-1], "-") && w[len(w)-1] != `\` {
					t.Errorf("line %d ends in an option without its value: %q", i+1, l)
				}
			}
			script := "set -- " + strings.Join(lines, "\n") + "\nprintf '%s\\000' \"$@\""
			out, err := exec.Command("sh", "-c", script).Output()
			if err != nil {
				t.Fatalf("sh: %v\n%s", err, script)
			}
			got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
			if !slices.Equal(got, tt.words) {
				t.Errorf("the shell reads %q; want %q\n%s", got, tt.words, strings.Join(lines, "\n"))
			}
		})
	}
}
