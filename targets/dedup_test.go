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

func TestDeduperHas(t *testing.T) {
	t.Parallel()
	var zero Deduper
	if zero.Has(Target{Domain: "a.kz"}) {
		t.Errorf("Has on the zero Deduper = true; want false")
	}
	const n = 5000 // past the first table's growth
	d := NewDeduper()
	for i := range n {
		d.Seen(Target{Domain: "d" + strconv.Itoa(i) + ".kz", Port: 443})
	}
	for i := range 2 * n {
		tgt := Target{Domain: "d" + strconv.Itoa(i) + ".kz", Port: 443}
		if got, want := d.Has(tgt), i < n; got != want {
			t.Fatalf("Has(%v) = %v; want %v", tgt, got, want)
		}
		if d.Has(Target{Domain: tgt.Domain}) {
			t.Fatalf("Has(%s with port 0) = true; only port 443 was seen", tgt.Domain)
		}
	}
	if d.Len() != n {
		t.Errorf("Len() = %d after Has; want %d (Has records nothing)", d.Len(), n)
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

func TestHashSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		hashes []uint64
		want   []bool // add's result for each hash
	}{
		{"zero is a value", []uint64{0, 0, 1}, []bool{true, false, false}},
		{"same low bits probe on", []uint64{5, 5 + 1<<32, 5 + 2<<32, 5 + 1<<32}, []bool{true, true, true, false}},
		{"probing wraps around", []uint64{minSlots - 1, 2*minSlots - 1, 3*minSlots - 1, 2*minSlots - 1}, []bool{true, true, true, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var s hashSet
			for i, h := range tc.hashes {
				if got := s.add(h); got != tc.want[i] {
					t.Errorf("add(%#x) #%d = %v; want %v", h, i, got, tc.want[i])
				}
			}
		})
	}
}

func TestHashSetGrows(t *testing.T) {
	t.Parallel()
	var s hashSet
	const n = 10 * minSlots
	for i := range uint64(n) {
		if !s.add(i * 0x9e3779b97f4a7c15) {
			t.Fatalf("add #%d: got false; want true", i)
		}
	}
	for i := range uint64(n) {
		if s.add(i * 0x9e3779b97f4a7c15) {
			t.Fatalf("add #%d again: got true; want false", i)
		}
	}
	if s.n != n || 4*s.n > 3*len(s.slots) {
		t.Errorf("got %d hashes in %d slots; want %d, at most 3/4 full", s.n, len(s.slots), n)
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
