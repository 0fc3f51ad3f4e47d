package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"kzprobe/analysis"
	"kzprobe/analysis/render"
	"kzprobe/measurement"
	"kzprobe/probe/chain"
)

// readArgs are the flags shared by the reading-side commands (analyze,
// compare, timeline, report).
type readArgs struct {
	trustRoots        string
	interceptionRoots []string
	since, until      string
	cacheSize         int
	progress          bool
	// cc and asn keep only these probe_cc and probe_asn (--cc, --asn).
	cc, asn []string
	// clickhouse reads the tables in ClickHouse instead of files.
	clickhouse string
	// judgeAlways builds the chain judge with --clickhouse too (ingest).
	judgeAlways bool
}

func (a *readArgs) addFlags(f *pflag.FlagSet) {
	f.StringVar(&a.trustRoots, "trust-roots", "", "PEM `file` replacing the embedded Mozilla root bundle")
	f.StringSliceVar(&a.interceptionRoots, "interception-roots", nil, "PEM `file` of further interception roots, e.g. the lab's (repeatable)")
	f.StringVar(&a.since, "since", "", "only measurements at or after this `time` (2006-01-02[ 15:04:05], UTC)")
	f.StringVar(&a.until, "until", "", "only measurements before this `time`")
	f.IntVar(&a.cacheSize, "cache", 0, "distinct chains whose analysis is remembered (0: 8192, -1: none)")
	f.BoolVar(&a.progress, "progress", false, "show how far reading has got on stderr (default: on a terminal, for reads over a second)")
	f.StringSliceVar(&a.cc, "cc", nil, "only measurements from these `countries` (probe_cc, e.g. KZ; repeatable)")
	f.StringSliceVar(&a.asn, "asn", nil, "only measurements from these `networks` (probe_asn, e.g. AS9198 or 9198; repeatable)")
	f.StringVar(&a.clickhouse, "clickhouse", "", "read the measurements stored by kzprobe ingest in ClickHouse instead of files (their chains judged by ingest: --trust-roots and --interception-roots go there); "+clickhouseURLHelp)
}

// open checks the shared flags and the input paths, then opens the
// output: the common start of every reading-side command. The caller
// Commits the output once written, and Aborts it (deferred) otherwise.
func (a *readArgs) open(paths []string, output string, stdout io.Writer) (analysis.Config, *readOutput, error) {
	cfg, err := a.config()
	if err != nil {
		return cfg, nil, err
	}
	if err := checkInputs(paths); err != nil {
		return cfg, nil, err
	}
	out, err := openReadOutput(output, paths, stdout)
	return cfg, out, err
}

// config turns the flags into an analysis configuration.
func (a *readArgs) config() (analysis.Config, error) {
	var cfg analysis.Config
	// Reading ClickHouse judges no chain (ingest judged them): no roots
	// to load.
	if a.clickhouse == "" || a.judgeAlways {
		judge, err := a.judge()
		if err != nil {
			return cfg, err
		}
		cfg.Judge = judge
	}
	var err error
	if cfg.Since, err = parseFlagTime("since", a.since); err != nil {
		return cfg, err
	}
	if cfg.Until, err = parseFlagTime("until", a.until); err != nil {
		return cfg, err
	}
	if !cfg.Since.IsZero() && !cfg.Until.IsZero() && !cfg.Until.After(cfg.Since) {
		return cfg, usageError("--until %s is not after --since %s", a.until, a.since)
	}
	return cfg, nil
}

// judge is the chain judge of --trust-roots and --interception-roots.
func (a *readArgs) judge() (*analysis.Judge, error) {
	if a.trustRoots != "" {
		if _, err := os.Stat(a.trustRoots); err != nil {
			return nil, pathError("--trust-roots", a.trustRoots, err, false)
		}
	}
	an, err := flagAnalyzer(a.trustRoots, a.interceptionRoots)
	if err != nil {
		return nil, err
	}
	return &analysis.Judge{Analyzer: an, Size: a.cacheSize}, nil
}

// flagAnalyzer judges chains against --trust-roots (the embedded Mozilla
// bundle when "") and the embedded knowledge of the interception PKI with
// the --interception-roots files added.
func flagAnalyzer(trustRoots string, interceptionRoots []string) (*chain.Analyzer, error) {
	trust, err := loadTrust(trustRoots)
	if err != nil {
		return nil, err
	}
	kb, err := chain.Default()
	if err != nil {
		return nil, err
	}
	for _, f := range interceptionRoots {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, pathError("--interception-roots", f, err, false)
		}
		if _, err := kb.AddRootsPEM(data, f); err != nil {
			return nil, usageError("--interception-roots: %s: %v", f, err)
		}
	}
	return chain.NewAnalyzer(trust, kb), nil
}

// parseFlagTime reads a date, a date and time (UTC) or RFC 3339.
func parseFlagTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02", measurement.TimeLayout, "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, usageError("--%s %q: want 2006-01-02, %q or RFC 3339", name, s, measurement.TimeLayout)
}

func checkFormat(format string, valid []string) error {
	if !slices.Contains(valid, format) {
		return usageError("--format %q: one of %s", format, strings.Join(valid, ", "))
	}
	return nil
}

// checkInputs fails early, naming the path, when an input does not exist.
// "-" is standard input.
func checkInputs(paths []string) error {
	for _, p := range paths {
		if p == analysis.Stdin {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return pathError("input", p, err, true)
		}
	}
	return nil
}

// result computes the tables: from the files in paths, or in ClickHouse
// with --clickhouse.
func (a *readArgs) result(cmd *cobra.Command, paths []string, cfg analysis.Config) (*analysis.Result, error) {
	if a.clickhouse != "" {
		return resultFromClickHouse(cmd, a, cfg)
	}
	an, err := readAll(cmd, a, paths, cfg, nil)
	if err != nil {
		return nil, err
	}
	return an.Result(), nil
}

// matrix computes compare's matrix: from the files in paths, or in
// ClickHouse with --clickhouse.
func (a *readArgs) matrix(cmd *cobra.Command, paths []string, cfg analysis.Config) (*analysis.Matrix, error) {
	if a.clickhouse != "" {
		return matrixFromClickHouse(cmd, a, cfg)
	}
	c := analysis.NewComparison(cfg)
	stats, err := readInputs(cmd, a, paths, c.Warn, func(r *analysis.Record) {
		if a.keep(r) {
			c.Add(r)
		}
	})
	c.AddFileStats(stats...)
	if err != nil {
		return nil, err
	}
	return c.Matrix(), nil
}

// readAll reads paths once into an analysis and, when cmp is not nil, a
// comparison (see readInputs).
func readAll(cmd *cobra.Command, ra *readArgs, paths []string, cfg analysis.Config, cmp *analysis.Comparison) (*analysis.Analysis, error) {
	a := analysis.New(cfg)
	stats, err := readInputs(cmd, ra, paths, func(w analysis.Warning) {
		a.Warn(w)
		if cmp != nil {
			cmp.Warn(w)
		}
	}, func(r *analysis.Record) {
		if !ra.keep(r) {
			return
		}
		a.Add(r)
		if cmp != nil {
			cmp.Add(r)
		}
	})
	a.AddFileStats(stats...)
	if cmp != nil {
		cmp.AddFileStats(stats...)
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

// readInputs reads every measurement of paths ("-" is cmd's standard
// input), passing each record to add and each warning to warn, and
// reports skipped lines and files on cmd's standard error. Reading no measurement at all (an empty folder, a file that
// holds none) is an error naming what was found instead.
func readInputs(cmd *cobra.Command, ra *readArgs, paths []string, warn func(analysis.Warning), add func(*analysis.Record)) ([]analysis.FileStats, error) {
	if os.Getenv("GOMEMLIMIT") == "" {
		// What one record may hold is bounded (a line, analysis.Limits,
		// the judge's cache); a soft limit makes the collector return
		// the garbage of long lines before the heap doubles.
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(readMemoryLimit))
	}
	stderr := cmd.ErrOrStderr()
	var first *analysis.Warning
	rd := &analysis.Reader{Stdin: cmd.InOrStdin(), Warn: func(w analysis.Warning) {
		if first == nil {
			first = &w
		}
		warn(w)
	}}
	rp := newReadProgress(stderr, ra.progress, cmd.Flags().Changed("progress"))
	if rp != nil {
		rd.Progress = rp.update
	}
	stats, err := rd.ReadPaths(paths, func(r *analysis.Record) error {
		add(r)
		return nil
	})
	if rp != nil {
		rp.finish()
	}
	if err != nil {
		return stats, err
	}
	records, bad, unread := 0, 0, 0
	for _, st := range stats {
		records += st.Records
		bad += st.Bad
		if st.Error != "" {
			unread++
		}
	}
	if records == 0 {
		return stats, noMeasurement(paths, stats, bad, unread, first)
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "kzprobe: %s skipped; see the warnings in the output\n", plural(bad, "bad line"))
	}
	if unread > 0 {
		fmt.Fprintf(stderr, "kzprobe: %s skipped or unreadable; see the warnings in the output\n", plural(unread, "file"))
	}
	return stats, nil
}

// oneLine keeps an error message on one line.
func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ", "\t", " ").Replace(s) }

// readMemoryLimit is the Go runtime's soft memory limit while reading
// (runtime/debug.SetMemoryLimit), unless GOMEMLIMIT is set: under the 256 MB
// that reading any input may take (hostileRSSBound in the tests), with room
// for the runtime and the binary.
const readMemoryLimit = 192 << 20

// noMeasurement is the one-line error of a read that found no
// measurement: what was found instead, and the first warning.
func noMeasurement(paths []string, stats []analysis.FileStats, bad, unread int, first *analysis.Warning) error {
	if len(stats) == 0 {
		return fmt.Errorf("%w: no measurement file in %s (folders are walked for *.json, *.jsonl and their .gz)", errNoMeasurement, oneLine(render.Printable(strings.Join(paths, " "))))
	}
	msg := plural(len(stats), "file")
	if unread > 0 {
		msg += fmt.Sprintf(", %d skipped or unreadable", unread)
	}
	msg += ", " + plural(bad, "bad line")
	if first != nil {
		msg += "; first: " + oneLine(render.Printable(first.String()))
	}
	return fmt.Errorf("%w: %s", errNoMeasurement, msg)
}

// analyzeArgs are the flags of `kzprobe analyze`.
type analyzeArgs struct {
	readArgs
	format string
	tables []string
	output string
}

func newAnalyzeCmd() *cobra.Command {
	var a analyzeArgs
	cmd := &cobra.Command{
		Use:   "analyze FILE|DIR...",
		Short: "Rebuild the report's tables from measurements (kzprobe's, OONI's)",
		Long: `Read measurements already collected, kzprobe's JSONL and OONI's (one JSON
document, JSONL, or either gzipped; web_connectivity and any test whose
test_keys has tls_handshakes with peer_certificates), judge every presented
chain again, and print the tables of the published report:

  intermediates  every CA certificate of a chain that leads to the ISCA or
                 Qaznet PKI: SHA-1, serial, validity, issuer, signing root
                 (or "unknown"), first and last seen, measurements, networks,
                 domains, and the sightings outside its validity window
  networks       ASN, name, measurements, intercepted domains
  domains        where each domain was intercepted, first and last seen
  gaps           periods when no intermediate seen was valid, and the
                 sightings inside them
  sni_sweep      with kzprobe sweep's records (kzprobe_sni_sweep): per
                 network, the names intercepted or blocked by SNI, first and
                 last seen, the intermediates, and whether a kzprobe run
                 measurement of the name on that network confirmed it
                 (yes, no, not run); sweep_networks: per network, what was
                 swept. Sweep records are counted in no other table.
  where          with kzprobe trace's records (kzprobe_trace): per network
                 and target, the hop whose box answered in the server's
                 place (interception, reset), the destination's distance,
                 and the networks (prefix, ASN) of the answering hop and
                 the one before; boxes: each answering box and the
                 networks it answers (shared upstream, or not). Trace
                 records are counted in no other table.

Folders are walked for *.json, *.jsonl and their .gz; "-" reads standard
input. Only regular files are read: a device, a named pipe or a socket is
skipped and named in the warnings. Files are streamed: any amount of data is
read in bounded memory. A line that is not a measurement is skipped, counted
and listed as file:line in the warnings; reading no measurement at all is an
error (exit 1).

-o writes through a temporary file in the same folder, renamed at the end:
a run that fails leaves no half file. An output that is one of the inputs
is refused.

A file's own verdicts are never trusted: the chains are judged with the
embedded knowledge base (add the lab's root with --interception-roots).`,
		Example: `  kzprobe analyze measurements/
  kzprobe analyze 2024-*.jsonl.gz --format markdown > tables.md
  kzprobe analyze kz.jsonl --table gaps --format csv
  kzprobe analyze lab.jsonl --interception-roots lab/isca-root.pem`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(a.format, render.AnalysisFormats); err != nil {
				return err
			}
			for _, t := range a.tables {
				if !slices.Contains(render.AnalysisTables, t) {
					return usageError("--table %q: one of %s", t, strings.Join(render.AnalysisTables, ", "))
				}
			}
			if err := a.checkSource(args); err != nil {
				return err
			}
			cfg, out, err := a.open(args, a.output, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			defer out.Abort()
			res, err := a.result(cmd, args, cfg)
			if err != nil {
				return err
			}
			if err := render.Analysis(out, res, a.format, a.tables); err != nil {
				return err
			}
			return out.Commit()
		},
	}
	f := cmd.Flags()
	a.addFlags(f)
	f.StringVar(&a.format, "format", render.FormatTable, "output `format`: "+strings.Join(render.AnalysisFormats, ", "))
	f.StringSliceVar(&a.tables, "table", nil, "print only these `tables`: "+strings.Join(render.AnalysisTables, ", "))
	f.StringVarP(&a.output, "output", "o", "", "write to this `file` instead of stdout")
	return cmd
}

// compareArgs are the flags of `kzprobe compare`.
type compareArgs struct {
	readArgs
	format string
	output string
	ooni   bool
}

func newCompareCmd() *cobra.Command {
	var a compareArgs
	cmd := &cobra.Command{
		Use:   "compare FILE|DIR...",
		Short: "Compare verdicts across networks: a domain x network matrix",
		Long: `Read kzprobe measurements taken on several networks (one file per run, or
any mix) and print a matrix: one row per domain, one column per network (by
probe_asn; by network name when the ASN is unknown), each cell the verdict
of the latest measurement and, where intercepted, the short SHA-1 of the
intermediate presented. "!" marks an interception a browser would reject
even with the mandated root installed (an expired intermediate).

--since and --until restrict the measurements considered. OONI records carry
no kzprobe verdict and are skipped unless --ooni, which gives them
"mitm_isca" or "no_isca_chain" from their chains. kzprobe sweep's records
are not in the matrix: the names they found are listed after it, each with
the networks that intercepted or blocked it by SNI and those where a
kzprobe run measurement confirmed it. kzprobe trace's records are not in
the matrix either: the boxes that answered in the servers' place are listed,
each with the networks whose traffic it answered (shared: more than one,
one box upstream of them), then where on the path each target was answered.`,
		Example: `  kzprobe compare kazakhtelecom.jsonl kcell.jsonl beeline.jsonl
  kzprobe compare runs/ --since 2024-09-01 --format html -o matrix.html`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.checkSource(args); err != nil {
				return err
			}
			if err := checkFormat(a.format, render.CompareFormats); err != nil {
				return err
			}
			cfg, out, err := a.open(args, a.output, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			cfg.DeriveVerdicts = a.ooni
			defer out.Abort()
			m, err := a.matrix(cmd, args, cfg)
			if err != nil {
				return err
			}
			if len(m.Cells) == 0 && m.SkippedNotKzprobe > 0 {
				return fmt.Errorf("%w: no kzprobe measurement to compare (%d without a kzprobe verdict, OONI's?; --ooni includes them)", errNoMeasurement, m.SkippedNotKzprobe)
			}
			if err := render.Compare(out, m, a.format); err != nil {
				return err
			}
			return out.Commit()
		},
	}
	f := cmd.Flags()
	a.addFlags(f)
	f.StringVar(&a.format, "format", render.FormatTable, "output `format`: "+strings.Join(render.CompareFormats, ", "))
	f.StringVarP(&a.output, "output", "o", "", "write to this `file` instead of stdout")
	f.BoolVar(&a.ooni, "ooni", false, "include OONI measurements, with a verdict derived from their chains")
	return cmd
}

// timelineArgs are the flags of `kzprobe timeline`.
type timelineArgs struct {
	readArgs
	output string
	width  int
	title  string
}

func newTimelineCmd() *cobra.Command {
	var a timelineArgs
	cmd := &cobra.Command{
		Use:   "timeline FILE|DIR... -o timeline.svg|timeline.png",
		Short: "Draw intermediates' validity against when seen (SVG or PNG)",
		Long: `Read measurements as analyze does and draw one row per intermediate: its
validity window as a bar, each day it was seen as a mark (red diamonds when
outside the window), and the periods when no intermediate was valid shaded
and numbered as in analyze's gaps table. The file's extension picks the
format: .svg, self-contained, to open in a browser; or .png, the same picture
rasterized by kzprobe itself with the Go fonts (no browser needed). "-o -"
writes SVG to stdout.`,
		Example: `  kzprobe timeline measurements/ -o timeline.svg
  kzprobe timeline measurements/ -o timeline.png --width 1600`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			draw := render.Timeline
			switch ext := strings.ToLower(filepath.Ext(a.output)); {
			case a.output == "-", ext == ".svg":
			case ext == ".png":
				draw = render.TimelinePNG
			default:
				return usageError("-o %s: the timeline is written as SVG or PNG; name the file .svg or .png", a.output)
			}
			if err := a.checkSource(args); err != nil {
				return err
			}
			cfg, out, err := a.open(args, a.output, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			defer out.Abort()
			res, err := a.result(cmd, args, cfg)
			if err != nil {
				return err
			}
			if err := draw(out, res, render.TimelineOptions{Width: a.width, Title: a.title}); err != nil {
				return err
			}
			if err := out.Commit(); err != nil {
				return err
			}
			if a.output != "-" {
				fmt.Fprintf(cmd.ErrOrStderr(), "timeline of %s, %s: %s\n", plural(len(res.Intermediates), "intermediate"), plural(len(res.Gaps), "gap"), a.output)
			}
			return nil
		},
	}
	f := cmd.Flags()
	a.addFlags(f)
	f.StringVarP(&a.output, "output", "o", "timeline.svg", "`file` to write, .svg or .png (- for SVG on stdout)")
	f.IntVar(&a.width, "width", 1200, "picture width in `pixels`")
	f.StringVar(&a.title, "title", "", "title drawn at the top")
	return cmd
}

// reportArgs are the flags of `kzprobe report`.
type reportArgs struct {
	readArgs
	output string
	title  string
}

func newReportCmd() *cobra.Command {
	var a reportArgs
	cmd := &cobra.Command{
		Use:   "report FILE|DIR... -o report.html",
		Short: "One self-contained HTML page: summary, timeline, tables, matrix",
		Long: `Read measurements as analyze does and write one HTML page holding the
summary, the timeline (inline SVG), the intermediates and gaps tables, the
domain x network matrix (as compare; OONI measurements get a verdict derived
from their chains), the networks and domains tables, kzprobe sweep's names
and networks when sweep records were read, the where table and the boxes
when kzprobe trace's were, and the warnings.
The page has inline CSS and no script; it fetches nothing.`,
		Example: `  kzprobe report measurements/ -o report.html`,
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.checkSource(args); err != nil {
				return err
			}
			cfg, out, err := a.open(args, a.output, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			defer out.Abort()
			ccfg := cfg
			ccfg.DeriveVerdicts = true
			var res *analysis.Result
			var m *analysis.Matrix
			inputs := args
			if a.clickhouse != "" {
				if res, err = resultFromClickHouse(cmd, &a.readArgs, cfg); err != nil {
					return err
				}
				if m, err = matrixFromClickHouse(cmd, &a.readArgs, ccfg); err != nil {
					return err
				}
				inputs = []string{redactURL(a.clickhouse)}
			} else {
				c := analysis.NewComparison(ccfg)
				an, err := readAll(cmd, &a.readArgs, args, cfg, c)
				if err != nil {
					return err
				}
				res, m = an.Result(), c.Matrix()
			}
			err = render.Report(out, render.ReportData{
				Title:     a.title,
				Generated: time.Now().UTC(),
				Inputs:    inputs,
				Result:    res,
				Matrix:    m,
			})
			if err != nil {
				return err
			}
			if err := out.Commit(); err != nil {
				return err
			}
			if a.output != "-" {
				fmt.Fprintf(cmd.ErrOrStderr(), "report: %s\n", a.output)
			}
			return nil
		},
	}
	f := cmd.Flags()
	a.addFlags(f)
	f.StringVarP(&a.output, "output", "o", "report.html", "HTML `file` to write (- for stdout)")
	f.StringVar(&a.title, "title", "", "page title")
	return cmd
}
