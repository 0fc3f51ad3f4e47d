package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"kzprobe/dnsx"
)

// clearEnv unsets the KZPROBE_ variables CI sets, for tests that compare
// against the built-in defaults.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, envPrefix+"_") {
			t.Setenv(k, "") // restores at cleanup
			os.Unsetenv(k)
		}
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProbeYAMLIsTheDefaults loads the committed probe.yaml through the
// binary's own code path and checks it equals the built-in defaults, so
// the documentation cannot drift from the code.
func TestProbeYAMLIsTheDefaults(t *testing.T) {
	clearEnv(t)
	fromFile, err := loadConfig("../../probe.yaml", nil, nil)
	if err != nil {
		t.Fatalf("loading probe.yaml: %v", err)
	}
	builtIn, err := loadConfig("", nil, nil)
	if err != nil {
		t.Fatalf("loading defaults: %v", err)
	}
	if !reflect.DeepEqual(fromFile, builtIn) {
		t.Errorf("probe.yaml differs from the built-in defaults:\nfile:    %+v\ndefaults: %+v", fromFile, builtIn)
	}
	// Every default key is documented in probe.yaml.
	data, _ := os.ReadFile("../../probe.yaml")
	lines, err := checkKeys("probe.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	for k := range defaults {
		if _, ok := lines[k]; !ok {
			t.Errorf("key %q has a default but is not in probe.yaml", k)
		}
	}
}

func TestConfigErrorsNameKeyAndFile(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "tls:\n  fingerprint: [chrome]\n", []string{"bad.yaml:2", `"tls.fingerprint"`, `did you mean "tls.fingerprints"`}},
		{"unknown section", "tsl:\n  timeout: 1s\n", []string{"bad.yaml:1", `"tsl"`}},
		{"bad duration", "tls:\n  timeout: 10 seconds\n", []string{"bad.yaml:2", `"tls.timeout"`}},
		{"wrong type", "run:\n  parallel: many\n", []string{"bad.yaml:2", `"run.parallel"`}},
		{"bad CIDR", "network:\n  allow: [127.0.0.0/33]\n", []string{"bad.yaml:2", `"network.allow"`, "127.0.0.0/33"}},
		{"bad URL scheme", "control:\n  url: http://1.1.1.1/dns-query\n", []string{"bad.yaml:2", `"control.url"`}},
		{"hostname control", "control:\n  url: https://dns.google/dns-query\n", []string{`"control.url"`, "IP literal"}},
		{"bad fingerprint", "tls:\n  fingerprints: [chrome, netscape]\n", []string{`"tls.fingerprints"`, "netscape"}},
		{"bad resolver", "dns:\n  resolver: my-resolver\n", []string{`"dns.resolver"`}},
		{"bad asn", "vantage:\n  asn: 9198\n", []string{`"vantage.asn"`, "AS12345"}},
		{"not yaml", "tls: [\n", []string{"bad.yaml", "not valid YAML"}},
		{"zero parallel", "run:\n  parallel: 0\n", []string{`"run.parallel"`, "1-10000"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, "bad.yaml", tc.yaml)
			_, err := loadConfig(p, nil, nil)
			if err == nil {
				t.Fatal("got no error; want one")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestConfigPrecedence(t *testing.T) {
	clearEnv(t)
	p := writeFile(t, "c.yaml", "tls:\n  timeout: 3s\nrun:\n  parallel: 3\n  target_timeout: 30s\n")
	t.Setenv("KZPROBE_RUN_PARALLEL", "5")
	t.Setenv("KZPROBE_NETWORK_ALLOW", "127.0.0.0/8,::1/128")
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	addRunFlags(fs)
	if err := fs.Parse([]string{"--target-timeout", "7s"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(p, fs, runFlags)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.TLS.Timeout, 3*time.Second; got != want {
		t.Errorf("tls.timeout (file) = %v; want %v", got, want)
	}
	if got, want := cfg.Run.Parallel, 5; got != want {
		t.Errorf("run.parallel (env over file) = %v; want %v", got, want)
	}
	if got, want := cfg.Run.TargetTimeout, 7*time.Second; got != want {
		t.Errorf("run.target_timeout (flag over file) = %v; want %v", got, want)
	}
	if got, want := cfg.Network.Allow, []string{"127.0.0.0/8", "::1/128"}; !reflect.DeepEqual(got, want) {
		t.Errorf("network.allow (env list) = %v; want %v", got, want)
	}
	if got, want := cfg.DNS.Retries, 2; got != want {
		t.Errorf("dns.retries (default) = %v; want %v", got, want)
	}
}

func TestConfigErrorNamesEnvAndFlag(t *testing.T) {
	clearEnv(t)
	t.Setenv("KZPROBE_TLS_TIMEOUT", "soon")
	_, err := loadConfig("", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "KZPROBE_TLS_TIMEOUT") {
		t.Errorf("got %v; want an error naming KZPROBE_TLS_TIMEOUT", err)
	}
	clearEnv(t)
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	addRunFlags(fs)
	if err := fs.Parse([]string{"--allow-net", "300.0.0.0/8"}); err != nil {
		t.Fatal(err)
	}
	_, err = loadConfig("", fs, runFlags)
	if err == nil || !strings.Contains(err.Error(), "--allow-net") {
		t.Errorf("got %v; want an error naming --allow-net", err)
	}
}

// TestRunBadConfigExitCode runs the command tree as the binary does.
func TestRunBadConfigExitCode(t *testing.T) {
	clearEnv(t)
	p := writeFile(t, "bad.yaml", "tls:\n  timeout: forever\n")
	if got := execute([]string{"run", "-c", p}); got != exitUsage {
		t.Errorf("exit code = %d; want %d", got, exitUsage)
	}
}

// TestFingerprintsParsedAtLoad checks that loadConfig leaves
// tls.fingerprints parsed whichever source sets them, so that what the
// Prober is given and what socketsPerTarget counts are the handshakes made.
func TestFingerprintsParsedAtLoad(t *testing.T) {
	want := []string{"chrome", "firefox"}
	tests := []struct {
		name        string
		flags, file string
		env         string
	}{
		{name: "flag", flags: "Chrome, firefox,chrome"},
		{name: "environment", env: "Chrome, firefox,chrome"},
		{name: "file", file: "tls:\n  fingerprints: [\"Chrome, firefox\", chrome]\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			if tc.env != "" {
				t.Setenv("KZPROBE_TLS_FINGERPRINTS", tc.env)
			}
			file := ""
			if tc.file != "" {
				file = writeFile(t, "c.yaml", tc.file)
			}
			fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
			addRunFlags(fs)
			var args []string
			if tc.flags != "" {
				args = []string{"--fingerprint", tc.flags}
			}
			if err := fs.Parse(args); err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(file, fs, runFlags)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.TLS.Fingerprints, want) {
				t.Errorf("tls.fingerprints = %q; want %q", cfg.TLS.Fingerprints, want)
			}
			if got := socketsPerTarget(cfg); got != 4+4*len(want) {
				t.Errorf("sockets per target = %d; want %d", got, 4+4*len(want))
			}
		})
	}
}

// helpDefault is how pflag shows a default at the end of a flag's help:
// " (default X)", or nothing for a zero value.
func helpDefault(t *testing.T, d any) string {
	t.Helper()
	var v string
	switch d := d.(type) {
	case string:
		if d != "" {
			v = strconv.Quote(d)
		}
	case int:
		if d != 0 {
			v = strconv.Itoa(d)
		}
	case bool:
		if d {
			v = "true"
		}
	case time.Duration:
		if d != 0 {
			v = d.String()
		}
	case []string:
		if len(d) > 0 {
			v = "[" + strings.Join(d, ",") + "]"
		}
	default:
		t.Fatalf("default %v of type %T", d, d)
	}
	if v == "" {
		return ""
	}
	return " (default " + v + ")"
}

// helpFlag is one flag line of --help: "  -i, --input FILE   usage".
var helpFlag = regexp.MustCompile(`^\s+(?:-[a-zA-Z], )?--([a-z0-9-]+)(?: \S+)?\s{2,}(.*)$`)

// runHelp runs the real binary's `kzprobe run --help` and returns the
// help text of each flag by name.
func runHelp(t *testing.T) map[string]string {
	t.Helper()
	cmd := exec.Command(kzprobeBinary(t), "run", "--help")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // no KZPROBE_*: help shows built-in defaults anyway
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kzprobe run --help: %v", err)
	}
	flags := map[string]string{}
	last := ""
	for _, line := range strings.Split(string(out), "\n") {
		if m := helpFlag.FindStringSubmatch(line); m != nil {
			last = m[1]
			flags[last] = strings.TrimRight(m[2], " ")
			continue
		}
		// A description's later lines, under its start.
		if text := strings.TrimSpace(line); last != "" && text != "" && strings.HasPrefix(line, "          ") {
			flags[last] += " " + text
			continue
		}
		last = ""
	}
	if len(flags) == 0 {
		t.Fatalf("no flag in kzprobe run --help:\n%s", out)
	}
	return flags
}

// TestDefaultsAgree keeps the three faces of the built-in defaults in step
// with the settings table: `kzprobe run --help` of the real binary shows
// each flag with its setting's usage and default and no flag outside the
// table; probe.yaml, loaded through loadConfig as `-c probe.yaml` is,
// decodes to the same configuration as the defaults alone, and names each
// key's flag in its section. Changing a default in one place only fails it.
func TestDefaultsAgree(t *testing.T) {
	clearEnv(t)
	help := runHelp(t)
	for _, s := range settings {
		if s.flag == "" {
			continue
		}
		got, ok := help[s.flag]
		if !ok {
			t.Errorf("--%s (%s) is not in kzprobe run --help", s.flag, s.key)
			continue
		}
		want := strings.ReplaceAll(s.usage, "`", "") + helpDefault(t, s.def)
		if got != want {
			t.Errorf("--help of --%s:\n got %q\nwant %q (usage and default of %s)", s.flag, got, want, s.key)
		}
	}
	for name := range help {
		if _, ok := runFlags[name]; !ok && name != "config" && name != "resume" && name != "append" && name != "help" {
			t.Errorf("--%s is in kzprobe run --help but sets no key of the settings table", name)
		}
	}

	fromFile, err := loadConfig("../../probe.yaml", nil, nil)
	if err != nil {
		t.Fatalf("loading probe.yaml: %v", err)
	}
	builtIn, err := loadConfig("", nil, nil)
	if err != nil {
		t.Fatalf("loading the defaults: %v", err)
	}
	if !reflect.DeepEqual(fromFile, builtIn) {
		t.Errorf("probe.yaml differs from the built-in defaults:\nfile:     %+v\ndefaults: %+v", fromFile, builtIn)
	}

	data, err := os.ReadFile("../../probe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sections := probeYAMLSections(string(data))
	for _, s := range settings {
		if s.flag == "" {
			continue
		}
		sec, _, _ := strings.Cut(s.key, ".")
		text := sections[sec]
		if !strings.Contains(text, "--"+s.flag) && (s.short == "" || !regexp.MustCompile(`\W-`+s.short+`\b`).MatchString(text)) {
			t.Errorf("probe.yaml's %s section does not name --%s, the flag of %s", sec, s.flag, s.key)
		}
	}
}

// probeYAMLSections splits probe.yaml into its top-level sections' text.
func probeYAMLSections(doc string) map[string]string {
	out := map[string]string{}
	cur := ""
	for _, line := range strings.Split(doc, "\n") {
		if k, ok := strings.CutSuffix(line, ":"); ok && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "#") {
			cur = k
		}
		out[cur] += line + "\n"
	}
	return out
}

// TestSettingsTableIsComplete checks that every key of Config is in the
// settings table and each key and flag is there once, so that a new key
// cannot skip the table.
func TestSettingsTableIsComplete(t *testing.T) {
	keys, flags := map[string]bool{}, map[string]bool{}
	for _, s := range settings {
		if keys[s.key] {
			t.Errorf("key %s twice in the settings table", s.key)
		}
		keys[s.key] = true
		if s.flag != "" && flags[s.flag] {
			t.Errorf("flag --%s twice in the settings table", s.flag)
		}
		flags[s.flag] = true
	}
	var want []string
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		sec := ct.Field(i)
		for j := range sec.Type.NumField() {
			f := sec.Type.Field(j)
			if tag := f.Tag.Get("mapstructure"); tag != "-" {
				want = append(want, sec.Tag.Get("mapstructure")+"."+tag)
			}
		}
	}
	for _, k := range want {
		if !keys[k] {
			t.Errorf("Config key %s has no setting", k)
		}
	}
	if len(want) != len(settings) {
		t.Errorf("%d settings for %d Config keys", len(settings), len(want))
	}
}

// TestDNSTimeoutFollowsTLSTimeout checks the one rule between two keys:
// a dns.timeout that no source sets follows tls.timeout when any source
// sets that, the same for a flag, the environment and the file, and a
// dns.timeout set anywhere stays. --help documents it.
func TestDNSTimeoutFollowsTLSTimeout(t *testing.T) {
	type src struct{ flag, env, file string } // tls.timeout or dns.timeout from each source
	tests := []struct {
		name     string
		tls, dns src
		wantTLS  time.Duration
		wantDNS  time.Duration
	}{
		{name: "none set", wantTLS: 10 * time.Second, wantDNS: 5 * time.Second},
		{name: "tls by flag", tls: src{flag: "2s"}, wantTLS: 2 * time.Second, wantDNS: 2 * time.Second},
		{name: "tls by environment", tls: src{env: "2s"}, wantTLS: 2 * time.Second, wantDNS: 2 * time.Second},
		{name: "tls by file", tls: src{file: "2s"}, wantTLS: 2 * time.Second, wantDNS: 2 * time.Second},
		{name: "tls by empty environment", wantTLS: 10 * time.Second, wantDNS: 5 * time.Second},
		{name: "tls and dns by flag", tls: src{flag: "2s"}, dns: src{flag: "3s"}, wantTLS: 2 * time.Second, wantDNS: 3 * time.Second},
		{name: "tls by flag, dns by environment", tls: src{flag: "2s"}, dns: src{env: "3s"}, wantTLS: 2 * time.Second, wantDNS: 3 * time.Second},
		{name: "tls by flag, dns by file", tls: src{flag: "2s"}, dns: src{file: "3s"}, wantTLS: 2 * time.Second, wantDNS: 3 * time.Second},
		{name: "tls by environment, dns by file", tls: src{env: "2s"}, dns: src{file: "3s"}, wantTLS: 2 * time.Second, wantDNS: 3 * time.Second},
		{name: "tls by file, dns by environment", tls: src{file: "2s"}, dns: src{env: "3s"}, wantTLS: 2 * time.Second, wantDNS: 3 * time.Second},
		{name: "dns by file only", dns: src{file: "3s"}, wantTLS: 10 * time.Second, wantDNS: 3 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			var args []string
			yaml := ""
			if tc.tls.flag != "" {
				args = append(args, "--timeout", tc.tls.flag)
			}
			if tc.dns.flag != "" {
				args = append(args, "--dns-timeout", tc.dns.flag)
			}
			if tc.name == "tls by empty environment" {
				t.Setenv("KZPROBE_TLS_TIMEOUT", "")
			}
			if tc.tls.env != "" {
				t.Setenv("KZPROBE_TLS_TIMEOUT", tc.tls.env)
			}
			if tc.dns.env != "" {
				t.Setenv("KZPROBE_DNS_TIMEOUT", tc.dns.env)
			}
			if tc.tls.file != "" {
				yaml += "tls:\n  timeout: " + tc.tls.file + "\n"
			}
			if tc.dns.file != "" {
				yaml += "dns:\n  timeout: " + tc.dns.file + "\n"
			}
			file := ""
			if yaml != "" {
				file = writeFile(t, "c.yaml", yaml)
			}
			fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
			addRunFlags(fs)
			if err := fs.Parse(args); err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(file, fs, runFlags)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.TLS.Timeout != tc.wantTLS || cfg.DNS.Timeout != tc.wantDNS {
				t.Errorf("tls.timeout, dns.timeout = %v, %v; want %v, %v", cfg.TLS.Timeout, cfg.DNS.Timeout, tc.wantTLS, tc.wantDNS)
			}
		})
	}
	help := runHelp(t)
	if !strings.Contains(help["timeout"], "--dns-timeout") || !strings.Contains(help["dns-timeout"], "--timeout") {
		t.Errorf("--help does not say how --timeout and --dns-timeout relate:\n--timeout: %s\n--dns-timeout: %s", help["timeout"], help["dns-timeout"])
	}
}

// TestControlFallbackOnlyByDefault checks which control resolvers a run
// asks: the built-in default control with its public fallbacks, and a
// control the user chose (flag, environment or file) alone unless
// --control-fallback (control.fallback) asks for them. Before, an explicit
// --control fell back silently to Google and Quad9.
func TestControlFallbackOnlyByDefault(t *testing.T) {
	const own = "https://127.0.0.1:8443/dns-query"
	def := dnsx.DefaultControl().URL
	withFallbacks := []string{def, "https://8.8.8.8/dns-query", "https://9.9.9.9/dns-query"}
	tests := []struct {
		name  string
		file  string
		env   map[string]string
		flags []string
		want  []string
	}{
		{"nothing configured", "", nil, nil, withFallbacks},
		{"probe.yaml", "../../probe.yaml", nil, nil, withFallbacks},
		{"--control", "", nil, []string{"--control", own}, []string{own}},
		{"KZPROBE_CONTROL_URL", "", map[string]string{"KZPROBE_CONTROL_URL": own}, nil, []string{own}},
		{"control.url in the file", "control:\n  url: " + own + "\n", nil, nil, []string{own}},
		{"probe.yaml and --control", "../../probe.yaml", nil, []string{"--control", own}, []string{own}},
		{"--control --control-fallback", "", nil, []string{"--control", own, "--control-fallback"},
			[]string{own, "https://8.8.8.8/dns-query", "https://9.9.9.9/dns-query"}},
		{"control.fallback in the file", "control:\n  url: " + own + "\n  fallback: true\n  fallbacks: [\"tls://127.0.0.2:853#dot.test\"]\n", nil, nil,
			[]string{own, "tls://127.0.0.2:853"}},
		{"KZPROBE_CONTROL_FALLBACK", "", map[string]string{"KZPROBE_CONTROL_URL": own, "KZPROBE_CONTROL_FALLBACK": "true"}, nil,
			[]string{own, "https://8.8.8.8/dns-query", "https://9.9.9.9/dns-query"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			file := tc.file
			if file != "" && !strings.HasSuffix(file, ".yaml") {
				file = writeFile(t, "c.yaml", file)
			}
			fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
			addRunFlags(fs)
			if err := fs.Parse(tc.flags); err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(file, fs, runFlags)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range cfg.Control.Specs() {
				got = append(got, s.URL)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("control resolvers asked: %v; want %v", got, tc.want)
			}
		})
	}
}
