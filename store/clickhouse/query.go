package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"kzprobe/analysis"
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
	t, err := db.tables(ctx, f, cfg)
	if err != nil {
		return nil, err
	}
	cfg.Since, cfg.Until = f.Since, f.Until
	a := analysis.FromTables(cfg, t)
	files, err := db.sources(ctx)
	if err != nil {
		return nil, err
	}
	a.AddFileStats(files...)
	return a.Result(), nil
}

// sources returns the files (or the collector's reports) the stored
// measurements were read from, with how many each gave, as the summary's
// files: what the file-based analysis would read to see the same data.
func (db *DB) sources(ctx context.Context) ([]analysis.FileStats, error) {
	var out []analysis.FileStats
	err := queryInto(ctx, db.clients[0], `SELECT replaceRegexpOne(source, ':@?[0-9]+$', '') AS Path, count() AS Records
FROM `+db.table(TableMeasurements)+` FINAL GROUP BY Path ORDER BY Path`, func(r struct {
		Path    string
		Records int
	}) {
		out = append(out, analysis.FileStats{Path: r.Path, Records: r.Records})
	})
	return out, err
}

func (db *DB) tables(ctx context.Context, f Filter, cfg analysis.Config) (analysis.Tables, error) {
	var t analysis.Tables
	c := db.clients[0]
	m := db.table(TableMeasurements) + " FINAL"
	s := db.table(TableSightings) + " FINAL"
	w := f.where(true)

	// The summary's counts.
	var sum struct {
		N, Handshakes, Intercepted, First, Last int64
	}
	err := queryInto(ctx, c, `SELECT count() AS N, sum(handshakes) AS Handshakes, sum(intercepted) AS Intercepted,
  min(ts) AS First, max(ts) AS Last FROM `+m+` WHERE `+w, func(r struct {
		N, Handshakes, Intercepted, First, Last int64
	}) {
		sum = r
	})
	if err != nil {
		return t, err
	}
	t.Measurements, t.Handshakes, t.Intercepted = int(sum.N), int(sum.Handshakes), int(sum.Intercepted)
	if sum.N > 0 {
		t.First, t.Last = unix(sum.First), unix(sum.Last)
	}
	if f.timeBounded() {
		err := queryInto(ctx, c, `SELECT count() AS N FROM `+m+` WHERE `+f.where(false)+` AND NOT (`+w+`)`, func(r struct{ N int64 }) {
			t.OutsideTimeWindow = int(r.N)
		})
		if err != nil {
			return t, err
		}
	}

	// Networks: counts, intercepted domains, the latest name, the
	// intermediates seen.
	nets := map[string]*analysis.NetworkRow{}
	err = queryInto(ctx, c, `SELECT probe_asn AS ASN, count() AS Measurements, sum(intercepted) AS Intercepted,
  minIf(ts, intercepted = 1) AS First, maxIf(ts, intercepted = 1) AS Last,
  groupUniqArrayIf(domain, intercepted = 1 AND domain != '') AS Domains
FROM `+m+` WHERE `+w+` GROUP BY probe_asn`, func(r struct {
		ASN                       string
		Measurements, Intercepted int
		First, Last               int64
		Domains                   []string
	}) {
		n := &analysis.NetworkRow{ASN: r.ASN, Measurements: r.Measurements, Intercepted: r.Intercepted, Domains: r.Domains}
		if r.Intercepted > 0 {
			n.FirstSeen, n.LastSeen = unix(r.First), unix(r.Last)
		}
		nets[r.ASN] = n
	})
	if err != nil {
		return t, err
	}
	nameTime := map[string]int64{}
	err = queryInto(ctx, c, `SELECT probe_asn AS ASN, network_name AS Name, max(ts) AS T
FROM `+m+` WHERE `+w+` AND network_name != '' GROUP BY probe_asn, network_name`, func(r struct {
		ASN, Name string
		T         int64
	}) {
		// The latest name; of names equally late, the lexically first
		// (as Analysis.Add).
		n := nets[r.ASN]
		if n == nil {
			return
		}
		if bt, ok := nameTime[r.ASN]; !ok || r.T > bt || r.T == bt && r.Name < n.Name {
			n.Name, nameTime[r.ASN] = r.Name, r.T
		}
	})
	if err != nil {
		return t, err
	}
	err = queryInto(ctx, c, `SELECT probe_asn AS ASN, groupUniqArray(sha1) AS Inters
FROM `+s+` ARRAY JOIN inter_sha1 AS sha1 WHERE `+w+` GROUP BY probe_asn`, func(r struct {
		ASN    string
		Inters []string
	}) {
		if n := nets[r.ASN]; n != nil {
			n.Intermediates = r.Inters
		}
	})
	if err != nil {
		return t, err
	}
	for _, n := range nets {
		t.Networks = append(t.Networks, *n)
	}

	// Domains (a sighting's domain is its measurement's: a measurement
	// without one has no handshake with a server name either).
	doms := map[string]*analysis.DomainRow{}
	err = queryInto(ctx, c, `SELECT domain AS Domain, count() AS Measurements, sum(intercepted) AS Intercepted,
  minIf(ts, intercepted = 1) AS First, maxIf(ts, intercepted = 1) AS Last,
  groupUniqArrayIf(probe_asn, intercepted = 1) AS Networks
FROM `+m+` WHERE `+w+` AND domain != '' GROUP BY domain`, func(r struct {
		Domain                    string
		Measurements, Intercepted int
		First, Last               int64
		Networks                  []string
	}) {
		d := &analysis.DomainRow{Domain: r.Domain, Measurements: r.Measurements, Intercepted: r.Intercepted, Networks: r.Networks}
		if r.Intercepted > 0 {
			d.FirstSeen, d.LastSeen = unix(r.First), unix(r.Last)
		}
		doms[r.Domain] = d
	})
	if err != nil {
		return t, err
	}
	err = queryInto(ctx, c, `SELECT domain AS Domain, groupUniqArray(sha1) AS Inters
FROM `+s+` ARRAY JOIN inter_sha1 AS sha1 WHERE `+w+` AND domain != '' GROUP BY domain`, func(r struct {
		Domain string
		Inters []string
	}) {
		if d := doms[r.Domain]; d != nil {
			d.Intermediates = r.Inters
		}
	})
	if err != nil {
		return t, err
	}
	for _, d := range doms {
		t.Domains = append(t.Domains, *d)
	}

	// Intermediates, one row each, and their sightings per day.
	const arrayJoin = ` ARRAY JOIN inter_sha1 AS sha1, inter_sha256 AS sha256, inter_serial AS serial,
  inter_subject AS subject, inter_issuer AS issuer, inter_not_before AS nb, inter_not_after AS na,
  inter_signer_sha1 AS signer_sha1, inter_signer_name AS signer_name, inter_known AS known`
	inters := map[string]*analysis.IntermediateRow{}
	err = queryInto(ctx, c, `SELECT sha1 AS SHA1, any(sha256) AS SHA256, any(serial) AS Serial, any(subject) AS Subject,
  any(issuer) AS Issuer, any(nb) AS NotBefore, any(na) AS NotAfter, any(signer_sha1) AS Signer,
  any(signer_name) AS SignerName, max(known) AS Known,
  max(multiIf(evidence = `+quote(chain.EvidenceSignature)+`, 3, evidence = `+quote(chain.EvidenceFingerprint)+`, 2, evidence = `+quote(chain.EvidenceIssuerName)+`, 1, 0)) AS Rank,
  count() AS Sightings, uniqExact(uid) AS Measurements, min(ts) AS First, max(ts) AS Last,
  countIf(ts < nb OR ts > na) AS Outside,
  groupUniqArray(probe_asn) AS Networks, groupUniqArrayIf(domain, domain != '') AS Domains
FROM `+s+arrayJoin+` WHERE `+w+` GROUP BY sha1`, func(r struct {
		SHA1, SHA256, Serial, Subject, Issuer string
		NotBefore, NotAfter                   int64
		Signer, SignerName                    string
		Known, Rank                           int
		Sightings, Measurements               int
		First, Last                           int64
		Outside                               int
		Networks, Domains                     []string
	}) {
		inters[r.SHA1] = &analysis.IntermediateRow{
			SHA1: r.SHA1, SHA256: r.SHA256, Serial: r.Serial, Subject: r.Subject, Issuer: r.Issuer,
			NotBefore: unix(r.NotBefore), NotAfter: unix(r.NotAfter),
			SignerRootSHA1: r.Signer, SignerRootName: r.SignerName, Known: r.Known == 1,
			Evidence:  rankEvidence[r.Rank],
			FirstSeen: unix(r.First), LastSeen: unix(r.Last),
			Sightings: r.Sightings, Measurements: r.Measurements, OutsideWindow: r.Outside,
			Networks: r.Networks, Domains: r.Domains,
		}
	})
	if err != nil {
		return t, err
	}
	err = queryInto(ctx, c, `SELECT sha1 AS SHA1, intDiv(ts, 86400) AS Day,
  countIf(ts >= nb AND ts <= na) AS Inside, countIf(ts < nb OR ts > na) AS Outside
FROM `+s+` ARRAY JOIN inter_sha1 AS sha1, inter_not_before AS nb, inter_not_after AS na
WHERE `+w+` GROUP BY sha1, Day`, func(r struct {
		SHA1            string
		Day             int64
		Inside, Outside int
	}) {
		if ir := inters[r.SHA1]; ir != nil {
			ir.Days = append(ir.Days, analysis.DayCount{Day: unix(r.Day * 86400), Inside: r.Inside, Outside: r.Outside})
		}
	})
	if err != nil {
		return t, err
	}
	var windows []analysis.Window
	for _, ir := range inters {
		t.Intermediates = append(t.Intermediates, *ir)
		windows = append(windows, ir.Window())
	}

	// The sightings outside every window: the gaps'.
	windows = merge(windows)
	if len(windows) == 0 {
		return t, nil
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
FROM `+s+` ARRAY JOIN inter_sha1 AS sha1 WHERE `+w+` AND `+outside+`
ORDER BY ts, source, sha1 LIMIT `+strconv.Itoa(max+1), func(r struct {
		T                         int64
		Rec                       uint64
		SHA1, ASN, Domain, Source string
	}) {
		t.Outside = append(t.Outside, analysis.GapSighting{Time: unix(r.T), Record: r.Rec, Intermediate: r.SHA1, ASN: r.ASN, Domain: r.Domain, Source: r.Source})
	})
	if err != nil {
		return t, err
	}
	if len(t.Outside) > max {
		t.Outside = t.Outside[:max]
		err = queryInto(ctx, c, `SELECT count() AS N FROM `+s+` ARRAY JOIN inter_sha1 AS sha1 WHERE `+w+` AND `+outside, func(r struct{ N int }) {
			t.Dropped = r.N - max
		})
		if err != nil {
			return t, fmt.Errorf("counting the sightings in gaps: %w", err)
		}
	}
	return t, nil
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
