//go:build unix

package analysis_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kzprobe/analysis"
)

// TestAnalysisReadPathsSkipsNonRegular: devices, a named pipe nobody writes
// to and links to them, named or found in a walked folder, are skipped and
// named with why, instead of read forever; a link to a regular file and "-"
// (standard input) are read.
func TestAnalysisReadPathsSkipsNonRegular(t *testing.T) {
	t.Parallel()
	for _, dev := range []string{"/dev/zero", "/dev/urandom"} {
		if _, err := os.Stat(dev); err != nil {
			t.Skipf("no %s here: %v", dev, err)
		}
	}
	dir := t.TempDir()
	walked := filepath.Join(dir, "walked")
	os.Mkdir(walked, 0o755)
	if err := os.WriteFile(filepath.Join(walked, "a.jsonl"), []byte(line1+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"zero.jsonl":    "/dev/zero",
		"random.json":   "/dev/urandom",
		"dir.jsonl":     dir,
		"good.jsonl.gz": filepath.Join(walked, "a.jsonl"),
	} {
		if err := os.Symlink(target, filepath.Join(walked, name)); err != nil {
			t.Fatal(err)
		}
	}
	fifo := filepath.Join(walked, "pipe.jsonl")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	namedFifo := filepath.Join(dir, "named.fifo")
	if err := syscall.Mkfifo(namedFifo, 0o644); err != nil {
		t.Fatal(err)
	}

	var warnings []string
	var sources []string
	rd := &analysis.Reader{
		Warn:  func(w analysis.Warning) { warnings = append(warnings, w.String()) },
		Stdin: strings.NewReader(line2 + "\n"),
	}
	done := make(chan []analysis.FileStats, 1)
	go func() {
		stats, err := rd.ReadPaths([]string{walked, "/dev/zero", namedFifo, analysis.Stdin}, func(r *analysis.Record) error {
			sources = append(sources, r.Source)
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		done <- stats
	}()
	var stats []analysis.FileStats
	select {
	case stats = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("ReadPaths still reading after 20s: a device or a pipe was opened")
	}
	rel := func(p string) string {
		if r, err := filepath.Rel(dir, p); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
		return p
	}
	var got []string
	for _, st := range stats {
		got = append(got, rel(st.Path)+": "+st.Error)
	}
	want := []string{
		"walked/dir.jsonl: skipped: a link to a folder (links inside a folder are not followed into folders)",
		"walked/pipe.jsonl: skipped: a named pipe, not a regular file (to read a stream, pipe it to standard input and name it -)",
		"walked/random.json: skipped: a character device, not a regular file",
		"walked/zero.jsonl: skipped: a character device, not a regular file",
		"/dev/zero: skipped: a character device, not a regular file",
		"named.fifo: skipped: a named pipe, not a regular file (to read a stream, pipe it to standard input and name it -)",
		"walked/a.jsonl: ",
		"walked/good.jsonl.gz: ",
		"-: ",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if len(warnings) != 6 {
		t.Errorf("%d warnings; want one per skipped file:\n%s", len(warnings), strings.Join(warnings, "\n"))
	}
	wantSrc := []string{filepath.Join(walked, "a.jsonl") + ":1", filepath.Join(walked, "good.jsonl.gz") + ":1", "-:1"}
	if diff := cmp.Diff(wantSrc, sources); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}

	// ReadFile on a device refuses it too.
	st, err := rd.ReadFile("/dev/zero", func(*analysis.Record) error { return nil })
	if err != nil || !strings.Contains(st.Error, "character device") {
		t.Errorf("ReadFile(/dev/zero): %+v, %v; want skipped as a device", st, err)
	}
}
