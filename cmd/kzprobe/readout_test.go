package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kzprobe/analysis"
)

// measurementLine is one kzprobe record, enough for every reading command.
const measurementLine = `{"input":"b.example","measurement_start_time":"2024-01-03 00:00:00","probe_asn":"AS9198","probe_network_name":"Net","test_name":"kzprobe_tls_mitm","test_keys":{"domain":"b.example","verdict":"ok","tls_handshakes":[]}}` + "\n"

// ooniLine is one OONI record: no kzprobe verdict.
const ooniLine = `{"input":"https://a.example/","measurement_start_time":"2024-01-02 03:04:05","probe_asn":"AS9198","test_name":"web_connectivity","test_keys":{"tls_handshakes":[]}}` + "\n"

// TestReadCommandsRefuseOutputThatIsAnInput: -o naming one of the inputs,
// as named, through a link, or found in a walked folder, is refused with
// the usage exit code, and the input is left whole (analyze x.jsonl -o
// x.jsonl truncated it before reading).
func TestReadCommandsRefuseOutputThatIsAnInput(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "m.jsonl")
	body := strings.Repeat(measurementLine, 3)
	if err := os.WriteFile(in, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link.svg")
	if err := os.Symlink(in, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"analyze", []string{"analyze", in, "-o", in}},
		{"analyze_folder", []string{"analyze", dir, "-o", in}},
		{"analyze_link", []string{"analyze", in, "--format", "csv", "-o", link}},
		{"compare", []string{"compare", in, "-o", in}},
		{"report", []string{"report", dir, "-o", in}},
		{"timeline_link", []string{"timeline", in, "-o", link}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := kzprobe(t, tc.args...)
			if code != exitUsage || !strings.Contains(stderr, "would destroy its measurements") {
				t.Errorf("exit %d, stderr %q; want exit %d refusing the output", code, stderr, exitUsage)
			}
			if got, _ := os.ReadFile(in); string(got) != body {
				t.Fatalf("the input now holds %d bytes; want its %d", len(got), len(body))
			}
		})
	}
}

// TestReadCommandsOutputReplacedWhole: the output is written through a
// temporary file renamed at the end. A run that fails leaves the previous
// output as it was and no temporary file; one that succeeds replaces it,
// keeping its mode, and writes through a link to the file it names.
func TestReadCommandsOutputReplacedWhole(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	in := filepath.Join(t.TempDir(), "m.jsonl")
	if err := os.WriteFile(in, []byte(measurementLine), 0o644); err != nil {
		t.Fatal(err)
	}
	notMeasurements := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notMeasurements, []byte("# not measurements\n"), 0o644)
	out := filepath.Join(dir, "tables.txt")
	old := "the previous tables\n"
	if err := os.WriteFile(out, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	listing := func() []string {
		es, _ := os.ReadDir(dir)
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return names
	}

	// A failed run: the old file is left whole, no temporary file stays.
	if _, stderr, code := kzprobe(t, "analyze", notMeasurements, "-o", out); code == exitOK {
		t.Fatalf("analyze of no measurement: exit 0; want a failure\n%s", stderr)
	}
	if got, _ := os.ReadFile(out); string(got) != old {
		t.Errorf("after a failed run the output holds %q; want the previous %q", got, old)
	}
	if names := listing(); len(names) != 1 {
		t.Errorf("folder holds %v; want only tables.txt", names)
	}

	// A run that succeeds replaces it, with its mode.
	if _, stderr, code := kzprobe(t, "analyze", in, "-o", out); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got, _ := os.ReadFile(out)
	if !bytes.Contains(got, []byte("Summary")) {
		t.Errorf("output %q; want the tables", got)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("output mode %v, %v; want 0600 kept", fi.Mode(), err)
	}
	if names := listing(); len(names) != 1 {
		t.Errorf("folder holds %v; want only tables.txt", names)
	}

	// Through a link: the file it names is replaced, the link stays.
	link := filepath.Join(t.TempDir(), "link.txt")
	os.Symlink(out, link)
	os.WriteFile(out, []byte(old), 0o600)
	if _, stderr, code := kzprobe(t, "analyze", in, "--format", "csv", "-o", link); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v, %v", fi.Mode(), err)
	}
	if got, _ := os.ReadFile(out); !bytes.HasPrefix(got, []byte("summary\n")) {
		t.Errorf("the linked file holds %q; want the CSV", got)
	}

	// A device is written directly, not replaced.
	if _, err := os.Stat(os.DevNull); err == nil {
		if _, stderr, code := kzprobe(t, "analyze", in, "-o", os.DevNull); code != exitOK {
			t.Errorf("-o %s: exit %d: %s", os.DevNull, code, stderr)
		}
		if fi, err := os.Stat(os.DevNull); err != nil || fi.Mode().IsRegular() {
			t.Fatalf("%s is now a regular file", os.DevNull)
		}
	}
}

// TestReadCommandsNoMeasurementIsAnError: reading commands on an empty
// folder, on a file that holds no measurement, or (compare) on only OONI
// records exit 1 with one line saying so, and write no output (they
// succeeded with empty tables, or 199 warnings and exit 0).
func TestReadCommandsNoMeasurementIsAnError(t *testing.T) {
	clearEnv(t)
	empty := t.TempDir()
	readme := filepath.Join(t.TempDir(), "README.md")
	os.WriteFile(readme, []byte("# kzprobe\n\nkzprobe finds TLS interception.\n"), 0o644)
	ooni := filepath.Join(t.TempDir(), "ooni.jsonl")
	os.WriteFile(ooni, []byte(ooniLine), 0o644)
	outDir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"analyze_empty_folder", []string{"analyze", empty}, "no measurement read: no measurement file in " + empty},
		{"timeline_empty_folder", []string{"timeline", empty, "-o", filepath.Join(outDir, "x.png")}, "no measurement read: no measurement file"},
		{"report_empty_folder", []string{"report", empty, "-o", filepath.Join(outDir, "r.html")}, "no measurement read"},
		{"analyze_readme", []string{"analyze", readme}, "no measurement read: 1 file, 2 bad lines; first: " + readme + `:1: analysis: not a measurement object (starts with "# kzprobe")`},
		{"compare_readme", []string{"compare", readme}, "no measurement read: 1 file, 2 bad lines"},
		{"compare_only_ooni", []string{"compare", ooni}, "no kzprobe measurement to compare (1 without a kzprobe verdict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := kzprobe(t, tc.args...)
			if code != exitFailure {
				t.Errorf("exit %d; want %d", code, exitFailure)
			}
			if !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr %q; want one line containing %q", stderr, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q; want nothing", stdout)
			}
		})
	}
	if es, _ := os.ReadDir(outDir); len(es) != 0 {
		t.Errorf("output folder holds %d files; want none", len(es))
	}
	// --ooni makes the OONI record a measurement to compare.
	if _, stderr, code := kzprobe(t, "compare", "--ooni", ooni); code != exitOK {
		t.Errorf("compare --ooni: exit %d: %s", code, stderr)
	}
}

// TestAnalyzeReadsStdin: "-" reads standard input.
func TestAnalyzeReadsStdin(t *testing.T) {
	clearEnv(t)
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetArgs([]string{"analyze", "-", "--format", "csv", "--table", "summary"})
	root.SetIn(strings.NewReader(measurementLine + measurementLine))
	root.SetOut(&out)
	root.SetErr(&errb)
	if err := root.Execute(); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "measurements,2\n") {
		t.Errorf("summary %q; want 2 measurements read from stdin", out.String())
	}
}

// TestReadProgressFlag: --progress prints how far reading got on stderr
// (here not a terminal: a last line at the end); without it, and off a
// terminal, nothing; --progress=false stays quiet too.
func TestReadProgressFlag(t *testing.T) {
	clearEnv(t)
	in := filepath.Join(t.TempDir(), "m.jsonl")
	if err := os.WriteFile(in, []byte(strings.Repeat(measurementLine, 5)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"analyze", in, "--progress"}, "kzprobe: read 1/1 file: 0.0 MB, 5 measurements, 0 bad, "},
		{[]string{"compare", in, "--progress"}, "kzprobe: read 1/1 file"},
		{[]string{"analyze", in}, ""},
		{[]string{"analyze", in, "--progress=false"}, ""},
	} {
		_, stderr, code := kzprobe(t, tc.args...)
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr)
		}
		if tc.want == "" && stderr != "" || tc.want != "" && !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: stderr %q; want %q", tc.args, stderr, tc.want)
		}
	}
	p := analysis.Progress{FilesDone: 2, Files: 5, Bytes: 300 << 20, TotalBytes: 1200 << 20, Records: 1203455, Bad: 12}
	if line := progressText(p, 4*time.Second, false); line != "reading 2/5 files: 300.0 MB of 1200.0 MB (25%), 1203455 measurements, 12 bad, 300864/s" {
		t.Errorf("progress line %q", line)
	}
}

// TestReadCommandsEscapeControlCharacters: a network name, domain or file
// name holding terminal control sequences reaches the terminal escaped
// from analyze and compare, tables and errors alike.
func TestReadCommandsEscapeControlCharacters(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "m.jsonl")
	line := strings.NewReplacer(`"probe_network_name":"Net"`, `"probe_network_name":"Net\u001b]0;pwned\u0007\u001b[2J\u009b1m"`,
		`"domain":"b.example"`, `"domain":"b.example\u001b[1A"`).Replace(measurementLine)
	if err := os.WriteFile(in, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "notes\x1b[2J.txt")
	os.WriteFile(bad, []byte("not a measurement\n"), 0o644)
	for _, args := range [][]string{
		{"analyze", in},
		{"analyze", in, "--format", "markdown"},
		{"analyze", in, "--format", "csv"},
		{"compare", in},
		{"compare", in, "--format", "markdown"},
		{"compare", in, "--format", "csv"},
		{"analyze", bad},
	} {
		stdout, stderr, _ := kzprobe(t, args...)
		for _, out := range []string{stdout, stderr} {
			if strings.ContainsAny(out, "\x1b\x07\u009b") {
				t.Errorf("%v: output holds a control character:\n%q", args, out)
			}
		}
		if args[0] == "compare" && !strings.Contains(stdout, `x1b]0;pwned`) && !strings.Contains(stdout, `x1b\]0;pwned`) {
			t.Errorf("%v: the network name is not shown escaped:\n%s", args, stdout)
		}
	}
}
