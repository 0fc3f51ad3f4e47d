package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"kzprobe/dnsx"
	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/chain"
	"kzprobe/probe/guard"
	"kzprobe/sweep"
	"kzprobe/targets"
	"kzprobe/trace"
)

// envPrefix is the prefix of every environment variable kzprobe reads:
// KZPROBE_TLS_TIMEOUT sets tls.timeout.
const envPrefix = "KZPROBE"

// Config is the whole configuration, decoded from defaults, probe.yaml,
// KZPROBE_* environment variables and flags (in rising precedence). It is a
// plain struct: cmd/ turns it into the probe's own structs.
type Config struct {
	Targets      TargetsConfig      `mapstructure:"targets"`
	DNS          DNSConfig          `mapstructure:"dns"`
	Control      ControlConfig      `mapstructure:"control"`
	TLS          TLSConfig          `mapstructure:"tls"`
	Interception InterceptionConfig `mapstructure:"interception"`
	Run          RunConfig          `mapstructure:"run"`
	Network      NetworkConfig      `mapstructure:"network"`
	Vantage      VantageConfig      `mapstructure:"vantage"`
	Sweep        SweepConfig        `mapstructure:"sweep"`
	Submit       SubmitConfig       `mapstructure:"submit"`
}

// SweepConfig is `kzprobe sweep`'s own settings (the rest it shares with
// kzprobe run: targets, tls, network, vantage, control.server).
type SweepConfig struct {
	// Endpoint is the neutral endpoint's "ip:port"; empty means the one
	// the control server (control.server) names.
	Endpoint string `mapstructure:"endpoint"`
	// EndpointPin is the endpoint's key pin, "sha256:<base64 or hex>";
	// required with Endpoint, and checked against the control server's
	// when both are given.
	EndpointPin string `mapstructure:"endpoint_pin"`
	// ControlSNI is the control name, one nobody blocks.
	ControlSNI string `mapstructure:"control_sni"`
	// ControlEvery is how many names go between two control handshakes.
	ControlEvery int `mapstructure:"control_every"`
	// Rate is the names started per second, "N/s" or "N"; "0" means no
	// limit.
	Rate string `mapstructure:"rate"`
	// Parallel is the names in progress at once.
	Parallel int `mapstructure:"parallel"`
	// Hello is the ClientHello: "fingerprint" (the first of
	// tls.fingerprints) or "tls12" (TLS 1.2 only, the handshake ended once
	// the certificate is read: less work per name; see probe.HelloTLS12).
	Hello string `mapstructure:"hello"`
	// Found is a file the intercepted and blocked names are written to,
	// one a line, for kzprobe run -i; empty means none.
	Found string `mapstructure:"found"`
}

// defaultSubmitWait is submit.wait's default.
const defaultSubmitWait = 30 * time.Second

// SubmitConfig is where a run's records are submitted (kzprobe collector
// serve, or any collector speaking OONI's protocol).
type SubmitConfig struct {
	// URL is the collector, https://IP:PORT; empty means no submission.
	URL string `mapstructure:"url"`
	// Pin is "sha256:BASE64", the collector's key as `kzprobe collector
	// serve` prints it; empty means the certificate is verified against
	// CA (or the embedded Mozilla bundle).
	Pin string `mapstructure:"pin"`
	// CA is a PEM file of roots for the collector's certificate.
	CA string `mapstructure:"ca"`
	// TokenFile holds the collector's bearer token; empty means none.
	TokenFile string `mapstructure:"token_file"`
	// Wait is how long a run keeps submitting after its last target;
	// what is left stays in the outbox for kzprobe submit.
	Wait time.Duration `mapstructure:"wait"`
}

// TargetsConfig says what to measure.
type TargetsConfig struct {
	// Files are target lists (plain text or Citizen Lab CSV; "-" is stdin).
	// Empty, with no Domains, means the embedded default list.
	Files []string `mapstructure:"files"`
	// Domains are extra names to measure (flag -d).
	Domains []string `mapstructure:"domains"`
	// Port is the TLS port dialled when a target names none, 1-65535.
	Port int `mapstructure:"port"`
}

// DNSConfig is the local (network's own) resolver.
type DNSConfig struct {
	// Resolver is "ip:port" of the local resolver; empty means the first
	// nameserver in ResolvConf.
	Resolver string `mapstructure:"resolver"`
	// ResolvConf is the resolv.conf to read. Empty means /etc/resolv.conf.
	ResolvConf string `mapstructure:"resolv_conf"`
	// Timeout bounds one query; positive. When no source sets it, it is
	// TLS.Timeout if a source sets that (loadConfig).
	Timeout time.Duration `mapstructure:"timeout"`
	// Retries is how many times a timed-out query is sent again.
	Retries int `mapstructure:"retries"`
}

// ControlConfig is the control resolver, outside the local network's reach.
type ControlConfig struct {
	// URL is https://IP/dns-query (DoH), tls://IP:853 (DoT) or udp://IP:53.
	URL string `mapstructure:"url"`
	// Name is the TLS server name of URL's certificate. Empty means the
	// well-known name of a public resolver's IP (1.1.1.1 is
	// cloudflare-dns.com, 8.8.8.8 dns.google, 9.9.9.9 dns.quad9.net), else
	// the IP itself.
	Name string `mapstructure:"name"`
	// CA is a PEM file of extra roots for the control's certificate.
	CA string `mapstructure:"ca"`
	// Fallbacks are tried in order when URL fails at the transport level,
	// each "URL" or "URL#name", when URL is the built-in default or
	// Fallback is set (see Specs).
	Fallbacks []string `mapstructure:"fallbacks"`
	// Fallback asks for Fallbacks with a URL of one's own: a control that
	// the user chose is otherwise the only one asked.
	Fallback bool `mapstructure:"fallback"`
	// Server is the URL of a control server (kzprobe control serve);
	// empty means none.
	Server string `mapstructure:"server"`
	// Token is the bearer token for Server.
	Token string `mapstructure:"token"`
}

// TLSConfig is the handshake step.
type TLSConfig struct {
	// Fingerprints are the browser fingerprints to hand-shake with, each a
	// separate handshake: chrome, firefox, safari, edge, ios, randomized,
	// golang, small. loadConfig leaves them parsed (Config.validate).
	Fingerprints []string `mapstructure:"fingerprints"`
	// SmallHelloRetry hand-shakes once more with the "small" fingerprint
	// where every configured one was refused (probe.Prober.SmallHelloRetry).
	SmallHelloRetry bool `mapstructure:"small_hello_retry"`
	// MaxAddresses bounds the resolved addresses dialled per target.
	MaxAddresses int `mapstructure:"max_addresses"`
	// Timeout bounds one TCP connect and one handshake.
	Timeout time.Duration `mapstructure:"timeout"`
	// TrustRoots is a PEM file that replaces the embedded Mozilla bundle.
	TrustRoots string `mapstructure:"trust_roots"`
}

// InterceptionConfig extends the embedded knowledge of the interception PKI.
type InterceptionConfig struct {
	// ExtraRoots are PEM files of further interception roots.
	ExtraRoots []string `mapstructure:"extra_roots"`
}

// RunConfig is how a run is carried out.
type RunConfig struct {
	// Parallel is how many targets are measured at once.
	Parallel int `mapstructure:"parallel"`
	// TargetTimeout bounds one whole target.
	TargetTimeout time.Duration `mapstructure:"target_timeout"`
	// Output is the JSONL path; empty means measurements-<UTC time>.jsonl
	// in the current folder, "-" means stdout.
	Output string `mapstructure:"output"`
	// SyncInterval is how often the output file is synced to disk.
	SyncInterval time.Duration `mapstructure:"sync_interval"`
	// Quiet prints only the summary: no start line, no line per target,
	// no progress.
	Quiet bool `mapstructure:"quiet"`
	// Verbose prints each step of each target on stderr.
	Verbose bool `mapstructure:"verbose"`
	// Wide shows the verdict table whole, whatever the terminal's width.
	Wide bool `mapstructure:"wide"`
	// NoColor turns colours off (so does the NO_COLOR variable).
	NoColor bool `mapstructure:"no_color"`
	// FailOn are verdicts that make the run exit 3 when any target gets
	// one (for cron and scripts).
	FailOn []measurement.Verdict `mapstructure:"fail_on"`
	// Trace traces each target found intercepted or blocked, as kzprobe
	// trace does (Linux only), to TraceOutput.
	Trace bool `mapstructure:"trace"`
	// TraceOutput is the trace records' JSONL file; empty means Output's
	// name with -trace before .jsonl.
	TraceOutput string `mapstructure:"trace_output"`
	// TraceControlSNI is the control SNI of run's traces (a sweep's
	// are its control_sni's).
	TraceControlSNI string `mapstructure:"trace_control_sni"`
	// Resume is set by --resume: Output already holds measurements of this
	// run, whose targets are skipped. Not a configuration key.
	Resume bool `mapstructure:"-"`
	// Append is set by --append: Output may already hold measurements,
	// and this run is added after them as a new report. Not a
	// configuration key.
	Append bool `mapstructure:"-"`
}

// NetworkConfig is the network guard.
type NetworkConfig struct {
	// Allow lists the CIDRs the probe may contact; empty means anywhere.
	Allow []string `mapstructure:"allow"`
	// Bind is the local source address of every connection and query;
	// empty means the system's choice.
	Bind string `mapstructure:"bind"`
}

// VantageConfig describes where the probe runs.
type VantageConfig struct {
	// ASN is "AS<number>"; empty means unknown (AS0).
	ASN string `mapstructure:"asn"`
	// CC is the two-letter country code; empty means unknown (ZZ).
	CC string `mapstructure:"cc"`
	// Network is the network's name.
	Network string `mapstructure:"network"`
	// ASNDB and CountryDB are MMDB files (MaxMind GeoLite2, DB-IP Lite,
	// IPinfo) used to find the ASN and country of the probe's public
	// address and of the resolver, on this computer. Empty means none.
	ASNDB     string `mapstructure:"asn_db"`
	CountryDB string `mapstructure:"country_db"`
	// Whoami is "ip:port" of a DNS server that answers with the address it
	// sees (e.g. Akamai's authoritative whoami server), used to learn the
	// public address for the MMDB lookup. Empty means do not ask.
	Whoami string `mapstructure:"whoami"`
	// WhoamiName is the name asked: an A query unless it is Google's
	// o-o.myaddr.l.google.com (TXT). Empty means whoami.akamai.net.
	WhoamiName string `mapstructure:"whoami_name"`
	// IncludeIP writes the probe's public address into every measurement.
	// Off by default: the address is scrubbed from everything written.
	IncludeIP bool `mapstructure:"include_ip"`
	// NoASN and NoCC leave the network and the country out.
	NoASN bool `mapstructure:"no_asn"`
	NoCC  bool `mapstructure:"no_cc"`
}

// A setting is one configuration key: its built-in default and the flag of
// `kzprobe run` that sets it, if any. The settings table is the one place
// where a default is written: viper's defaults, the flags (and so --help)
// and the known keys of a config file are all read from it, and a default
// the engine applies to a zero field as well is the engine's own constant
// (probe.DefaultTargetTimeout). probe.yaml documents the same values;
// TestDefaultsAgree keeps probe.yaml, `kzprobe run --help` and this table in
// step.
type setting struct {
	// key is the configuration key, "section.name".
	key string
	// def is the built-in default: a string, int, bool, time.Duration or
	// []string, the type of the flag.
	def any
	// flag is the long flag of kzprobe run; empty means the key has none.
	flag string
	// short is the flag's one-letter form; empty means none.
	short string
	// usage is the flag's help text (see pflag.FlagSet.Var for `name`).
	usage string
}

// settings is every configuration key, in probe.yaml's order.
var settings = []setting{
	{"targets.files", []string{}, "input", "i", "target list `FILE` (one domain or URL a line, a Citizen Lab CSV, or a Tranco-style rank,domain list; - for stdin); repeatable"},
	{"targets.domains", []string{}, "domain", "d", "measure this domain (repeatable); without -i or -d the embedded list of the 14 report domains is used"},
	{"targets.port", probe.DefaultPort, "port", "", "TLS `port` for targets that name none"},

	{"dns.resolver", "", "resolver", "", "local resolver `ip:port` (default: first nameserver in --resolv-conf)"},
	{"dns.resolv_conf", "/etc/resolv.conf", "resolv-conf", "", "resolv.conf `file` naming the local resolver"},
	{"dns.timeout", probe.DefaultDNSTimeout, "dns-timeout", "", "timeout of one DNS query; when neither this flag, KZPROBE_DNS_TIMEOUT nor the file sets it, it follows --timeout (tls.timeout) if that is set"},
	{"dns.retries", probe.DefaultDNSRetries, "", "", ""},

	{"control.url", dnsx.DefaultControl().URL, "control", "", "control resolver `URL`: https://IP/dns-query (DoH), tls://IP:853 (DoT) or udp://IP:53"},
	{"control.name", "", "control-name", "", "TLS server `name` of the control resolver (default: the known name of a public resolver's IP, else the IP)"},
	{"control.ca", "", "control-ca", "", "PEM `file` of extra roots for the control's certificate"},
	{"control.fallbacks", defaultFallbacks(), "", "", ""},
	{"control.fallback", false, "control-fallback", "", "with a --control of your own, also try the public fallback resolvers (control.fallbacks) when it fails; without --control the default control always has them"},
	{"control.server", "", "control-server", "", "control server `URL` (kzprobe control serve)"},
	{"control.token", "", "control-token", "", "bearer `token` for the control server"},

	{"tls.fingerprints", []string{probe.DefaultFingerprint}, "fingerprint", "", "ClientHello fingerprints, one handshake each: " + strings.Join(probe.Fingerprints(), ", ")},
	{"tls.small_hello_retry", true, "small-hello-retry", "", "where every fingerprint is refused (reset, EOF, alert), hand-shake once more with a small ClientHello: middleboxes that read the name from the first KiB of a hello only intercept then"},
	{"tls.max_addresses", probe.DefaultMaxAddresses, "max-addresses", "", "at most this many resolved addresses are dialled per target"},
	{"tls.timeout", probe.DefaultHandshakeTimeout, "timeout", "", "timeout of one TCP connect and of one TLS handshake, and of one DNS query unless --dns-timeout (dns.timeout) is set"},
	{"tls.trust_roots", "", "trust-roots", "", "PEM `file` replacing the embedded Mozilla root bundle"},

	{"interception.extra_roots", []string{}, "interception-roots", "", "PEM `file` of further interception roots (repeatable)"},

	{"run.parallel", probe.DefaultParallel, "parallel", "", "targets measured at once"},
	{"run.target_timeout", probe.DefaultTargetTimeout, "target-timeout", "", "bound on one whole target"},
	{"run.output", "", "output", "o", "JSONL output `file` (default measurements-<UTC time>.jsonl; - for stdout)"},
	{"run.sync_interval", time.Second, "", "", ""},
	{"run.quiet", false, "quiet", "q", "print only the summary: no start line, no line per target, no progress"},
	{"run.verbose", false, "verbose", "v", "also print each step of each target (DNS, connect, handshake, judgement) on stderr as it starts and ends"},
	{"run.wide", false, "wide", "", "show the verdict table whole, full hashes included, however wide the terminal"},
	{"run.no_color", false, "no-color", "", "no colours (also with NO_COLOR set, and always on a pipe)"},
	{"run.fail_on", []string{}, "fail-on", "", "exit with code 3 when any target gets one of these `verdicts`, e.g. mitm_isca,mitm_other (for cron and scripts)"},
	{"run.trace", false, "trace", "", "trace each target found intercepted or blocked, hop by hop as kzprobe trace does (Linux only), at most 4 at once, to --trace-output (with --submit, sent too)"},
	{"run.trace_output", "", "trace-output", "", "with --trace, the kzprobe_trace records' JSONL `file` (default: -o's name with -trace before .jsonl)"},
	{"run.trace_control_sni", trace.DefaultControlSNI, "trace-control-sni", "", "with --trace, the control SNI of kzprobe run's traces, a `name` no censor blocks (a sweep's is its --control-sni)"},

	{"network.allow", []string{}, "allow-net", "", "only contact these `CIDRs` (e.g. 127.0.0.0/8); anything else fails as blocked_by_allow_net"},
	{"network.bind", "", "bind", "", "local source `IP` of every connection and query"},

	{"vantage.asn", "", "asn", "", "vantage network's ASN, e.g. AS9198"},
	{"vantage.cc", "", "cc", "", "vantage country code, e.g. KZ"},
	{"vantage.network", "", "network-name", "", "vantage network's name"},
	{"vantage.asn_db", "", "asn-db", "", "MMDB `file` to look up the ASN of your public address and of the resolver, locally"},
	{"vantage.country_db", "", "country-db", "", "MMDB `file` to look up the country of your public address, locally"},
	{"vantage.whoami", "", "whoami", "", "`ip:port` of a whoami DNS server, to learn your public address for --asn-db/--country-db"},
	{"vantage.whoami_name", "", "", "", ""},
	{"vantage.include_ip", false, "include-ip", "", "write your public IP address into the measurements and keep raw certificates and DNS answers that hold it (off: it is scrubbed from the output and the terminal, and such raw fields are withheld)"},
	{"vantage.no_asn", false, "no-asn", "", "leave the network (ASN and name) out of the measurements"},
	{"vantage.no_cc", false, "no-cc", "", "leave the country out of the measurements"},

	// kzprobe sweep's own keys: their flags are sweep's (sweepFlags), not run's.
	{"sweep.endpoint", "", "", "", ""},
	{"sweep.endpoint_pin", "", "", "", ""},
	{"sweep.control_sni", sweep.DefaultControlSNI, "", "", ""},
	{"sweep.control_every", sweep.DefaultControlEvery, "", "", ""},
	{"sweep.rate", strconv.Itoa(sweep.DefaultRate) + "/s", "", "", ""},
	{"sweep.parallel", sweep.DefaultParallel, "", "", ""},
	{"sweep.hello", "fingerprint", "", "", ""},
	{"sweep.found", "", "", "", ""},

	{"submit.url", "", "submit", "", "submit each record, as it is written, to this collector `URL` (https://IP:PORT, kzprobe collector serve); the output file and FILE.submit are the outbox"},
	{"submit.pin", "", "submit-pin", "", "the collector's key `pin`, sha256:BASE64, as kzprobe collector serve prints it"},
	{"submit.ca", "", "submit-ca", "", "PEM `file` of roots for the collector's certificate (default: the embedded Mozilla bundle)"},
	{"submit.token_file", "", "submit-token-file", "", "`file` holding the collector's bearer token"},
	{"submit.wait", defaultSubmitWait, "submit-wait", "", "after the last target, keep submitting this long; the rest stays in the outbox for kzprobe submit"},
}

// Specs are the control resolvers to ask, in order: URL, then Fallbacks
// when URL is the built-in default (a volunteer who configured nothing
// gets a control that works where one public resolver is blocked) or when
// Fallback asks for them. A control the user chose is the only one asked
// otherwise: a silent fallback to a public resolver would measure against
// a control the user did not choose.
func (c ControlConfig) Specs() []dnsx.Spec {
	specs := []dnsx.Spec{{URL: c.URL, ServerName: controlName(c.URL, c.Name)}}
	if c.URL != dnsx.DefaultControl().URL && !c.Fallback {
		return specs
	}
	for _, f := range c.Fallbacks {
		u, name, _ := strings.Cut(f, "#")
		specs = append(specs, dnsx.Spec{URL: u, ServerName: name})
	}
	return specs
}

// defaultFallbacks is control.fallbacks' default: dnsx.DefaultFallbacks,
// each as "URL#name".
func defaultFallbacks() []string {
	var out []string
	for _, s := range dnsx.DefaultFallbacks() {
		out = append(out, s.URL+"#"+s.ServerName)
	}
	return out
}

// defaults are the built-in values by key, the lowest precedence.
var defaults = settingDefaults()

// runFlags maps each flag of `kzprobe run` to its configuration key.
var runFlags = settingFlags()

func settingDefaults() map[string]any {
	m := make(map[string]any, len(settings))
	for _, s := range settings {
		m[s.key] = s.def
	}
	return m
}

func settingFlags() map[string]string {
	m := map[string]string{}
	for _, s := range settings {
		if s.flag != "" {
			m[s.flag] = s.key
		}
	}
	return m
}

// addRunFlags declares the flags of runFlags on fs, each with its
// setting's default: --help shows the built-in defaults; the config file
// and environment may change them.
func addRunFlags(fs *pflag.FlagSet) {
	for _, s := range settings {
		if s.flag == "" {
			continue
		}
		switch d := s.def.(type) {
		case string:
			fs.StringP(s.flag, s.short, d, s.usage)
		case int:
			fs.IntP(s.flag, s.short, d, s.usage)
		case bool:
			fs.BoolP(s.flag, s.short, d, s.usage)
		case time.Duration:
			fs.DurationP(s.flag, s.short, d, s.usage)
		case []string:
			fs.StringSliceP(s.flag, s.short, d, s.usage)
		default:
			panic(fmt.Sprintf("setting %s: default of type %T has no flag type", s.key, s.def))
		}
	}
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("config")

// loadConfig builds the configuration: defaults < file < env < flags. file
// may be empty (no config file). Only flags that the user set override.
func loadConfig(file string, flags *pflag.FlagSet, flagKeys map[string]string) (*Config, error) {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	var lines map[string]int
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%w: cannot read config file: %v", ErrConfig, err)
		}
		lines, err = checkKeys(file, data)
		if err != nil {
			return nil, err
		}
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrConfig, file, err)
		}
	}
	if flags != nil {
		var empty []string
		for name, key := range flagKeys {
			f := flags.Lookup(name)
			if f == nil || !f.Changed {
				continue
			}
			if err := v.BindPFlag(key, f); err != nil {
				return nil, fmt.Errorf("%w: flag --%s: %v", ErrConfig, name, err)
			}
			if sv, ok := f.Value.(pflag.SliceValue); ok && len(sv.GetSlice()) == 0 {
				empty = append(empty, flagName(f))
			}
		}
		if len(empty) > 0 {
			// "-d $DOMAIN" with an empty variable measured the 14 report
			// domains, and "--allow-net $NETS" allowed everything.
			sort.Strings(empty)
			return nil, fmt.Errorf("%w: flag %s given an empty value (an empty shell variable?): give a value, or leave the flag out for its default",
				ErrConfig, strings.Join(empty, ", "))
		}
	}
	var cfg Config
	hook := mapstructure.ComposeDecodeHookFunc(
		durationHook,
		scalarHook,
		mapstructure.StringToSliceHookFunc(","),
	)
	src := sourceNamer{file: file, lines: lines, flags: flags, flagKeys: flagKeys}
	if err := v.UnmarshalExact(&cfg, viper.DecodeHook(hook)); err != nil {
		return nil, src.explain(err)
	}
	if err := cfg.validate(); err != nil {
		return nil, src.explain(err)
	}
	if !src.isSet("dns.timeout") && src.isSet("tls.timeout") {
		// One rule whichever source sets tls.timeout (flag --timeout,
		// KZPROBE_TLS_TIMEOUT or the file): a DNS timeout nobody set
		// follows it, so that "--timeout 2s" alone bounds every wait.
		// After validation, so that a bad tls.timeout is named once.
		cfg.DNS.Timeout = cfg.TLS.Timeout
	}
	return &cfg, nil
}

// durationHook decodes a time.Duration from text with a unit ("10s",
// "1m30s", "0s"), whichever source gives it. A bare number is an error: a
// file's "timeout: 10" reached the decoder as the integer 10 and was read as
// 10 ns, where the flag and the environment refused "10".
func durationHook(_, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[time.Duration]() {
		return data, nil
	}
	switch v := data.(type) {
	case time.Duration:
		return v, nil // a built-in default, or a flag pflag has parsed
	case string:
		s := strings.TrimSpace(v)
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return nil, fmt.Errorf("is %q, without a unit: write %ss (or %sms, %sm, %sh)", v, s, s, s, s)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("is %q, not a duration such as 10s, 500ms or 1m30s", v)
		}
		return d, nil
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return nil, fmt.Errorf("is %v, without a unit: write %vs (or %vms, %vm, %vh)", v, v, v, v, v)
	}
	return nil, fmt.Errorf("is %v, not a duration such as 10s, 500ms or 1m30s", data)
}

// flagName is "-d/--domain" or "--port".
func flagName(f *pflag.Flag) string {
	if f.Shorthand != "" {
		return "-" + f.Shorthand + "/--" + f.Name
	}
	return "--" + f.Name
}

// checkKeys parses the YAML file on its own and rejects any key that
// kzprobe does not know, with file:line. It returns each key's line.
func checkKeys(file string, data []byte) (map[string]int, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlSyntaxError(file, data, err)
	}
	lines := map[string]int{}
	if len(doc.Content) == 0 {
		return lines, nil
	}
	var walk func(n *yaml.Node, prefix string) error
	walk = func(n *yaml.Node, prefix string) error {
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%w: %s:%d: %q must be a mapping of keys", ErrConfig, file, n.Line, strings.TrimSuffix(prefix, "."))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := prefix + strings.ToLower(k.Value)
			lines[key] = k.Line
			if _, ok := defaults[key]; ok {
				continue
			}
			if isSection(key) {
				if err := walk(val, key+"."); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("%w: %s:%d: unknown key %q%s", ErrConfig, file, k.Line, key, suggest(key))
		}
		return nil
	}
	return lines, walk(doc.Content[0], "")
}

// isSection reports whether key is a known section (a prefix of keys).
func isSection(key string) bool {
	for k := range defaults {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

// suggest names the known key closest to an unknown one, if any is close.
func suggest(key string) string {
	best, bestD := "", 4
	for k := range defaults {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return " (see probe.yaml for the known keys)"
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance, for suggestions.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// keyError is a validation error about one key.
type keyError struct {
	key string
	msg string
}

func (e *keyError) Error() string { return fmt.Sprintf("'%s' %s", e.key, e.msg) }

// validate checks values that decode but make no sense, before any
// network activity. It also leaves tls.fingerprints parsed
// (probe.ParseFingerprints: a comma list split, lower case, no duplicates,
// the default for none), the one place they are parsed.
func (c *Config) validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &keyError{key, fmt.Sprintf(format, a...)})
	}
	if c.Targets.Port < 1 || c.Targets.Port > 65535 {
		bad("targets.port", "must be 1-65535, got %d", c.Targets.Port)
	}
	if c.DNS.Resolver != "" {
		if _, err := netip.ParseAddrPort(c.DNS.Resolver); err != nil {
			if _, err2 := netip.ParseAddr(c.DNS.Resolver); err2 != nil {
				bad("dns.resolver", "must be an IP or ip:port such as 192.0.2.53:53, got %q", c.DNS.Resolver)
			}
		}
	}
	if c.DNS.Timeout <= 0 {
		bad("dns.timeout", "must be positive, got %s", c.DNS.Timeout)
	}
	if c.DNS.Retries < 0 || c.DNS.Retries > 10 {
		bad("dns.retries", "must be 0-10, got %d", c.DNS.Retries)
	}
	if err := checkControlURL(c.Control.URL); err != nil {
		bad("control.url", "%v", err)
	}
	for _, f := range c.Control.Fallbacks {
		u, _, _ := strings.Cut(f, "#")
		if err := checkControlURL(u); err != nil {
			bad("control.fallbacks", "%v", err)
		}
	}
	if c.Control.Server != "" {
		if u, err := url.Parse(c.Control.Server); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("control.server", "must be an http(s) URL such as https://203.0.113.5:8443, got %q", c.Control.Server)
		}
	}
	if fps, err := probe.ParseFingerprints(c.TLS.Fingerprints); err != nil {
		bad("tls.fingerprints", "%v", err)
	} else {
		c.TLS.Fingerprints = fps // parsed here once: what the Prober is given
	}
	if c.TLS.MaxAddresses < 1 || c.TLS.MaxAddresses > 64 {
		bad("tls.max_addresses", "must be 1-64, got %d", c.TLS.MaxAddresses)
	}
	if c.TLS.Timeout <= 0 {
		bad("tls.timeout", "must be positive, got %s", c.TLS.Timeout)
	}
	if c.Run.Parallel < 1 || c.Run.Parallel > 10000 {
		bad("run.parallel", "must be 1-10000, got %d", c.Run.Parallel)
	}
	if c.Run.TargetTimeout <= 0 {
		bad("run.target_timeout", "must be positive, got %s", c.Run.TargetTimeout)
	}
	if c.Run.SyncInterval < 0 {
		bad("run.sync_interval", "must not be negative")
	}
	if c.Submit.URL != "" {
		if u, err := url.Parse(c.Submit.URL); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("submit.url", "must be an https URL such as https://203.0.113.5:8443, got %q", c.Submit.URL)
		}
		if c.Run.Output == "-" {
			bad("submit.url", "needs an output file (the outbox), not -o - (stdout)")
		}
	}
	if c.Submit.Wait < 0 {
		bad("submit.wait", "must not be negative")
	}
	for _, v := range c.Run.FailOn {
		if !slices.Contains(measurement.Verdicts(), v) {
			bad("run.fail_on", "%q is not a verdict; want some of %s", v, verdictList())
		}
	}
	if c.Run.TraceOutput == "-" {
		bad("run.trace_output", "must be a file, not - (the measurements may be on stdout)")
	}
	if t, err := targets.Normalize(c.Run.TraceControlSNI); err != nil || t.Domain != strings.ToLower(strings.TrimSuffix(c.Run.TraceControlSNI, ".")) {
		bad("run.trace_control_sni", "must be a host name such as example.com, got %q", c.Run.TraceControlSNI)
	}
	if _, err := guard.Parse(c.Network.Allow...); err != nil {
		bad("network.allow", "%v", err)
	}
	if c.Network.Bind != "" {
		if _, err := netip.ParseAddr(c.Network.Bind); err != nil {
			bad("network.bind", "must be an IP address, got %q", c.Network.Bind)
		}
	}
	if c.Sweep.Endpoint != "" {
		if _, err := netip.ParseAddrPort(c.Sweep.Endpoint); err != nil {
			bad("sweep.endpoint", "must be ip:port (an IP literal: nothing is resolved), got %q", c.Sweep.Endpoint)
		}
	}
	if c.Sweep.EndpointPin != "" {
		if _, err := chain.ParsePin(c.Sweep.EndpointPin); err != nil {
			bad("sweep.endpoint_pin", "%v", err)
		}
	}
	if c.Sweep.ControlSNI != "" {
		if t, err := targets.Normalize(c.Sweep.ControlSNI); err != nil || t.Domain != strings.ToLower(strings.TrimSuffix(c.Sweep.ControlSNI, ".")) {
			bad("sweep.control_sni", "must be a host name such as example.com, got %q", c.Sweep.ControlSNI)
		}
	}
	if c.Sweep.ControlEvery < 1 {
		bad("sweep.control_every", "must be at least 1, got %d", c.Sweep.ControlEvery)
	}
	if _, err := parseRate(c.Sweep.Rate); err != nil {
		bad("sweep.rate", "%v", err)
	}
	if c.Sweep.Hello != "fingerprint" && c.Sweep.Hello != probe.HelloTLS12 {
		bad("sweep.hello", "must be fingerprint or %s, got %q", probe.HelloTLS12, c.Sweep.Hello)
	}
	if c.Sweep.Parallel < 1 || c.Sweep.Parallel > 10000 {
		bad("sweep.parallel", "must be 1-10000, got %d", c.Sweep.Parallel)
	}
	if c.Vantage.Whoami != "" {
		if _, err := netip.ParseAddrPort(c.Vantage.Whoami); err != nil {
			bad("vantage.whoami", "must be ip:port (IP-pinned), got %q", c.Vantage.Whoami)
		}
	}
	if c.Vantage.ASN != "" && !regexp.MustCompile(`^AS[0-9]{1,10}$`).MatchString(c.Vantage.ASN) {
		bad("vantage.asn", "must look like AS12345, got %q", c.Vantage.ASN)
	}
	if c.Vantage.CC != "" && !regexp.MustCompile(`^[A-Z]{2}$`).MatchString(c.Vantage.CC) {
		bad("vantage.cc", "must be a two-letter upper-case country code such as KZ, got %q", c.Vantage.CC)
	}
	return errors.Join(errs...)
}

// verdictList is every verdict, comma-separated.
func verdictList() string {
	var vs []string
	for _, v := range measurement.Verdicts() {
		vs = append(vs, string(v))
	}
	return strings.Join(vs, ",")
}

// checkControlURL accepts https://IP[:port]/path, tls://IP[:port] and
// udp://IP[:port]; the host must be an IP literal so that no local DNS is
// needed to reach the control.
func checkControlURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %q", s)
	}
	switch u.Scheme {
	case "https", "tls", "udp":
	default:
		return fmt.Errorf("scheme must be https (DoH), tls (DoT) or udp, got %q", s)
	}
	if _, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err != nil {
		return fmt.Errorf("host must be an IP literal (IP-pinned, no local DNS), got %q", s)
	}
	return nil
}

// sourceNamer says where a key's value came from, for error messages.
type sourceNamer struct {
	file     string
	lines    map[string]int
	flags    *pflag.FlagSet
	flagKeys map[string]string
}

// quotedKey finds the key in a decoder error: 'tls.timeout', or a list
// element such as 'targets.files[0]' (group 2 is the index part).
var quotedKey = regexp.MustCompile(`'([a-z_]+\.[a-z_]+)((?:\[[0-9]+\])*)'`)

// explain rewrites a decode or validation error so that each line names
// the key and where its value came from (flag, environment, file:line).
func (s sourceNamer) explain(err error) error {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "decoding failed") {
			continue
		}
		m := quotedKey.FindStringSubmatch(line)
		if m == nil {
			out = append(out, line)
			continue
		}
		key := m[1]
		rest := strings.TrimSpace(strings.Replace(line, m[0], "", 1))
		out = append(out, fmt.Sprintf("%s: key %q %s", s.where(key), key+m[2], rest))
	}
	sort.Strings(out)
	return fmt.Errorf("%w: %s", ErrConfig, strings.Join(out, "\n  "))
}

// isSet reports whether a flag, the environment or the config file sets
// key, as viper reads them (an empty environment variable sets nothing).
func (s sourceNamer) isSet(key string) bool {
	for name, k := range s.flagKeys {
		if k == key && s.flags != nil {
			if f := s.flags.Lookup(name); f != nil && f.Changed {
				return true
			}
		}
	}
	if os.Getenv(envName(key)) != "" {
		return true
	}
	_, inFile := s.lines[key]
	return inFile
}

// envName is the environment variable of key: KZPROBE_TLS_TIMEOUT for
// tls.timeout.
func envName(key string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func (s sourceNamer) where(key string) string {
	for name, k := range s.flagKeys {
		if k == key && s.flags != nil {
			if f := s.flags.Lookup(name); f != nil && f.Changed {
				return "flag --" + name
			}
		}
	}
	env := envName(key)
	if _, ok := os.LookupEnv(env); ok {
		return "environment " + env
	}
	if s.file != "" {
		if l, ok := s.lines[key]; ok {
			return fmt.Sprintf("%s:%d", s.file, l)
		}
		return s.file
	}
	return "default"
}
