package analysis

import (
	"slices"
	"time"
)

// DecodeRecord decodes one measurement (one JSONL line, one JSON object)
// within lim and normalizes it, as the Reader does for each line. skipped
// says what the bounds left out, "" when nothing. Source is left empty.
// Stores that receive one record at a time (the collector's) use it, so
// that every reader of a record reads the same fields.
func DecodeRecord(b []byte, lim Limits) (rec *Record, skipped string, err error) {
	return decodeRecord(trimSpace(b), lim)
}

// Tables is what an Analysis holds, aggregated elsewhere (by ClickHouse's
// SQL in store/clickhouse): the same groups and counts that Add builds from
// records one by one. FromTables turns it into a Result through the same
// code as Analysis.Result, so that the two agree on ordering, the summary
// and the gaps.
type Tables struct {
	// Measurements counts the records inside Since/Until,
	// OutsideTimeWindow those outside, Handshakes the handshakes with a
	// chain, Intercepted the records with an interception chain.
	Measurements, OutsideTimeWindow, Handshakes, Intercepted int
	// First and Last are the records' first and last times.
	First, Last time.Time
	// Intermediates are the rows of the intermediates table with their
	// Networks, Domains and Days filled in (any order; lists sorted or
	// not). Evidence is the strongest of the chains the intermediate was
	// in.
	Intermediates []IntermediateRow
	// Networks and Domains are the rows of their tables (any order).
	Networks []NetworkRow
	Domains  []DomainRow
	// Outside are the sightings outside every intermediate's window (the
	// gaps' sightings), with Record naming each one's measurement, at
	// most Config.MaxGapCandidates of them; Dropped counts the rest.
	Outside []GapSighting
	Dropped int
	// SideTables are the sweep's and the trace's records, on their own.
	SideTables
}

// SideTables is what the records of `kzprobe sweep` and `kzprobe trace`
// say, aggregated elsewhere: FromTables and MatrixFromTables shape them
// into Result.Sweep and Result.Where (Matrix's) through the code that
// shapes them from records (the run's confirmation, the boxes, the order).
type SideTables struct {
	// Sweep holds the sweep records' counts (Measurements, Intercepted,
	// Blocked, Clean, Errors), their networks (Names and Confirmed left
	// zero) and the names found (Network, Intermediates' order and
	// ConfirmedByRun left to the shaping; RunVerdicts the distinct
	// verdicts of the run records of the name on the network). Nil when
	// no sweep record was read.
	Sweep *SweepResult
	// Traces counts the trace records; WhereRows are the latest trace of
	// each network and target, with Network the latest name the
	// network's trace records gave.
	Traces    int
	WhereRows []WhereRow
}

// load fills s from rows aggregated elsewhere (SideTables.Sweep).
func (s *sweepAgg) load(r *SweepResult) {
	if r == nil {
		return
	}
	s.records, s.intercepted, s.blocked, s.clean, s.errors = r.Measurements, r.Intercepted, r.Blocked, r.Clean, r.Errors
	for _, n := range r.Networks {
		eps := make(map[string]struct{}, len(n.Endpoints))
		for _, e := range n.Endpoints {
			eps[e] = struct{}{}
		}
		n.Names, n.Confirmed, n.Endpoints = 0, 0, nil
		s.nets[n.ASN] = &sweepNet{row: n, eps: eps}
	}
	for _, row := range r.Names {
		k := [2]string{row.ASN, row.Domain}
		inters := make(map[string]struct{}, len(row.Intermediates))
		for _, i := range row.Intermediates {
			inters[i] = struct{}{}
		}
		if len(row.RunVerdicts) > 0 {
			s.runs[k] = slices.Sorted(slices.Values(row.RunVerdicts))
		}
		row.Verdicts = slices.Sorted(slices.Values(row.Verdicts))
		row.Intermediates, row.RunVerdicts, row.Network, row.ConfirmedByRun = nil, nil, "", ""
		s.rows[k] = &sweepName{row: row, inters: inters, latest: row.LastSeen}
	}
}

// load fills ta from rows aggregated elsewhere (SideTables.WhereRows).
func (ta *traceAgg) load(traces int, rows []WhereRow) {
	ta.traces = traces
	for _, row := range rows {
		if row.Network != "" {
			ta.names[row.ASN] = netName{name: row.Network}
		}
		row.Network = ""
		ta.rows[[2]string{row.ASN, row.Domain}] = &traceRow{row: row}
	}
}

// GapSighting is one sighting outside every validity window: an entry of
// Tables.Outside.
type GapSighting struct {
	Time         time.Time
	Record       uint64 // the same for every sighting of one measurement
	Intermediate string // SHA-1
	ASN          string
	Domain       string
	Source       string
}

// FromTables returns an Analysis holding t, for its Result. Judge in cfg
// is not used (the chains were judged where the tables were made); the
// summary's ChainsJudged and CacheHits are zero, and Files and Warnings
// are what AddFileStats and Warn add.
func FromTables(cfg Config, t Tables) *Analysis {
	a := New(cfg)
	a.records, a.skipped, a.handshakes, a.intercepted = t.Measurements, t.OutsideTimeWindow, t.Handshakes, t.Intercepted
	a.first, a.last = t.First, t.Last
	set := func(keys []string) map[string]struct{} {
		m := make(map[string]struct{}, len(keys))
		for _, k := range keys {
			m[k] = struct{}{}
		}
		return m
	}
	for _, r := range t.Intermediates {
		ia := &interAgg{
			row:    r,
			window: Window{r.NotBefore, r.NotAfter},
			rank:   evidenceRank(r.Evidence),
			nets:   set(r.Networks),
			doms:   set(r.Domains),
			days:   make(map[int64]*DayCount, len(r.Days)),
		}
		ia.row.Networks, ia.row.Domains, ia.row.Days = nil, nil, nil
		for _, d := range r.Days {
			d := d
			ia.days[d.Day.Unix()/86400] = &d
		}
		a.inters[r.SHA1] = ia
		a.windows = append(a.windows, ia.window)
	}
	a.windows = mergeWindows(a.windows)
	for _, r := range t.Networks {
		a.networks[r.ASN] = &netAgg{
			asn: r.ASN, name: r.Name, measurements: r.Measurements, intercepted: r.Intercepted,
			first: r.FirstSeen, last: r.LastSeen, doms: set(r.Domains), inters: set(r.Intermediates),
		}
	}
	for _, r := range t.Domains {
		a.domains[r.Domain] = &domAgg{
			name: r.Domain, measurements: r.Measurements, intercepted: r.Intercepted,
			first: r.FirstSeen, last: r.LastSeen, nets: set(r.Networks), inters: set(r.Intermediates),
		}
	}
	for _, s := range t.Outside {
		a.candidates = append(a.candidates, candidate{t: s.Time, rec: s.Record, inter: s.Intermediate, asn: s.ASN, domain: s.Domain, source: s.Source})
	}
	a.dropped = t.Dropped
	a.sweep.load(t.Sweep)
	a.trace.load(t.Traces, t.WhereRows)
	return a
}

// VantageKey is the column of rec in a Comparison's matrix: its ASN, or
// its network name when the ASN is unknown, or its file's name.
func VantageKey(rec *Record) string { return vantageKey(rec) }

// CompareTables is what a Comparison holds, aggregated elsewhere (by
// ClickHouse's SQL): the columns, the cells with their latest verdict, and
// the counts. MatrixFromTables shapes it as Comparison.Matrix does.
type CompareTables struct {
	Networks          []Vantage
	Cells             []Cell
	SkippedNotKzprobe int
	OutsideTimeWindow int
	// SideTables are the sweep's and the trace's records, on their own.
	SideTables
}

// MatrixFromTables returns the Matrix of t, ordered as Comparison.Matrix
// orders it, with files and warnings as given.
func MatrixFromTables(cfg Config, t CompareTables, files []FileStats, warnings []Warning) *Matrix {
	c := NewComparison(cfg)
	for i := range t.Networks {
		v := t.Networks[i]
		c.nets[v.Key] = &v
	}
	for i := range t.Cells {
		cell := t.Cells[i]
		c.cells[[2]string{cell.Domain, cell.Network}] = &cell
		c.doms[cell.Domain] = struct{}{}
	}
	c.skipped, c.outside = t.SkippedNotKzprobe, t.OutsideTimeWindow
	c.sweep.load(t.Sweep)
	c.trace.load(t.Traces, t.WhereRows)
	c.files = files
	for _, w := range warnings {
		c.Warn(w)
	}
	return c.Matrix()
}
