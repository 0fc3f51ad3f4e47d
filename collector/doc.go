// Package collector is the collector server: OONI's collector protocol
// (ooni/spec backends/bk-003-collector.md, 2.0.0) in front of a
// [store.Store], and the live HTML report of what it holds.
//
// # Protocol
//
// POST /report opens a report (the fields of bk-003 3.1, checked against
// the spec's patterns; format "json" only) and answers its report_id, 260
// random bits in the shape of OONI's IDs. POST /report/{id} appends one
// measurement, {"format": "json", "content": {...}}: the content must have
// df-000-base's top-level keys with their types, the report_id of the URL,
// the report's test_name, probe_cc and probe_asn, a measurement_uid (the
// store deduplicates on it), and probe_ip absent, null or the placeholder
// 127.0.0.1 (see [ProbeIPPlaceholder]). POST /report/{id}/close closes it;
// a report inactive for two hours is closed too. POST /measurement takes one
// measurement in a report of its own (bk-003 3.4): the report is opened,
// the measurement's report_id set to it (the one change to its bytes the
// spec asks for, [SetReportID]), and closed. GET / is the live report,
// GET /health says the collector is up.
//
// # What is stored, and when 200 is said
//
// The content's bytes are stored exactly as submitted (a kzprobe record is
// byte for byte the line the probe wrote) and 200 is answered only once
// the store has them on durable storage. A store failure (a full disk) is
// 503 with Retry-After: the probe keeps the record and resends it.
//
// # Trust
//
// Nothing a probe concluded is trusted: the chains of
// test_keys.tls_handshakes are judged again with probe/chain (through an
// analysis.Judge), and the reading side judges them again whenever it
// reads. A "chain" none of whose entries is an X.509 certificate, or whose
// entries are not base64 data, is refused (400 not_a_chain) and nothing is
// stored.
//
// # Limits
//
// Bodies are bounded (MaxBodyBytes, 413), requests per client rate-limited
// (429 with Retry-After), requests in progress bounded (503 with
// Retry-After), open reports bounded. No request body and no probe_ip is
// ever logged: the log has the client's address, the path, the status and
// the error code.
//
// The probe's side, the submitter with its outbox, is [kzprobe/collector/client].
package collector
