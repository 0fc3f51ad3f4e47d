package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"kzprobe/lab"
)

// The terminal of `kzprobe run`, seen as a person sees it: the real binary
// on a pseudo-terminal of a given width (util-linux script), its output
// replayed on a screen of that width (vt_test.go).

// terminalLab starts a small lab (no blackhole: it runs in a second) with
// an interception, an expired intermediate, a clean site, a reset, a
// lying resolver and a long name, and returns the `kzprobe run` flags for
// it, the domains, and a folder for outputs.
func terminalLab(t *testing.T) (args, domains []string, dir string) {
	t.Helper()
	sc := lab.Scenario{Name: "terminal", Sites: []lab.Site{
		{Domain: "regnum.ru", TLS: lab.InterceptISCA},
		{Domain: "knews.kg", TLS: lab.InterceptISCAExpired},
		{Domain: "a-rather-long-subdomain-for-the-domain-column.example", TLS: lab.InterceptISCA},
		{Domain: "clean.example"},
		{Domain: "tls-reset.example", TLS: lab.Reset},
		{Domain: "dns-bogon.example", DNS: lab.DNSBogon},
	}}
	l, err := lab.Start(lab.Config{Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	dir = t.TempDir()
	files, err := l.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sc.Sites {
		domains = append(domains, s.Domain)
	}
	return strings.Fields(labCommandLine(labConfig(l, files, dir)))[2:], domains, dir
}

// runInPTY runs the binary with args on a terminal of cols columns, with
// env added to the environment (NO_COLOR removed unless env sets it), and
// returns what it wrote on the terminal.
func runInPTY(t *testing.T, cols int, env []string, args ...string) []byte {
	t.Helper()
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("util-linux script is needed to run kzprobe on a pseudo-terminal")
	}
	words := append([]string{kzprobeBinary(t)}, args...)
	shell := "stty cols " + strconv.Itoa(cols) + " rows 50 && exec " + shellJoin(words...)
	cmd := exec.Command(script, "-q", "-e", "-c", shell, "/dev/null")
	cmd.Env = append(withoutEnv("NO_COLOR", "TERM"), append([]string{"TERM=xterm-256color"}, env...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatal(err)
		}
		t.Fatalf("kzprobe %s: %v\n%s", strings.Join(args, " "), err, out.Bytes())
	}
	return out.Bytes()
}

// withoutEnv is the environment without the named variables.
func withoutEnv(names ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || k == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// progressLines finds every progress line drawn in raw terminal output:
// the text after each carriage return that starts with "[".
func progressLines(raw []byte) []string {
	var out []string
	for _, part := range strings.Split(string(raw), "\r") {
		part = strings.TrimPrefix(part, "\x1b[K")
		if strings.HasPrefix(part, "[") {
			line, _, _ := strings.Cut(part, "\x1b")
			out = append(out, line)
		}
	}
	return out
}

// TestRunTerminalFitsWidth runs kzprobe on terminals of 80 and 200
// columns: no line is wider than the terminal (the table, the result
// lines, the progress line, which leaves no stale copy), each target gets
// its line as it finishes with its verdict coloured, the progress line
// knows the total of a -d list and shows the time elapsed, and the root's
// name is written once, in the table's legend, never in REASON.
func TestRunTerminalFitsWidth(t *testing.T) {
	clearEnv(t)
	args, domains, dir := terminalLab(t)
	for _, cols := range []int{80, 200} {
		t.Run(strconv.Itoa(cols), func(t *testing.T) {
			out := filepath.Join(dir, "fit-"+strconv.Itoa(cols)+".jsonl")
			raw := runInPTY(t, cols, nil, append([]string{"run", "-o", out, "--asn", "AS9198", "--cc", "KZ"}, args...)...)
			scr := newScreen(cols)
			scr.write(raw)
			text := scr.text()
			if scr.wraps > 0 {
				t.Errorf("%d lines wider than %d columns, e.g. %q\n%s", scr.wraps, cols, scr.wrapped[0], text)
			}
			if strings.Contains(text, "/6]") {
				t.Errorf("a progress line is left on the screen:\n%s", text)
			}
			for _, d := range domains {
				if !regexp.MustCompile(`(?m)^[a-z_]+ +` + regexp.QuoteMeta(d) + `(:\d+)?  `).MatchString(text) {
					t.Errorf("no result line for %s:\n%s", d, text)
				}
			}
			if scr.sgr == 0 {
				t.Errorf("no colour on a terminal")
			}
			if n := strings.Count(text, "Information Security Certification Authority"); n != 1 {
				t.Errorf("the root's name is written %d times; want once, in the legend:\n%s", n, text)
			}
			for _, want := range []string{"kzprobe: measuring 6 targets", "DOMAIN", "6 targets: mitm_isca 3"} {
				if !strings.Contains(text, want) {
					t.Errorf("no %q on the screen:\n%s", want, text)
				}
			}
			progress := progressLines(raw)
			if len(progress) == 0 {
				t.Fatalf("no progress line drawn:\n%q", raw)
			}
			for _, p := range progress {
				if !regexp.MustCompile(`^\[\d+/6\] elapsed \d+:\d\d`).MatchString(p) {
					t.Errorf("progress line %q; want [N/6] (the total of the -d list) and the time elapsed", p)
				}
			}
		})
	}
}

// TestRunTerminalColorAndQuiet: NO_COLOR and --no-color turn the colours
// off; -q prints the summary only (no start line, no result lines, no
// progress).
func TestRunTerminalColorAndQuiet(t *testing.T) {
	clearEnv(t)
	args, domains, dir := terminalLab(t)
	cases := []struct {
		name  string
		env   []string
		flags []string
	}{
		{"NO_COLOR", []string{"NO_COLOR=1"}, nil},
		{"no-color", nil, []string{"--no-color"}},
		{"quiet", nil, []string{"-q"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, strconv.Itoa(i)+".jsonl")
			raw := runInPTY(t, 120, tc.env, append(append([]string{"run", "-o", out}, tc.flags...), args...)...)
			scr := newScreen(120)
			scr.write(raw)
			text := scr.text()
			quiet := tc.name == "quiet"
			if colored := scr.sgr > 0; colored != quiet {
				t.Errorf("colour sequences: %d", scr.sgr)
			}
			if !strings.Contains(text, "6 targets: ") || !strings.Contains(text, "DOMAIN") {
				t.Errorf("no summary:\n%s", text)
			}
			lineFor := regexp.MustCompile(`(?m)^[a-z_]+ +` + regexp.QuoteMeta(domains[0]) + `(:\d+)?  `)
			if quiet {
				if lineFor.MatchString(text) || strings.Contains(text, "measuring") || len(progressLines(raw)) > 0 {
					t.Errorf("-q printed more than the summary:\n%s", text)
				}
			} else if !lineFor.MatchString(text) || !strings.Contains(text, "measuring") {
				t.Errorf("no result line or start line:\n%s", text)
			}
		})
	}
}

// TestRunPipeWholeLines: on pipes nothing is cut, coloured or redrawn:
// every result line and table row is whole, and stderr has no progress.
func TestRunPipeWholeLines(t *testing.T) {
	clearEnv(t)
	args, _, dir := terminalLab(t)
	out := filepath.Join(dir, "pipe.jsonl")
	cmd := exec.Command(kzprobeBinary(t), append([]string{"run", "-o", out}, args...)...)
	cmd.Env = append(withoutEnv("NO_COLOR"), "TERM=xterm-256color")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.Bytes())
	}
	for name, b := range map[string][]byte{"stdout": stdout.Bytes(), "stderr": stderr.Bytes()} {
		if bytes.ContainsAny(b, "\x1b\r") || bytes.Contains(b, []byte(ellipsis)) {
			t.Errorf("%s has escapes, carriage returns or cut lines:\n%s", name, b)
		}
	}
	recs, err := readVerdicts(out)
	if err != nil || len(recs) != 6 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	// The reasons whole: the reset's is the longest without a root.
	if !strings.Contains(stdout.String(), "TCP connected but every TLS handshake failed (connection_reset); control saw a trusted chain at the same address\n") {
		t.Errorf("a reason is not whole on the pipe:\n%s", stdout.String())
	}
}

// TestRunVerbose: -v logs each step of each target on stderr, from the
// DNS queries to the rule that decided.
func TestRunVerbose(t *testing.T) {
	clearEnv(t)
	args, _, dir := terminalLab(t)
	cmd := exec.Command(kzprobeBinary(t), append([]string{"run", "-v", "-o", filepath.Join(dir, "v.jsonl")}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.Bytes())
	}
	for _, want := range []string{
		`(?m)^kzprobe: debug: regnum\.ru(:\d+)?: \d+ ms: dns local A regnum\.ru via 127\.[0-9.]+:\d+ \(udp\): 127\.[0-9.]+ in \d+ ms$`,
		`(?m)^kzprobe: debug: regnum\.ru(:\d+)?: \d+ ms: dns control A regnum\.ru via https://127\.[0-9.:]+/dns-query \(doh\): 127\.[0-9.]+ in \d+ ms$`,
		`(?m)^kzprobe: debug: regnum\.ru(:\d+)?: \d+ ms: dns consistency: consistent \(intersection\)`,
		`(?m)^kzprobe: debug: regnum\.ru(:\d+)?: \d+ ms: connect 127\.[0-9.]+:\d+: connected in \d+ ms$`,
		`(?m)^kzprobe: debug: regnum\.ru(:\d+)?: \d+ ms: handshake 127\.[0-9.]+:\d+ sni=regnum\.ru fingerprint=chrome: TLSv1\.3, \d certificates in \d+ ms$`,
		`(?m)^kzprobe: debug: regnum\.ru(:\d+)?: \d+ ms: chain at 127\.[0-9.]+:\d+: untrusted \(ssl_unknown_authority\); leads to Information Security Certification Authority \[[0-9a-f]{8}\] \(evidence: signature\)$`,
		`(?m)^kzprobe: debug: regnum\.ru(:\d+)?: \d+ ms: control server https://127\.[0-9.:]+: answered about 1 address in \d+ ms$`,
		`(?m)^kzprobe: debug: regnum\.ru(:\d+)?: \d+ ms: judgement by rule interception: mitm_isca: chain leads to`,
		`(?m)^kzprobe: debug: regnum\.ru(:\d+)?: \d+ ms: dns local A regnum\.ru via 127\.[0-9.]+:\d+ \(udp\): started$`,
		`(?m)^kzprobe: debug: regnum\.ru(:\d+)?: \d+ ms: connect 127\.[0-9.]+:\d+: started$`,
		`(?m)^kzprobe: debug: regnum\.ru(:\d+)?: \d+ ms: handshake 127\.[0-9.]+:\d+ sni=regnum\.ru fingerprint=chrome: started$`,
		`(?m)^kzprobe: debug: regnum\.ru(:\d+)?: \d+ ms: control server: asking about 1 address \(127\.[0-9.]+\)$`,
		`(?m)^kzprobe: debug: tls-reset\.example(:\d+)?: \d+ ms: handshake .* fingerprint=chrome: failed: connection_reset in \d+ ms$`,
	} {
		if !regexp.MustCompile(want).Match(stderr.Bytes()) {
			t.Errorf("no line matching %s in:\n%s", want, stderr.Bytes())
		}
	}
}
