package main

import (
	"testing"

	"kzprobe/lab"
)

// startLab starts a lab with cfg on loopback, closed when the test ends,
// and writes its files (roots, target list, resolver addresses) into a new
// temporary folder, which it returns with them.
func startLab(t testing.TB, cfg lab.Config) (*lab.Lab, string, lab.Files) {
	t.Helper()
	l, err := lab.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	dir := t.TempDir()
	files, err := l.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l, dir, files
}
