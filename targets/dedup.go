package targets

import (
	"hash/maphash"
)

// Deduper reports targets already seen, by domain and port. It keeps a
// 64-bit hash per distinct target, not the strings, in an open-addressing
// table of 8-byte slots at most 3/4 full: 11 to 21 bytes a target, 17 MB for
// a million (a Go map of the same hashes takes 38 MB, of the names more).
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
	set  hashSet
}

// dedupKey is what makes two targets the same.
type dedupKey struct {
	domain string
	port   int
}

// NewDeduper returns an empty Deduper with a fresh random seed.
func NewDeduper() *Deduper {
	return &Deduper{seed: maphash.MakeSeed()}
}

// Seen reports whether a target with t's domain and port was already passed
// to Seen, and records it if not. Callers keep a target when Seen returns
// false, which preserves first-seen order.
func (d *Deduper) Seen(t Target) bool {
	if d.set.slots == nil && d.seed == (maphash.Seed{}) {
		d.seed = maphash.MakeSeed() // the zero value
	}
	return !d.set.add(maphash.Comparable(d.seed, dedupKey{t.Domain, t.Port}))
}

// Has reports whether a target with t's domain and port was passed to
// Seen, without recording it.
func (d *Deduper) Has(t Target) bool {
	if d.set.slots == nil {
		return false
	}
	return d.set.has(maphash.Comparable(d.seed, dedupKey{t.Domain, t.Port}))
}

// Len returns the number of distinct targets seen.
func (d *Deduper) Len() int { return d.set.n }

// hashSet is a set of 64-bit hashes: open addressing with linear probing in
// a power-of-two table, 0 marking an empty slot.
type hashSet struct {
	slots []uint64
	n     int
}

const minSlots = 1024

// add adds h and reports whether it was not already there. Hash 0 is stored
// as 1, which merges two of 2⁶⁴ values.
func (s *hashSet) add(h uint64) bool {
	if h == 0 {
		h = 1
	}
	if s.slots == nil {
		s.slots = make([]uint64, minSlots)
	}
	if !insert(s.slots, h) {
		return false
	}
	s.n++
	if 4*s.n > 3*len(s.slots) {
		bigger := make([]uint64, 2*len(s.slots))
		for _, v := range s.slots {
			if v != 0 {
				insert(bigger, v)
			}
		}
		s.slots = bigger
	}
	return true
}

// has reports whether h is in the set (slots not nil).
func (s *hashSet) has(h uint64) bool {
	if h == 0 {
		h = 1
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

// insert puts h (not 0) in slots, a power-of-two table with a free slot, and
// reports whether it was not already there.
func insert(slots []uint64, h uint64) bool {
	mask := uint64(len(slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch slots[i] {
		case h:
			return false
		case 0:
			slots[i] = h
			return true
		}
	}
}
