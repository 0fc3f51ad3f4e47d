package clickhouse

import (
	"context"
	"fmt"
)

// The tables. Times are Int64 seconds since 1970 (ts, and the
// intermediates' windows): ClickHouse 18.16's DateTime ends in 2106 and
// certificates run to 9999. Partitions are months of ts.
const (
	// TableMeasurements holds one row per measurement, deduplicated by
	// its sorting key, whose last part is the measurement_uid (the other
	// parts are functions of the record): ReplacingMergeTree, read with
	// FINAL. The version has_raw keeps the row with the record's JSON (the
	// collector's) over one without (ingest's: the files are the archive).
	TableMeasurements = "measurements"
	// TableSightings holds one row per handshake that presented a chain,
	// judged at ingest: intercepted or not, evidence, the intermediates
	// of the interception chain as parallel arrays (SHA-1, serial,
	// window, signer root, ...), and whether one was outside its window
	// (expired). Deduplicated by (uid, hs) like measurements.
	TableSightings = "chain_sightings"
)

const measurementsColumns = `(
  uid String,
  ts Int64,
  report_id String,
  test_name String,
  software_name String,
  probe_cc String,
  probe_asn String,
  network_name String,
  domain String,
  input String,
  verdict String,
  handshakes UInt32,
  intercepted UInt8,
  kzprobe UInt8,
  vantage String,
  file_interception UInt8,
  file_inter_sha1 String,
  file_browser_error UInt8,
  judged_inter_sha1 String,
  judged_browser_error UInt8,
  source String,
  has_raw UInt8,
  raw String,
  endpoint String,
  sweep_inters Array(String),
  finding String,
  format UInt8
)`

// addedColumns are the measurements columns added after the table's first
// version, with their types: Open adds those a table lacks (18.16 has no
// ADD COLUMN IF NOT EXISTS). A row stored before has their defaults, and
// format 0 (rowFormat: the analysis warns of those that need them).
var addedColumns = [][2]string{
	{"endpoint", "String"},
	{"sweep_inters", "Array(String)"},
	{"finding", "String"},
	{"format", "UInt8"},
}

const measurementsEngine = `ReplacingMergeTree(has_raw)
PARTITION BY toYYYYMM(toDateTime(ts))
ORDER BY (probe_cc, probe_asn, ts, uid)`

const sightingsColumns = `(
  uid String,
  hs UInt16,
  ts Int64,
  probe_cc String,
  probe_asn String,
  network_name String,
  domain String,
  server_name String,
  address String,
  intercepted UInt8,
  evidence String,
  root_sha1 String,
  verdict String,
  expired UInt8,
  inter_sha1 Array(String),
  inter_sha256 Array(String),
  inter_serial Array(String),
  inter_subject Array(String),
  inter_issuer Array(String),
  inter_not_before Array(Int64),
  inter_not_after Array(Int64),
  inter_signer_sha1 Array(String),
  inter_signer_name Array(String),
  inter_known Array(UInt8),
  source String
)`

const sightingsEngine = `ReplacingMergeTree
PARTITION BY toYYYYMM(toDateTime(ts))
ORDER BY (probe_cc, probe_asn, ts, uid, hs)`

// Schema returns the statements that create the tables on one server of
// cfg: the plain tables, or with a cluster the shard's local tables
// (NAME_local) and the Distributed tables over them, sharded by the
// measurement's uid so that its copies meet on one shard and deduplicate.
func Schema(cfg Config) []string {
	db := cfg.Database
	stmts := []string{"CREATE DATABASE IF NOT EXISTS " + db}
	table := func(name, cols, engine string) {
		if cfg.Cluster == "" {
			stmts = append(stmts, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s %s ENGINE = %s", db, name, cols, engine))
			return
		}
		stmts = append(stmts,
			fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s_local %s ENGINE = %s", db, name, cols, engine),
			fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s AS %s.%s_local ENGINE = Distributed(%s, %s, %s_local, cityHash64(uid))", db, name, db, name, cfg.Cluster, db, name))
	}
	table(TableMeasurements, measurementsColumns, measurementsEngine)
	table(TableSightings, sightingsColumns, sightingsEngine)
	return stmts
}

// createSchema creates the tables on every host (IF NOT EXISTS: running it
// again changes nothing), and adds the columns that tables made by an
// older kzprobe lack.
func createSchema(ctx context.Context, cfg Config, clients []*client) error {
	for i, c := range clients {
		for _, s := range Schema(cfg) {
			if err := c.exec(ctx, s, nil); err != nil {
				return fmt.Errorf("creating the tables on %s: %w", cfg.Hosts[i], err)
			}
		}
		if err := addColumns(ctx, cfg, c); err != nil {
			return fmt.Errorf("adding columns on %s: %w", cfg.Hosts[i], err)
		}
	}
	return nil
}

// addColumns adds addedColumns to the measurements tables on c that lack
// them (the local table first, then the Distributed one over it).
func addColumns(ctx context.Context, cfg Config, c *client) error {
	tables := []string{TableMeasurements}
	if cfg.Cluster != "" {
		tables = []string{TableMeasurements + "_local", TableMeasurements}
	}
	for _, t := range tables {
		have := map[string]bool{}
		err := queryInto(ctx, c, `SELECT name AS Name FROM system.columns WHERE database = `+quote(cfg.Database)+` AND table = `+quote(t),
			func(r struct{ Name string }) { have[r.Name] = true })
		if err != nil {
			return err
		}
		for _, col := range addedColumns {
			if have[col[0]] {
				continue
			}
			if err := c.exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s ADD COLUMN %s %s", cfg.Database, t, col[0], col[1]), nil); err != nil {
				return err
			}
		}
	}
	return nil
}
