package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"kzprobe/probe"
)

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
	{"targets.files", []string{}, "input", "i", "target list `FILE` (one domain or URL a line, or a Citizen Lab CSV; - for stdin); repeatable"},
	{"targets.domains", []string{}, "domain", "d", "measure this domain (repeatable); without -i or -d the embedded list of the 14 report domains is used"},
	{"targets.port", probe.DefaultPort, "port", "", "TLS `port` for targets that name none"},

	{"dns.resolver", "", "resolver", "", "local resolver `ip:port` (default: first nameserver in --resolv-conf)"},
	{"dns.resolv_conf", "/etc/resolv.conf", "resolv-conf", "", "resolv.conf `file` naming the local resolver"},
	{"dns.timeout", probe.DefaultDNSTimeout, "dns-timeout", "", "timeout of one DNS query"},
	{"dns.retries", probe.DefaultDNSRetries, "", "", ""},

	{"control.url", "https://1.1.1.1/dns-query", "control", "", "control resolver `URL`: https://IP/dns-query (DoH), tls://IP:853 (DoT) or udp://IP:53"},
	{"control.name", "", "control-name", "", "TLS server `name` of the control resolver (default: the known name of a public resolver's IP, else the IP)"},
	{"control.ca", "", "control-ca", "", "PEM `file` of extra roots for the control's certificate"},
	{"control.fallbacks", []string{"https://8.8.8.8/dns-query#dns.google", "https://9.9.9.9/dns-query#dns.quad9.net"}, "", "", ""},
	{"control.server", "", "control-server", "", "control server `URL` (kzprobe control serve)"},
	{"control.token", "", "control-token", "", "bearer `token` for the control server"},

	{"tls.fingerprints", []string{probe.DefaultFingerprint}, "fingerprint", "", "ClientHello fingerprints, one handshake each: " + strings.Join(probe.Fingerprints(), ",")},
	{"tls.small_hello_retry", true, "small-hello-retry", "", "where every fingerprint is refused (reset, EOF, alert), hand-shake once more with a small ClientHello: middleboxes that read the name from the first KiB of a hello only intercept then"},
	{"tls.max_addresses", probe.DefaultMaxAddresses, "max-addresses", "", "at most this many resolved addresses are dialled per target"},
	{"tls.timeout", probe.DefaultHandshakeTimeout, "timeout", "", "timeout of one TCP connect and of one TLS handshake"},
	{"tls.trust_roots", "", "trust-roots", "", "PEM `file` replacing the embedded Mozilla root bundle"},

	{"interception.extra_roots", []string{}, "interception-roots", "", "PEM `file` of further interception roots (repeatable)"},

	{"run.parallel", probe.DefaultParallel, "parallel", "", "targets measured at once"},
	{"run.target_timeout", probe.DefaultTargetTimeout, "target-timeout", "", "bound on one whole target"},
	{"run.output", "", "output", "o", "JSONL output `file` (default measurements-<UTC time>.jsonl; - for stdout)"},
	{"run.sync_interval", time.Second, "", "", ""},
	{"run.quiet", false, "quiet", "q", "no progress display"},

	{"network.allow", []string{}, "allow-net", "", "only contact these `CIDRs` (e.g. 127.0.0.0/8); anything else fails as blocked_by_allow_net"},
	{"network.bind", "", "bind", "", "local source `IP` of every connection and query"},

	{"vantage.asn", "", "asn", "", "vantage network's ASN, e.g. AS9198"},
	{"vantage.cc", "", "cc", "", "vantage country code, e.g. KZ"},
	{"vantage.network", "", "network-name", "", "vantage network's name"},
	{"vantage.asn_db", "", "asn-db", "", "MMDB `file` to look up the ASN of your public address and of the resolver, locally"},
	{"vantage.country_db", "", "country-db", "", "MMDB `file` to look up the country of your public address, locally"},
	{"vantage.whoami", "", "whoami", "", "`ip:port` of a whoami DNS server, to learn your public address for --asn-db/--country-db"},
	{"vantage.whoami_name", "", "", "", ""},
	{"vantage.include_ip", false, "include-ip", "", "write your public IP address into the measurements (off: it is scrubbed everywhere)"},
	{"vantage.no_asn", false, "no-asn", "", "leave the network (ASN and name) out of the measurements"},
	{"vantage.no_cc", false, "no-cc", "", "leave the country out of the measurements"},
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
