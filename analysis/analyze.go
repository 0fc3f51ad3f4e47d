package analysis

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"kzprobe/probe/chain"
)

// Defaults of Config's bounds.
const (
	DefaultMaxWarnings      = 100
	DefaultMaxGapExamples   = 50
	DefaultMaxGapCandidates = 200_000
	DefaultMaxTableBytes    = 32 << 20
)

// Estimated costs, in bytes, of what the tables keep, for MaxTableBytes:
// a row (its struct, map entry and sets) and a set entry or day, beyond
// the strings themselves.
const (
	rowCost   = 400
	entryCost = 64
)

// Config configures an Analysis. The zero value analyses everything with
// the embedded knowledge base and the Mozilla roots.
type Config struct {
	// Judge judges the chains. Nil means a Judge with the default
	// analyzer and cache.
	Judge *Judge
	// Since and Until keep only measurements with Since <= time < Until;
	// a zero bound is open.
	Since, Until time.Time
	// MaxWarnings bounds the warnings kept (the rest are counted); zero
	// means DefaultMaxWarnings.
	MaxWarnings int
	// MaxGapExamples bounds the sightings listed per gap (all are
	// counted); zero means DefaultMaxGapExamples.
	MaxGapExamples int
	// MaxGapCandidates bounds the sightings kept while reading that may
	// fall in a gap (outside every validity window known so far); past it
	// the gap counts are lower bounds and a warning says so. Zero means
	// DefaultMaxGapCandidates (about 20 MB at most).
	MaxGapCandidates int
	// MaxTableBytes bounds the memory the tables may take (estimated:
	// their rows, the networks, domains and intermediates listed in them,
	// the days of sightings), whatever the input: a file of two million
	// distinct networks and domains took 3.9 GB unbounded. Past it no
	// row or list entry is added, the summary still counts every
	// measurement (Summary.NotTabulated those that lost something), and a
	// warning names the record where the tables were full. Real data take
	// a few megabytes at most. Zero means DefaultMaxTableBytes.
	MaxTableBytes int
	// DeriveVerdicts makes a Comparison include records without a
	// kzprobe verdict (OONI's), with DerivedISCA, DerivedNoISCA or
	// DerivedNoChain from their chains; otherwise they are skipped.
	DeriveVerdicts bool
}

// Analysis accumulates measurements into the report's tables. Memory grows
// with the number of distinct intermediates, networks, domains and days,
// never with the number of measurements, up to Config.MaxTableBytes. Add is not safe for concurrent
// use.
type Analysis struct {
	cfg   Config
	judge *Judge

	records, skipped, handshakes, intercepted int
	first, last                               time.Time
	nrec                                      uint64

	// The tables' estimated size (MaxTableBytes), whether they are full,
	// the records that lost rows or entries, and whether the current one
	// did (source names it in the warning).
	tableBytes   int
	full         bool
	notTabulated int
	lost         bool
	source       string

	inters   map[string]*interAgg
	networks map[string]*netAgg
	domains  map[string]*domAgg

	// windows are the merged validity windows of the intermediates seen
	// so far, sorted; a sighting they cover is in no gap.
	windows    []Window
	candidates []candidate
	dropped    int

	files           []FileStats
	warnings        []Warning
	warningsOmitted int

	// The sweep's records, kept out of the tables above, and the judge's
	// work on them, kept out of the summary's chain counts.
	sweep                  *sweepAgg
	sweepBudget            *sweepBudget
	sweepHits, sweepMisses int64
	// The trace's records, kept out of every table but the where table.
	trace       *traceAgg
	traceBudget *sweepBudget
}

type interAgg struct {
	row    IntermediateRow
	window Window
	rank   int
	nets   map[string]struct{}
	doms   map[string]struct{}
	days   map[int64]*DayCount
}

type netAgg struct {
	asn          string
	name         string
	nameTime     time.Time
	measurements int
	intercepted  int
	first, last  time.Time
	doms, inters map[string]struct{}
}

type domAgg struct {
	name         string
	measurements int
	intercepted  int
	first, last  time.Time
	nets, inters map[string]struct{}
}

// candidate is a sighting outside every window known when it was read.
type candidate struct {
	t      time.Time
	rec    uint64
	inter  string
	asn    string
	domain string
	source string
}

// New returns an empty Analysis.
func New(cfg Config) *Analysis {
	j := cfg.Judge
	if j == nil {
		j = &Judge{}
	}
	a := &Analysis{
		cfg:      cfg,
		judge:    j,
		inters:   map[string]*interAgg{},
		networks: map[string]*netAgg{},
		domains:  map[string]*domAgg{},
	}
	a.sweepBudget = newSweepBudget(cfg.MaxTableBytes, "sweep's tables")
	a.sweep = newSweepAgg(a.sweepBudget.charge)
	a.traceBudget = newSweepBudget(cfg.MaxTableBytes, "where table (traces)")
	a.trace = newTraceAgg(a.traceBudget.charge)
	return a
}

// Judge returns the judge the analysis uses.
func (a *Analysis) Judge() *Judge { return a.judge }

// Warn records a warning (bounded by Config.MaxWarnings).
func (a *Analysis) Warn(w Warning) {
	max := a.cfg.MaxWarnings
	if max == 0 {
		max = DefaultMaxWarnings
	}
	if len(a.warnings) < max {
		a.warnings = append(a.warnings, w)
	} else {
		a.warningsOmitted++
	}
}

// AddFileStats records what reading one file found, for the summary.
func (a *Analysis) AddFileStats(st ...FileStats) { a.files = append(a.files, st...) }

// InWindow reports whether t is inside the Since/Until bounds.
func (a *Analysis) InWindow(t time.Time) bool {
	return (a.cfg.Since.IsZero() || !t.Before(a.cfg.Since)) && (a.cfg.Until.IsZero() || t.Before(a.cfg.Until))
}

// handshakeChain is one handshake's chain with its facts.
type handshakeChain struct {
	serverName string
	facts      *ChainFacts
}

// Add analyses one normalized record: every handshake's chain is judged
// (through the Judge's cache) and every interception intermediate in it
// counts as a sighting at the record's time, network and domain. A record
// of `kzprobe sweep` goes to Result.Sweep only (see SweepResult), one of
// `kzprobe trace` to Result.Where only (see WhereResult).
func (a *Analysis) Add(rec *Record) {
	if !a.InWindow(rec.Time) {
		a.skipped++
		return
	}
	if rec.IsSweep() {
		a.addSweep(rec)
		return
	}
	if rec.IsTrace() {
		a.traceBudget.source = rec.Source
		a.trace.add(rec)
		return
	}
	if rec.isRun() {
		a.sweepBudget.source = rec.Source
		a.sweep.addRun(rec)
	}
	hs := rec.Handshakes()
	chains := make([]handshakeChain, 0, len(hs))
	for i := range hs {
		if f := a.judge.HandshakeFacts(&hs[i]); f != nil {
			chains = append(chains, handshakeChain{hs[i].ServerName, f})
		}
	}
	a.addJudged(rec, chains)
}

// addSweep folds a sweep record into the sweep's tables; its chains are
// judged only when it found something.
func (a *Analysis) addSweep(rec *Record) {
	a.sweepBudget.source = rec.Source
	var facts []*ChainFacts
	if isSweepFinding(rec.TestKeys.Verdict) {
		h0, m0 := a.judge.Stats()
		facts = sweepFacts(a.judge, rec)
		h1, m1 := a.judge.Stats()
		a.sweepHits += h1 - h0
		a.sweepMisses += m1 - m0
	}
	a.sweep.add(rec, facts)
}

func (a *Analysis) addJudged(rec *Record, chains []handshakeChain) {
	a.records++
	a.nrec++
	t := rec.Time
	if a.first.IsZero() || t.Before(a.first) {
		a.first = t
	}
	if t.After(a.last) {
		a.last = t
	}
	a.source, a.lost = rec.Source, false
	defer func() {
		if a.lost {
			a.notTabulated++
		}
	}()
	// Strings kept past this record are the aggregates' copies, so a
	// record's memory is freed with it. An aggregate is nil when the
	// tables are full (MaxTableBytes).
	n := a.network(rec.ProbeASN, rec.ProbeNetworkName, t)
	asn := rec.ProbeASN
	if n != nil {
		asn = n.asn
		n.measurements++
	}
	domain := ""
	var d *domAgg
	if rec.Domain != "" {
		domain = rec.Domain
		if d = a.domain(rec.Domain); d != nil {
			d.measurements++
			domain = d.name
		}
	}

	intercepted := false
	var seen []*interAgg // intermediates of this record, counted once each
	for _, hc := range chains {
		a.handshakes++
		in := hc.facts.Interception
		if in == nil {
			continue
		}
		intercepted = true
		dom := domain
		if dom == "" {
			dom = hc.serverName
		}
		for i := range in.Intermediates {
			ia := a.inter(&in.Intermediates[i], hc.facts.Windows[i], in.Evidence, in.EvidenceSource)
			if ia == nil {
				continue
			}
			r := &ia.row
			r.Sightings++
			if r.FirstSeen.IsZero() || t.Before(r.FirstSeen) {
				r.FirstSeen = t
			}
			if t.After(r.LastSeen) {
				r.LastSeen = t
			}
			a.addKey(ia.nets, asn)
			if dom != "" {
				a.addKey(ia.doms, dom)
			}
			inside := ia.window.Contains(t)
			day := t.Unix() / 86400
			dc := ia.days[day]
			if dc == nil && a.charge(entryCost) {
				dc = &DayCount{Day: time.Unix(day*86400, 0).UTC()}
				ia.days[day] = dc
			}
			if dc == nil {
				dc = &DayCount{} // counted nowhere: the tables are full
			}
			if inside {
				dc.Inside++
			} else {
				dc.Outside++
				r.OutsideWindow++
				if !a.covered(t) {
					a.addCandidate(candidate{t: t, rec: a.nrec, inter: r.SHA1, asn: asn, domain: dom, source: rec.Source})
				}
			}
			if !slices.Contains(seen, ia) {
				seen = append(seen, ia)
				r.Measurements++
			}
		}
	}
	if !intercepted {
		return
	}
	a.intercepted++
	if n != nil {
		n.intercepted++
		if n.first.IsZero() || t.Before(n.first) {
			n.first = t
		}
		if t.After(n.last) {
			n.last = t
		}
		if domain != "" {
			a.addKey(n.doms, domain)
		}
		for _, ia := range seen {
			a.addKey(n.inters, ia.row.SHA1)
		}
	}
	if d != nil {
		d.intercepted++
		a.addKey(d.nets, asn)
		if d.first.IsZero() || t.Before(d.first) {
			d.first = t
		}
		if t.After(d.last) {
			d.last = t
		}
		for _, ia := range seen {
			a.addKey(d.inters, ia.row.SHA1)
		}
	}
}

// charge takes n bytes of the tables' budget (MaxTableBytes), or returns
// false, warning once, when they would pass it: the current record then
// loses what it would have added.
func (a *Analysis) charge(n int) bool {
	max := a.cfg.MaxTableBytes
	if max <= 0 {
		max = DefaultMaxTableBytes
	}
	if a.tableBytes+n <= max {
		a.tableBytes += n
		return true
	}
	a.lost = true
	if !a.full {
		a.full = true
		a.Warn(Warning{Source: a.source, Message: fmt.Sprintf("the tables reached their %d MB bound (MaxTableBytes): from here on no new network, domain, intermediate or list entry is added; the summary counts every measurement", max>>20)})
	}
	return false
}

// addKey adds k to set, within the tables' budget.
func (a *Analysis) addKey(set map[string]struct{}, k string) {
	if _, ok := set[k]; ok {
		return
	}
	if a.charge(entryCost + len(k)) {
		set[k] = struct{}{}
	}
}

func (a *Analysis) addCandidate(c candidate) {
	max := a.cfg.MaxGapCandidates
	if max == 0 {
		max = DefaultMaxGapCandidates
	}
	if len(a.candidates) >= max {
		a.dropped++
		return
	}
	a.candidates = append(a.candidates, c)
}

// network returns the aggregate of asn, naming it after the latest
// measurement that gave a name (ties: the lexically first name), so the
// result does not depend on the order of the files.
func (a *Analysis) network(asn, name string, t time.Time) *netAgg {
	n := a.networks[asn]
	if n == nil {
		if !a.charge(rowCost + len(asn) + len(name)) {
			return nil
		}
		n = &netAgg{asn: asn, doms: map[string]struct{}{}, inters: map[string]struct{}{}}
		a.networks[asn] = n
	}
	if name != "" && (n.name == "" || t.After(n.nameTime) || t.Equal(n.nameTime) && name < n.name) {
		if len(name) > len(n.name) && !a.charge(len(name)-len(n.name)) {
			return n
		}
		n.name, n.nameTime = name, t
	}
	return n
}

func (a *Analysis) domain(name string) *domAgg {
	d := a.domains[name]
	if d == nil {
		if !a.charge(rowCost + len(name)) {
			return nil
		}
		d = &domAgg{name: name, nets: map[string]struct{}{}, inters: map[string]struct{}{}}
		a.domains[name] = d
	}
	return d
}

// inter returns the aggregate of one intermediate, creating it (and adding
// its window to the known ones) on first sight.
func (a *Analysis) inter(im *chain.Intermediate, w Window, evidence, source string) *interAgg {
	ia := a.inters[im.SHA1]
	if ia == nil {
		if !a.charge(rowCost + len(im.SHA1) + len(im.SHA256) + len(im.Serial) + len(im.Subject) + len(im.Issuer) + len(im.SignerRootSHA1) + len(im.SignerRootName)) {
			return nil
		}
		ia = &interAgg{
			row: IntermediateRow{
				SHA1:           im.SHA1,
				SHA256:         im.SHA256,
				Serial:         im.Serial,
				Subject:        im.Subject,
				Issuer:         im.Issuer,
				NotBefore:      w.NotBefore,
				NotAfter:       w.NotAfter,
				SignerRootSHA1: im.SignerRootSHA1,
				SignerRootName: im.SignerRootName,
				Known:          im.Known,
			},
			window: w,
			nets:   map[string]struct{}{},
			doms:   map[string]struct{}{},
			days:   map[int64]*DayCount{},
		}
		a.inters[im.SHA1] = ia
		a.windows = mergeWindows(append(a.windows, w))
	}
	// The strongest evidence, checked here rather than recorded when a
	// chain of each gave it: whatever the order of the records.
	if r := evidenceRank(evidence); r > ia.rank || r == ia.rank && source == "" {
		ia.rank, ia.row.Evidence, ia.row.EvidenceSource = r, evidence, source
	}
	return ia
}

func evidenceRank(e string) int {
	switch e {
	case chain.EvidenceSignature:
		return 3
	case chain.EvidenceFingerprint:
		return 2
	case chain.EvidenceIssuerName:
		return 1
	}
	return 0
}

// covered reports whether a known window contains t.
func (a *Analysis) covered(t time.Time) bool {
	i := sort.Search(len(a.windows), func(i int) bool { return !a.windows[i].NotAfter.Before(t) })
	return i < len(a.windows) && a.windows[i].Contains(t)
}

// mergeWindows sorts ws and merges those that overlap or touch.
func mergeWindows(ws []Window) []Window {
	slices.SortFunc(ws, func(x, y Window) int { return x.NotBefore.Compare(y.NotBefore) })
	out := ws[:0]
	for _, w := range ws {
		if len(out) > 0 && !w.NotBefore.After(out[len(out)-1].NotAfter) {
			if w.NotAfter.After(out[len(out)-1].NotAfter) {
				out[len(out)-1].NotAfter = w.NotAfter
			}
			continue
		}
		out = append(out, w)
	}
	return out
}

// Result builds the tables from what was added so far.
func (a *Analysis) Result() *Result {
	res := &Result{
		Intermediates: []IntermediateRow{},
		Networks:      []NetworkRow{},
		Domains:       []DomainRow{},
		Gaps:          []Gap{},
		Files:         append([]FileStats{}, a.files...),
		Warnings:      append([]Warning{}, a.warnings...),
	}
	for _, ia := range a.inters {
		r := ia.row
		r.Networks = sortedASNs(ia.nets)
		r.Domains = sortedKeys(ia.doms)
		r.Days = make([]DayCount, 0, len(ia.days))
		for _, dc := range ia.days {
			r.Days = append(r.Days, *dc)
		}
		slices.SortFunc(r.Days, func(x, y DayCount) int { return x.Day.Compare(y.Day) })
		res.Intermediates = append(res.Intermediates, r)
	}
	slices.SortFunc(res.Intermediates, func(x, y IntermediateRow) int {
		return cmp.Or(x.NotBefore.Compare(y.NotBefore), cmp.Compare(x.SHA1, y.SHA1))
	})
	for asn, n := range a.networks {
		res.Networks = append(res.Networks, NetworkRow{
			ASN:           asn,
			Name:          n.name,
			Measurements:  n.measurements,
			Intercepted:   n.intercepted,
			FirstSeen:     n.first,
			LastSeen:      n.last,
			Domains:       sortedKeys(n.doms),
			Intermediates: a.sortedInters(n.inters),
		})
	}
	slices.SortFunc(res.Networks, func(x, y NetworkRow) int { return compareASN(x.ASN, y.ASN) })
	for name, d := range a.domains {
		res.Domains = append(res.Domains, DomainRow{
			Domain:        name,
			Measurements:  d.measurements,
			Intercepted:   d.intercepted,
			FirstSeen:     d.first,
			LastSeen:      d.last,
			Networks:      sortedASNs(d.nets),
			Intermediates: a.sortedInters(d.inters),
		})
	}
	slices.SortFunc(res.Domains, func(x, y DomainRow) int { return cmp.Compare(x.Domain, y.Domain) })

	res.Gaps = a.gaps(res)
	if a.dropped > 0 {
		res.Warnings = append(res.Warnings, Warning{Source: "analysis", Message: "too many sightings outside every validity window: " +
			strconv.Itoa(a.dropped) + " not kept, so the gap counts are lower bounds (raise MaxGapCandidates)"})
	}
	hits, misses := a.judge.Stats()
	s := &res.Summary
	s.Files = len(a.files)
	for _, f := range a.files {
		s.BadLines += f.Bad
		if f.Truncated {
			s.TruncatedFiles++
		}
		if f.Error != "" {
			s.UnreadableFiles++
		}
	}
	s.Measurements = a.records
	s.OutsideTimeWindow = a.skipped
	s.Handshakes = a.handshakes
	s.ChainsJudged, s.CacheHits = misses-a.sweepMisses, hits-a.sweepHits
	s.SweepMeasurements = a.sweep.records
	res.Sweep = a.sweep.result()
	if w := a.sweepBudget.warning(a.sweep.records); w != nil {
		res.Warnings = append(res.Warnings, *w)
	}
	s.TraceMeasurements = a.trace.traces
	res.Where = a.trace.result()
	if w := a.traceBudget.warning(a.trace.traces); w != nil {
		res.Warnings = append(res.Warnings, *w)
	}
	s.First, s.Last = a.first, a.last
	s.Intermediates = len(res.Intermediates)
	s.Domains = len(res.Domains)
	s.Intercepted = a.intercepted
	s.NotTabulated = a.notTabulated
	for _, n := range res.Networks {
		if n.ASN == UnlabelledASN {
			s.Unlabelled, s.UnlabelledIntercepted = n.Measurements, n.Intercepted
			continue
		}
		s.Networks++
		if n.Intercepted > 0 {
			s.InterceptedNetworks++
		}
	}
	for _, d := range res.Domains {
		if d.Intercepted > 0 {
			s.InterceptedDomains++
		}
	}
	for _, ia := range res.Intermediates {
		s.OutsideWindow += ia.OutsideWindow
	}
	for _, g := range res.Gaps {
		s.GapSightings += g.Sightings
	}
	s.Gaps = len(res.Gaps)
	s.WarningsOmitted = a.warningsOmitted
	return res
}

func (a *Analysis) sortedInters(set map[string]struct{}) []string {
	out := sortedKeys(set)
	slices.SortFunc(out, func(x, y string) int {
		return cmp.Or(a.inters[x].row.NotBefore.Compare(a.inters[y].row.NotBefore), cmp.Compare(x, y))
	})
	return out
}

// gaps computes the periods that no seen intermediate's window covers,
// between the first and the last, plus an open period before the first
// window (after the last) when intermediates were seen then, and places the
// kept candidates in them.
func (a *Analysis) gaps(res *Result) []Gap {
	if len(a.windows) == 0 {
		return []Gap{}
	}
	var firstSeen, lastSeen time.Time
	for _, r := range res.Intermediates {
		if firstSeen.IsZero() || r.FirstSeen.Before(firstSeen) {
			firstSeen = r.FirstSeen
		}
		if r.LastSeen.After(lastSeen) {
			lastSeen = r.LastSeen
		}
	}
	ws := a.windows
	var gaps []Gap
	if firstSeen.Before(ws[0].NotBefore) {
		gaps = append(gaps, Gap{From: firstSeen, To: ws[0].NotBefore, Open: OpenBefore})
	}
	for i := 1; i < len(ws); i++ {
		gaps = append(gaps, Gap{From: ws[i-1].NotAfter, To: ws[i].NotBefore})
	}
	if last := ws[len(ws)-1].NotAfter; lastSeen.After(last) {
		gaps = append(gaps, Gap{From: last, To: lastSeen, Open: OpenAfter})
	}
	for i := range gaps {
		g := &gaps[i]
		g.Days = g.To.Sub(g.From).Hours() / 24
		g.Networks, g.Domains, g.Intermediates, g.Listed = []string{}, []string{}, []string{}, []Sighting{}
		for _, r := range res.Intermediates {
			if r.NotAfter.Equal(g.From) && g.Open != OpenBefore {
				g.ExpiredBefore = append(g.ExpiredBefore, r.SHA1)
			}
			if r.NotBefore.Equal(g.To) && g.Open != OpenAfter {
				g.ValidAfter = append(g.ValidAfter, r.SHA1)
			}
		}
	}
	names := map[string]string{}
	for _, n := range res.Networks {
		names[n.ASN] = n.Name
	}
	type acc struct {
		recs       map[uint64]struct{}
		nets, doms map[string]struct{}
		inters     map[string]struct{}
	}
	accs := make([]acc, len(gaps))
	for i := range accs {
		accs[i] = acc{map[uint64]struct{}{}, map[string]struct{}{}, map[string]struct{}{}, map[string]struct{}{}}
	}
	slices.SortFunc(a.candidates, func(x, y candidate) int {
		return cmp.Or(x.t.Compare(y.t), cmp.Compare(x.source, y.source), cmp.Compare(x.inter, y.inter))
	})
	maxEx := a.cfg.MaxGapExamples
	if maxEx == 0 {
		maxEx = DefaultMaxGapExamples
	}
	for _, c := range a.candidates {
		if a.covered(c.t) {
			continue // a window learnt later covers it
		}
		i := sort.Search(len(gaps), func(i int) bool { return !gaps[i].To.Before(c.t) })
		if i == len(gaps) {
			continue // cannot happen: every uncovered sighting is in a gap
		}
		g, ac := &gaps[i], &accs[i]
		g.Sightings++
		ac.recs[c.rec] = struct{}{}
		ac.nets[c.asn] = struct{}{}
		if c.domain != "" {
			ac.doms[c.domain] = struct{}{}
		}
		ac.inters[c.inter] = struct{}{}
		if len(g.Listed) < maxEx {
			s := Sighting{Time: c.t, ASN: c.asn, Network: names[c.asn], Domain: c.domain, Intermediate: c.inter, Source: c.source}
			if ia := a.inters[c.inter]; ia != nil && c.t.After(ia.window.NotAfter) {
				s.DaysAfterExpiry = c.t.Sub(ia.window.NotAfter).Hours() / 24
			}
			g.Listed = append(g.Listed, s)
		}
	}
	for i := range gaps {
		g, ac := &gaps[i], &accs[i]
		g.Measurements = len(ac.recs)
		g.Networks = sortedASNs(ac.nets)
		g.Domains = sortedKeys(ac.doms)
		g.Intermediates = a.sortedInters(ac.inters)
	}
	return gaps
}

func sortedKeys(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedASNs(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.SortFunc(out, compareASN)
	return out
}

// compareASN orders "AS9198" before "AS50482" (by number), then by text.
func compareASN(x, y string) int {
	return cmp.Or(cmp.Compare(asnNumber(x), asnNumber(y)), cmp.Compare(x, y))
}

// ReadPaths reads every measurement in paths (files and folders, see
// Files) into a, recording each file's stats and the warnings.
func (a *Analysis) ReadPaths(paths []string) error {
	rd := &Reader{Warn: a.Warn}
	stats, err := rd.ReadPaths(paths, func(r *Record) error {
		a.Add(r)
		return nil
	})
	a.AddFileStats(stats...)
	return err
}
