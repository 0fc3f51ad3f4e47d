package targets

import (
	"strconv"
	"testing"
)

func TestDeduper(t *testing.T) {
	t.Parallel()
	type step struct {
		t    Target
		want bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "same domain and port",
			steps: []step{
				{Target{Domain: "a.kz"}, false},
				{Target{Domain: "a.kz", Input: "https://a.kz/", Source: "l:2"}, true},
				{Target{Domain: "b.kz"}, false},
				{Target{Domain: "a.kz"}, true},
			},
		},
		{
			name: "ports are distinct",
			steps: []step{
				{Target{Domain: "a.kz"}, false},
				{Target{Domain: "a.kz", Port: 443}, false},
				{Target{Domain: "a.kz", Port: 8443}, false},
				{Target{Domain: "a.kz", Port: 443}, true},
			},
		},
		{
			name: "domain and port do not run together",
			steps: []step{
				{Target{Domain: "a.kz", Port: 1}, false},
				{Target{Domain: "a.kz1"}, false},
				{Target{Domain: "a.kz1", Port: 1}, false},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := NewDeduper()
			for i, s := range tc.steps {
				if got := d.Seen(s.t); got != s.want {
					t.Errorf("step %d: Seen(%v) = %v; want %v", i, s.t, got, s.want)
				}
			}
		})
	}
}

func TestDeduperZeroValue(t *testing.T) {
	t.Parallel()
	var d Deduper
	if d.Seen(Target{Domain: "a.kz"}) {
		t.Errorf("first Seen on the zero Deduper = true; want false")
	}
	if !d.Seen(Target{Domain: "a.kz"}) {
		t.Errorf("second Seen on the zero Deduper = false; want true")
	}
	if d.Len() != 1 {
		t.Errorf("Len() = %d; want 1", d.Len())
	}
}

func TestDeduperManyDistinct(t *testing.T) {
	t.Parallel()
	const n = 200_000
	d := NewDeduper()
	for i := range n {
		if d.Seen(Target{Domain: "d" + strconv.Itoa(i) + ".example.kz", Port: i % 3}) {
			t.Fatalf("target %d reported as seen; want a collision-free run", i)
		}
	}
	if d.Len() != n {
		t.Errorf("Len() = %d; want %d", d.Len(), n)
	}
}

func BenchmarkDeduper(b *testing.B) {
	b.ReportAllocs()
	d := NewDeduper()
	t := Target{Domain: "www.example.kz"}
	for b.Loop() {
		d.Seen(t)
	}
}
