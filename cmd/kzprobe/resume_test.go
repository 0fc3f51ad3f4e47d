package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kzprobe/measurement"
)

// TestResumeNamesBadAndPartialLines resumes a file whose second record is
// over the reading bound (its queries array longer than
// measurement.MaxLineElements: read in part) and whose third line is cut:
// the run names both, by line number, in one warning that names the file,
// and goes on to measure the target left. It used to count the cut line
// without saying which and to say nothing of the line read in part.
func TestResumeNamesBadAndPartialLines(t *testing.T) {
	clearEnv(t)
	domains, args := fileLab(t, 3, 0)
	out := filepath.Join(t.TempDir(), "resumed.jsonl")
	if code, _, stderr := runKzprobe(t, "", append(withDomains(args, domains[:2]...), "-o", out)...); code != exitOK {
		t.Fatalf("first run: exit %d\n%s", code, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("first run wrote %d lines; want 2", len(lines))
	}
	// Line 2 over the bound, line 3 cut by an interruption.
	at := strings.Index(lines[1], `,"queries":[{`)
	if at < 0 {
		t.Fatalf("no queries in %s", lines[1])
	}
	at += len(`,"queries":[`)
	lines[1] = lines[1][:at] + strings.Repeat(`{},`, measurement.MaxLineElements+1) + lines[1][at:]
	cut := lines[0][:len(lines[0])/2] + "\n"
	if err := os.WriteFile(out, []byte(lines[0]+lines[1]+"\n"+cut), 0o644); err != nil {
		t.Fatal(err)
	}

	code, _, stderr := runKzprobe(t, "", append(withDomains(args, domains...), "--resume", out)...)
	if code != exitOK {
		t.Fatalf("resumed run: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "2 targets already measured") {
		t.Errorf("the line read in part was not counted as measured:\n%s", stderr)
	}
	var warnings []string
	for _, l := range strings.Split(stderr, "\n") {
		// (The list differs from the file's: that is another warning.)
		if strings.HasPrefix(l, "kzprobe: warning: "+out+":") {
			warnings = append(warnings, l)
		}
	}
	want := "kzprobe: warning: " + out + ": line 3 unreadable, ignored (a record cut by the interruption is measured again); " +
		"line 2 read in part, over 20000 array elements a line (the rest of the arrays left out; the target counts as measured)"
	if len(warnings) != 1 || warnings[0] != want {
		t.Errorf("warnings %q; want one:\n%s\nin:\n%s", warnings, want, stderr)
	}
	if n := countLines(out); n != 4 {
		t.Errorf("%d lines in the resumed file; want 4 (the target left measured)", n)
	}
}
