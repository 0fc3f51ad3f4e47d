package analysis

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"kzprobe/measurement"
)

// The records of `kzprobe sweep` (test_name measurement.SweepTestName) are
// not measurements of a site: one handshake with one neutral endpoint, the
// SNI the only change. They are therefore kept out of the report's tables
// (intermediates, networks, domains, gaps, the compare matrix), whose
// counts and denominators are the measurements of sites, and tabulated on
// their own ([SweepResult]): per network, the names intercepted or blocked
// by SNI, first and last seen, the intermediates, and whether a `kzprobe
// run` measurement of the same name on the same network confirmed the
// finding on the site's real addresses.

// SweepKeys is the part of a sweep record's test_keys.sni_sweep
// (measurement.SNISweep) that the analysis reads; nil in other records.
type SweepKeys struct {
	// Endpoint is the neutral endpoint's "ip:port".
	Endpoint string `json:"endpoint"`
	// EndpointPin is the endpoint's key pin, "sha256:<base64>".
	EndpointPin string `json:"endpoint_pin"`
	// ControlSNI is the sweep's control name.
	ControlSNI string `json:"control_sni"`
	// ReasonCode is the sweep's rule that decided the verdict
	// (measurement.SweepPinMatch, ...).
	ReasonCode string `json:"reason_code"`
}

// IsSweep reports whether r is a record of `kzprobe sweep`.
func (r *Record) IsSweep() bool { return r.TestName == measurement.SweepTestName }

// isRun reports whether r is a record of `kzprobe run` with a verdict,
// the measurement that can confirm a sweep's finding.
func (r *Record) isRun() bool {
	return r.TestName == measurement.TestName && r.TestKeys.Verdict != ""
}

// Whether a `kzprobe run` measurement confirmed a name found by the sweep
// (SweepRow.ConfirmedByRun).
const (
	// RunConfirmed: a run measurement of the name on the same network
	// found what the sweep found: mitm_isca or mitm_other for a name
	// intercepted by SNI, tls_blocking for one blocked by SNI.
	RunConfirmed = "yes"
	// RunNotConfirmed: run measured the name on that network, and none of
	// its verdicts is the sweep's finding (RunVerdicts says what it saw).
	RunNotConfirmed = "no"
	// RunNotMeasured: no run measurement of the name on that network.
	RunNotMeasured = "not_run"
)

// SweepResult is what the sweep records say: the names found, per
// network, and per network what was swept.
type SweepResult struct {
	// Measurements counts the sweep records read (inside Since/Until),
	// one per name tried; Intercepted, Blocked, Clean and Errors count
	// them by verdict (sni_intercepted_isca and sni_intercepted_other
	// both count as intercepted; Errors counts error and any verdict
	// outside the sweep's vocabulary).
	Measurements int `json:"measurements"`
	Intercepted  int `json:"intercepted"`
	Blocked      int `json:"blocked"`
	Clean        int `json:"clean"`
	Errors       int `json:"errors"`
	// Confirmed, NotConfirmed and NotRun count the rows of Names by
	// ConfirmedByRun.
	Confirmed    int `json:"confirmed_by_run"`
	NotConfirmed int `json:"not_confirmed_by_run"`
	NotRun       int `json:"not_run"`
	// Networks are the networks swept from, ordered by AS number.
	Networks []SweepNetworkRow `json:"networks"`
	// Names are the names intercepted or blocked by SNI, one row per
	// network and name, ordered by network then name. A name swept clean
	// only is counted in Networks, not listed.
	Names []SweepRow `json:"names"`
}

// SweepNetworkRow is one network swept from.
type SweepNetworkRow struct {
	// ASN is "AS<number>", or UnlabelledASN.
	ASN string `json:"asn"`
	// Name is the probe_network_name of the latest sweep record that had
	// one.
	Name string `json:"name"`
	// Measurements counts the sweep records (names tried) and the others
	// count them by verdict, as in SweepResult.
	Measurements int `json:"measurements"`
	Intercepted  int `json:"intercepted"`
	Blocked      int `json:"blocked"`
	Clean        int `json:"clean"`
	Errors       int `json:"errors"`
	// First and Last bound the sweep records.
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`
	// Endpoints are the neutral endpoints swept against, "ip:port".
	Endpoints []string `json:"endpoints"`
	// Names counts the names found (rows of SweepResult.Names), Confirmed
	// those a run measurement confirmed.
	Names     int `json:"names_found"`
	Confirmed int `json:"confirmed_by_run"`
}

// SweepRow is one name intercepted or blocked by SNI on one network.
type SweepRow struct {
	ASN     string `json:"asn"`
	Network string `json:"network"`
	Domain  string `json:"domain"`
	// Verdict is the verdict of the latest finding (sni_intercepted_isca,
	// sni_intercepted_other or sni_blocked); Verdicts lists the distinct
	// ones.
	Verdict  string   `json:"verdict"`
	Verdicts []string `json:"verdicts"`
	// Intercepted and Blocked count the sweep records that found the
	// name intercepted, and blocked.
	Intercepted int `json:"intercepted"`
	Blocked     int `json:"blocked"`
	// FirstSeen and LastSeen bound the findings.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Intermediates are the SHA-1s of the interception intermediates of
	// the chains presented for the name, judged again as the
	// intermediates table judges them (empty when no chain leads to the
	// interception PKI).
	Intermediates []string `json:"intermediates"`
	// ConfirmedByRun is RunConfirmed, RunNotConfirmed or RunNotMeasured;
	// RunVerdicts are the distinct verdicts of the run measurements of
	// the name on the network.
	ConfirmedByRun string   `json:"confirmed_by_run"`
	RunVerdicts    []string `json:"run_verdicts"`
	// Source is the latest finding's "file:line".
	Source string `json:"source"`
}

// sweepAgg folds sweep records into a SweepResult, and remembers the
// verdicts of run records per network and name to confirm the findings
// whatever the order of the input. Its memory is bounded as the tables
// are (charge).
type sweepAgg struct {
	// charge takes n bytes of the owner's table budget, false when full.
	charge func(n int) bool

	records, intercepted, blocked, clean, errors int

	nets map[string]*sweepNet
	rows map[[2]string]*sweepName
	// runs are the distinct verdicts of run records, per ASN and domain.
	runs map[[2]string][]string
}

type sweepNet struct {
	row      SweepNetworkRow
	nameTime time.Time
	eps      map[string]struct{}
}

type sweepName struct {
	row    SweepRow
	inters map[string]struct{}
	latest time.Time
}

func newSweepAgg(charge func(int) bool) *sweepAgg {
	return &sweepAgg{charge: charge, nets: map[string]*sweepNet{}, rows: map[[2]string]*sweepName{}, runs: map[[2]string][]string{}}
}

// addRun remembers the verdict of a run record of rec.Domain on rec's
// network.
func (s *sweepAgg) addRun(rec *Record) {
	if rec.Domain == "" {
		return
	}
	k := [2]string{rec.ProbeASN, rec.Domain}
	vs, ok := s.runs[k]
	if slices.Contains(vs, rec.TestKeys.Verdict) {
		return
	}
	cost := entryCost + len(rec.TestKeys.Verdict)
	if !ok {
		cost += rowCost + len(k[0]) + len(k[1])
	}
	if !s.charge(cost) {
		return
	}
	vs = append(vs, rec.TestKeys.Verdict)
	slices.Sort(vs)
	s.runs[k] = vs
}

// add folds one sweep record; facts are its chains' facts (nil entries
// for handshakes without a chain).
func (s *sweepAgg) add(rec *Record, facts []*ChainFacts) {
	s.records++
	v := rec.TestKeys.Verdict
	n := s.net(rec)
	if n != nil {
		n.row.Measurements++
		if n.row.First.IsZero() || rec.Time.Before(n.row.First) {
			n.row.First = rec.Time
		}
		if rec.Time.After(n.row.Last) {
			n.row.Last = rec.Time
		}
		if sk := rec.TestKeys.SNISweep; sk != nil && sk.Endpoint != "" {
			if _, ok := n.eps[sk.Endpoint]; !ok && s.charge(entryCost+len(sk.Endpoint)) {
				n.eps[sk.Endpoint] = struct{}{}
			}
		}
	}
	if n == nil {
		n = &sweepNet{} // counted nowhere: the tables are full
	}
	count := func(total, perNet *int) { *total++; *perNet++ }
	switch measurement.Verdict(v) {
	case measurement.VerdictSNIInterceptedISCA, measurement.VerdictSNIInterceptedOther:
		count(&s.intercepted, &n.row.Intercepted)
	case measurement.VerdictSNIBlocked:
		count(&s.blocked, &n.row.Blocked)
	case measurement.VerdictClean:
		count(&s.clean, &n.row.Clean)
		return
	default:
		count(&s.errors, &n.row.Errors)
		return
	}
	if rec.Domain == "" {
		return
	}
	k := [2]string{rec.ProbeASN, rec.Domain}
	r := s.rows[k]
	if r == nil {
		if !s.charge(rowCost + len(rec.ProbeASN) + len(rec.Domain) + len(rec.Source)) {
			return
		}
		r = &sweepName{row: SweepRow{ASN: rec.ProbeASN, Domain: rec.Domain}, inters: map[string]struct{}{}}
		s.rows[k] = r
	}
	row := &r.row
	if v == string(measurement.VerdictSNIBlocked) {
		row.Blocked++
	} else {
		row.Intercepted++
	}
	if row.FirstSeen.IsZero() || rec.Time.Before(row.FirstSeen) {
		row.FirstSeen = rec.Time
	}
	if rec.Time.After(row.LastSeen) {
		row.LastSeen = rec.Time
	}
	// The latest finding's verdict and source (ties: the lexically first
	// verdict, then source), so the row does not depend on the order of
	// the input.
	if row.Verdict == "" || rec.Time.After(r.latest) || rec.Time.Equal(r.latest) && cmp.Or(cmp.Compare(v, row.Verdict), cmp.Compare(rec.Source, row.Source)) < 0 {
		if len(rec.Source) <= len(row.Source) || s.charge(len(rec.Source)-len(row.Source)) {
			row.Verdict, row.Source, r.latest = v, rec.Source, rec.Time
		}
	}
	if !slices.Contains(row.Verdicts, v) && s.charge(entryCost+len(v)) {
		row.Verdicts = append(row.Verdicts, v)
		slices.Sort(row.Verdicts)
	}
	for _, f := range facts {
		if f == nil || f.Interception == nil {
			continue
		}
		for _, im := range f.Interception.Intermediates {
			if _, ok := r.inters[im.SHA1]; !ok && s.charge(entryCost+len(im.SHA1)) {
				r.inters[im.SHA1] = struct{}{}
			}
		}
	}
}

// net returns the aggregate of rec's network, named after the latest
// record that gave a name (ties: the lexically first); nil when the
// tables are full.
func (s *sweepAgg) net(rec *Record) *sweepNet {
	n := s.nets[rec.ProbeASN]
	if n == nil {
		if !s.charge(rowCost + len(rec.ProbeASN)) {
			return nil
		}
		n = &sweepNet{row: SweepNetworkRow{ASN: rec.ProbeASN}, eps: map[string]struct{}{}}
		s.nets[rec.ProbeASN] = n
	}
	if name := rec.ProbeNetworkName; name != "" && (n.row.Name == "" || rec.Time.After(n.nameTime) || rec.Time.Equal(n.nameTime) && name < n.row.Name) {
		if len(name) <= len(n.row.Name) || s.charge(len(name)-len(n.row.Name)) {
			n.row.Name, n.nameTime = name, rec.Time
		}
	}
	return n
}

// confirms reports whether the run verdict rv confirms the sweep verdict sv.
func confirms(sv, rv string) bool {
	switch measurement.Verdict(sv) {
	case measurement.VerdictSNIInterceptedISCA, measurement.VerdictSNIInterceptedOther:
		return rv == string(measurement.VerdictMITMISCA) || rv == string(measurement.VerdictMITMOther)
	case measurement.VerdictSNIBlocked:
		return rv == string(measurement.VerdictTLSBlocking)
	}
	return false
}

// isSweepFinding reports whether the sweep verdict v is a finding: a name
// intercepted or blocked by SNI.
func isSweepFinding(v string) bool {
	switch measurement.Verdict(v) {
	case measurement.VerdictSNIInterceptedISCA, measurement.VerdictSNIInterceptedOther, measurement.VerdictSNIBlocked:
		return true
	}
	return false
}

// result builds the SweepResult; nil when no sweep record was read.
func (s *sweepAgg) result() *SweepResult {
	if s.records == 0 {
		return nil
	}
	res := &SweepResult{
		Measurements: s.records, Intercepted: s.intercepted, Blocked: s.blocked, Clean: s.clean, Errors: s.errors,
		Networks: []SweepNetworkRow{}, Names: []SweepRow{},
	}
	for k, r := range s.rows {
		row := r.row
		if n := s.nets[k[0]]; n != nil {
			row.Network = n.row.Name
		}
		row.Intermediates = sortedKeys(r.inters)
		row.RunVerdicts = append([]string{}, s.runs[k]...)
		if row.Verdicts == nil {
			row.Verdicts = []string{}
		}
		row.ConfirmedByRun = RunNotMeasured
		if len(row.RunVerdicts) > 0 {
			row.ConfirmedByRun = RunNotConfirmed
		}
		for _, sv := range row.Verdicts {
			for _, rv := range row.RunVerdicts {
				if confirms(sv, rv) {
					row.ConfirmedByRun = RunConfirmed
				}
			}
		}
		switch row.ConfirmedByRun {
		case RunConfirmed:
			res.Confirmed++
		case RunNotConfirmed:
			res.NotConfirmed++
		default:
			res.NotRun++
		}
		if n := s.nets[k[0]]; n != nil {
			n.row.Names++
			if row.ConfirmedByRun == RunConfirmed {
				n.row.Confirmed++
			}
		}
		res.Names = append(res.Names, row)
	}
	slices.SortFunc(res.Names, func(x, y SweepRow) int {
		return cmp.Or(compareASN(x.ASN, y.ASN), cmp.Compare(x.Domain, y.Domain))
	})
	for _, n := range s.nets {
		row := n.row
		row.Endpoints = sortedKeys(n.eps)
		res.Networks = append(res.Networks, row)
		n.row.Names, n.row.Confirmed = 0, 0 // result may be called again
	}
	slices.SortFunc(res.Networks, func(x, y SweepNetworkRow) int { return compareASN(x.ASN, y.ASN) })
	return res
}

// sweepFacts judges the chains of a sweep record.
func sweepFacts(j *Judge, rec *Record) []*ChainFacts {
	hs := rec.Handshakes()
	facts := make([]*ChainFacts, len(hs))
	for i := range hs {
		facts[i] = j.HandshakeFacts(&hs[i])
	}
	return facts
}

// sweepKeys decodes test_keys.sni_sweep.
func (d *decoder) sweepKeys(val []byte, off int, dst **SweepKeys) error {
	const name = "test_keys.sni_sweep"
	if string(val) == "null" {
		*dst = nil
		return nil
	}
	if val[0] != '{' {
		return typeError(name, val, "an object")
	}
	sk := *dst
	if sk == nil {
		sk = new(SweepKeys)
	}
	err := scanObject(val, off, func(key, val []byte, _ int) error {
		var p *string
		switch string(key) {
		case "endpoint":
			p = &sk.Endpoint
		case "endpoint_pin":
			p = &sk.EndpointPin
		case "control_sni":
			p = &sk.ControlSNI
		case "reason_code":
			p = &sk.ReasonCode
		default:
			return nil
		}
		if string(val) == "null" {
			return nil // encoding/json leaves a string as it was for null
		}
		return d.str(name+".", key, val, p)
	})
	if err != nil {
		return err
	}
	*dst = sk
	return nil
}

// sweepBudget bounds the sweep's tables and the run verdicts kept for
// them (Config.MaxTableBytes, estimated as the report's tables are), on a
// budget of their own, so that sweep records never take a row from the
// report's tables.
type sweepBudget struct {
	// what names the tables in the warning.
	what      string
	max, used int
	// fullAt is the record being added (source) when the budget was
	// first passed, "" while it holds.
	fullAt string
	source string
}

func newSweepBudget(max int, what string) *sweepBudget {
	if max <= 0 {
		max = DefaultMaxTableBytes
	}
	return &sweepBudget{max: max, what: what}
}

func (b *sweepBudget) charge(n int) bool {
	if b.used+n <= b.max {
		b.used += n
		return true
	}
	if b.fullAt == "" {
		b.fullAt = cmp.Or(b.source, "analysis")
	}
	return false
}

// warning says the budget was passed, when records of its kind were read
// (run records alone fill the sweep's with verdicts nobody reads); nil
// otherwise.
func (b *sweepBudget) warning(records int) *Warning {
	if b.fullAt == "" || records == 0 {
		return nil
	}
	return &Warning{Source: b.fullAt, Message: fmt.Sprintf("the %s reached their %d MB bound (MaxTableBytes): from here on no new row or list entry was added to them", b.what, b.max>>20)}
}
