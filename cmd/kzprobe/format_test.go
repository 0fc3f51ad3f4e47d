package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kzprobe/measurement"
)

// TestReadFormat010 reads records written before the record format moved
// to OONI's own shapes: testdata/format-0.1.0/lab.jsonl is the output of
// `kzprobe lab` at test_version 0.1.0 (one record of each verdict, and the
// records with two handshakes, a small-hello retry and an expired
// intermediate), written byte for byte, with the lab's ISCA root beside it.
// analyze.json and compare.json are what `kzprobe analyze` and `kzprobe
// compare` printed for it then; reading the file today must give the same
// tables. (One change is the summary's, not the format's: the lab's
// records name no AS number, so since only labelled networks count they
// are 0 networks and 11 unlabelled measurements, where analyze.json said
// 1 network.)
//
// The same records read and written again by today's measurement package
// (format 0.2.0: the finding is in its chain, interception_chain names it)
// must give those tables too.
func TestReadFormat010(t *testing.T) {
	clearEnv(t)
	golden, err := filepath.Abs("testdata/format-0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	rewritten := t.TempDir()
	rewrite(t, filepath.Join(golden, "lab.jsonl"), filepath.Join(rewritten, "lab.jsonl"))
	for _, tc := range []struct{ name, dir string }{{"as_written", golden}, {"rewritten", rewritten}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(tc.dir)
			checkFormat010(t, filepath.Join(golden, "isca-root.pem"), golden)
		})
	}
}

// rewrite reads the records of src and writes them to dst as today's
// Writer does, checking that each is in format 0.2.0.
func rewrite(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var out bytes.Buffer
	w := measurement.NewWriter(&out, -1)
	st, err := measurement.ReadJSONL(in, func(m *measurement.Measurement) error {
		if m.TestVersion != "0.1.0" {
			t.Fatalf("%s: test_version %s; want a record of format 0.1.0", m.Input, m.TestVersion)
		}
		return w.Write(m)
	})
	if err != nil || st.Bad > 0 {
		t.Fatalf("reading %s: %v (%d bad lines)", src, err, st.Bad)
	}
	intercepted := 0
	for _, line := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		var rec struct {
			TestKeys map[string]json.RawMessage `json:"test_keys"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		if _, ok := rec.TestKeys["interception"]; ok {
			t.Fatalf("rewritten record has test_keys.interception: %.200s", line)
		}
		if string(rec.TestKeys["interception_chain"]) != "null" {
			intercepted++
		}
	}
	if intercepted != 4 {
		t.Fatalf("%d rewritten records name an interception chain; want the 4 intercepted ones", intercepted)
	}
	if err := os.WriteFile(dst, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkFormat010 runs analyze and compare on lab.jsonl in the working
// folder and compares their output with the goldens in golden.
func checkFormat010(t *testing.T, root, golden string) {
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"analyze.json", []string{"analyze", "lab.jsonl", "--interception-roots", root, "--format", "json"}},
		{"compare.json", []string{"compare", "lab.jsonl", "--interception-roots", root, "--format", "json"}},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			out, stderr, code := kzprobe(t, tc.args...)
			if code != exitOK {
				t.Fatalf("kzprobe %v: exit %d: %s", tc.args, code, stderr)
			}
			want, err := os.ReadFile(filepath.Join(golden, tc.golden))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(string(want), out); d != "" {
				t.Errorf("kzprobe %v differs from %s, its output at format 0.1.0 (-want +got):\n%s", tc.args, tc.golden, d)
			}
		})
	}
}
