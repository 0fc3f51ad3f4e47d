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
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

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
	sniEndpoint    string
	sniCert        string
	sniKey         string
}

func newControlCmd() *cobra.Command {
	return newServeParentCmd("control", "Run the control server probes ask (a vantage outside)",
		"the control server", newControlServeCmd())
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
	f.StringVar(&a.sniEndpoint, "sni-endpoint", "", "also run the neutral SNI endpoint of kzprobe sweep on this `address` (ip:port or :port, e.g. :443): a TLS handshake for any SNI with one certificate of its own, then a close once the client has closed; GET /v1/sni-endpoint returns its address and key pin")
	f.StringVar(&a.sniCert, "sni-cert", "", "PEM `file` of the SNI endpoint's certificate; with --sni-key, both are generated (self-signed, ECDSA P-256) and kept there when neither exists, so the pin survives a restart (default: generated at each start)")
	f.StringVar(&a.sniKey, "sni-key", "", "PEM `file` of the SNI endpoint's private key (see --sni-cert)")
	return cmd
}

// runControlServe is `kzprobe control serve` after flag parsing: it checks
// the flags and reads the files they name, builds the server and serves
// until ctx is done.
func runControlServe(ctx context.Context, a controlServeArgs, stderr io.Writer) error {
	logger, err := newLogger(a.logFormat, stderr)
	if err != nil {
		return err
	}
	g, err := loadGuard(a.config)
	if err != nil {
		return err
	}
	p, err := a.parse()
	if err != nil {
		return err
	}
	srv, closeResolver, err := a.newServer(p, g.Dialer(nil), logger)
	if err != nil {
		return err
	}
	defer closeResolver()
	return serveControl(ctx, srv, a, p, g, logger)
}

// newServer builds the control server: its own resolver (--resolver, with
// the public fallbacks when it is the default), dialling through dial, and
// the limits of the flags. closeResolver ends the resolver's connections.
func (a controlServeArgs) newServer(p controlServeFiles, dial guard.DialFunc, logger *slog.Logger) (srv *control.Server, closeResolver func() error, err error) {
	specs := []dnsx.Spec{{URL: a.resolver, ServerName: controlName(a.resolver, a.resolverName)}}
	if a.resolver == dnsx.DefaultControl().URL && a.resolverName == "" {
		specs = append(specs, dnsx.DefaultFallbacks()...)
	}
	ex, err := dnsx.NewWithFallbacks(specs, dnsx.Options{RootCAs: p.resolverRoots, Dial: dial})
	if err != nil {
		return nil, nil, usageError("--resolver: %v", err)
	}
	kb, err := chain.Default()
	if err != nil {
		ex.Close()
		return nil, nil, fmt.Errorf("loading the embedded knowledge base: %w", err)
	}
	srv, err = control.NewServer(control.ServerConfig{
		Resolver:       &probe.DNSResolver{Exchanger: ex},
		Dial:           dial,
		Analyzer:       chain.NewAnalyzer(p.trust, kb),
		Admit:          p.admit,
		Ports:          a.ports,
		MaxAddresses:   a.maxAddresses,
		MaxBodyBytes:   a.maxBody,
		Rate:           a.rate,
		Burst:          a.burst,
		MaxConcurrent:  a.maxConcurrent,
		MaxConns:       a.maxConns,
		Deadline:       a.deadline,
		Token:          p.token,
		TrustedProxies: p.proxies,
		SNIEndpoint:    p.sniInfo,
		Logger:         logger,
	})
	if err != nil {
		ex.Close()
		return nil, nil, usageError("%v", err)
	}
	return srv, ex.Close, nil
}

// loadGuard is the network guard of the config file's network.allow (or
// KZPROBE_NETWORK_ALLOW): the only key `control serve` reads from it.
func loadGuard(configFile string) (*guard.Guard, error) {
	cfg, err := loadConfig(configFile, nil, nil)
	if err != nil {
		return nil, err
	}
	g, err := guard.Parse(cfg.Network.Allow...)
	if err != nil {
		return nil, fmt.Errorf("%w: network.allow: %v", ErrConfig, err)
	}
	return g, nil
}

// controlServeFiles is what the flags of `control serve` say once parsed
// and the files they name read.
type controlServeFiles struct {
	admit, proxies []netip.Prefix
	token          string
	// tlsConfig is the server's certificate; nil means plain HTTP.
	tlsConfig *tls.Config
	// resolverRoots verify --resolver (nil: the embedded bundle); trust
	// judges the sites' chains (nil: the embedded bundle).
	resolverRoots, trust *x509.CertPool
	// sniEndpoint is the neutral SNI endpoint of --sni-endpoint and
	// sniInfo what the API says of it; nil without the flag.
	sniEndpoint *control.SNIEndpoint
	sniInfo     *control.SNIEndpointResponse
	// sniGenerated names the files the endpoint's certificate was just
	// written to, "" when it was read or is in memory only.
	sniGenerated string
}

// parse checks the flags that need more than their type and reads the
// files they name, before the server is built.
func (a controlServeArgs) parse() (controlServeFiles, error) {
	var p controlServeFiles
	var err error
	if p.admit, err = parsePrefixes("--allow-net", a.allowNet); err != nil {
		return p, err
	}
	if p.proxies, err = parsePrefixes("--trusted-proxy", a.trustedProxies); err != nil {
		return p, err
	}
	if err := checkListen(a.listen); err != nil {
		return p, err
	}
	if p.token, err = a.readToken(); err != nil {
		return p, err
	}
	if p.tlsConfig, err = a.serverTLS(); err != nil {
		return p, err
	}
	if a.resolverCA != "" {
		if p.resolverRoots, err = loadPool(a.resolverCA, "--resolver-ca"); err != nil {
			return p, err
		}
	}
	if p.trust, err = loadTrust(a.trustRoots); err != nil {
		return p, err
	}
	err = a.sniEndpointFiles(&p)
	return p, err
}

// sniEndpointFiles builds the SNI endpoint of --sni-endpoint: its
// certificate read from --sni-cert and --sni-key, or generated (and
// written there when both are named and neither exists).
func (a controlServeArgs) sniEndpointFiles(p *controlServeFiles) error {
	if a.sniEndpoint == "" {
		if a.sniCert != "" || a.sniKey != "" {
			return usageError("--sni-cert and --sni-key are for --sni-endpoint, which is not given")
		}
		return nil
	}
	if err := checkListen(a.sniEndpoint); err != nil {
		return usageError("--sni-endpoint: %v", err)
	}
	if (a.sniCert == "") != (a.sniKey == "") {
		return usageError("give both --sni-cert and --sni-key, or neither")
	}
	var certPEM, keyPEM []byte
	var err error
	switch _, certErr := os.Stat(a.sniCert); {
	case a.sniCert == "":
		if certPEM, keyPEM, err = control.NewSNIEndpointCertificate(time.Now()); err != nil {
			return err
		}
	case errors.Is(certErr, os.ErrNotExist):
		if _, err := os.Stat(a.sniKey); !errors.Is(err, os.ErrNotExist) {
			return usageError("--sni-key %s exists but --sni-cert %s does not: give both, or neither to generate them", a.sniKey, a.sniCert)
		}
		if certPEM, keyPEM, err = control.NewSNIEndpointCertificate(time.Now()); err != nil {
			return err
		}
		if err := os.WriteFile(a.sniKey, keyPEM, 0o600); err != nil {
			return fmt.Errorf("writing --sni-key: %w", err)
		}
		if err := os.WriteFile(a.sniCert, certPEM, 0o644); err != nil {
			return fmt.Errorf("writing --sni-cert: %w", err)
		}
		p.sniGenerated = a.sniCert + " and " + a.sniKey
	default:
		if certPEM, err = os.ReadFile(a.sniCert); err != nil {
			return usageError("--sni-cert: %v", err)
		}
		if keyPEM, err = os.ReadFile(a.sniKey); err != nil {
			return usageError("--sni-key: %v", err)
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return usageError("loading --sni-cert/--sni-key: %v", err)
	}
	if p.sniEndpoint, err = control.NewSNIEndpoint(cert); err != nil {
		return usageError("%v", err)
	}
	host, port, _ := net.SplitHostPort(a.sniEndpoint)
	n, _ := strconv.Atoi(port)
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		host = "" // every address: the client dials the one it reached the API at
	}
	p.sniInfo = &control.SNIEndpointResponse{Address: host, Port: n, Pin: p.sniEndpoint.Pin().String()}
	return nil
}

// readToken is the bearer token of --token or --token-file; empty means
// none.
func (a controlServeArgs) readToken() (string, error) {
	if a.tokenFile == "" {
		return a.token, nil
	}
	if a.token != "" {
		return "", usageError("give --token or --token-file, not both")
	}
	return readTokenFile("--token-file", a.tokenFile)
}

// serverTLS is the server's TLS configuration from --tls-cert and
// --tls-key; nil with --insecure-http.
func (a controlServeArgs) serverTLS() (*tls.Config, error) {
	switch {
	case a.insecureHTTP && (a.tlsCert != "" || a.tlsKey != ""):
		return nil, usageError("--insecure-http serves plain HTTP: drop --tls-cert and --tls-key")
	case a.insecureHTTP:
		return nil, nil
	case a.tlsCert == "" || a.tlsKey == "":
		return nil, usageError("--tls-cert and --tls-key are required (or --insecure-http behind a TLS-terminating proxy)")
	}
	cfg, err := loadServerTLS(a.tlsCert, a.tlsKey)
	if err != nil {
		return nil, usageError("loading --tls-cert/--tls-key: %v", err)
	}
	return cfg, nil
}

// serveControl listens on --listen and serves srv until ctx is done, then
// lets the checks in progress end (within --deadline) before returning.
func serveControl(ctx context.Context, srv *control.Server, a controlServeArgs, p controlServeFiles, g *guard.Guard, logger *slog.Logger) error {
	ln, err := listenLimited(a.listen, a.maxConns)
	if err != nil {
		return err
	}
	hs := srv.HTTPServer(p.tlsConfig)
	scheme := "https"
	if p.tlsConfig == nil {
		scheme = "http"
	}
	logger.Info("control server listening", "url", scheme+"://"+ln.Addr().String(), "api", control.CheckPath,
		"ports", a.ports, "allow_net", p.admit, "guard", g.String(), "token", p.token != "")
	if p.sniEndpoint != nil {
		sln, err := net.Listen("tcp", a.sniEndpoint)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listening on --sni-endpoint %s: %w", a.sniEndpoint, err)
		}
		defer p.sniEndpoint.Close()
		p.sniInfo.Port = sln.Addr().(*net.TCPAddr).Port // the port bound, for :0
		go p.sniEndpoint.Serve(sln)
		attrs := []any{"address", sln.Addr().String(), "pin", p.sniEndpoint.Pin().String(), "api", control.SNIEndpointPath}
		if p.sniGenerated != "" {
			attrs = append(attrs, "generated", p.sniGenerated)
		} else if a.sniCert == "" {
			attrs = append(attrs, "note", "certificate generated for this start only: give --sni-cert and --sni-key to keep the pin")
		}
		logger.Info("SNI endpoint listening", attrs...)
	}
	return serveUntilDone(ctx, hs, ln, a.deadline+time.Second, logger, "control server")
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
