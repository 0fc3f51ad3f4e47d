package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"kzprobe/analysis"
	"kzprobe/collector"
	"kzprobe/collector/client"
	"kzprobe/store"
	"kzprobe/store/files"
)

// collectorServeArgs are the flags of `kzprobe collector serve`.
type collectorServeArgs struct {
	listen            string
	tlsCert, tlsKey   string
	tokenFile         string
	storeDir          string
	clickhouse        string
	maxBody           int64
	rate              float64
	burst             int
	maxConcurrent     int
	maxConns          int
	title             string
	trustRoots        string
	interceptionRoots []string
	logFormat         string
	verbose           bool
}

func newCollectorCmd() *cobra.Command {
	return newServeParentCmd("collector", "Collect what probes submit (OONI's collector protocol)",
		"the collector", newCollectorServeCmd())
}

func newCollectorServeCmd() *cobra.Command {
	var a collectorServeArgs
	cmd := &cobra.Command{
		Use:   "serve --store DIR [--listen ADDR]",
		Short: "Accept measurements over HTTPS and serve the live report at /",
		Long: `Serve OONI's collector API (ooni/spec backends/bk-003-collector.md) over
HTTPS: POST /report opens a report, POST /report/{id} appends one measurement,
POST /report/{id}/close closes it. Probes submit with
kzprobe run --submit URL or kzprobe submit FILE... --submit URL.

A measurement is answered 200 only once it is on disk (fsynced) in --store:
append-only JSONL.gz files partitioned by day, country and network,
DIR/YYYYMMDD/CC/ASN/TEST_NAME.jsonl.gz, which kzprobe analyze DIR reads. Each
stored line is the probe's record byte for byte; a record sent twice is kept
once (by measurement_uid). The open reports are journaled in
DIR/reports.journal, so a restarted collector keeps accepting them.
One collector per folder: a second one on DIR exits 1 at start.

Every submission is checked: df-000-base's keys and types, the report's id,
test name, country and network, a measurement_uid, no probe_ip but the
placeholder 127.0.0.1 (a real address is refused, never stored or logged),
and chains that are certificates; the chains are judged again here (what the
probe concluded is never trusted). Bad input gets a 4xx and nothing is
stored; a store failure (a full disk) a 503, and the probe keeps the record.
Bodies, requests per client and requests at once are bounded.

With --clickhouse URL the measurements go to ClickHouse instead (the tables
of kzprobe ingest, created where missing; the record's JSON kept in the
measurements table): 200 once both tables' inserts returned, a 503 when
ClickHouse does not answer (the probe keeps the record and resends it).
--store still holds the reports journal and the self-signed key pair.

GET / is the live HTML report of everything stored, as kzprobe report
writes it (rendered at most every 30 s); it needs no token.

Without --tls-cert and --tls-key, a self-signed key pair is made once in
DIR (tls-cert.pem, tls-key.pem) and its pin printed: probes then give
--submit-pin sha256:... instead of a CA.`,
		Example: `  kzprobe collector serve --store /srv/kzprobe --listen :8443
  kzprobe collector serve --store data --listen 203.0.113.5:443 --tls-cert c.pem --tls-key k.pem --token-file token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runCollectorServe(ctx, a, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&a.storeDir, "store", "", "`folder` of the file store (created if needed); required")
	f.StringVar(&a.clickhouse, "clickhouse", "", "keep the measurements in ClickHouse instead of --store's files (which keeps the reports journal and the TLS pair); "+clickhouseURLHelp)
	f.StringVar(&a.listen, "listen", ":8443", "listen `address`, ip:port or :port (an IP literal: nothing is resolved)")
	f.StringVar(&a.tlsCert, "tls-cert", "", "PEM `file` of the server's certificate chain (default: a self-signed one in --store)")
	f.StringVar(&a.tlsKey, "tls-key", "", "PEM `file` of the server's private key")
	f.StringVar(&a.tokenFile, "token-file", "", "require the bearer token read from this `file` on every POST")
	f.Int64Var(&a.maxBody, "max-body", collector.DefaultMaxBodyBytes, "most `bytes` in a request body")
	f.Float64Var(&a.rate, "rate", collector.DefaultRate, "requests per second one client (IPv4 address or IPv6 /64) may sustain; negative for no limit")
	f.IntVar(&a.burst, "burst", collector.DefaultBurst, "requests one client may send at once")
	f.IntVar(&a.maxConcurrent, "max-concurrent", collector.DefaultMaxConcurrent, "requests handled at once; past it 503 and Retry-After")
	f.IntVar(&a.maxConns, "max-conns", 4096, "open client connections at once")
	f.StringVar(&a.title, "title", "", "title of the live report at /")
	f.StringVar(&a.trustRoots, "trust-roots", "", "PEM `file` replacing the embedded Mozilla bundle for judging chains")
	f.StringSliceVar(&a.interceptionRoots, "interception-roots", nil, "PEM `file` of further interception roots for judging chains (repeatable)")
	f.StringVar(&a.logFormat, "log-format", "text", "log format: text or json")
	f.BoolVarP(&a.verbose, "verbose", "v", false, "log every accepted measurement too (by default only refusals and failures)")
	return cmd
}

// runCollectorServe is `kzprobe collector serve` after flag parsing.
func runCollectorServe(ctx context.Context, a collectorServeArgs, stderr io.Writer) error {
	level := slog.LevelInfo
	if a.verbose {
		level = slog.LevelDebug
	}
	logger, err := newLevelLogger(a.logFormat, level, stderr)
	if err != nil {
		return err
	}
	if a.storeDir == "" {
		return usageError("--store DIR is required: the folder the measurements are kept in")
	}
	if err := checkListen(a.listen); err != nil {
		return err
	}
	token, err := readTokenFile("--token-file", a.tokenFile)
	if err != nil {
		return err
	}
	judge, err := collectorJudge(a)
	if err != nil {
		return err
	}
	var st store.Store
	var records int64
	var unlocked error
	page := collector.FilePage(a.storeDir, a.title, analysis.Config{Judge: judge})
	if a.clickhouse != "" {
		db, err := openClickHouse(ctx, a.clickhouse, analysis.Config{Judge: judge})
		if err != nil {
			return err
		}
		defer db.Close()
		if records, _, err = db.Count(ctx); err != nil {
			return fmt.Errorf("--clickhouse %s: %w", redactURL(a.clickhouse), err)
		}
		// The folder keeps the reports journal: one collector at a time.
		lock, err := files.LockDir(a.storeDir)
		if err != nil {
			return err
		}
		defer lock.Close()
		unlocked = lock.Unlocked
		st, page = db, clickhousePage(db, a.title, analysis.Config{Judge: judge})
	} else {
		fst, err := files.Open(a.storeDir, files.Options{})
		if err != nil {
			return err
		}
		defer fst.Close()
		for _, r := range fst.Repaired {
			logger.Warn("a file's cut tail was moved aside", "file", r.File, "whole_until", r.Offset, "moved_to", r.Moved)
		}
		st, records, unlocked = fst, int64(fst.Len()), fst.Unlocked
	}
	if unlocked != nil {
		logger.Warn("the store folder is not locked: a second collector on it would not be stopped", "error", unlocked)
	}
	tlsConfig, pin, generated, err := collectorTLS(a)
	if err != nil {
		return err
	}
	srv, err := collector.NewServer(collector.Config{
		Store:         st,
		Judge:         judge,
		ReportsFile:   filepath.Join(a.storeDir, "reports.journal"),
		MaxBodyBytes:  a.maxBody,
		Rate:          a.rate,
		Burst:         a.burst,
		MaxConcurrent: a.maxConcurrent,
		Token:         token,
		Page:          page,
		Logger:        logger,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := listenLimited(a.listen, a.maxConns)
	if err != nil {
		return err
	}
	hs := srv.HTTPServer(tlsConfig)
	url := "https://" + ln.Addr().String()
	logger.Info("collector listening", "url", url, "store", a.storeDir, "clickhouse", redactURL(a.clickhouse), "records", records, "token", token != "",
		"tls_pin", pin, "tls_generated", generated)
	if generated != "" {
		logger.Info("probes submit with", "command", "kzprobe run --submit "+url+" --submit-pin "+pin)
	}
	return serveUntilDone(ctx, hs, ln, collector.DefaultPutTimeout, logger, "collector")
}

// collectorJudge is the chain judge of --trust-roots and
// --interception-roots.
func collectorJudge(a collectorServeArgs) (*analysis.Judge, error) {
	an, err := flagAnalyzer(a.trustRoots, a.interceptionRoots)
	if err != nil {
		return nil, err
	}
	return &analysis.Judge{Analyzer: an}, nil
}

// collectorTLS is the server's certificate: --tls-cert and --tls-key, or
// the self-signed pair in --store, made on first use. pin is the
// certificate key's pin; generated names the certificate file when it is
// the self-signed one.
func collectorTLS(a collectorServeArgs) (cfg *tls.Config, pin, generated string, err error) {
	certFile, keyFile := a.tlsCert, a.tlsKey
	switch {
	case (certFile == "") != (keyFile == ""):
		return nil, "", "", usageError("give both --tls-cert and --tls-key, or neither (a self-signed pair is made in --store)")
	case certFile == "":
		certFile, keyFile = filepath.Join(a.storeDir, "tls-cert.pem"), filepath.Join(a.storeDir, "tls-key.pem")
		generated = certFile
		if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
			if err := writeSelfSigned(certFile, keyFile, a.listen); err != nil {
				return nil, "", "", fmt.Errorf("making a self-signed certificate: %w", err)
			}
		}
	}
	cfg, err = loadServerTLS(certFile, keyFile)
	if err != nil {
		return nil, "", "", usageError("loading the TLS key pair: %v", err)
	}
	leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil {
		return nil, "", "", usageError("the TLS certificate: %v", err)
	}
	pin = client.FormatPin(sha256.Sum256(leaf.RawSubjectPublicKeyInfo))
	return cfg, pin, generated, nil
}

// writeSelfSigned makes an ECDSA P-256 key and a self-signed certificate
// for the listen address (and loopback), valid ten years; the key file is
// readable by its owner only.
func writeSelfSigned(certFile, keyFile, listen string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if host, _, err := net.SplitHostPort(listen); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
			ips = append(ips, ip.AsSlice())
		}
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "kzprobe collector"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           ips,
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o750); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// newSubmitClient is the collector client of --submit, --submit-pin,
// --submit-ca and a token, dialling through dial.
func newSubmitClient(url, pin, caFile, token string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*client.Client, error) {
	var roots *x509.CertPool
	if caFile != "" {
		var err error
		if roots, err = loadPool(caFile, "submit.ca"); err != nil {
			return nil, err
		}
	}
	c, err := client.New(url, client.Options{Pin: pin, RootCAs: roots, Token: token, Dial: dial})
	if err != nil {
		return nil, fmt.Errorf("%w: --submit: %v", ErrConfig, err)
	}
	return c, nil
}

// readTokenFile reads a bearer token from file ("" when file is "").
func readTokenFile(flag, file string) (string, error) {
	if file == "" {
		return "", nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", usageError("%s: %v", flag, err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", usageError("%s %s is empty", flag, file)
	}
	return token, nil
}
