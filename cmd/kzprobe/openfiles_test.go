package main

import (
	"strconv"
	"strings"
	"testing"
)

// TestFitParallel checks fitParallel against this process's real
// open-file limit: a parallelism that fits is kept without a word; one
// that does not is lowered to what fits, with a warning naming both
// numbers and the limit.
func TestFitParallel(t *testing.T) {
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
	if msg := fitParallel(cfg); msg != "" || cfg.Run.Parallel != 1 {
		t.Errorf("parallel 1: %q, parallel now %d; want no warning and 1", msg, cfg.Run.Parallel)
	}
	asked := int(limit)/per + 1
	cfg.Run.Parallel = asked
	msg := fitParallel(cfg)
	fit := (int(limit) - 64) / per
	if cfg.Run.Parallel != fit {
		t.Errorf("parallel %d: lowered to %d; want %d", asked, cfg.Run.Parallel, fit)
	}
	for _, want := range []string{"from " + strconv.Itoa(asked) + " to " + strconv.Itoa(fit), strconv.FormatUint(limit, 10), "ulimit -n"} {
		if !strings.Contains(msg, want) {
			t.Errorf("parallel %d: %q lacks %q", asked, msg, want)
		}
	}
	if msg := fitParallel(cfg); msg != "" || cfg.Run.Parallel != fit {
		t.Errorf("parallel %d (what fits): %q, parallel now %d; want no warning", fit, msg, cfg.Run.Parallel)
	}
}
