package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"

	"kzprobe/analysis"
	"kzprobe/measurement"
)

// The side tables: what the records of `kzprobe sweep` and `kzprobe trace`
// say (analysis.SweepResult, analysis.WhereResult), grouped in SQL from
// their measurements rows (test_name, verdict, endpoint, sweep_inters,
// finding) and shaped by the analysis package as from the files. Their
// rows are few (one per network, per name found, per network and target
// traced); the scans stay in ClickHouse.

var (
	sweepOnly = "test_name = " + quote(measurement.SweepTestName)
	traceOnly = "test_name = " + quote(measurement.TraceTestName)
	// sweepFinding keeps the sweep records that found the name
	// intercepted or blocked by SNI.
	sweepFinding = sweepOnly + " AND verdict IN (" + quoteList([]string{
		string(measurement.VerdictSNIInterceptedISCA), string(measurement.VerdictSNIInterceptedOther), string(measurement.VerdictSNIBlocked)}) + ")"
	sweepIntercepted = "verdict IN (" + quoteList([]string{
		string(measurement.VerdictSNIInterceptedISCA), string(measurement.VerdictSNIInterceptedOther)}) + ")"
	sweepBlocked = "verdict = " + quote(string(measurement.VerdictSNIBlocked))
	sweepClean   = "verdict = " + quote(string(measurement.VerdictClean))
	// runVerdict keeps the records of `kzprobe run` with a verdict, which
	// confirm or not a sweep's finding.
	runVerdict = "test_name = " + quote(measurement.TestName) + " AND verdict != ''"
)

// sideTables computes the side tables from m (the measurements table, with
// FINAL where needed) over the rows w keeps. old counts the sweep and trace
// records stored before their columns were (rowFormat), which the tables
// miss in part.
func (db *DB) sideTables(ctx context.Context, m, w string) (t analysis.SideTables, old int, err error) {
	c := db.clients[0]
	type sweepNetRow struct {
		ASN, Name                      string
		N, Intercepted, Blocked, Clean int
		First, Last                    int64
		Endpoints                      []string
		Old                            int
	}
	type sweepNameRow struct {
		ASN, Domain, Verdict, Source string
		Intercepted, Blocked         int
		First, Last                  int64
		Verdicts, Inters             []string
	}
	type runRow struct {
		ASN, Domain string
		Verdicts    []string
	}
	type traceRow struct {
		ASN, Domain, Name, Source, Finding string
		Traces, Old                        int
		T, NameT                           int64
	}
	var (
		nets   []sweepNetRow
		names  []sweepNameRow
		runs   []runRow
		traces []traceRow
	)
	err = parallel(
		// Per network swept from: the counts by verdict, the latest name
		// (ties: the lexically first), the endpoints.
		func() error {
			return queryInto(ctx, c, `SELECT probe_asn AS ASN, count() AS N,
  countIf(`+sweepIntercepted+`) AS Intercepted, countIf(`+sweepBlocked+`) AS Blocked, countIf(`+sweepClean+`) AS Clean,
  min(ts) AS First, max(ts) AS Last,
  argMinIf(network_name, (-ts, network_name), network_name != '') AS Name,
  groupUniqArrayIf(endpoint, endpoint != '') AS Endpoints, countIf(format < `+fmt.Sprint(rowFormat)+`) AS Old
FROM `+m+` WHERE `+w+` AND `+sweepOnly+` GROUP BY probe_asn`, func(r sweepNetRow) { nets = append(nets, r) })
		},
		// Per network and name found: the latest finding (ties: the
		// lexically first verdict, then source), the intermediates.
		func() error {
			return queryInto(ctx, c, `SELECT probe_asn AS ASN, domain AS Domain,
  countIf(NOT `+sweepBlocked+`) AS Intercepted, countIf(`+sweepBlocked+`) AS Blocked,
  min(ts) AS First, max(ts) AS Last,
  argMin(verdict, (-ts, verdict, source)) AS Verdict, argMin(source, (-ts, verdict, source)) AS Source,
  groupUniqArray(verdict) AS Verdicts, groupUniqArrayArray(sweep_inters) AS Inters
FROM `+m+` WHERE `+w+` AND `+sweepFinding+` AND domain != '' GROUP BY probe_asn, domain`, func(r sweepNameRow) { names = append(names, r) })
		},
		// The run verdicts of the names found, on their network (GLOBAL:
		// with Distributed tables the subquery runs once, not per shard).
		func() error {
			return queryInto(ctx, c, `SELECT probe_asn AS ASN, domain AS Domain, groupUniqArray(verdict) AS Verdicts
FROM `+m+` WHERE `+w+` AND `+runVerdict+` AND domain != ''
  AND (probe_asn, domain) GLOBAL IN (SELECT probe_asn, domain FROM `+m+` WHERE `+w+` AND `+sweepFinding+`)
GROUP BY probe_asn, domain`, func(r runRow) { runs = append(runs, r) })
		},
		// Per network and target traced: the latest trace (ties: the
		// lexically first source), and the latest name, per ASN below.
		func() error {
			return queryInto(ctx, c, `SELECT probe_asn AS ASN, domain AS Domain, count() AS Traces, max(ts) AS T,
  argMin(source, (-ts, source)) AS Source, argMin(finding, (-ts, source)) AS Finding,
  argMinIf(network_name, (-ts, network_name), network_name != '') AS Name, maxIf(ts, network_name != '') AS NameT,
  countIf(format < `+fmt.Sprint(rowFormat)+`) AS Old
FROM `+m+` WHERE `+w+` AND `+traceOnly+` GROUP BY probe_asn, domain`, func(r traceRow) { traces = append(traces, r) })
		},
	)
	if err != nil {
		return t, 0, err
	}

	if len(nets) > 0 {
		s := &analysis.SweepResult{}
		for _, r := range nets {
			s.Measurements += r.N
			s.Intercepted += r.Intercepted
			s.Blocked += r.Blocked
			s.Clean += r.Clean
			old += r.Old
			s.Networks = append(s.Networks, analysis.SweepNetworkRow{
				ASN: r.ASN, Name: r.Name, Measurements: r.N, Intercepted: r.Intercepted, Blocked: r.Blocked, Clean: r.Clean,
				Errors: r.N - r.Intercepted - r.Blocked - r.Clean, First: unix(r.First), Last: unix(r.Last), Endpoints: r.Endpoints,
			})
		}
		s.Errors = s.Measurements - s.Intercepted - s.Blocked - s.Clean
		runVerdicts := map[[2]string][]string{}
		for _, r := range runs {
			runVerdicts[[2]string{r.ASN, r.Domain}] = r.Verdicts
		}
		for _, r := range names {
			s.Names = append(s.Names, analysis.SweepRow{
				ASN: r.ASN, Domain: r.Domain, Verdict: r.Verdict, Verdicts: r.Verdicts,
				Intercepted: r.Intercepted, Blocked: r.Blocked, FirstSeen: unix(r.First), LastSeen: unix(r.Last),
				Intermediates: r.Inters, RunVerdicts: runVerdicts[[2]string{r.ASN, r.Domain}], Source: r.Source,
			})
		}
		t.Sweep = s
	}

	// A network's name is the latest its trace records gave (ties: the
	// lexically first), over all its targets.
	type named struct {
		name string
		t    int64
	}
	netNames := map[string]named{}
	for _, r := range traces {
		if r.Name == "" {
			continue
		}
		if n, ok := netNames[r.ASN]; !ok || r.NameT > n.t || r.NameT == n.t && r.Name < n.name {
			netNames[r.ASN] = named{r.Name, r.NameT}
		}
	}
	for _, r := range traces {
		t.Traces += r.Traces
		old += r.Old
		row := analysis.WhereRow{ASN: r.ASN, Network: netNames[r.ASN].name, Domain: r.Domain, Time: unix(r.T), Traces: r.Traces, Source: r.Source}
		if r.Finding != "" {
			if err := json.Unmarshal([]byte(r.Finding), &row.Finding); err != nil {
				return t, 0, fmt.Errorf("clickhouse: the trace finding of %s: %w", r.Source, err)
			}
		}
		t.WhereRows = append(t.WhereRows, row)
	}
	return t, old, nil
}

// oldRowsWarning says that n sweep and trace records were stored before
// their side tables' columns were.
func oldRowsWarning(n int) analysis.Warning {
	return analysis.Warning{Source: "clickhouse", Message: fmt.Sprintf(
		"%d kzprobe sweep or trace records were stored by an older kzprobe, without their endpoint, intermediates or finding: the sweep's and where tables miss them in part (kzprobe ingest their files again)", n)}
}
