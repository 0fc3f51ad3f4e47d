package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"

	"kzprobe/analysis"
	"kzprobe/store"
)

// DB is kzprobe's tables on one ClickHouse server or a cluster of shards.
// It is safe for concurrent use.
type DB struct {
	cfg     Config
	clients []*client // one per host; the first takes queries and inserts
	judge   *analysis.Judge
	closed  atomic.Bool
}

var _ store.Store = (*DB)(nil)

// Open connects to the servers of cfg and creates the tables where they
// are missing. judge judges the chains of the records put or ingested; nil
// means the embedded knowledge base and the Mozilla roots.
func Open(ctx context.Context, cfg Config, judge *analysis.Judge) (*DB, error) {
	if len(cfg.Hosts) == 0 {
		return nil, errors.New("clickhouse: no host")
	}
	if cfg.Database == "" {
		cfg.Database = "default"
	}
	if judge == nil {
		judge = &analysis.Judge{}
	}
	db := &DB{cfg: cfg, judge: judge}
	for _, h := range cfg.Hosts {
		db.clients = append(db.clients, newClient(cfg, h))
	}
	if err := createSchema(ctx, cfg, db.clients); err != nil {
		return nil, err
	}
	return db, nil
}

// table is the qualified name of one of the tables.
func (db *DB) table(name string) string { return db.cfg.Database + "." + name }

// insertParams are the settings of every insert: through a Distributed
// table, wait until the shards have written the rows.
func (db *DB) insertParams() url.Values {
	if db.cfg.Cluster == "" {
		return nil
	}
	return url.Values{"insert_distributed_sync": {"1"}}
}

// insertBoth inserts the rows of both tables at once (ingest: a crash
// between the two is repaired by ingesting again).
func (db *DB) insertBoth(ctx context.Context, mrows, srows [][]byte) error {
	c := db.clients[0]
	errc := make(chan error, 1)
	go func() {
		if len(srows) == 0 {
			errc <- nil
			return
		}
		errc <- c.insertChunks(ctx, db.table(TableSightings), srows, db.insertParams())
	}()
	var err error
	if len(mrows) > 0 {
		err = c.insertChunks(ctx, db.table(TableMeasurements), mrows, db.insertParams())
	}
	return errors.Join(err, <-errc)
}

// insertRows inserts the JSONEachRow rows of both tables: the sightings
// first, so that a measurement row is never there without its sightings
// (a crash between the two is repaired by the resend, which dedup keeps
// once).
func (db *DB) insertRows(ctx context.Context, mrows, srows []byte) error {
	c := db.clients[0]
	if len(srows) > 0 {
		if err := c.insert(ctx, db.table(TableSightings), srows, db.insertParams()); err != nil {
			return err
		}
	}
	if len(mrows) > 0 {
		if err := c.insert(ctx, db.table(TableMeasurements), mrows, db.insertParams()); err != nil {
			return err
		}
	}
	return nil
}

// Put stores one measurement as submitted: its chains judged again (a
// submitted verdict is never trusted for the tables), a measurements row
// with r.Raw, and a chain_sightings row per handshake with a chain. It
// returns once the server has written both (a synchronous insert); a
// record whose UID is stored already adds nothing once deduplicated.
func (db *DB) Put(ctx context.Context, r store.Record) error {
	if db.closed.Load() {
		return store.ErrClosed
	}
	rec, _, err := analysis.DecodeRecord(r.Raw, analysis.Limits{})
	if err != nil {
		return fmt.Errorf("clickhouse: record %s: %w", r.UID, err)
	}
	if r.UID != "" {
		rec.MeasurementUID = r.UID
	}
	rec.Source = "report " + r.ReportID
	mrows, srows := rows(rec, db.judge, r.Raw, nil, nil)
	if err := db.insertRows(ctx, mrows, srows); err != nil {
		return fmt.Errorf("clickhouse: storing %s: %w", r.UID, err)
	}
	return nil
}

// Close marks the store closed; Put then returns store.ErrClosed.
func (db *DB) Close() error {
	db.closed.Store(true)
	for _, c := range db.clients {
		c.http.CloseIdleConnections()
	}
	return nil
}

// Count returns the number of distinct measurements and of handshakes
// with a chain stored (deduplicated).
func (db *DB) Count(ctx context.Context) (measurements, sightings int64, err error) {
	var row struct {
		N int64 `json:"n"`
	}
	for _, q := range []struct {
		table string
		dst   *int64
	}{{TableMeasurements, &measurements}, {TableSightings, &sightings}} {
		err = queryInto(ctx, db.clients[0], "SELECT count() AS n FROM "+db.table(q.table)+" FINAL", func(r struct {
			N int64 `json:"n"`
		}) {
			row = r
		})
		if err != nil {
			return 0, 0, err
		}
		*q.dst = row.N
	}
	return measurements, sightings, nil
}
