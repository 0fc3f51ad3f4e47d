package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/net/netutil"

	"kzprobe/control"
	"kzprobe/dnsx"
	"kzprobe/probe"
	"kzprobe/probe/chain"
	"kzprobe/probe/guard"
)

// controlServeArgs are the flags of `kzprobe control serve`.
type controlServeArgs struct {
	config         string
	listen         string
	tlsCert        string
	tlsKey         string
	insecureHTTP   bool
	resolver       string
	resolverName   string
	resolverCA     string
	trustRoots     string
	ports          []int
	allowNet       []string
	maxAddresses   int
	maxBody        int64
	rate           float64
	burst          int
	maxConcurrent  int
	maxConns       int
	deadline       time.Duration
	token          string
	tokenFile      string
	trustedProxies []string
	logFormat      string
}

func newControlCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "control",
		Short: "Run the control server that probes may ask (a vantage outside the network)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError("kzprobe control: say what to do, e.g. kzprobe control serve")
		},
	}
	cmd.AddCommand(newControlServeCmd())
	return cmd
}

func newControlServeCmd() *cobra.Command {
	var a controlServeArgs
	cmd := &cobra.Command{
		Use:   "serve --listen ADDR --tls-cert FILE --tls-key FILE",
		Short: "Serve the control API (POST /v1/check) over HTTPS",
		Long: `Serve the control server ("test helper"), to be deployed on a machine
outside the censored network. For a domain and the addresses a probe's own
resolver gave, it reports its own DNS answers (from --resolver, DNS over HTTPS
by default), a TLS handshake with SNI = the domain to each address and to its
own answers (the presented chain as DER, judged against its trust store) and
the client's address as it sees it. The API is documented in control/API.md.

A probe uses it with: kzprobe run --control-server https://HOST:PORT

It connects where strangers ask, so by default it only dials port 443 (--port),
never loopback, private, link-local, multicast, CGNAT or other special-purpose
addresses (--allow-net admits some), takes at most 8 addresses and 8 KiB per
request, --rate requests per second per client, --max-concurrent checks at
once, and answers within --deadline. --token makes a bearer token mandatory.
The network guard (network.allow in -c FILE, or KZPROBE_NETWORK_ALLOW) still
limits every connection it makes.

Logs go to stderr, one structured record per request, never the request body.`,
		Example: `  kzprobe control serve --listen :443 --tls-cert cert.pem --tls-key key.pem
  kzprobe control serve --listen 127.0.0.1:8080 --insecure-http --trusted-proxy 127.0.0.1/32
  kzprobe control serve --listen :8443 --tls-cert c.pem --tls-key k.pem --token-file token.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runControlServe(ctx, a, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	def := dnsx.DefaultControl()
	f.StringVarP(&a.config, "config", "c", "", "configuration `file` (YAML; only network.allow is used here)")
	f.StringVar(&a.listen, "listen", ":8443", "listen `address`, ip:port or :port (an IP literal: nothing is resolved)")
	f.StringVar(&a.tlsCert, "tls-cert", "", "PEM `file` of the server's certificate chain")
	f.StringVar(&a.tlsKey, "tls-key", "", "PEM `file` of the server's private key")
	f.BoolVar(&a.insecureHTTP, "insecure-http", false, "serve plain HTTP, for a deployment behind a TLS-terminating proxy")
	f.StringVar(&a.resolver, "resolver", def.URL, "the server's own resolver `URL`: https://IP/dns-query (DoH), tls://IP:853, udp://IP:53")
	f.StringVar(&a.resolverName, "resolver-name", "", "TLS server `name` of --resolver (default: the known name of a public resolver's IP)")
	f.StringVar(&a.resolverCA, "resolver-ca", "", "PEM `file` of roots for --resolver's certificate (default: the embedded Mozilla bundle)")
	f.StringVar(&a.trustRoots, "trust-roots", "", "PEM `file` replacing the embedded Mozilla bundle for judging the sites' chains")
	f.IntSliceVar(&a.ports, "port", []int{443}, "TLS `ports` a request may name (repeatable)")
	f.StringSliceVar(&a.allowNet, "allow-net", nil, "special-purpose `CIDRs` (loopback, private, ...) to admit as targets; refused by default")
	f.IntVar(&a.maxAddresses, "max-addresses", control.DefaultMaxAddresses, "most addresses per request")
	f.Int64Var(&a.maxBody, "max-body", control.DefaultMaxBodyBytes, "most `bytes` in a request body")
	f.Float64Var(&a.rate, "rate", control.DefaultRate, "requests per second one client (IPv4 address or IPv6 /64) may sustain; negative for no limit")
	f.IntVar(&a.burst, "burst", control.DefaultBurst, "requests one client may send at once")
	f.IntVar(&a.maxConcurrent, "max-concurrent", control.DefaultMaxConcurrent, "checks in progress at once, over all clients")
	f.IntVar(&a.maxConns, "max-conns", 1024, "open client connections at once")
	f.DurationVar(&a.deadline, "deadline", control.DefaultDeadline, "bound on one check, from request to answer")
	f.StringVar(&a.token, "token", "", "require this bearer `token` (visible in the process list: prefer --token-file)")
	f.StringVar(&a.tokenFile, "token-file", "", "require the bearer token read from this `file`")
	f.StringSliceVar(&a.trustedProxies, "trusted-proxy", nil, "`CIDRs` of reverse proxies whose X-Forwarded-For names the client")
	f.StringVar(&a.logFormat, "log-format", "text", "log format: text or json")
	return cmd
}

// runControlServe is `kzprobe control serve` after flag parsing.
func runControlServe(ctx context.Context, a controlServeArgs, stderr io.Writer) error {
	var handler slog.Handler
	switch a.logFormat {
	case "text":
		handler = slog.NewTextHandler(stderr, nil)
	case "json":
		handler = slog.NewJSONHandler(stderr, nil)
	default:
		return usageError("--log-format %q: want text or json", a.logFormat)
	}
	logger := slog.New(handler)

	cfg, err := loadConfig(a.config, nil, nil)
	if err != nil {
		return err
	}
	g, err := guard.Parse(cfg.Network.Allow...)
	if err != nil {
		return fmt.Errorf("%w: network.allow: %v", ErrConfig, err)
	}
	dial := g.Dialer(nil)
	admit, err := parsePrefixes("--allow-net", a.allowNet)
	if err != nil {
		return err
	}
	proxies, err := parsePrefixes("--trusted-proxy", a.trustedProxies)
	if err != nil {
		return err
	}
	if err := checkListen(a.listen); err != nil {
		return err
	}
	token := a.token
	if a.tokenFile != "" {
		if token != "" {
			return usageError("give --token or --token-file, not both")
		}
		data, err := os.ReadFile(a.tokenFile)
		if err != nil {
			return usageError("--token-file: %v", err)
		}
		if token = strings.TrimSpace(string(data)); token == "" {
			return usageError("--token-file %s is empty", a.tokenFile)
		}
	}
	var tlsConfig *tls.Config
	switch {
	case a.insecureHTTP && (a.tlsCert != "" || a.tlsKey != ""):
		return usageError("--insecure-http serves plain HTTP: drop --tls-cert and --tls-key")
	case a.insecureHTTP:
	case a.tlsCert == "" || a.tlsKey == "":
		return usageError("--tls-cert and --tls-key are required (or --insecure-http behind a TLS-terminating proxy)")
	default:
		cert, err := tls.LoadX509KeyPair(a.tlsCert, a.tlsKey)
		if err != nil {
			return usageError("loading --tls-cert/--tls-key: %v", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	var resolverRoots *x509.CertPool
	if a.resolverCA != "" {
		if resolverRoots, err = loadPool(a.resolverCA, "--resolver-ca"); err != nil {
			return err
		}
	}
	trust, err := loadTrust(a.trustRoots)
	if err != nil {
		return err
	}
	specs := []dnsx.Spec{{URL: a.resolver, ServerName: controlName(a.resolver, a.resolverName)}}
	if a.resolver == dnsx.DefaultControl().URL && a.resolverName == "" {
		specs = append(specs, dnsx.DefaultFallbacks()...)
	}
	ex, err := dnsx.NewWithFallbacks(specs, dnsx.Options{RootCAs: resolverRoots, Dial: dial})
	if err != nil {
		return usageError("--resolver: %v", err)
	}
	defer ex.Close()
	kb, err := chain.Default()
	if err != nil {
		return fmt.Errorf("loading the embedded knowledge base: %w", err)
	}
	srv, err := control.NewServer(control.ServerConfig{
		Resolver:       &probe.DNSResolver{Exchanger: ex},
		Dial:           dial,
		Analyzer:       chain.NewAnalyzer(trust, kb),
		Admit:          admit,
		Ports:          a.ports,
		MaxAddresses:   a.maxAddresses,
		MaxBodyBytes:   a.maxBody,
		Rate:           a.rate,
		Burst:          a.burst,
		MaxConcurrent:  a.maxConcurrent,
		MaxConns:       a.maxConns,
		Deadline:       a.deadline,
		Token:          token,
		TrustedProxies: proxies,
		Logger:         logger,
	})
	if err != nil {
		return usageError("%v", err)
	}

	ln, err := net.Listen("tcp", a.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", a.listen, err)
	}
	ln = netutil.LimitListener(ln, max(a.maxConns, 1))
	hs := srv.HTTPServer(tlsConfig)
	scheme := "https"
	if tlsConfig == nil {
		scheme = "http"
	}
	logger.Info("control server listening", "url", scheme+"://"+ln.Addr().String(), "api", control.CheckPath,
		"ports", a.ports, "allow_net", admit, "guard", g.String(), "token", token != "")
	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("control server stopping")
	sctx, cancel := context.WithTimeout(context.Background(), a.deadline+time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// parsePrefixes parses CIDR lists given to flag.
func parsePrefixes(flag string, specs []string) ([]netip.Prefix, error) {
	g, err := guard.Parse(specs...)
	if err != nil {
		return nil, usageError("%s: %v", flag, err)
	}
	return g.Prefixes(), nil
}

// checkListen accepts "ip:port" and ":port": a name would be resolved by
// the system resolver, which kzprobe never uses.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usageError("--listen %q: want ip:port or :port", addr)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return usageError("--listen %q: the host must be an IP literal (nothing is resolved)", addr)
		}
	}
	if _, err := netip.ParseAddrPort("0.0.0.0:" + port); err != nil {
		return usageError("--listen %q: bad port", addr)
	}
	return nil
}
