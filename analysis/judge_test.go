package analysis_test

import (
	"sync"
	"testing"

	"kzprobe/analysis"
	"kzprobe/analysis/analysistest"
)

// TestJudgeCache: a chain is judged once however often it is presented,
// the cache holds at most Size chains and MaxBytes of facts, and a
// negative Size judges every time with the same facts.
func TestAnalysisJudgeCache(t *testing.T) {
	t.Parallel()
	p, err := analysistest.NewReportPKI()
	if err != nil {
		t.Fatal(err)
	}
	chains := make([][][]byte, 0, 5)
	for _, d := range analysistest.ReportDomains[:5] {
		c, err := p.Chain(0, d)
		if err != nil {
			t.Fatal(err)
		}
		chains = append(chains, c)
	}
	for _, tc := range []struct {
		name         string
		size         int
		maxBytes     int
		hits, misses int64
	}{
		{"unbounded_enough", 0, 0, 15, 5}, // 4 rounds over 5 chains
		{"evicts", 3, 0, 0, 20},           // LRU of 3 over a cycle of 5: every look-up misses
		{"disabled", -1, 0, 0, 20},
		// Bounded by bytes: room for about two chains' facts,
		// so over a cycle of 5 every look-up misses.
		{"evicts_by_bytes", 0, 2000, 0, 20},
		{"bytes_enough", 0, 10000, 15, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			j := fixtureJudge(t, p)
			j.Size, j.MaxBytes = tc.size, tc.maxBytes
			for range 4 {
				for _, c := range chains {
					f := j.Facts(c)
					if f.Interception == nil || len(f.Interception.Intermediates) != 1 || f.Interception.Intermediates[0].SHA1 != p.Intermediates[0].SHA1() {
						t.Fatalf("facts %+v; want the intermediate", f.Interception)
					}
					if !f.Windows[0].NotBefore.Equal(analysistest.ReportIntermediates[0].NotBefore) {
						t.Fatalf("window %v", f.Windows[0])
					}
				}
			}
			if h, m := j.Stats(); h != tc.hits || m != tc.misses {
				t.Errorf("hits %d misses %d; want %d, %d", h, m, tc.hits, tc.misses)
			}
		})
	}
}

// TestJudgeConcurrent shares one Judge between goroutines (run with -race).
func TestAnalysisJudgeConcurrent(t *testing.T) {
	t.Parallel()
	p, err := analysistest.NewReportPKI()
	if err != nil {
		t.Fatal(err)
	}
	j := fixtureJudge(t, p)
	j.Size = 2
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 20 {
				c, _ := p.Chain((g+i)%7, analysistest.ReportDomains[i%3])
				if f := j.Facts(c); f.Interception == nil {
					t.Error("no interception")
				}
			}
		})
	}
	wg.Wait()
	if h, m := j.Stats(); h+m != 80 {
		t.Errorf("%d look-ups; want 80", h+m)
	}
}

// TestChainHashNoConcatenationCollision: [ab] and [a, b] differ.
func TestAnalysisChainHashNoConcatenationCollision(t *testing.T) {
	t.Parallel()
	if analysis.ChainHash([][]byte{[]byte("ab")}) == analysis.ChainHash([][]byte{[]byte("a"), []byte("b")}) {
		t.Error("chains [ab] and [a b] share a key")
	}
}
