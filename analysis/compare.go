package analysis

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Comparison builds a domain x network matrix of verdicts from kzprobe
// measurements taken on several vantage networks: for each cell, the
// latest measurement (inside Since/Until). Memory grows with the number of
// cells, not of measurements. OONI records carry no verdict and are
// counted in Matrix.SkippedNotKzprobe.
type Comparison struct {
	cfg      Config
	judge    *Judge
	nets     map[string]*Vantage
	doms     map[string]struct{}
	cells    map[[2]string]*Cell
	seq      uint64
	skipped  int
	outside  int
	ooniSeen map[string]bool
	files    []FileStats
	warnings []Warning
	omitted  int

	// The matrix's estimated size against Config.MaxTableBytes (see
	// Analysis.charge), and the records that lost a column, row, cell or
	// verdict to it.
	tableBytes   int
	full         bool
	notTabulated int
	lostSeq      uint64 // the last record counted in notTabulated

	// The sweep's records, kept out of the matrix.
	sweep       *sweepAgg
	sweepBudget *sweepBudget
	// The trace's records, kept out of the matrix.
	trace       *traceAgg
	traceBudget *sweepBudget
}

// Vantage is one column of the matrix: a network measured from.
type Vantage struct {
	// Key identifies the column: the ASN, or the network name when the
	// ASN is unknown (AS0), or the file name when both are.
	Key          string    `json:"key"`
	ASN          string    `json:"asn"`
	Name         string    `json:"name"`
	Measurements int       `json:"measurements"`
	First        time.Time `json:"first,omitzero"`
	Last         time.Time `json:"last,omitzero"`
}

// Label is the column's heading: "AS9198 JSC Kazakhtelecom".
func (v *Vantage) Label() string {
	switch {
	case v.ASN == "AS0" && v.Name != "":
		return v.Name
	case v.Name != "":
		return v.ASN + " " + v.Name
	case v.ASN != "AS0":
		return v.ASN
	}
	return v.Key
}

// Cell is the latest verdict for one domain on one network.
type Cell struct {
	Domain  string `json:"domain"`
	Network string `json:"network"` // Vantage.Key
	// Verdict is the measurement's own verdict (kzprobe's vocabulary), or
	// one of the Derived verdicts (Config.DeriveVerdicts).
	Verdict string    `json:"verdict"`
	Time    time.Time `json:"time"`
	// Intermediate is the SHA-1 of the first interception intermediate of
	// that measurement's chain, empty when none.
	Intermediate string `json:"intermediate,omitempty"`
	// BrowserError is true when a user who installed the mandated root
	// would still have seen an error (e.g. an expired intermediate).
	BrowserError bool `json:"browser_error,omitempty"`
	// Measurements counts the measurements of this cell in the window;
	// Verdicts lists the distinct verdicts among them.
	Measurements int      `json:"measurements"`
	Verdicts     []string `json:"verdicts"`
	Source       string   `json:"source"`

	seq uint64
}

// Matrix is the comparison's result. Cells holds one entry per domain and
// network that has a measurement, rows (domains) then columns.
type Matrix struct {
	Networks []Vantage   `json:"networks"`
	Domains  []string    `json:"domains"`
	Cells    []Cell      `json:"cells"`
	Since    time.Time   `json:"since,omitzero"`
	Until    time.Time   `json:"until,omitzero"`
	Files    []FileStats `json:"files"`
	// SkippedNotKzprobe counts records without a verdict (OONI's).
	SkippedNotKzprobe int `json:"skipped_not_kzprobe"`
	// OutsideTimeWindow counts records skipped by Since/Until.
	OutsideTimeWindow int       `json:"outside_time_window"`
	Warnings          []Warning `json:"warnings"`
	WarningsOmitted   int       `json:"warnings_omitted"`
	// NotTabulated counts records left out of the matrix, or of a cell's
	// verdicts, by Config.MaxTableBytes; zero on real data.
	NotTabulated int `json:"not_tabulated,omitempty"`
	// Sweep is what the records of `kzprobe sweep` say, per network and
	// name; they are not in the matrix, whose cells are measurements of
	// sites. Absent when none was read.
	Sweep *SweepResult `json:"sni_sweep,omitempty"`
	// Where is what the records of `kzprobe trace` say, per network and
	// target, and per answering box: whether networks share one. Absent
	// when none was read.
	Where *WhereResult `json:"where,omitempty"`

	index map[[2]string]int
}

// Cell returns the cell of domain on the network with key, nil when there
// was no measurement.
func (m *Matrix) Cell(domain, network string) *Cell {
	if m.index == nil {
		m.index = map[[2]string]int{}
		for i, c := range m.Cells {
			m.index[[2]string{c.Domain, c.Network}] = i
		}
	}
	if i, ok := m.index[[2]string{domain, network}]; ok {
		return &m.Cells[i]
	}
	return nil
}

// NewComparison returns an empty Comparison. Only cfg's Judge, Since,
// Until and MaxWarnings are used.
func NewComparison(cfg Config) *Comparison {
	j := cfg.Judge
	if j == nil {
		j = &Judge{}
	}
	c := &Comparison{
		cfg: cfg, judge: j,
		nets:     map[string]*Vantage{},
		doms:     map[string]struct{}{},
		cells:    map[[2]string]*Cell{},
		ooniSeen: map[string]bool{},
	}
	c.sweepBudget = newSweepBudget(cfg.MaxTableBytes, "sweep's tables")
	c.sweep = newSweepAgg(c.sweepBudget.charge)
	c.traceBudget = newSweepBudget(cfg.MaxTableBytes, "where table (traces)")
	c.trace = newTraceAgg(c.traceBudget.charge)
	return c
}

// Warn records a warning (bounded by Config.MaxWarnings).
func (c *Comparison) Warn(w Warning) {
	max := c.cfg.MaxWarnings
	if max == 0 {
		max = DefaultMaxWarnings
	}
	if len(c.warnings) < max {
		c.warnings = append(c.warnings, w)
	} else {
		c.omitted++
	}
}

// vantageKey names the column of rec.
func vantageKey(rec *Record) string {
	if rec.ProbeASN != "" && rec.ProbeASN != "AS0" {
		return rec.ProbeASN
	}
	if rec.ProbeNetworkName != "" {
		return rec.ProbeNetworkName
	}
	file, _, _ := strings.Cut(rec.Source, ":")
	return filepath.Base(file)
}

// Verdicts given to records without one when Config.DeriveVerdicts is set.
const (
	// DerivedISCA: a presented chain leads to the interception PKI.
	DerivedISCA = "mitm_isca"
	// DerivedNoISCA: chains were presented, none leads to it.
	DerivedNoISCA = "no_isca_chain"
	// DerivedNoChain: no handshake presented a chain.
	DerivedNoChain = "no_chain"
)

// AddFileStats records what reading files found.
func (c *Comparison) AddFileStats(st ...FileStats) { c.files = append(c.files, st...) }

// Add adds one normalized record. A record of `kzprobe sweep` goes to
// Matrix.Sweep only, one of `kzprobe trace` to Matrix.Where only.
func (c *Comparison) Add(rec *Record) {
	if (!c.cfg.Since.IsZero() && rec.Time.Before(c.cfg.Since)) || (!c.cfg.Until.IsZero() && !rec.Time.Before(c.cfg.Until)) {
		c.outside++
		return
	}
	c.sweepBudget.source = rec.Source
	if rec.IsTrace() {
		c.traceBudget.source = rec.Source
		c.trace.add(rec)
		return
	}
	if rec.IsSweep() {
		var facts []*ChainFacts
		if isSweepFinding(rec.TestKeys.Verdict) {
			facts = sweepFacts(c.judge, rec)
		}
		c.sweep.add(rec, facts)
		return
	}
	if rec.isRun() {
		c.sweep.addRun(rec)
	}
	verdict := rec.TestKeys.Verdict
	var derived *ChainFacts
	if (!rec.IsKzprobe() || verdict == "") && c.cfg.DeriveVerdicts {
		verdict = DerivedNoChain
		for _, h := range rec.Handshakes() {
			if len(h.PeerCertificates) > 0 {
				verdict = DerivedNoISCA
				break
			}
		}
		if derived = c.rejudge(rec); derived != nil {
			verdict = DerivedISCA
		}
	} else if !rec.IsKzprobe() || verdict == "" {
		c.skipped++
		file, _, _ := strings.Cut(rec.Source, ":")
		if !c.ooniSeen[file] {
			c.ooniSeen[file] = true
			c.Warn(Warning{Source: file, Message: "holds measurements without a kzprobe verdict (OONI's?); compare skips them, analyze reads them"})
		}
		return
	}
	c.seq++
	key := vantageKey(rec)
	v := c.nets[key]
	if v == nil {
		if !c.charge(rec, rowCost+len(key)+len(rec.ProbeNetworkName)) {
			return
		}
		v = &Vantage{Key: key, ASN: rec.ProbeASN}
		c.nets[key] = v
	}
	ck := [2]string{rec.Domain, key}
	cell := c.cells[ck]
	if cell == nil {
		cost := rowCost + len(rec.Source) + len(verdict)
		if _, ok := c.doms[rec.Domain]; !ok {
			cost += entryCost + len(rec.Domain)
		}
		if !c.charge(rec, cost) {
			return
		}
		c.doms[rec.Domain] = struct{}{}
		cell = &Cell{Domain: rec.Domain, Network: key}
		c.cells[ck] = cell
	}
	v.Measurements++
	if v.First.IsZero() || rec.Time.Before(v.First) {
		v.First = rec.Time
	}
	if !rec.Time.Before(v.Last) {
		v.Last = rec.Time
		if rec.ProbeNetworkName != "" && (len(rec.ProbeNetworkName) <= len(v.Name) || c.charge(rec, len(rec.ProbeNetworkName)-len(v.Name))) {
			v.Name = rec.ProbeNetworkName
		}
	}
	cell.Measurements++
	if !slices.Contains(cell.Verdicts, verdict) && c.charge(rec, entryCost+len(verdict)) {
		cell.Verdicts = append(cell.Verdicts, verdict)
		slices.Sort(cell.Verdicts)
	}
	if cell.Measurements > 1 && rec.Time.Before(cell.Time) {
		return // an older measurement
	}
	cell.Verdict, cell.Time, cell.Source, cell.seq = verdict, rec.Time, rec.Source, c.seq
	cell.Intermediate, cell.BrowserError = "", false
	if in := rec.TestKeys.Interception; in != nil {
		cell.BrowserError = in.BrowserErrorEvenWithRootInstalled
		if len(in.Intermediates) > 0 {
			cell.Intermediate = in.Intermediates[0].SHA1
		}
		return
	}
	if derived == nil {
		derived = c.rejudge(rec)
	}
	if derived != nil {
		// Judged again here: the browser error is an intermediate used
		// outside its window (the facts do not hold time-dependent parts).
		if len(derived.Interception.Intermediates) > 0 {
			cell.Intermediate = derived.Interception.Intermediates[0].SHA1
		}
		for _, w := range derived.Windows {
			if !w.Contains(rec.Time) {
				cell.BrowserError = true
			}
		}
	}
}

// charge takes n bytes of the matrix's budget (Config.MaxTableBytes), or
// returns false, counting rec as not tabulated and warning once, when the
// matrix would pass it.
func (c *Comparison) charge(rec *Record, n int) bool {
	max := c.cfg.MaxTableBytes
	if max <= 0 {
		max = DefaultMaxTableBytes
	}
	if c.tableBytes+n <= max {
		c.tableBytes += n
		return true
	}
	if c.lostSeq != c.seq { // each record counted once
		c.lostSeq = c.seq
		c.notTabulated++
	}
	if !c.full {
		c.full = true
		c.Warn(Warning{Source: rec.Source, Message: fmt.Sprintf("the matrix reached its %d MB bound (MaxTableBytes): from here on no new network, domain, cell or verdict is added", max>>20)})
	}
	return false
}

// rejudge judges rec's chains when the file recorded no interception (an
// older kzprobe, roots added since with --interception-roots, or OONI's),
// returning the facts of the first chain that leads to the interception
// PKI, nil when none does.
func (c *Comparison) rejudge(rec *Record) *ChainFacts {
	hs := rec.Handshakes()
	for i := range hs {
		if f := c.judge.HandshakeFacts(&hs[i]); f != nil && f.Interception != nil {
			return f
		}
	}
	return nil
}

// ReadPaths reads every measurement in paths into c.
func (c *Comparison) ReadPaths(paths []string) error {
	rd := &Reader{Warn: c.Warn}
	stats, err := rd.ReadPaths(paths, func(r *Record) error {
		c.Add(r)
		return nil
	})
	c.files = append(c.files, stats...)
	return err
}

// Matrix returns the matrix built so far: networks ordered by AS number
// (then key), domains by name.
func (c *Comparison) Matrix() *Matrix {
	m := &Matrix{
		Networks:          []Vantage{},
		Domains:           sortedKeys(c.doms),
		Cells:             []Cell{},
		Since:             c.cfg.Since,
		Until:             c.cfg.Until,
		Files:             append([]FileStats{}, c.files...),
		SkippedNotKzprobe: c.skipped,
		OutsideTimeWindow: c.outside,
		Warnings:          append([]Warning{}, c.warnings...),
		WarningsOmitted:   c.omitted,
		NotTabulated:      c.notTabulated,
		Sweep:             c.sweep.result(),
		Where:             c.trace.result(),
	}
	if w := c.sweepBudget.warning(c.sweep.records); w != nil {
		m.Warnings = append(m.Warnings, *w)
	}
	if w := c.traceBudget.warning(c.trace.traces); w != nil {
		m.Warnings = append(m.Warnings, *w)
	}
	for _, v := range c.nets {
		m.Networks = append(m.Networks, *v)
	}
	slices.SortFunc(m.Networks, func(x, y Vantage) int {
		return cmp.Or(compareASN(x.ASN, y.ASN), cmp.Compare(x.Key, y.Key))
	})
	// Rows then columns, sorting the cells there are: walking every
	// domain x network pair cost 1.6 billion lookups for 40 000 of each.
	col := make(map[string]int, len(m.Networks))
	for i, v := range m.Networks {
		col[v.Key] = i
	}
	for _, cell := range c.cells {
		m.Cells = append(m.Cells, *cell)
	}
	slices.SortFunc(m.Cells, func(x, y Cell) int {
		return cmp.Or(cmp.Compare(x.Domain, y.Domain), cmp.Compare(col[x.Network], col[y.Network]))
	})
	return m
}
