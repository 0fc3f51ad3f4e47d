package control

import (
	"net/netip"
	"testing"
)

// TestCheckPoolShares fills a pool client by client and checks how many
// slots each gets: half the pool alone, then max/(n+1) among n clients,
// one at least, and never more than the pool.
func TestCheckPoolShares(t *testing.T) {
	client := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }
	tests := []struct {
		name string
		max  int
		// take[i] is how many slots client i asks for, in turn; want[i]
		// how many it gets.
		take, want []int
		wantFull   bool // the last refusal is the pool's, not a share's
	}{
		{"alone", 64, []int{64}, []int{32}, false},
		{"two", 64, []int{64, 64}, []int{32, 21}, false},
		{"three", 64, []int{64, 64, 64}, []int{32, 21, 11}, true},
		{"light client first", 64, []int{3, 64}, []int{3, 21}, false},
		{"pool of one", 1, []int{2, 1}, []int{1, 0}, true},
		{"pool of four", 4, []int{4, 4, 4}, []int{2, 1, 1}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newCheckPool(tc.max)
			var full bool
			for i, n := range tc.take {
				got := 0
				for range n {
					ok, f := p.acquire(client(i))
					if !ok {
						full = f
						break
					}
					got++
				}
				if got != tc.want[i] {
					t.Errorf("client %d got %d slots; want %d", i, got, tc.want[i])
				}
			}
			if full != tc.wantFull {
				t.Errorf("last refusal full=%v; want %v", full, tc.wantFull)
			}
			if p.total > tc.max {
				t.Errorf("%d slots taken of %d", p.total, tc.max)
			}
			for i := range tc.take {
				for range tc.want[i] {
					p.release(client(i))
				}
			}
			if p.total != 0 || len(p.held) != 0 {
				t.Errorf("after every release: total %d, %d clients", p.total, len(p.held))
			}
		})
	}
}
