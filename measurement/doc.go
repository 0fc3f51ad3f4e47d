// Package measurement is kzprobe's record format: the types of one
// measurement as it is written, one JSON object a line, and the writer and
// reader of those lines.
//
// It holds no measuring and no judging. The engine (package probe) fills a
// [Measurement] and decides its [Verdict]; the control server (package
// control) answers with a [ControlResponse]; the offline analysis (package
// analysis), and whatever else stores or collects records, reads them back
// with [ReadJSONL]. Each of them imports this package, none needs the
// engine to read the format.
//
// # Design
//
// A measurement is data: plain structs with explicit snake_case JSON tags,
// serialized as they are. The records are in OONI's own format, so that
// OONI's tools and pipeline load them without conversion and kzprobe's
// analysis reads OONI's: the envelope is OONI's base data format
// (df-000-base, [DataFormatVersion] 0.2.0, with options, test_helpers and
// [Extensions]), and the observations follow OONI's templates ([DNSQuery]
// is df-002-dnst's query, [TCPConnect] df-005-tcpconnect's, [TLSHandshake]
// df-006-tlshandshake's, with [BinaryData] and [Base64Bytes] for raw
// bytes); cmd/kzprobe's TestRecordsFollowOONISpecs checks real records
// against those specs field by field. A failure is a *string with no
// omitempty: null means success. Nothing is written twice: the strongest
// interception finding stays in its chain's judgement and
// [TestKeys].InterceptionChain names that chain. Raw evidence is kept so that the
// records can be judged again offline: the DNS response as received, every
// certificate of the presented chain as DER ([BinaryData], base64 in
// JSON). The one exception is raw bytes that hold the probe's own address
// (a forged leaf naming the client, an echoed client subnet): [Withhold],
// run after the verdict, replaces such a field by null and keeps beside it
// a [Withheld] (or [WithheldCertificate], with the facts the verdict was
// drawn from, which the analysis judges the certificate from:
// chain.Analyzer.JudgeWithheld). Times inside a record (t0, t) are seconds since the measurement
// started; the envelope's times are UTC in [TimeLayout].
//
// The Go structs are the schema. A change to a field's name, type or
// meaning is a format change: bump [TestVersion], and keep reading the
// records of earlier versions (TestKeys.UnmarshalJSON, Base64Bytes). The
// golden records under probe/testdata/golden (one measurement for each
// verdict, from fixed inputs at a pinned time) show such a change as a
// diff.
//
// [Writer] writes each record with one Write call, so lines from
// concurrent workers never interleave and a crash can cut only the last
// line; [ReadJSONL] skips such a line, and any line that does not parse,
// and counts it, and bounds each line at [MaxLineBytes].
//
// The chain judgement embedded in a record ([TestKeys].Chains,
// Interception) is package chain's type: the record format depends on
// chain's types, never the other way round.
package measurement
