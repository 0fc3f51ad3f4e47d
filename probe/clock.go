package probe

import "time"

// An Epoch is a measurement's start and the clock it was read on. Every
// record's t0 and t are [Epoch.Since] at the record's start and end: seconds
// since the measurement's start, read on the same clock, so a Prober with a
// pinned [Prober.Now] writes times that agree with its
// measurement_start_time. Make one with [NewEpoch]: the zero Epoch starts
// at the zero time.
type Epoch struct {
	start time.Time
	now   func() time.Time
}

// NewEpoch reads the start on now; nil means time.Now.
func NewEpoch(now func() time.Time) Epoch {
	if now == nil {
		now = time.Now
	}
	return Epoch{start: now(), now: now}
}

// Start is the measurement's start, as read by NewEpoch.
func (e Epoch) Start() time.Time { return e.start }

// Now reads e's clock.
func (e Epoch) Now() time.Time {
	if e.now == nil {
		return time.Now()
	}
	return e.now()
}

// Since returns the seconds from the start to now on e's clock, the unit
// of every t0 and t field.
func (e Epoch) Since() float64 { return e.At(e.Now()) }

// At returns the seconds from the start to t, a time read on e's clock.
func (e Epoch) At(t time.Time) float64 { return t.Sub(e.start).Seconds() }
