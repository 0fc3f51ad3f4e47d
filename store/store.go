// Package store is where a collector keeps the measurements it accepted:
// one interface, Store, with the embedded file store (store/files) and
// ClickHouse (store/clickhouse) behind it.
//
// A Store receives a measurement exactly as the probe wrote it, with the
// envelope fields the collector already read and validated beside it, so
// that no store parses JSON again to partition or deduplicate.
package store

import (
	"context"
	"errors"
	"time"
)

// Record is one accepted measurement.
type Record struct {
	// UID is the measurement's measurement_uid. Stores deduplicate on it:
	// a record put twice (a probe resending after a lost answer) is kept
	// once.
	UID string
	// ReportID is the collector's report the record was submitted to.
	ReportID string
	// TestName is the envelope's test_name (kzprobe_tls_interception,
	// kzprobe_sni_sweep, web_connectivity, ...).
	TestName string
	// ProbeCC and ProbeASN are the envelope's probe_cc ("KZ", "ZZ") and
	// probe_asn ("AS9198", "AS0").
	ProbeCC, ProbeASN string
	// Start is the envelope's measurement_start_time, in UTC.
	Start time.Time
	// Raw is the measurement's JSON exactly as submitted, one line with
	// no trailing newline. probe_ip is never anything but the
	// collector-checked placeholder here.
	Raw []byte
}

// Store keeps records.
type Store interface {
	// Put stores r. When it returns nil the record is on durable storage:
	// it survives a crash of the process (and, for the file store, of the
	// machine). A record whose UID is already stored returns nil and
	// stores nothing more.
	Put(ctx context.Context, r Record) error
	// Close releases the store; Put after Close returns ErrClosed.
	Close() error
}

// ErrClosed is returned by Put on a closed store.
var ErrClosed = errors.New("store: closed")
