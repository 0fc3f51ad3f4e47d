package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"kzprobe/analysis"
	"kzprobe/measurement"
	"kzprobe/probe/chain"
)

// Filter restricts the measurements a query reads; every part is pushed
// down into the SQL's WHERE (ts is the partition key, probe_cc and
// probe_asn lead the sorting key).
type Filter struct {
	// Since and Until keep Since <= time < Until; a zero bound is open.
	Since, Until time.Time
	// CC keeps these probe_cc ("KZ"); ASN these probe_asn ("AS9198").
	// Empty keeps all.
	CC, ASN []string
}

// where returns the WHERE conditions: all of f when withTime, else only
// the CC and ASN parts.
func (f Filter) where(withTime bool) string {
	var c []string
	if withTime && !f.Since.IsZero() {
		c = append(c, "ts >= "+strconv.FormatInt(f.Since.Unix(), 10))
	}
	if withTime && !f.Until.IsZero() {
		c = append(c, "ts < "+strconv.FormatInt(f.Until.Unix(), 10))
	}
	if len(f.CC) > 0 {
		c = append(c, "probe_cc IN ("+quoteList(f.CC)+")")
	}
	if len(f.ASN) > 0 {
		c = append(c, "probe_asn IN ("+quoteList(f.ASN)+")")
	}
	if len(c) == 0 {
		return "1"
	}
	return strings.Join(c, " AND ")
}

// notInTables keeps out the records that the analysis puts in no table
// but their own (analysis.Record.IsSweep, IsTrace: Result.Sweep and
// Result.Where, computed by sideTables).
var notInTables = "test_name NOT IN (" + quoteList([]string{measurement.SweepTestName, measurement.TraceTestName}) + ")"

// timeBounded reports whether f has a time bound.
func (f Filter) timeBounded() bool { return !f.Since.IsZero() || !f.Until.IsZero() }

// quote makes s a ClickHouse string literal.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case 0:
			b.WriteString(`\0`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quote(s)
	}
	return strings.Join(q, ", ")
}

// unix turns seconds into a UTC time.
func unix(s int64) time.Time { return time.Unix(s, 0).UTC() }

// Analyze computes the report's tables in SQL over the stored
// measurements that f keeps, and shapes them with the analysis package
// (analysis.FromTables), so that the Result equals the one `kzprobe
// analyze` builds from the same files (but for the file-reading parts of
// the summary: files, bad lines, the judge's counts). The scans, groups and
// filters run in ClickHouse; Go receives one row per intermediate,
// network, domain, day of sightings, and sighting outside every window.
// cfg gives the bounds (MaxGapCandidates, MaxGapExamples, MaxWarnings).
func (db *DB) Analyze(ctx context.Context, f Filter, cfg analysis.Config) (*analysis.Result, error) {
	t, old, err := db.tables(ctx, f, cfg)
	if err != nil {
		return nil, err
	}
	cfg.Since, cfg.Until = f.Since, f.Until
	a := analysis.FromTables(cfg, t)
	if old > 0 {
		a.Warn(oldRowsWarning(old))
	}
	files, err := db.sources(ctx)
	if err != nil {
		return nil, err
	}
	a.AddFileStats(files...)
	return a.Result(), nil
}

// from returns table, with FINAL when the rows that w keeps hold a
// measurement (key: its uid, or uid and hs) more than once. FINAL
// deduplicates at read time, and costs ClickHouse 18.16 a merge per part
// (30 times the plain scan on the report fixture); rows stored once, or
// whose copies the background merges have already folded, need none. The
// check counts hashes of the key: a collision makes the count lower, so it
// can only choose FINAL needlessly, never skip it wrongly.
func (db *DB) from(ctx context.Context, table, key, w string) (string, error) {
	name := db.table(table)
	var n, u int64
	err := queryInto(ctx, db.clients[0], `SELECT count() AS N, uniqExact(cityHash64(`+key+`)) AS U FROM `+name+` WHERE `+w, func(r struct{ N, U int64 }) {
		n, u = r.N, r.U
	})
	if err != nil {
		return "", err
	}
	if n != u {
		return name + " FINAL", nil
	}
	return name, nil
}

// outside counts the measurements that f's country and network keep but
// its time bounds do not.
func (db *DB) outside(ctx context.Context, f Filter) (int, error) {
	w := f.where(false) + " AND NOT (" + f.where(true) + ")"
	m, err := db.from(ctx, TableMeasurements, "uid", w)
	if err != nil {
		return 0, err
	}
	var n int
	err = queryInto(ctx, db.clients[0], `SELECT count() AS N FROM `+m+` WHERE `+w, func(r struct{ N int }) { n = r.N })
	return n, err
}

// sources returns the files (or the collector's reports) the stored
// measurements were read from, with how many each gave, as the summary's
// files: what the file-based analysis would read to see the same data.
func (db *DB) sources(ctx context.Context) ([]analysis.FileStats, error) {
	var out []analysis.FileStats
	m, err := db.from(ctx, TableMeasurements, "uid", "1")
	if err != nil {
		return nil, err
	}
	err = queryInto(ctx, db.clients[0], `SELECT replaceRegexpOne(source, ':@?[0-9]+$', '') AS Path, count() AS Records
FROM `+m+` GROUP BY Path ORDER BY Path`, func(r struct {
		Path    string
		Records int
	}) {
		out = append(out, analysis.FileStats{Path: r.Path, Records: r.Records})
	})
	return out, err
}

// parallel runs fns at once and returns their errors joined: the
// queries of one analysis are independent, and each uses the server's
// cores on its own only in part.
func parallel(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = fn() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// tables computes the Tables in SQL; old counts the side tables' records
// stored before their columns were (sideTables).
func (db *DB) tables(ctx context.Context, f Filter, cfg analysis.Config) (t analysis.Tables, old int, err error) {
	c := db.clients[0]
	var m, s string
	err = parallel(
		func() (err error) { m, err = db.from(ctx, TableMeasurements, "uid", f.where(true)); return err },
		func() (err error) { s, err = db.from(ctx, TableSightings, "uid, hs", f.where(true)); return err },
	)
	// The sightings table holds none of the side tables' records.
	w := f.where(true) + " AND " + notInTables
	ws := f.where(true)
	if err != nil {
		return t, 0, err
	}

	type summaryRow struct{ N, Handshakes, Intercepted, First, Last int64 }
	type networkRow struct {
		ASN                       string
		Measurements, Intercepted int
		First, Last               int64
		Domains                   []string
	}
	type nameRow struct {
		ASN, Name string
		T         int64
	}
	type intersRow struct {
		Key    string
		Inters []string
	}
	type domainRow struct {
		Domain                    string
		Measurements, Intercepted int
		First, Last               int64
		Networks                  []string
	}
	type interRow struct {
		SHA1, SHA256, Serial, Subject, Issuer string
		NotBefore, NotAfter                   int64
		Signer, SignerName                    string
		Known, Rank                           int
		Sightings, Measurements               int
		First, Last                           int64
		Outside                               int
		Networks, Domains                     []string
	}
	type dayRow struct {
		SHA1            string
		Day             int64
		Inside, Outside int
	}
	var (
		sum                  summaryRow
		outsideTime          int64
		netRows              []networkRow
		names                []nameRow
		netInters, domInters []intersRow
		domRows              []domainRow
		interRows            []interRow
		days                 []dayRow
	)
	collect := func(sql string, dst any) func() error {
		return func() error {
			switch d := dst.(type) {
			case *summaryRow:
				return queryInto(ctx, c, sql, func(r summaryRow) { *d = r })
			case *[]networkRow:
				return queryInto(ctx, c, sql, func(r networkRow) { *d = append(*d, r) })
			case *[]nameRow:
				return queryInto(ctx, c, sql, func(r nameRow) { *d = append(*d, r) })
			case *[]intersRow:
				return queryInto(ctx, c, sql, func(r intersRow) { *d = append(*d, r) })
			case *[]domainRow:
				return queryInto(ctx, c, sql, func(r domainRow) { *d = append(*d, r) })
			case *[]interRow:
				return queryInto(ctx, c, sql, func(r interRow) { *d = append(*d, r) })
			case *[]dayRow:
				return queryInto(ctx, c, sql, func(r dayRow) { *d = append(*d, r) })
			}
			return fmt.Errorf("clickhouse: no decoder for %T", dst)
		}
	}
	const arrayJoin = ` ARRAY JOIN inter_sha1 AS sha1, inter_sha256 AS sha256, inter_serial AS serial,
  inter_subject AS subject, inter_issuer AS issuer, inter_not_before AS nb, inter_not_after AS na,
  inter_signer_sha1 AS signer_sha1, inter_signer_name AS signer_name, inter_known AS known`
	queries := []func() error{
		// The summary's counts.
		collect(`SELECT count() AS N, sum(handshakes) AS Handshakes, sum(intercepted) AS Intercepted,
  min(ts) AS First, max(ts) AS Last FROM `+m+` WHERE `+w, &sum),
		// Networks: counts, intercepted domains, the names, the
		// intermediates seen.
		collect(`SELECT probe_asn AS ASN, count() AS Measurements, sum(intercepted) AS Intercepted,
  minIf(ts, intercepted = 1) AS First, maxIf(ts, intercepted = 1) AS Last,
  groupUniqArrayIf(domain, intercepted = 1 AND domain != '') AS Domains
FROM `+m+` WHERE `+w+` GROUP BY probe_asn`, &netRows),
		collect(`SELECT probe_asn AS ASN, network_name AS Name, max(ts) AS T
FROM `+m+` WHERE `+w+` AND network_name != '' GROUP BY probe_asn, network_name`, &names),
		collect(`SELECT probe_asn AS Key, groupUniqArray(sha1) AS Inters
FROM `+s+` ARRAY JOIN inter_sha1 AS sha1 WHERE `+ws+` GROUP BY probe_asn`, &netInters),
		// Domains (a sighting's domain is its measurement's: a
		// measurement without one has no handshake with a server name
		// either).
		collect(`SELECT domain AS Domain, count() AS Measurements, sum(intercepted) AS Intercepted,
  minIf(ts, intercepted = 1) AS First, maxIf(ts, intercepted = 1) AS Last,
  groupUniqArrayIf(probe_asn, intercepted = 1) AS Networks
FROM `+m+` WHERE `+w+` AND domain != '' GROUP BY domain`, &domRows),
		collect(`SELECT domain AS Key, groupUniqArray(sha1) AS Inters
FROM `+s+` ARRAY JOIN inter_sha1 AS sha1 WHERE `+ws+` AND domain != '' GROUP BY domain`, &domInters),
		// Intermediates, one row each, and their sightings per day.
		collect(`SELECT sha1 AS SHA1, any(sha256) AS SHA256, any(serial) AS Serial, any(subject) AS Subject,
  any(issuer) AS Issuer, any(nb) AS NotBefore, any(na) AS NotAfter, any(signer_sha1) AS Signer,
  any(signer_name) AS SignerName, max(known) AS Known,
  max(multiIf(evidence = `+quote(chain.EvidenceSignature)+`, 3, evidence = `+quote(chain.EvidenceFingerprint)+`, 2, evidence = `+quote(chain.EvidenceIssuerName)+`, 1, 0)) AS Rank,
  count() AS Sightings, uniqExact(uid) AS Measurements, min(ts) AS First, max(ts) AS Last,
  countIf(ts < nb OR ts > na) AS Outside,
  groupUniqArray(probe_asn) AS Networks, groupUniqArrayIf(domain, domain != '') AS Domains
FROM `+s+arrayJoin+` WHERE `+ws+` GROUP BY sha1`, &interRows),
		collect(`SELECT sha1 AS SHA1, intDiv(ts, 86400) AS Day,
  countIf(ts >= nb AND ts <= na) AS Inside, countIf(ts < nb OR ts > na) AS Outside
FROM `+s+` ARRAY JOIN inter_sha1 AS sha1, inter_not_before AS nb, inter_not_after AS na
WHERE `+ws+` GROUP BY sha1, Day`, &days),
	}
	queries = append(queries, func() (err error) {
		t.SideTables, old, err = db.sideTables(ctx, m, f.where(true))
		return err
	})
	if f.timeBounded() {
		queries = append(queries, func() error {
			n, err := db.outside(ctx, f)
			outsideTime = int64(n)
			return err
		})
	}
	if err := parallel(queries...); err != nil {
		return t, 0, err
	}

	t.Measurements, t.Handshakes, t.Intercepted = int(sum.N), int(sum.Handshakes), int(sum.Intercepted)
	t.OutsideTimeWindow = int(outsideTime)
	if sum.N > 0 {
		t.First, t.Last = unix(sum.First), unix(sum.Last)
	}
	nets := map[string]*analysis.NetworkRow{}
	for _, r := range netRows {
		n := &analysis.NetworkRow{ASN: r.ASN, Measurements: r.Measurements, Intercepted: r.Intercepted, Domains: r.Domains}
		if r.Intercepted > 0 {
			n.FirstSeen, n.LastSeen = unix(r.First), unix(r.Last)
		}
		nets[r.ASN] = n
	}
	nameTime := map[string]int64{}
	for _, r := range names {
		// The latest name; of names equally late, the lexically first
		// (as Analysis.Add).
		n := nets[r.ASN]
		if n == nil {
			continue
		}
		if bt, ok := nameTime[r.ASN]; !ok || r.T > bt || r.T == bt && r.Name < n.Name {
			n.Name, nameTime[r.ASN] = r.Name, r.T
		}
	}
	for _, r := range netInters {
		if n := nets[r.Key]; n != nil {
			n.Intermediates = r.Inters
		}
	}
	for _, n := range nets {
		t.Networks = append(t.Networks, *n)
	}
	doms := map[string]*analysis.DomainRow{}
	for _, r := range domRows {
		d := &analysis.DomainRow{Domain: r.Domain, Measurements: r.Measurements, Intercepted: r.Intercepted, Networks: r.Networks}
		if r.Intercepted > 0 {
			d.FirstSeen, d.LastSeen = unix(r.First), unix(r.Last)
		}
		doms[r.Domain] = d
	}
	for _, r := range domInters {
		if d := doms[r.Key]; d != nil {
			d.Intermediates = r.Inters
		}
	}
	for _, d := range doms {
		t.Domains = append(t.Domains, *d)
	}
	inters := map[string]*analysis.IntermediateRow{}
	for _, r := range interRows {
		inters[r.SHA1] = &analysis.IntermediateRow{
			SHA1: r.SHA1, SHA256: r.SHA256, Serial: r.Serial, Subject: r.Subject, Issuer: r.Issuer,
			NotBefore: unix(r.NotBefore), NotAfter: unix(r.NotAfter),
			SignerRootSHA1: r.Signer, SignerRootName: r.SignerName, Known: r.Known == 1,
			Evidence:  rankEvidence[r.Rank],
			FirstSeen: unix(r.First), LastSeen: unix(r.Last),
			Sightings: r.Sightings, Measurements: r.Measurements, OutsideWindow: r.Outside,
			Networks: r.Networks, Domains: r.Domains,
		}
	}
	for _, r := range days {
		if ir := inters[r.SHA1]; ir != nil {
			ir.Days = append(ir.Days, analysis.DayCount{Day: unix(r.Day * 86400), Inside: r.Inside, Outside: r.Outside})
		}
	}
	var windows []analysis.Window
	for _, ir := range inters {
		t.Intermediates = append(t.Intermediates, *ir)
		windows = append(windows, ir.Window())
	}

	// The sightings outside every window: the gaps'.
	windows = merge(windows)
	if len(windows) == 0 {
		return t, old, nil
	}
	var lo, hi []string
	for _, wd := range windows {
		lo = append(lo, strconv.FormatInt(wd.NotBefore.Unix(), 10))
		hi = append(hi, strconv.FormatInt(wd.NotAfter.Unix(), 10))
	}
	outside := `NOT arrayExists((a, b) -> ts >= a AND ts <= b, [` + strings.Join(lo, ",") + `], [` + strings.Join(hi, ",") + `])`
	max := cfg.MaxGapCandidates
	if max == 0 {
		max = analysis.DefaultMaxGapCandidates
	}
	err = queryInto(ctx, c, `SELECT ts AS T, cityHash64(uid) AS Rec, sha1 AS SHA1, probe_asn AS ASN, domain AS Domain, source AS Source
FROM `+s+` ARRAY JOIN inter_sha1 AS sha1 WHERE `+ws+` AND `+outside+`
ORDER BY ts, source, sha1 LIMIT `+strconv.Itoa(max+1), func(r struct {
		T                         int64
		Rec                       uint64
		SHA1, ASN, Domain, Source string
	}) {
		t.Outside = append(t.Outside, analysis.GapSighting{Time: unix(r.T), Record: r.Rec, Intermediate: r.SHA1, ASN: r.ASN, Domain: r.Domain, Source: r.Source})
	})
	if err != nil {
		return t, 0, err
	}
	if len(t.Outside) > max {
		t.Outside = t.Outside[:max]
		err = queryInto(ctx, c, `SELECT count() AS N FROM `+s+` ARRAY JOIN inter_sha1 AS sha1 WHERE `+ws+` AND `+outside, func(r struct{ N int }) {
			t.Dropped = r.N - max
		})
		if err != nil {
			return t, 0, fmt.Errorf("counting the sightings in gaps: %w", err)
		}
	}
	return t, old, nil
}

var rankEvidence = map[int]string{3: chain.EvidenceSignature, 2: chain.EvidenceFingerprint, 1: chain.EvidenceIssuerName}

// merge sorts windows and merges those that overlap or touch (as the
// analysis does).
func merge(ws []analysis.Window) []analysis.Window {
	slices.SortFunc(ws, func(x, y analysis.Window) int { return x.NotBefore.Compare(y.NotBefore) })
	var out []analysis.Window
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

// Compare computes compare's domain x network matrix in SQL over the
// stored measurements that f keeps: per cell the latest measurement's
// verdict (of two equally late, the one whose source sorts last), per
// column the counts and the latest name. With cfg.DeriveVerdicts, records
// without a kzprobe verdict (OONI's) get one from their chains, as in
// analysis.Comparison; otherwise they are counted as skipped, with a
// warning naming their file.
func (db *DB) Compare(ctx context.Context, f Filter, cfg analysis.Config) (*analysis.Matrix, error) {
	c := db.clients[0]
	m, err := db.from(ctx, TableMeasurements, "uid", f.where(true))
	w := f.where(true) + " AND " + notInTables
	if err != nil {
		return nil, err
	}
	own := `kzprobe = 1 AND verdict != ''`
	keep := own
	if cfg.DeriveVerdicts {
		keep = "1"
	}
	rows := `(SELECT domain, vantage, probe_asn, network_name, ts, source,
  if(` + own + `, verdict, multiIf(intercepted = 1, ` + quote(analysis.DerivedISCA) + `, handshakes > 0, ` + quote(analysis.DerivedNoISCA) + `, ` + quote(analysis.DerivedNoChain) + `)) AS v,
  if(file_interception = 1, file_inter_sha1, judged_inter_sha1) AS inter,
  if(file_interception = 1, file_browser_error, judged_browser_error) AS browser_error
FROM ` + m + ` WHERE ` + w + ` AND ` + keep + `)`
	var t analysis.CompareTables
	err = queryInto(ctx, c, `SELECT domain AS Domain, vantage AS Network, count() AS Measurements, groupUniqArray(v) AS Verdicts,
  argMax(v, (ts, source)) AS Verdict, max(ts) AS T, argMax(source, (ts, source)) AS Source,
  argMax(inter, (ts, source)) AS Intermediate, argMax(browser_error, (ts, source)) AS BrowserError
FROM `+rows+` GROUP BY domain, vantage`, func(r struct {
		Domain, Network, Verdict, Source, Intermediate string
		Measurements, BrowserError                     int
		Verdicts                                       []string
		T                                              int64
	}) {
		slices.Sort(r.Verdicts)
		t.Cells = append(t.Cells, analysis.Cell{
			Domain: r.Domain, Network: r.Network, Verdict: r.Verdict, Time: unix(r.T),
			Intermediate: r.Intermediate, BrowserError: r.BrowserError == 1,
			Measurements: r.Measurements, Verdicts: r.Verdicts, Source: r.Source,
		})
	})
	if err != nil {
		return nil, err
	}
	err = queryInto(ctx, c, `SELECT vantage AS Key, any(probe_asn) AS ASN, argMaxIf(network_name, (ts, source), network_name != '') AS Name,
  count() AS Measurements, min(ts) AS First, max(ts) AS Last
FROM `+rows+` GROUP BY vantage`, func(r struct {
		Key, ASN, Name string
		Measurements   int
		First, Last    int64
	}) {
		t.Networks = append(t.Networks, analysis.Vantage{Key: r.Key, ASN: r.ASN, Name: r.Name, Measurements: r.Measurements, First: unix(r.First), Last: unix(r.Last)})
	})
	if err != nil {
		return nil, err
	}
	var warnings []analysis.Warning
	if !cfg.DeriveVerdicts {
		err = queryInto(ctx, c, `SELECT splitByChar(':', source)[1] AS File, count() AS N
FROM `+m+` WHERE `+w+` AND NOT (`+own+`) GROUP BY File ORDER BY File`, func(r struct {
			File string
			N    int
		}) {
			t.SkippedNotKzprobe += r.N
			warnings = append(warnings, analysis.Warning{Source: r.File, Message: "holds measurements without a kzprobe verdict (OONI's?); compare skips them, analyze reads them"})
		})
		if err != nil {
			return nil, err
		}
	}
	if f.timeBounded() {
		if t.OutsideTimeWindow, err = db.outside(ctx, f); err != nil {
			return nil, err
		}
	}
	side, old, err := db.sideTables(ctx, m, f.where(true))
	if err != nil {
		return nil, err
	}
	t.SideTables = side
	if old > 0 {
		warnings = append(warnings, oldRowsWarning(old))
	}
	files, err := db.sources(ctx)
	if err != nil {
		return nil, err
	}
	cfg.Since, cfg.Until = f.Since, f.Until
	return analysis.MatrixFromTables(cfg, t, files, warnings), nil
}
