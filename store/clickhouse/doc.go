// Package clickhouse keeps measurements in ClickHouse, the engine OONI's
// own pipeline uses, and computes the analysis's tables there in SQL.
//
// # Design
//
// Two tables, created by [Open] where missing ([Schema]):
//
//   - measurements: one row per measurement (uid, time, network, country,
//     domain, verdict, how many handshakes presented a chain, whether one
//     led to the interception PKI, and the record's JSON when it came
//     through the collector), ReplacingMergeTree partitioned by month and
//     deduplicated by measurement_uid; for the records of kzprobe sweep
//     and kzprobe trace, which are in no other table, what their own
//     tables need (the sweep's endpoint and the intermediates of a name
//     found, the trace's finding as JSON), grouped by [DB.Analyze] into
//     the sweep's tables and the where table;
//   - chain_sightings: one row per handshake with a chain, judged when
//     stored (analysis.Judge, the same judgement `analyze` runs): time,
//     network, country, domain, address, evidence, verdict, expired flag,
//     and the interception chain's intermediates (SHA-1, SHA-256, serial,
//     subject, issuer, validity window, signer root, known) as parallel
//     arrays that queries ARRAY JOIN.
//
// Every query reads them with FINAL, so a measurement stored twice (a
// resend, a file ingested again) counts once. [DB.Analyze] runs the
// scans, groups and filters ([Filter]: time, country, network, pushed into
// WHERE) in ClickHouse and hands the grouped rows to
// analysis.FromTables, which shapes them into the same analysis.Result
// as reading the files: one path for ordering, the summary and the gaps.
//
// With a cluster (Config.Cluster, the `remote_servers` name), every listed
// server gets the tables as NAME_local, and Distributed tables named
// measurements and chain_sightings over them, sharded by
// cityHash64(uid) so that a measurement's copies meet on one shard;
// inserts wait for the shards (insert_distributed_sync).
//
// # Interface: HTTP and JSONEachRow, not clickhouse-go
//
// The SQL and the interface work on Debian's ClickHouse 18.16 and on
// today's: no DateTime64, no LowCardinality, no window functions; times
// are Int64 seconds. clickhouse-go/v2 (v2.51.0, the newest served) was
// tried against 18.16.1 first, as the issue prefers a library: over HTTP
// every call fails (the server rejects the setting client_protocol_version
// that the library sends: "Unknown setting client_protocol_version"); over
// the native protocol (server revision 54412) the handshake and
// ServerVersion work, but PrepareBatch reads an empty block header (Append:
// "expected 0 arguments, got 4") and an INSERT through Exec never returns.
// So the package talks to the HTTP interface itself: statements in the
// body, rows in and out as JSONEachRow, which both versions speak.
package clickhouse
