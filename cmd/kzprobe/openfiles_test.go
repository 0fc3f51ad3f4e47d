package main

import (
	"strconv"
	"strings"
	"testing"
)

// TestOpenFilesWarning checks the warning against this process's real
// open-file limit: none for a parallelism that fits, one that names the
// limit and a parallelism that fits for one that does not.
func TestOpenFilesWarning(t *testing.T) {
	limit, ok := openFileLimit()
	if !ok {
		t.Skip("no finite open-file limit here")
	}
	cfg, err := loadConfig("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	per := socketsPerTarget(cfg)
	if per != 4+4*1 {
		t.Errorf("sockets per target with the defaults = %d; want 8", per)
	}
	cfg.Run.Parallel = 1
	if msg := openFilesWarning(cfg); msg != "" {
		t.Errorf("parallel 1: %q; want no warning", msg)
	}
	cfg.Run.Parallel = int(limit)/per + 1
	msg := openFilesWarning(cfg)
	fit := (int(limit) - 64) / per
	for _, want := range []string{strconv.FormatUint(limit, 10), "--parallel to " + strconv.Itoa(fit), "ulimit -n"} {
		if !strings.Contains(msg, want) {
			t.Errorf("parallel %d: %q lacks %q", cfg.Run.Parallel, msg, want)
		}
	}
	cfg.Run.Parallel = fit
	if msg := openFilesWarning(cfg); msg != "" {
		t.Errorf("parallel %d (the advice): %q; want no warning", fit, msg)
	}
}
