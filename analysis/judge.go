package analysis

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"

	"kzprobe/measurement"
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
	// ParseErrors is the number of certificates that did not parse. A
	// certificate the record withheld is not one of them.
	ParseErrors int
	// Withheld is the number of certificates judged from the facts the
	// record kept of them, their bytes withheld (see HandshakeFacts).
	Withheld int
}

// WithheldSHA256Prefix starts the SHA1 the tables give an intermediate
// whose record withheld it without keeping its SHA-1 (records of the first
// version of withheld_certificates): its SHA-256 follows.
const WithheldSHA256Prefix = "sha256:"

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
	return j.facts(der, nil)
}

// HandshakeFacts returns the facts of h's chain, nil when h presented
// none. A certificate h's record withheld (it held the probe's address;
// its entry is null, withheld_certificates describes it) is judged from
// the facts kept of it (chain.Analyzer.JudgeWithheld): its fingerprints,
// names, validity, serial and the signer the probe recorded, so that the
// chain leads where it led before the bytes were left out. The result is
// shared and must not be modified.
func (j *Judge) HandshakeFacts(h *Handshake) *ChainFacts {
	if len(h.PeerCertificates) == 0 {
		return nil
	}
	der := make([][]byte, len(h.PeerCertificates))
	for i, c := range h.PeerCertificates {
		der[i] = c
	}
	return j.facts(der, WithheldFacts(h.Withheld))
}

// WithheldFacts converts what a record kept of its withheld certificates
// into the chain package's form; times that do not parse are zero. A
// record that kept no SHA-1 (the first version of withheld_certificates)
// kept no CA flag either: a certificate after the first is then taken
// for a CA certificate, an intermediate.
func WithheldFacts(ws []measurement.WithheldCertificate) []chain.Withheld {
	if len(ws) == 0 {
		return nil
	}
	out := make([]chain.Withheld, len(ws))
	for i, w := range ws {
		nb, _ := time.Parse(time.RFC3339, w.NotBefore)
		na, _ := time.Parse(time.RFC3339, w.NotAfter)
		out[i] = chain.Withheld{
			Index: w.Index, SHA1: w.SHA1, SHA256: w.SHA256,
			Subject: w.Subject, Issuer: w.Issuer, Serial: w.Serial,
			NotBefore: nb.UTC(), NotAfter: na.UTC(), IsCA: w.IsCA || w.SHA1 == "" && w.Index > 0,
			SignerRootSHA1: w.SignerRootSHA1,
		}
	}
	return out
}

// withheldHash extends the cache key of a chain with the facts of its
// withheld certificates.
func withheldHash(key [32]byte, ws []chain.Withheld) [32]byte {
	h := sha256.New()
	h.Write(key[:])
	var n [8]byte
	str := func(s string) {
		binary.BigEndian.PutUint32(n[:4], uint32(len(s)))
		h.Write(n[:4])
		h.Write([]byte(s))
	}
	for _, w := range ws {
		binary.BigEndian.PutUint64(n[:], uint64(int64(w.Index)))
		h.Write(n[:])
		for _, s := range []string{w.SHA1, w.SHA256, w.Subject, w.Issuer, w.Serial, w.SignerRootSHA1} {
			str(s)
		}
		for _, t := range []time.Time{w.NotBefore, w.NotAfter} {
			binary.BigEndian.PutUint64(n[:], uint64(t.UnixNano()))
			h.Write(n[:])
		}
		if w.IsCA {
			h.Write([]byte{1})
		} else {
			h.Write([]byte{0})
		}
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (j *Judge) facts(der [][]byte, withheld []chain.Withheld) *ChainFacts {
	j.init()
	if j.Size < 0 {
		j.mu.Lock()
		j.misses++
		j.mu.Unlock()
		return judgeFacts(j.Analyzer, der, withheld)
	}
	key := ChainHash(der)
	if len(withheld) > 0 {
		key = withheldHash(key, withheld)
	}
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

	f := judgeFacts(j.Analyzer, der, withheld)

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

// judgeFacts judges der, withheld standing for the certificates its
// record withheld, with no server name at the zero time and keeps the
// time-independent parts.
func judgeFacts(a *chain.Analyzer, der [][]byte, withheld []chain.Withheld) *ChainFacts {
	jd := a.JudgeWithheld(der, withheld, "", time.Time{})
	f := &ChainFacts{ParseErrors: len(jd.ParseErrors)}
	for _, c := range jd.Certificates {
		if c.Withheld {
			f.Withheld++
		}
	}
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
		if im.SHA1 == "" && im.Withheld {
			// Withheld from a record that did not keep its SHA-1: the
			// tables, keyed on SHA-1, name it by its SHA-256.
			im.SHA1 = WithheldSHA256Prefix + im.SHA256
		}
		nb, _ := time.Parse(time.RFC3339, im.NotBefore)
		na, _ := time.Parse(time.RFC3339, im.NotAfter)
		f.Windows[i] = Window{NotBefore: nb.UTC(), NotAfter: na.UTC()}
	}
	f.Interception = in
	return f
}
