package targets

import (
	"hash/maphash"
)

// Deduper reports targets already seen, by domain and port. It keeps one
// 64-bit hash per distinct target (about 10 bytes with map overhead) rather
// than the strings, so that a list of a million targets costs about ten
// megabytes.
//
// Two distinct targets collide with probability about n²/2⁶⁵ for n
// targets: about 3 in 100 million for a million targets. A collision would
// skip one target; the seed is random per Deduper, so no input can be made
// to collide on purpose and a rerun would not repeat it.
//
// Domain and port are compared as they are: "x.kz" (Port 0, the run's
// default) and "x.kz:443" are distinct, since the default is not known here.
// The zero value is ready to use. A Deduper is not safe for concurrent use.
type Deduper struct {
	seed maphash.Seed
	seen map[uint64]struct{}
}

// dedupKey is what makes two targets the same.
type dedupKey struct {
	domain string
	port   int
}

// NewDeduper returns an empty Deduper with a fresh random seed.
func NewDeduper() *Deduper {
	return &Deduper{seed: maphash.MakeSeed(), seen: make(map[uint64]struct{})}
}

// Seen reports whether a target with t's domain and port was already passed
// to Seen, and records it if not. Callers keep a target when Seen returns
// false, which preserves first-seen order.
func (d *Deduper) Seen(t Target) bool {
	if d.seen == nil {
		d.seed = maphash.MakeSeed()
		d.seen = make(map[uint64]struct{})
	}
	k := maphash.Comparable(d.seed, dedupKey{t.Domain, t.Port})
	if _, ok := d.seen[k]; ok {
		return true
	}
	d.seen[k] = struct{}{}
	return false
}

// Len returns the number of distinct targets seen.
func (d *Deduper) Len() int { return len(d.seen) }
