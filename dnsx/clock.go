package dnsx

import (
	"context"
	"time"
)

type clockKey struct{}

// WithClock returns a copy of ctx carrying now, the clock an exchange
// under ctx reads the times of its tries on ([Try].Start and End). The
// engine passes the measurement's clock, so that the tries' times in a
// record agree with every other time in it, also when that clock is
// pinned. Without it, and with a nil now, tries are timed on time.Now.
//
// The clock travels in the context rather than in [Options] because it
// belongs to the measurement, not to the exchanger: one exchanger serves
// every measurement of a run.
func WithClock(ctx context.Context, now func() time.Time) context.Context {
	return context.WithValue(ctx, clockKey{}, now)
}

// clock returns the clock ctx carries, else time.Now.
func clock(ctx context.Context) func() time.Time {
	if now, ok := ctx.Value(clockKey{}).(func() time.Time); ok && now != nil {
		return now
	}
	return time.Now
}
