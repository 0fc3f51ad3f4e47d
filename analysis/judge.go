package analysis

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"

	"kzprobe/probe/chain"
)

// DefaultCacheSize is how many distinct chains a Judge remembers when
// Judge.Size is zero. A year of one country's OONI data presents a few
// thousand distinct chains (one leaf per site and intermediate); a
// remembered chain costs about 2 KiB.
const DefaultCacheSize = 8192

// DefaultCacheBytes is Judge.MaxBytes's default.
const DefaultCacheBytes = 32 << 20

// ChainFacts is what the analysis needs from one presented chain: the
// parts of chain.Judgement that depend neither on the measurement time nor
// on the server name, so that one judgement serves every handshake that
// presented the same chain.
type ChainFacts struct {
	// Interception is the anchor found, nil when none. Its
	// Intermediates' ValidAtMeasurement and the BrowserError fields are
	// not set: they depend on the time, which Intermediate windows give.
	Interception *chain.Interception
	// Windows are the parsed validity windows of Interception.Intermediates.
	Windows []Window
	// ParseErrors is the number of certificates that did not parse.
	ParseErrors int
}

// Window is a validity window, both ends included as in x509.
type Window struct {
	NotBefore, NotAfter time.Time
}

// Contains reports whether t falls inside w.
func (w Window) Contains(t time.Time) bool {
	return !t.Before(w.NotBefore) && !t.After(w.NotAfter)
}

// Judge runs the chain analysis (chain.Analyzer.Judge) over presented
// chains, remembering the facts of the last Size distinct chains by the
// SHA-256 of their certificates. It is safe for concurrent use.
type Judge struct {
	// Analyzer judges chains. Nil means chain.NewAnalyzer(nil, nil): the
	// Mozilla roots and the embedded knowledge base.
	Analyzer *chain.Analyzer
	// Size is how many chains are remembered; zero means DefaultCacheSize,
	// negative disables the cache.
	Size int
	// MaxBytes bounds the memory the remembered facts take (estimated):
	// a forged chain of 64 intermediates with long names costs far more
	// than the 2 KiB of a real one. Zero means DefaultCacheBytes.
	MaxBytes int

	once    sync.Once
	mu      sync.Mutex
	entries map[[32]byte]*list.Element
	lru     *list.List
	bytes   int // the entries' estimated size
	hits    int64
	misses  int64
}

type cacheEntry struct {
	key   [32]byte
	facts *ChainFacts
	cost  int
}

// cost estimates the bytes f holds: its structs and strings.
func (f *ChainFacts) cost() int {
	n := 256
	if in := f.Interception; in != nil {
		n += len(in.Evidence) + len(in.RootSHA1) + len(in.RootName)
		for _, r := range in.Rules {
			n += 16 + len(r)
		}
		for _, im := range in.Intermediates {
			n += 256 + len(im.SHA1) + len(im.SHA256) + len(im.Serial) + len(im.Subject) + len(im.Issuer) +
				len(im.NotBefore) + len(im.NotAfter) + len(im.SignerRootSHA1) + len(im.SignerRootName)
		}
	}
	return n
}

func (j *Judge) init() {
	j.once.Do(func() {
		if j.Analyzer == nil {
			j.Analyzer = chain.NewAnalyzer(nil, nil)
		}
		j.entries = map[[32]byte]*list.Element{}
		j.lru = list.New()
	})
}

// ChainHash is the cache key of a chain: SHA-256 over each certificate's
// length and bytes, so that no two different chains collide by
// concatenation.
func ChainHash(der [][]byte) [32]byte {
	h := sha256.New()
	var n [4]byte
	for _, c := range der {
		binary.BigEndian.PutUint32(n[:], uint32(len(c)))
		h.Write(n[:])
		h.Write(c)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// Facts returns the facts of the chain der. The result is shared and must
// not be modified.
func (j *Judge) Facts(der [][]byte) *ChainFacts {
	j.init()
	if j.Size < 0 {
		j.mu.Lock()
		j.misses++
		j.mu.Unlock()
		return judgeFacts(j.Analyzer, der)
	}
	key := ChainHash(der)
	j.mu.Lock()
	if e, ok := j.entries[key]; ok {
		j.lru.MoveToFront(e)
		j.hits++
		f := e.Value.(*cacheEntry).facts
		j.mu.Unlock()
		return f
	}
	j.misses++
	j.mu.Unlock()

	f := judgeFacts(j.Analyzer, der)

	size := j.Size
	if size == 0 {
		size = DefaultCacheSize
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if e, ok := j.entries[key]; ok { // judged meanwhile by another goroutine
		return e.Value.(*cacheEntry).facts
	}
	maxBytes := j.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultCacheBytes
	}
	e := &cacheEntry{key: key, facts: f, cost: f.cost()}
	j.entries[key] = j.lru.PushFront(e)
	j.bytes += e.cost
	for j.lru.Len() > size || j.bytes > maxBytes && j.lru.Len() > 0 {
		old := j.lru.Back()
		j.lru.Remove(old)
		oe := old.Value.(*cacheEntry)
		delete(j.entries, oe.key)
		j.bytes -= oe.cost
	}
	return f
}

// Stats returns how many chains were served from the cache (hits) and
// judged (misses).
func (j *Judge) Stats() (hits, misses int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.hits, j.misses
}

// judgeFacts judges der with no server name at the zero time and keeps the
// time-independent parts.
func judgeFacts(a *chain.Analyzer, der [][]byte) *ChainFacts {
	jd := a.Judge(der, "", time.Time{})
	f := &ChainFacts{ParseErrors: len(jd.ParseErrors)}
	in := jd.Interception
	if in == nil {
		return f
	}
	in.BrowserErrorEvenWithRootInstalled = false
	in.BrowserErrorReasons = nil
	f.Windows = make([]Window, len(in.Intermediates))
	for i := range in.Intermediates {
		im := &in.Intermediates[i]
		im.ValidAtMeasurement = false
		nb, _ := time.Parse(time.RFC3339, im.NotBefore)
		na, _ := time.Parse(time.RFC3339, im.NotAfter)
		f.Windows[i] = Window{NotBefore: nb.UTC(), NotAfter: na.UTC()}
	}
	f.Interception = in
	return f
}
