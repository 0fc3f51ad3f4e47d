// Package client is the probe's side of the collector protocol (OONI's
// bk-003): a Client that opens reports and submits measurements, and an
// Outbox that sends the records of a JSONL file as they are written and
// never loses one.
//
// # The outbox
//
// The outbox is the probe's own JSONL file plus a cursor beside it,
// FILE.submit: the byte offset up to which every record was answered by
// the collector (accepted, or refused for good), the collector's URL, and
// the reports the collector opened for the file's report IDs. A record is
// sent as written, byte for byte; the cursor moves only after the
// collector's answer, so a crash of the probe or of the collector, or no
// network at all, leaves every unsent record in the file, and the next
// run of the outbox (kzprobe submit FILE) resends from the cursor. A
// record sent twice is kept once: the collector deduplicates on
// measurement_uid.
//
// # Report IDs
//
// The spec makes the collector choose report IDs, and a measurement's
// report_id must be its report's. kzprobe run --submit opens the report
// before measuring and writes the collector's ID into every record, so the
// records submitted are the file's bytes. Records whose report_id the
// collector did not give (a run that started offline, a file submitted
// later) are sent in a report opened for them, with their report_id value
// replaced by the new one and every other byte unchanged; so is a record
// whose report the collector no longer has open (404, 410), and, as the
// spec requires (bk-003 3.2), one refused with a 4xx more than an hour
// after its report was opened.
package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"kzprobe/collector"
	"kzprobe/probe/chain"
	"kzprobe/probe/guard"
)

// DefaultTimeout bounds one request.
const DefaultTimeout = 30 * time.Second

// maxResponseBytes bounds an answer read.
const maxResponseBytes = 1 << 20

// ErrInvalidURL is wrapped by New's errors.
var ErrInvalidURL = errors.New("client: invalid collector URL")

// Options configure a Client. The zero value is usable for an IP-literal
// https URL whose certificate the embedded Mozilla roots verify; a
// collector with its own self-signed certificate needs Pin or RootCAs.
type Options struct {
	// Token is the bearer token the collector asks for; empty means none.
	Token string
	// RootCAs verifies the collector's certificate. Nil means
	// chain.MozillaRoots(), the bundle compiled into the binary.
	RootCAs *x509.CertPool
	// Pin, when set, is "sha256:BASE64", the SHA-256 of the collector's
	// certificate's public key (SubjectPublicKeyInfo), as `kzprobe
	// collector serve` prints it: that key is accepted whatever signed
	// it, and no other.
	Pin string
	// ServerName is the TLS name verified with RootCAs. Zero means the
	// URL's host.
	ServerName string
	// Dial makes the connections: pass the network guard's dialer. Nil
	// means a plain net.Dialer.
	Dial guard.DialFunc
	// Timeout bounds one request. Zero means DefaultTimeout.
	Timeout time.Duration
}

// Client speaks to one collector. It is safe for concurrent use.
type Client struct {
	base  string // the URL without a trailing slash
	opts  Options
	http  *http.Client
	token string
}

// New returns a client for the collector at rawURL, "https://IP:PORT"
// (an optional path prefix is kept). The host must be an IP literal:
// kzprobe resolves no name through the system resolver.
func New(rawURL string, opts Options) (*Client, error) {
	bad := func(format string, a ...any) (*Client, error) {
		return nil, fmt.Errorf("%w %q: %s", ErrInvalidURL, rawURL, fmt.Sprintf(format, a...))
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return bad("%v", err)
	}
	if u.Scheme != "https" {
		return bad("want https://IP:PORT")
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return bad("want https://IP:PORT[/prefix], without user info, query or fragment")
	}
	if _, err := netip.ParseAddr(u.Hostname()); err != nil {
		return bad("the host must be an IP literal (nothing is resolved)")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return bad("invalid port %q", p)
		}
	}
	roots := opts.RootCAs
	if roots == nil {
		roots = chain.MozillaRoots()
	}
	tlsConfig := &tls.Config{RootCAs: roots, ServerName: opts.ServerName, MinVersion: tls.VersionTLS12}
	if opts.Pin != "" {
		want, err := ParsePin(opts.Pin)
		if err != nil {
			return nil, err
		}
		// The pin replaces the chain's verification: the key is the
		// identity, as the collector's operator gave it.
		tlsConfig.InsecureSkipVerify = true
		tlsConfig.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("client: the collector presented no certificate")
			}
			if got := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo); got != want {
				return fmt.Errorf("client: the collector's key is %s, not the pinned %s", FormatPin(got), opts.Pin)
			}
			return nil
		}
	}
	dial := opts.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	c := &Client{base: strings.TrimSuffix(u.String(), "/"), opts: opts, token: opts.Token}
	c.http = &http.Client{
		Transport: &http.Transport{
			Proxy:           nil, // never an environment proxy
			DialContext:     dial,
			TLSClientConfig: tlsConfig,
			// HTTP/1.1: a probe submits one record at a time, so
			// HTTP/2's streams buy nothing, and its framing costs both
			// sides more CPU per record (BenchmarkCollectorMax).
			ForceAttemptHTTP2:      false,
			TLSHandshakeTimeout:    10 * time.Second,
			ResponseHeaderTimeout:  opts.Timeout,
			MaxResponseHeaderBytes: 64 << 10,
			MaxIdleConnsPerHost:    4,
			IdleConnTimeout:        90 * time.Second,
		},
		Timeout:       opts.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// URL returns the collector's URL as given.
func (c *Client) URL() string { return c.base }

// CloseIdle closes the client's idle connections.
func (c *Client) CloseIdle() { c.http.CloseIdleConnections() }

// ParsePin reads "sha256:BASE64" (standard base64 of 32 bytes).
func ParsePin(pin string) ([32]byte, error) {
	var out [32]byte
	b64, ok := strings.CutPrefix(pin, "sha256:")
	b, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(b) != len(out) {
		return out, fmt.Errorf("client: pin %q: want sha256:BASE64 of 32 bytes, as kzprobe collector serve prints it", pin)
	}
	copy(out[:], b)
	return out, nil
}

// FormatPin formats a SubjectPublicKeyInfo's SHA-256 as a pin.
func FormatPin(sum [32]byte) string {
	return "sha256:" + base64.StdEncoding.EncodeToString(sum[:])
}

// StatusError is a collector's answer other than 200.
type StatusError struct {
	// Status is the HTTP status; Code and Message the ErrorResponse's.
	Status        int
	Code, Message string
	// RetryAfter is the Retry-After the collector asked for, zero if none.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("collector answered %d", e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Permanent reports whether the answer is the client's fault (4xx but
// 408 and 429): sending the same again gets the same answer.
func (e *StatusError) Permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests && e.Status != http.StatusRequestTimeout
}

// Open opens a report (POST /report) and returns its ID.
func (c *Client) Open(ctx context.Context, q collector.OpenRequest) (string, error) {
	q.Format = collector.FormatJSON
	body, _ := json.Marshal(q)
	var resp collector.OpenResponse
	if err := c.post(ctx, collector.ReportPath, body, &resp); err != nil {
		return "", fmt.Errorf("client: opening a report: %w", err)
	}
	if resp.ReportID == "" {
		return "", errors.New("client: opening a report: the collector gave no report_id")
	}
	return resp.ReportID, nil
}

// Update submits one measurement, content exactly as given, to report id
// (POST /report/{id}).
func (c *Client) Update(ctx context.Context, id string, content []byte) (*collector.UpdateResponse, error) {
	var buf bytes.Buffer
	buf.Grow(len(content) + 32)
	buf.WriteString(`{"format":"json","content":`)
	buf.Write(content)
	buf.WriteString("}")
	var resp collector.UpdateResponse
	if err := c.post(ctx, collector.ReportPath+"/"+url.PathEscape(id), buf.Bytes(), &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Close closes report id (POST /report/{id}/close).
func (c *Client) Close(ctx context.Context, id string) error {
	var resp collector.CloseResponse
	return c.post(ctx, collector.ReportPath+"/"+url.PathEscape(id)+collector.ClosePath, nil, &resp)
}

func (c *Client) post(ctx context.Context, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		se := &StatusError{Status: resp.StatusCode}
		var e collector.ErrorResponse
		if json.Unmarshal(data, &e) == nil {
			se.Code, se.Message = e.Error, e.Message
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			se.RetryAfter = time.Duration(min(s, 3600)) * time.Second
		}
		return se
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the answer is not the expected JSON: %w", err)
	}
	return nil
}
