package main

import (
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// writeLabConfig writes cfg, a run against a lab, as a configuration file
// that `kzprobe run -c` reads (the keys of probe.yaml), so that `kzprobe
// lab --serve` can print a short command.
func writeLabConfig(path string, cfg *Config) error {
	doc := map[string]map[string]any{
		"targets": {"files": cfg.Targets.Files, "domains": cfg.Targets.Domains, "port": cfg.Targets.Port},
		"dns": {
			"resolver": cfg.DNS.Resolver, "resolv_conf": cfg.DNS.ResolvConf,
			"timeout": cfg.DNS.Timeout.String(), "retries": cfg.DNS.Retries,
		},
		"control": {"url": cfg.Control.URL, "name": cfg.Control.Name, "ca": cfg.Control.CA, "server": cfg.Control.Server},
		"tls": {
			"fingerprints": cfg.TLS.Fingerprints, "small_hello_retry": cfg.TLS.SmallHelloRetry,
			"max_addresses": cfg.TLS.MaxAddresses, "timeout": cfg.TLS.Timeout.String(), "trust_roots": cfg.TLS.TrustRoots,
		},
		"interception": {"extra_roots": cfg.Interception.ExtraRoots},
		"run": {
			"parallel": cfg.Run.Parallel, "target_timeout": cfg.Run.TargetTimeout.String(),
			"output": cfg.Run.Output, "sync_interval": cfg.Run.SyncInterval.String(),
		},
		"network": {"allow": cfg.Network.Allow},
		"vantage": {"network": cfg.Vantage.Network},
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return fmt.Errorf("writing the lab's configuration: %w", err)
	}
	head := "# A run against the kzprobe lab, written by kzprobe lab --serve:\n# kzprobe run -c " + path + "\n"
	if err := os.WriteFile(path, append([]byte(head), data...), 0o644); err != nil {
		return fmt.Errorf("writing the lab's configuration: %w", err)
	}
	return nil
}
