package probe

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kzprobe/measurement"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ and the README's verdict rules")

const (
	readmePath       = "../README.md"
	rulesBeginMarker = "<!-- BEGIN verdict rules"
	rulesEndMarker   = "<!-- END verdict rules -->"
)

// verdictRulesMarkdown is the README's table of verdict rules, made from
// VerdictRules.
func verdictRulesMarkdown() string {
	var b strings.Builder
	b.WriteString("| # | rule | verdict | when |\n| --- | --- | --- | --- |\n")
	for i, r := range VerdictRules() {
		fmt.Fprintf(&b, "| %d | `%s` | `%s` | %s |\n", i+1, r.Code, r.Verdict, r.When)
	}
	return b.String()
}

// TestREADMEVerdicts keeps the README's verdicts in step with the code:
// its table of verdicts lists exactly measurement.Verdicts(), and its table
// of rules is VerdictRules, in order (-update rewrites it).
func TestREADMEVerdicts(t *testing.T) {
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)

	begin := strings.Index(readme, rulesBeginMarker)
	end := strings.Index(readme, rulesEndMarker)
	if begin < 0 || end < begin {
		t.Fatalf("%s: no %q ... %q block", readmePath, rulesBeginMarker, rulesEndMarker)
	}
	bodyStart := begin + strings.Index(readme[begin:], "\n") + 1
	got, want := readme[bodyStart:end], verdictRulesMarkdown()
	if *update && got != want {
		out := readme[:bodyStart] + want + readme[end:]
		if err := os.WriteFile(readmePath, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		got = want
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s: the verdict rules differ from VerdictRules (-want +got; go test -update rewrites them):\n%s", readmePath, d)
	}

	// The table of verdicts: the rows after "### Verdicts" up to the first
	// line that is not a table row.
	sec := strings.Index(readme, "### Verdicts\n")
	if sec < 0 {
		t.Fatalf("%s: no ### Verdicts section", readmePath)
	}
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\|")
	var listed []measurement.Verdict
	inTable := false
	for line := range strings.Lines(readme[sec:]) {
		isRow := strings.HasPrefix(line, "|")
		if inTable && !isRow {
			break
		}
		inTable = inTable || isRow
		if m := row.FindStringSubmatch(line); m != nil {
			listed = append(listed, measurement.Verdict(m[1]))
		}
	}
	if !slices.Equal(listed, measurement.Verdicts()) {
		t.Errorf("%s: the table of verdicts lists %v; want %v, in that order", readmePath, listed, measurement.Verdicts())
	}
}
