package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestDurationsNeedAUnit loads every duration key without a unit, from
// each source, and checks that it is refused, naming the key and where the
// value came from (file:line for the file). "tls: timeout: 10" in a file
// was read as 10 ns, where the flag and the environment refused "10".
func TestDurationsNeedAUnit(t *testing.T) {
	durationKeys := []string{"dns.timeout", "tls.timeout", "run.target_timeout", "run.sync_interval", "submit.wait"}
	for _, s := range settings {
		if _, ok := s.def.(time.Duration); ok && !strings.Contains(strings.Join(durationKeys, " "), s.key) {
			t.Errorf("duration key %s is not covered by this test", s.key)
		}
	}
	type source struct {
		name string
		// file and env are the value's source: a YAML value, an
		// environment value.
		file, env string
		// where is what the error must say of the source.
		where string
	}
	sources := []source{
		{name: "file integer", file: "10", where: "c.yaml:3"},
		{name: "file zero", file: "0", where: "c.yaml:3"},
		{name: "file float", file: "1.5", where: "c.yaml:3"},
		{name: "file quoted number", file: `"10"`, where: "c.yaml:3"},
		{name: "environment", env: "10", where: "environment KZPROBE_"},
		{name: "environment zero", env: "0", where: "environment KZPROBE_"},
	}
	for _, key := range durationKeys {
		sec, name, _ := strings.Cut(key, ".")
		for _, src := range sources {
			t.Run(key+"/"+src.name, func(t *testing.T) {
				clearEnv(t)
				file := ""
				if src.file != "" {
					file = writeFile(t, "c.yaml", "# a comment line\n"+sec+":\n  "+name+": "+src.file+"\n")
				}
				if src.env != "" {
					t.Setenv(envName(key), src.env)
				}
				cfg, err := loadConfig(file, nil, nil)
				if err == nil {
					t.Fatalf("loaded %s = %v; want an error saying it has no unit", key, durationOf(cfg, key))
				}
				for _, w := range []string{src.where, `"` + key + `"`, "without a unit", "s (or "} {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
			})
		}
	}
	// With units, every source is read as written.
	clearEnv(t)
	file := writeFile(t, "c.yaml", "tls:\n  timeout: 1m30s\nrun:\n  sync_interval: 0s\n  target_timeout: 500ms\n")
	t.Setenv("KZPROBE_DNS_TIMEOUT", "2s")
	cfg, err := loadConfig(file, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS.Timeout != 90*time.Second || cfg.Run.SyncInterval != 0 || cfg.Run.TargetTimeout != 500*time.Millisecond || cfg.DNS.Timeout != 2*time.Second {
		t.Errorf("durations with units: tls %v sync %v target %v dns %v; want 1m30s 0s 500ms 2s",
			cfg.TLS.Timeout, cfg.Run.SyncInterval, cfg.Run.TargetTimeout, cfg.DNS.Timeout)
	}
}

func durationOf(cfg *Config, key string) time.Duration {
	return map[string]time.Duration{"dns.timeout": cfg.DNS.Timeout, "tls.timeout": cfg.TLS.Timeout,
		"run.target_timeout": cfg.Run.TargetTimeout, "run.sync_interval": cfg.Run.SyncInterval, "submit.wait": cfg.Submit.Wait}[key]
}

// TestRunRefusesEmptyAndZeroValues runs the real binary with values that
// used to be taken silently: --port 0 and --dns-timeout 0s ran (0 meant a
// default), and a list flag given an empty value ("-d $EMPTY") measured the
// 14 report domains, or with --allow-net allowed everything. Each is a
// usage error naming the flag, and nothing is sent.
func TestRunRefusesEmptyAndZeroValues(t *testing.T) {
	clearEnv(t)
	// The guard from the environment, so that the case of an empty
	// --allow-net still has one if the flag is taken.
	t.Setenv("KZPROBE_NETWORK_ALLOW", "127.0.0.0/8")
	sink := startUDPSink(t)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	base := []string{"run", "-q", "--resolver", sink.addr, "--control", "udp://" + sink.addr,
		"--timeout", "300ms", "-o", out}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"port 0", []string{"-d", "x.example", "--port", "0"}, []string{"--port", "targets.port", "1-65535", "got 0"}},
		{"dns timeout 0s", []string{"-d", "x.example", "--dns-timeout", "0s"}, []string{"--dns-timeout", "dns.timeout", "must be positive"}},
		{"dns timeout 0", []string{"-d", "x.example", "--dns-timeout", "0"}, []string{"--dns-timeout", "dns.timeout", "must be positive"}},
		{"target timeout 0s", []string{"-d", "x.example", "--target-timeout", "0s"}, []string{"--target-timeout", "must be positive"}},
		{"empty -d", []string{"-d", ""}, []string{"-d/--domain", "empty value"}},
		{"empty -i", []string{"-i", ""}, []string{"-i/--input", "empty value"}},
		{"empty --allow-net", []string{"-d", "x.example", "--allow-net", ""}, []string{"--allow-net", "empty value"}},
		{"empty --fingerprint", []string{"-d", "x.example", "--fingerprint", ""}, []string{"--fingerprint", "empty value"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := sink.n.Load()
			code, stderr := runBinary(t, append(base, tc.args...)...)
			if code != exitUsage {
				t.Errorf("exit code %d; want %d\n%s", code, exitUsage, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
			if n := sink.n.Load() - before; n != 0 {
				t.Errorf("%d DNS queries sent; want none", n)
			}
		})
	}
}

// TestEmptyListFlagInLoadConfig checks the rule at its source: a list flag
// that was given but holds nothing is an error, every list flag alike.
func TestEmptyListFlagInLoadConfig(t *testing.T) {
	clearEnv(t)
	for _, s := range settings {
		if _, ok := s.def.([]string); !ok || s.flag == "" {
			continue
		}
		t.Run(s.flag, func(t *testing.T) {
			fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
			addRunFlags(fs)
			if err := fs.Parse([]string{"--" + s.flag + "="}); err != nil {
				t.Fatal(err)
			}
			if _, err := loadConfig("", fs, runFlags); err == nil || !strings.Contains(err.Error(), "--"+s.flag) {
				t.Errorf("--%s='': err %v; want an error naming the flag", s.flag, err)
			}
		})
	}
}
