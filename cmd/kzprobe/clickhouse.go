package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kzprobe/analysis"
	"kzprobe/analysis/render"
	"kzprobe/store/clickhouse"
)

// clickhouseURLHelp is the --clickhouse flag's usage, shared by the
// commands that take it.
const clickhouseURLHelp = "ClickHouse `URL`: http://host:8123/DATABASE, or for a cluster every shard, http://a:8123,b:8123/DATABASE?cluster=NAME"

// openClickHouse opens the tables at raw (creating them where missing),
// judging chains with cfg's Judge.
func openClickHouse(ctx context.Context, raw string, cfg analysis.Config) (*clickhouse.DB, error) {
	ccfg, err := clickhouse.ParseURL(raw)
	if err != nil {
		return nil, usageError("--clickhouse: %v", err)
	}
	db, err := clickhouse.Open(ctx, ccfg, cfg.Judge)
	if err != nil {
		return nil, fmt.Errorf("--clickhouse %s: %w", redactURL(raw), err)
	}
	return db, nil
}

// filter is the records --since, --until, --cc and --asn keep, for the SQL.
func (a *readArgs) filter(cfg analysis.Config) clickhouse.Filter {
	return clickhouse.Filter{Since: cfg.Since, Until: cfg.Until, CC: a.ccs(), ASN: a.asns()}
}

// ccs and asns are --cc and --asn as stored: "KZ", "AS9198".
func (a *readArgs) ccs() []string {
	var out []string
	for _, c := range a.cc {
		out = append(out, strings.ToUpper(strings.TrimSpace(c)))
	}
	return out
}

func (a *readArgs) asns() []string {
	var out []string
	for _, s := range a.asn {
		s = strings.ToUpper(strings.TrimSpace(s))
		if !strings.HasPrefix(s, "AS") {
			s = "AS" + s
		}
		out = append(out, analysis.NormalizeASN(s))
	}
	return out
}

// keep reports whether --cc and --asn keep rec (the file-reading side of
// the filter that the SQL pushes down).
func (a *readArgs) keep(rec *analysis.Record) bool {
	if len(a.cc) > 0 && !slices.Contains(a.ccs(), rec.ProbeCC) {
		return false
	}
	return len(a.asn) == 0 || slices.Contains(a.asns(), rec.ProbeASN)
}

// checkSource checks the command line of a reading command: FILE|DIR
// arguments, or --clickhouse and none.
//
// --clickhouse with --trust-roots or --interception-roots is refused: the
// tables keep each chain's judgement, made when it was stored (kzprobe
// ingest, collector serve, with the roots given there), and not the
// certificates (ingest keeps no record's JSON), so the roots cannot be
// applied. Ignoring them would print the stored judgement as if it were
// the one asked for: an analyst adding the lab's root, or a newly found
// interception root, would read "not intercepted" for chains that lead to
// it, with nothing to say the flag did nothing.
func (a *readArgs) checkSource(args []string) error {
	if a.clickhouse == "" && len(args) == 0 {
		return usageError("no input: name files or folders to read, or --clickhouse URL")
	}
	if a.clickhouse != "" && len(args) > 0 {
		return usageError("--clickhouse reads the tables in ClickHouse: name no file (load files with kzprobe ingest)")
	}
	if a.clickhouse != "" && !a.judgeAlways && (a.trustRoots != "" || len(a.interceptionRoots) > 0) {
		return usageError(clickhouseRootsMessage)
	}
	return nil
}

// clickhouseRootsMessage is the usage error of --clickhouse with
// --trust-roots or --interception-roots.
const clickhouseRootsMessage = "--trust-roots and --interception-roots cannot apply with --clickhouse: its tables hold each chain's judgement made when stored (by kzprobe ingest or collector serve, with their roots), not the certificates. Give the roots to kzprobe ingest, into a new database, or read the files with them"

// resultFromClickHouse computes the tables in ClickHouse.
func resultFromClickHouse(cmd *cobra.Command, a *readArgs, cfg analysis.Config) (*analysis.Result, error) {
	return queryClickHouse(cmd, a, cfg, (*clickhouse.DB).Analyze, func(r *analysis.Result) int { return len(r.Files) })
}

// matrixFromClickHouse computes compare's matrix in ClickHouse.
func matrixFromClickHouse(cmd *cobra.Command, a *readArgs, cfg analysis.Config) (*analysis.Matrix, error) {
	return queryClickHouse(cmd, a, cfg, (*clickhouse.DB).Compare, func(m *analysis.Matrix) int { return len(m.Files) })
}

// queryClickHouse opens --clickhouse, computes there what query computes
// over the measurements that --since, --until, --cc and --asn keep, and
// closes it. A store that holds no measurement (files counts the sources
// of what is stored) is errNoMeasurement, as reading no file would be.
func queryClickHouse[T any](cmd *cobra.Command, a *readArgs, cfg analysis.Config,
	query func(*clickhouse.DB, context.Context, clickhouse.Filter, analysis.Config) (T, error), files func(T) int) (T, error) {
	var zero T
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	db, err := openClickHouse(ctx, a.clickhouse, cfg)
	if err != nil {
		return zero, err
	}
	defer db.Close()
	v, err := query(db, ctx, a.filter(cfg), cfg)
	if err != nil {
		return zero, err
	}
	if files(v) == 0 {
		return zero, fmt.Errorf("%w: no measurement in %s (load files with kzprobe ingest)", errNoMeasurement, redactURL(a.clickhouse))
	}
	return v, nil
}

// redactURL drops the password from a --clickhouse URL, for messages and
// the report's inputs.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	at := strings.LastIndex(rest, "@")
	end := strings.IndexAny(rest, "/?#")
	if at < 0 || end >= 0 && at > end {
		return raw
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// clickhousePage is the collector's live report from ClickHouse: the
// tables and the matrix computed there, rendered as kzprobe report does.
func clickhousePage(db *clickhouse.DB, title string, cfg analysis.Config) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		res, err := db.Analyze(ctx, clickhouse.Filter{}, cfg)
		if err != nil {
			return err
		}
		ccfg := cfg
		ccfg.DeriveVerdicts = true
		m, err := db.Compare(ctx, clickhouse.Filter{}, ccfg)
		if err != nil {
			return err
		}
		return render.Report(w, render.ReportData{
			Title:     title,
			Generated: time.Now().UTC(),
			Inputs:    []string{"collector store (ClickHouse)"},
			Result:    res,
			Matrix:    m,
		})
	}
}

// ingestArgs are the flags of `kzprobe ingest`.
type ingestArgs struct {
	readArgs
	workers int
}

func newIngestCmd() *cobra.Command {
	var a ingestArgs
	cmd := &cobra.Command{
		Use:   "ingest FILE|DIR... --clickhouse URL",
		Short: "Load kzprobe and OONI files into ClickHouse, for analyze",
		Long: `Read measurements as analyze does (kzprobe's JSONL and OONI's, plain or
gzipped, folders walked) and store them in ClickHouse: a row per
measurement in the measurements table and a row per handshake with a chain
in chain_sightings, each chain judged now with the embedded knowledge base
(add roots with --interception-roots, as for analyze). The tables are
created where missing.

Every core works: files, and pieces of large uncompressed JSONL files, are
read, judged and inserted in parallel. Ingesting the same file again adds
nothing: rows are deduplicated on the measurement_uid (or, for records
without one, a hash of their report, time, input and chains). A line that
is not a measurement is skipped and named (file:line) on stderr; the ingest
goes on. --progress shows how far it has got.

Then analyze, timeline and report read the tables with --clickhouse URL
instead of files. For a cluster, list every shard's HTTP address and name
the cluster (remote_servers): http://a:8123,b:8123/kzprobe?cluster=NAME
makes local tables on each shard and Distributed tables over them.`,
		Example: `  kzprobe ingest ooni-kz-2021-2024/ measurements/ --clickhouse http://127.0.0.1:8123/kzprobe
  kzprobe analyze --clickhouse http://127.0.0.1:8123/kzprobe --since 2024-01-01 --cc KZ`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.clickhouse == "" {
				return usageError("ingest needs --clickhouse URL")
			}
			for _, n := range []string{"since", "until", "cc", "asn"} {
				if cmd.Flags().Changed(n) {
					return usageError("--%s: ingest stores every measurement; filter when reading (analyze --clickhouse --%s)", n, n)
				}
			}
			a.judgeAlways = true
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if err := checkInputs(args); err != nil {
				return err
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			db, err := openClickHouse(ctx, a.clickhouse, cfg)
			if err != nil {
				return err
			}
			defer db.Close()
			stderr := cmd.ErrOrStderr()
			warnings := 0
			opt := clickhouse.IngestOptions{
				Workers: a.workers,
				Warn: func(w analysis.Warning) {
					warnings++
					if warnings <= 100 {
						fmt.Fprintf(stderr, "kzprobe: %s\n", oneLine(w.String()))
					}
				},
			}
			rp := newReadProgress(stderr, a.progress, cmd.Flags().Changed("progress"))
			if rp != nil {
				opt.Progress = rp.update
			}
			start := time.Now()
			st, err := db.Ingest(ctx, args, opt)
			if rp != nil {
				rp.finish()
			}
			if err != nil {
				return err
			}
			if warnings > 100 {
				fmt.Fprintf(stderr, "kzprobe: %d more warnings not shown\n", warnings-100)
			}
			if st.Records == 0 {
				return fmt.Errorf("%w: %s, %s", errNoMeasurement, plural(len(st.Files), "file"), plural(st.Bad, "bad line"))
			}
			el := time.Since(start)
			fmt.Fprintf(cmd.OutOrStdout(), "ingested %s from %s (%s skipped) in %.1fs, %.1f MB/s\n",
				plural(st.Records, "measurement"), plural(len(st.Files), "file"), plural(st.Bad, "bad line"),
				el.Seconds(), float64(st.Bytes)/1e6/el.Seconds())
			return nil
		},
	}
	f := cmd.Flags()
	a.addFlags(f)
	f.IntVar(&a.workers, "workers", 0, "pieces read, judged and inserted at once (0: one per core, "+fmt.Sprint(runtime.GOMAXPROCS(0))+" here)")
	hideFlags(f, "since", "until", "cc", "asn")
	return cmd
}

// hideFlags hides the shared reading flags that a command does not use.
func hideFlags(f interface{ MarkHidden(string) error }, names ...string) {
	for _, n := range names {
		if err := f.MarkHidden(n); err != nil {
			fmt.Fprintln(os.Stderr, "kzprobe:", err)
		}
	}
}
