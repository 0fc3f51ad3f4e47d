package analysis

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"kzprobe/measurement"
)

// The records of `kzprobe trace` (test_name measurement.TraceTestName) say
// where on the path a target's TLS is intercepted, not whether: they are
// kept out of the report's tables and the matrix, as the sweep's are, and
// tabulated on their own ([WhereResult]): per network and target, the hop
// whose box answered, the destination's distance, and the networks of the
// answering hop and of the one before it; and per answering box, the
// networks whose traffic it answers, which tells whether several networks
// share one upstream box.

// IsTrace reports whether r is a record of `kzprobe trace`.
func (r *Record) IsTrace() bool { return r.TestName == measurement.TraceTestName }

// WhereResult is what the trace records say.
type WhereResult struct {
	// Traces counts the trace records read (inside Since/Until).
	Traces int `json:"traces"`
	// Rows has one row per network and target, the latest trace's
	// finding, ordered by network then target.
	Rows []WhereRow `json:"rows"`
	// Boxes groups the rows whose target was interfered with by the
	// answering hop (its prefix and AS number), ordered by AS number then
	// prefix: a box with more than one network is shared upstream.
	Boxes []BoxRow `json:"boxes"`
}

// WhereRow is the latest trace of one target from one network.
type WhereRow struct {
	// ASN and Network are the vantage network's.
	ASN     string `json:"asn"`
	Network string `json:"network"`
	// Domain is the name traced; SNI the target SNI sent.
	Domain string `json:"domain"`
	// Time is the latest trace's; Traces counts the traces of this
	// target from this network.
	Time   time.Time `json:"time"`
	Traces int       `json:"traces"`
	// Finding is the latest trace's finding (trace.Interpret's): the
	// interference and its hop, the destination's distance, the
	// answering hop and the one before it.
	Finding measurement.TraceFinding `json:"finding"`
	// Source is the latest trace's "file:line".
	Source string `json:"source"`
}

// BoxRow is one box that answered a target in place of its server: the
// answering hop of every row whose Finding.Interference is not none,
// keyed by its prefix and AS number.
type BoxRow struct {
	// Prefix, ASN, CC and NetworkName are the answering hop's (Prefix is
	// "" for a hop recorded without one: private, CGNAT, the vantage's own
	// network); Class its class.
	Prefix      string `json:"prefix"`
	ASN         string `json:"asn"`
	CC          string `json:"cc"`
	NetworkName string `json:"network_name"`
	Class       string `json:"class"`
	// Networks are the vantage networks (ASNs) whose traces it answered,
	// Targets the names, Interference the distinct actions.
	Networks     []string `json:"networks"`
	Targets      []string `json:"targets"`
	Interference []string `json:"interference"`
	// Hops are the distinct hop counts at which it answered.
	Hops []int `json:"hops"`
	// Shared is true when it answered for more than one vantage network;
	// SameASN counts the vantage networks answered by any box of its AS
	// number (the same operator, another prefix).
	Shared  bool `json:"shared"`
	SameASN int  `json:"same_asn_networks"`
}

// traceAgg folds trace records into a WhereResult, within the budget.
type traceAgg struct {
	charge func(int) bool
	traces int
	rows   map[[2]string]*traceRow
	names  map[string]netName
}

type traceRow struct {
	row WhereRow
}

type netName struct {
	name string
	t    time.Time
}

func newTraceAgg(charge func(int) bool) *traceAgg {
	return &traceAgg{charge: charge, rows: map[[2]string]*traceRow{}, names: map[string]netName{}}
}

// findingCost estimates the bytes a finding keeps.
func findingCost(f *measurement.TraceFinding) int {
	n := rowCost + len(f.Summary) + len(f.SilentHops)*8
	for _, h := range []*measurement.TraceHop{f.AnsweringHop, f.BeforeHop} {
		if h != nil {
			n += entryCost + len(h.Prefix) + len(h.ASN) + len(h.CC) + len(h.Network)
		}
	}
	return n
}

func (ta *traceAgg) add(rec *Record) {
	ta.traces++
	f := rec.TestKeys.TraceFinding
	if f == nil {
		f = &measurement.TraceFinding{}
	}
	if name := rec.ProbeNetworkName; name != "" {
		if old, ok := ta.names[rec.ProbeASN]; !ok || rec.Time.After(old.t) || rec.Time.Equal(old.t) && name < old.name {
			if ta.charge(entryCost + len(name)) {
				ta.names[rec.ProbeASN] = netName{name, rec.Time}
			}
		}
	}
	k := [2]string{rec.ProbeASN, rec.Domain}
	r := ta.rows[k]
	if r == nil {
		if !ta.charge(rowCost + len(k[0]) + len(k[1])) {
			return
		}
		r = &traceRow{row: WhereRow{ASN: rec.ProbeASN, Domain: rec.Domain}}
		ta.rows[k] = r
	}
	r.row.Traces++
	// The latest trace (ties: the lexically first source), so the row
	// does not depend on the order of the input.
	if r.row.Source == "" || rec.Time.After(r.row.Time) || rec.Time.Equal(r.row.Time) && rec.Source < r.row.Source {
		if !ta.charge(findingCost(f) + len(rec.Source)) {
			return
		}
		r.row.Time, r.row.Source, r.row.Finding = rec.Time, rec.Source, *f
	}
}

// interfered reports whether f says a box answered the target in place
// of its server.
func interfered(f *measurement.TraceFinding) bool {
	return f.Interference != "" && f.Interference != measurement.InterferenceNone
}

func (ta *traceAgg) result() *WhereResult {
	if ta.traces == 0 {
		return nil
	}
	res := &WhereResult{Traces: ta.traces, Rows: []WhereRow{}, Boxes: []BoxRow{}}
	for _, r := range ta.rows {
		row := r.row
		row.Network = ta.names[row.ASN].name
		if row.Finding.SilentHops == nil {
			row.Finding.SilentHops = []int{}
		}
		res.Rows = append(res.Rows, row)
	}
	slices.SortFunc(res.Rows, func(x, y WhereRow) int {
		return cmp.Or(compareASN(x.ASN, y.ASN), cmp.Compare(x.Domain, y.Domain))
	})
	type box struct {
		row                  BoxRow
		nets, targets, inter map[string]struct{}
		hops                 map[int]struct{}
	}
	boxes := map[[2]string]*box{}
	asnNets := map[string]map[string]struct{}{}
	for _, row := range res.Rows {
		f := &row.Finding
		h := f.AnsweringHop
		if !interfered(f) || h == nil || h.ASN == "" && h.Prefix == "" {
			continue
		}
		k := [2]string{h.ASN, h.Prefix}
		b := boxes[k]
		if b == nil {
			b = &box{row: BoxRow{Prefix: h.Prefix, ASN: h.ASN, CC: h.CC, NetworkName: h.Network, Class: h.Class},
				nets: map[string]struct{}{}, targets: map[string]struct{}{}, inter: map[string]struct{}{}, hops: map[int]struct{}{}}
			boxes[k] = b
		}
		b.nets[row.ASN] = struct{}{}
		b.targets[row.Domain] = struct{}{}
		b.inter[f.Interference] = struct{}{}
		if f.InterferenceHop != nil {
			b.hops[*f.InterferenceHop] = struct{}{}
		}
		if h.ASN != "" {
			if asnNets[h.ASN] == nil {
				asnNets[h.ASN] = map[string]struct{}{}
			}
			asnNets[h.ASN][row.ASN] = struct{}{}
		}
	}
	for _, b := range boxes {
		r := b.row
		r.Networks, r.Targets, r.Interference = sortedASNs(b.nets), sortedKeys(b.targets), sortedKeys(b.inter)
		r.Hops = make([]int, 0, len(b.hops))
		for h := range b.hops {
			r.Hops = append(r.Hops, h)
		}
		slices.Sort(r.Hops)
		r.Shared = len(r.Networks) > 1
		r.SameASN = len(asnNets[r.ASN])
		res.Boxes = append(res.Boxes, r)
	}
	slices.SortFunc(res.Boxes, func(x, y BoxRow) int {
		return cmp.Or(compareASN(x.ASN, y.ASN), cmp.Compare(x.Prefix, y.Prefix))
	})
	return res
}

// traceFinding decodes a trace record's test_keys.finding with its lists
// cut to MaxEntries and its strings bounded (trimArrays), as the
// interception finding is: a silent_hops of millions costs a scan.
func (d *decoder) traceFinding(val []byte, dst **measurement.TraceFinding) error {
	const name = "test_keys.finding"
	if val == nil || string(val) == "null" {
		*dst = nil
		return nil
	}
	if val[0] != '{' {
		return typeError(name, val, "an object")
	}
	trimmed, cut, err := trimArrays(val, d.lim.MaxEntries, d.lim.MaxStringBytes)
	if err != nil {
		return fmt.Errorf("field %s: %v", name, err)
	}
	d.entriesSkipped += cut
	f := new(measurement.TraceFinding)
	if err := unmarshalField("test_keys.", []byte("finding"), trimmed, f); err != nil {
		return err
	}
	*dst = f
	return nil
}

// HopText is how a hop prints in the tables: its prefix and network for a
// public one ("198.51.100.0/24 AS64501"), its class otherwise ("private",
// "vantage AS64500"); "" when unknown.
func HopText(h *measurement.TraceHop) string {
	if h == nil {
		return ""
	}
	var parts []string
	switch {
	case h.Prefix != "":
		parts = append(parts, h.Prefix)
	case h.Class != "" && h.Class != measurement.HopPublic:
		parts = append(parts, h.Class)
	}
	if h.ASN != "" {
		parts = append(parts, h.ASN)
	}
	if h.Destination {
		parts = append(parts, "(destination)")
	}
	return strings.Join(parts, " ")
}
