package main

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReadFormat010 reads records written before the record format moved
// to OONI's own shapes: testdata/format-0.1.0/lab.jsonl is the output of
// `kzprobe lab` at test_version 0.1.0 (one record of each verdict, and the
// records with two handshakes, a small-hello retry and an expired
// intermediate), written byte for byte, with the lab's ISCA root beside it.
// analyze.json and compare.json are what `kzprobe analyze` and `kzprobe
// compare` printed for it then; reading the file today must give the same
// tables.
func TestReadFormat010(t *testing.T) {
	clearEnv(t)
	t.Chdir("testdata/format-0.1.0")
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"analyze.json", []string{"analyze", "lab.jsonl", "--interception-roots", "isca-root.pem", "--format", "json"}},
		{"compare.json", []string{"compare", "lab.jsonl", "--interception-roots", "isca-root.pem", "--format", "json"}},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			out, stderr, code := kzprobe(t, tc.args...)
			if code != exitOK {
				t.Fatalf("kzprobe %v: exit %d: %s", tc.args, code, stderr)
			}
			want, err := os.ReadFile(tc.golden)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(string(want), out); d != "" {
				t.Errorf("kzprobe %v differs from %s, its output at format 0.1.0 (-want +got):\n%s", tc.args, tc.golden, d)
			}
		})
	}
}
