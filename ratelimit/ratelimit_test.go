package ratelimit

import (
	"net/netip"
	"testing"
	"time"
)

func TestAllow(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	a, b, c := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	type step struct {
		key        netip.Addr
		at         time.Duration
		ok, full   bool
		wantWaitGT time.Duration
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"burst then wait", []step{
			{key: a, ok: true}, {key: a, ok: true},
			{key: a, ok: false, wantWaitGT: 400 * time.Millisecond},
			{key: a, at: time.Second, ok: true},
		}},
		{"clients apart", []step{{key: a, ok: true}, {key: a, ok: true}, {key: b, ok: true}}},
		{"table full, then swept once buckets refill", []step{
			{key: a, ok: true}, {key: b, ok: true},
			{key: c, ok: false, full: true},
			{key: c, at: 2 * time.Second, ok: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(1, 2, 2)
			for i, s := range tt.steps {
				ok, wait, full := l.Allow(s.key, t0.Add(s.at))
				if ok != s.ok || full != s.full || (s.wantWaitGT > 0 && wait <= s.wantWaitGT) {
					t.Errorf("step %d: Allow(%v, +%v) = %v, %v, %v; want ok %v, full %v, wait > %v", i, s.key, s.at, ok, wait, full, s.ok, s.full, s.wantWaitGT)
				}
			}
		})
	}
}

func TestNilAllowsAll(t *testing.T) {
	var l *PerClient
	if ok, _, _ := l.Allow(netip.MustParseAddr("10.0.0.1"), time.Now()); !ok {
		t.Error("a nil limiter refused")
	}
}

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":          "192.0.2.7",
		"2001:db8:1:2:3::9":  "2001:db8:1:2::",
		"2001:db8:1:2::ffff": "2001:db8:1:2::",
	} {
		if got := Key(netip.MustParseAddr(in)); got != netip.MustParseAddr(want) {
			t.Errorf("Key(%s) = %v, want %s", in, got, want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "1", 300 * time.Millisecond: "1", 1500 * time.Millisecond: "2", 3 * time.Second: "3"} {
		if got := RetryAfter(d); got != want {
			t.Errorf("RetryAfter(%v) = %q, want %q", d, got, want)
		}
	}
}
