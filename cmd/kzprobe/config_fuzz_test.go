package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadConfig feeds arbitrary bytes to loadConfig as a YAML file. It
// must never panic, and either return a configuration that passes its own
// validation or an error wrapping ErrConfig that names the file.
func FuzzLoadConfig(f *testing.F) {
	// Start from the committed probe.yaml, the error cases of the tests,
	// and YAML features a config file should not need (anchors, aliases,
	// tags, several documents, flow style).
	if data, err := os.ReadFile("../../probe.yaml"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"tls:\n  fingerprint: [chrome]\n",
		"tsl:\n  timeout: 1s\n",
		"tls:\n  timeout: 10 seconds\n",
		"run:\n  parallel: many\n",
		"network:\n  allow: [127.0.0.0/33]\n",
		"control:\n  url: http://1.1.1.1/dns-query\n",
		"tls:\n  fingerprints: [chrome, netscape]\n",
		"vantage:\n  asn: 9198\n  cc: kz\n",
		"tls: [\n",
		"run: {parallel: 3, target_timeout: 30s, output: out.jsonl}\n",
		"a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n",
		"tls: !!binary aGVsbG8=\n",
		"run:\n  parallel: 0x10\n---\nrun:\n  parallel: 2\n",
		"targets:\n  files: [a.txt, b.csv]\n  domains: \"x.kz,y.kz\"\n  port: 65536\n",
		"dns:\n  resolver: \"[::1]:53\"\n  timeout: -1s\n  retries: 11\n",
		"RUN:\n  Parallel: 4\n",
		"run:\n  parallel: 4\n  parallel: 5\n",
	} {
		f.Add([]byte(s))
	}
	// The configuration must not depend on the environment of whoever
	// runs the fuzzer (CI sets KZPROBE_NETWORK_ALLOW).
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, envPrefix+"_") {
			f.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	path := filepath.Join(f.TempDir(), "fuzz.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		// One file per worker process, rewritten for every input: a worker
		// runs its inputs one at a time.
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(path, nil, nil)
		if err != nil {
			if cfg != nil {
				t.Errorf("loadConfig returned a configuration and an error: %v", err)
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %q does not wrap ErrConfig", err)
			}
			if !strings.Contains(err.Error(), path) && !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		if err := cfg.validate(); err != nil {
			t.Errorf("loadConfig accepted a configuration that fails validation: %v", err)
		}
	})
}

// TestConfigListElementErrorNamesFile is FuzzLoadConfig's first crasher
// (testdata/fuzz/FuzzLoadConfig/22e30728f3bcfb5e): a list element of the
// wrong type was reported as 'targets.files[0]', which the key pattern did
// not match, so the error named neither the file nor the line.
func TestConfigListElementErrorNamesFile(t *testing.T) {
	clearEnv(t)
	for _, body := range []string{
		"tArgets:\n  files:\n   0:",
		"targets:\n  files:\n    - {a: b}\n",
		"tls:\n  fingerprints: [[chrome]]\n",
	} {
		p := writeFile(t, "list.yaml", body)
		_, err := loadConfig(p, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "list.yaml:") || !strings.Contains(err.Error(), "[0]") {
			t.Errorf("%q: error %v; want it to name list.yaml:line and the element [0]", body, err)
		}
	}
}
