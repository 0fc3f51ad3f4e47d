// Package analysis is the reading side of kzprobe: it rebuilds the
// published report's tables from measurements already collected, kzprobe's
// own and OONI's, and compares verdicts across vantage networks.
//
// # Design
//
// Three steps, each streaming, and the sweep's and trace's records apart:
//
//   - Reading. A [Reader] turns files, folders and streams into [Record]s:
//     kzprobe JSONL, and OONI measurements as one JSON document, a JSON
//     array, JSONL, or gzip of any of these, told apart by content (the gzip
//     magic number, then the first line), never by the file name alone. A
//     Record keeps only the df-000-base envelope and the df-006-tlshandshake
//     handshakes (web_connectivity, urlgetter, tlsping's pings, kzprobe);
//     everything else is skipped while decoding. A line that is not a
//     measurement is skipped, counted in [FileStats] and reported as a
//     [Warning] naming file:line: a corrupted OONI file loses only its
//     bad lines. At most one line or document is held in memory, in a
//     buffer reused from one to the next; a line is bounded
//     (Reader.MaxLineBytes), and so is what one record may decode
//     ([Limits]: handshakes, certificates and their size, interception
//     lists, strings), since bytes do not bound objects: 64 MiB of `{},`
//     are 22 million handshakes. The excess is skipped and
//     warned. Only regular files are read (and "-", standard input).
//
//   - Judging. Every handshake's chain is judged again with
//     chain.Analyzer.Judge, whatever verdict the file carries: OONI's files
//     have none, and a kzprobe file may predate the knowledge base in use.
//     A [Judge] keeps the time-independent facts of the last chains it
//     judged in a bounded LRU cache keyed by [ChainHash] (SHA-256 over each
//     certificate's length and bytes), since a year of data presents the
//     same few thousand chains millions of times. Validity at the
//     measurement time is computed from the facts' windows, so one cached
//     judgement serves every date. A certificate a kzprobe record withheld
//     (it held the probe's address: a null entry of peer_certificates,
//     described in withheld_certificates) is judged from the facts kept of
//     it ([Judge.HandshakeFacts], chain.Analyzer.JudgeWithheld), never as
//     unparsable: fingerprints, names, validity, serial and the root whose
//     key the probe saw sign it, that evidence marked
//     chain.EvidenceRecorded since it cannot be checked again.
//
//   - Tabulating. An [Analysis] folds records into the report's four tables
//     ([Result]): intermediates (every CA certificate of a chain that leads
//     to the interception PKI, with sightings, networks, domains and the
//     sightings outside its validity window), networks (measurements
//     without an AS number keep a row, [UnlabelledASN], but the summary
//     does not count them as a network), domains, and validity gaps
//     (periods no intermediate seen was valid, and the sightings inside
//     them). A [Comparison] folds kzprobe records into a
//     domain x network [Matrix] of the latest verdict per cell. Both hold
//     one entry per distinct intermediate, network, domain, day or cell,
//     never per measurement, and their results do not depend on the order
//     of the input. The only per-sighting memory is the sightings that fall
//     outside every validity window known so far (candidates for a gap),
//     bounded by Config.MaxGapCandidates. The tables themselves are bounded
//     by Config.MaxTableBytes, and the Judge's cache by Judge.MaxBytes: an
//     input of millions of distinct networks or forged intermediates stops
//     adding rows, with a warning, instead of taking the machine's memory.
//
//   - Sweep and trace records. A record of `kzprobe sweep` (test_name
//     kzprobe_sni_sweep) is one handshake with a neutral endpoint, not a
//     measurement of a site: it is counted in none of the tables above
//     nor in the matrix, and folds into a [SweepResult] of its own (the
//     names found by SNI per network, and each network swept), where each
//     name is told confirmed or not by the `kzprobe run` records of the
//     same name and network, whatever the order of the input. A record
//     of `kzprobe trace` (kzprobe_trace) says where on the path a target
//     was answered: it too is kept out of every table, and folds into a
//     [WhereResult] (per network and target, the latest trace's finding;
//     per answering box, the networks it answers, so that a box shared
//     upstream of several networks shows).
//
// Package [kzprobe/analysis/render] prints the results (terminal table,
// CSV, Markdown, JSON, HTML) and draws the timeline (SVG and PNG);
// [kzprobe/analysis/analysistest] builds fixtures that mirror the report.
package analysis
