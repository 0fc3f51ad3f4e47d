package probe

import (
	"testing"
	"time"
)

func TestEpoch(t *testing.T) {
	base := time.Date(2021, 6, 18, 12, 54, 34, 0, time.UTC)
	stepping := func() func() time.Time {
		n := 0
		return func() time.Time { n++; return base.Add(time.Duration(n-1) * 250 * time.Millisecond) }
	}
	for _, tc := range []struct {
		name  string
		now   func() time.Time
		start time.Time
		since []float64
		real  bool
	}{
		{name: "pinned", now: func() time.Time { return base }, start: base, since: []float64{0, 0}},
		{name: "stepping", now: stepping(), start: base, since: []float64{0.25, 0.5, 0.75}},
		{name: "nil is time.Now", real: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			e := NewEpoch(tc.now)
			if tc.real {
				if s := e.Start(); s.Before(before) || s.After(time.Now()) {
					t.Errorf("start %v; want the time of NewEpoch", s)
				}
				if s := e.Since(); s < 0 || s > time.Since(before).Seconds() {
					t.Errorf("since %v; want the time since NewEpoch", s)
				}
				return
			}
			if !e.Start().Equal(tc.start) {
				t.Errorf("start %v; want %v", e.Start(), tc.start)
			}
			for i, want := range tc.since {
				if got := e.Since(); got != want {
					t.Errorf("since #%d = %v; want %v", i+1, got, want)
				}
			}
		})
	}
}
