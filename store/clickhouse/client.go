package clickhouse

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config is where the tables are: parsed from the URL that
// `--clickhouse` takes.
type Config struct {
	// Hosts are the HTTP addresses (host:port) of the servers; queries
	// and inserts go to the first. With Cluster set, the tables are
	// created on every one of them: list every shard.
	Hosts []string
	// User and Password authenticate (HTTP basic); empty means the
	// server's default user.
	User, Password string
	// Database holds the tables; empty means "default".
	Database string
	// Cluster names the server's cluster (remote_servers) over which the
	// tables are Distributed; empty means one server, plain tables.
	Cluster string
	// HTTPS talks https to the servers.
	HTTPS bool
}

// ParseURL reads
//
//	http[s]://[user[:password]@]host:port[,host:port...]/[database][?cluster=NAME]
//
// e.g. http://127.0.0.1:8123/kzprobe, or for two shards of the cluster
// "kzprobe", http://10.0.0.1:8123,10.0.0.2:8123/kzprobe?cluster=kzprobe.
func ParseURL(raw string) (Config, error) {
	var c Config
	// url.Parse refuses a list of hosts: parse with the first alone.
	hosts, one := "", raw
	if scheme, rest, ok := strings.Cut(raw, "://"); ok {
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		auth := rest[:end]
		userinfo := ""
		if i := strings.LastIndex(auth, "@"); i >= 0 {
			userinfo, auth = auth[:i+1], auth[i+1:]
		}
		hosts = auth
		first, _, _ := strings.Cut(auth, ",")
		one = scheme + "://" + userinfo + first + rest[end:]
	}
	u, err := url.Parse(one)
	if err != nil {
		return c, fmt.Errorf("clickhouse: URL %q: %w", raw, err)
	}
	switch u.Scheme {
	case "http":
	case "https":
		c.HTTPS = true
	default:
		return c, fmt.Errorf("clickhouse: URL %q: want http:// or https:// (the server's HTTP interface, port 8123 by default)", raw)
	}
	for h := range strings.SplitSeq(hosts, ",") {
		if h == "" {
			continue
		}
		if !strings.Contains(h, ":") {
			h += ":8123"
		}
		c.Hosts = append(c.Hosts, h)
	}
	if len(c.Hosts) == 0 {
		return c, fmt.Errorf("clickhouse: URL %q names no host", raw)
	}
	if u.User != nil {
		c.User = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	c.Database = strings.Trim(u.Path, "/")
	if c.Database == "" {
		c.Database = "default"
	}
	if !validName(c.Database) {
		return c, fmt.Errorf("clickhouse: URL %q: database %q: letters, digits and _ only", raw, c.Database)
	}
	q := u.Query()
	c.Cluster = q.Get("cluster")
	if c.Cluster != "" && !validName(c.Cluster) {
		return c, fmt.Errorf("clickhouse: URL %q: cluster %q: letters, digits and _ only", raw, c.Cluster)
	}
	for k := range q {
		if k != "cluster" {
			return c, fmt.Errorf("clickhouse: URL %q: unknown parameter %q (only cluster)", raw, k)
		}
	}
	return c, nil
}

// validName is a database, table or cluster name that needs no quoting.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// client talks to one server's HTTP interface: statements in the body,
// rows in and out as JSONEachRow, which ClickHouse 18.16 and today's read
// and write alike (clickhouse-go/v2 does not work with 18.16: see doc.go).
type client struct {
	base     string // http://host:port/
	user     string
	password string
	http     *http.Client
}

func newClient(cfg Config, host string) *client {
	scheme := "http"
	if cfg.HTTPS {
		scheme = "https"
	}
	return &client{
		base:     scheme + "://" + host + "/",
		user:     cfg.User,
		password: cfg.Password,
		http:     &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}},
	}
}

// ErrServer wraps the errors the server answered (as opposed to not
// answering at all).
var ErrServer = errors.New("clickhouse: server error")

// do sends body to the server with the query string params (settings, or
// query=INSERT ...), returning the response body to read and close.
func (c *client) do(ctx context.Context, params url.Values, body io.Reader) (io.ReadCloser, error) {
	return c.doLen(ctx, params, body, -1)
}

// doLen is do with the body's length given (-1: as net/http finds it).
func (c *client) doLen(ctx context.Context, params url.Values, body io.Reader, n int64) (io.ReadCloser, error) {
	if params == nil {
		params = url.Values{}
	}
	// 64-bit integers as JSON numbers (18.16 quotes them by default).
	params.Set("output_format_json_quote_64bit_integers", "0")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"?"+params.Encode(), body)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	if n >= 0 {
		req.ContentLength = n
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s: %s", ErrServer, resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp.Body, nil
}

// exec runs one statement that returns nothing.
func (c *client) exec(ctx context.Context, sql string, params url.Values) error {
	rc, err := c.do(ctx, params, strings.NewReader(sql))
	if err != nil {
		return fmt.Errorf("%w (in %s)", err, firstWords(sql))
	}
	_, err = io.Copy(io.Discard, rc)
	rc.Close()
	return err
}

// insert sends rows, JSONEachRow, into table; it returns once the server
// has written them (a synchronous insert; with insert_distributed_sync,
// also on the shards).
func (c *client) insert(ctx context.Context, table string, rows []byte, params url.Values) error {
	return c.insertChunks(ctx, table, [][]byte{rows}, params)
}

// insertChunks is insert with the rows in pieces, sent one after the
// other without being copied together.
func (c *client) insertChunks(ctx context.Context, table string, chunks [][]byte, params url.Values) error {
	if params == nil {
		params = url.Values{}
	}
	params.Set("query", "INSERT INTO "+table+" FORMAT JSONEachRow")
	readers := make([]io.Reader, len(chunks))
	n := 0
	for i, b := range chunks {
		readers[i] = bytes.NewReader(b)
		n += len(b)
	}
	rc, err := c.doLen(ctx, params, io.MultiReader(readers...), int64(n))
	if err != nil {
		return fmt.Errorf("%w (in INSERT INTO %s)", err, table)
	}
	_, err = io.Copy(io.Discard, rc)
	rc.Close()
	return err
}

// query runs sql (which must not name a FORMAT) and decodes each row,
// JSONEachRow, with fn.
func (c *client) query(ctx context.Context, sql string, fn func(row []byte) error) error {
	rc, err := c.do(ctx, nil, strings.NewReader(sql+"\nFORMAT JSONEachRow"))
	if err != nil {
		return fmt.Errorf("%w (in %s)", err, firstWords(sql))
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := fn(line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("clickhouse: reading the answer to %s: %w", firstWords(sql), err)
	}
	return nil
}

// queryInto decodes every row of sql into a new T and passes it to fn.
func queryInto[T any](ctx context.Context, c *client, sql string, fn func(T)) error {
	return c.query(ctx, sql, func(row []byte) error {
		var v T
		if err := json.Unmarshal(row, &v); err != nil {
			return fmt.Errorf("clickhouse: a row of %s: %w", firstWords(sql), err)
		}
		fn(v)
		return nil
	})
}

func firstWords(sql string) string {
	s := strings.Join(strings.Fields(sql), " ")
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return s
}
