package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"kzprobe/dnsx"
)

// TestControlDefaultsAreDNSX keeps every default of the command that
// names a public resolver equal to dnsx's one list of them: the --control
// flag, control.url and control.fallbacks, `control serve --resolver`, the
// TLS name taken for a public resolver's IP, and the names probe.yaml
// documents for them.
func TestControlDefaultsAreDNSX(t *testing.T) {
	def := dnsx.DefaultControl()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	addRunFlags(fs)
	if got := fs.Lookup("control").DefValue; got != def.URL {
		t.Errorf("--control defaults to %q; want dnsx.DefaultControl %q", got, def.URL)
	}
	serve := newControlServeCmd()
	if got := serve.Flags().Lookup("resolver").DefValue; got != def.URL {
		t.Errorf("control serve --resolver defaults to %q; want %q", got, def.URL)
	}
	if got := defaults["control.url"]; got != def.URL {
		t.Errorf("control.url defaults to %v; want %q", got, def.URL)
	}
	if got := controlName(def.URL, ""); got != def.ServerName {
		t.Errorf("the default control is verified as %q; want %q", got, def.ServerName)
	}
	var fallbacks []dnsx.Spec
	for _, f := range defaults["control.fallbacks"].([]string) {
		u, name, _ := strings.Cut(f, "#")
		fallbacks = append(fallbacks, dnsx.Spec{URL: u, ServerName: name})
	}
	if !slices.Equal(fallbacks, dnsx.DefaultFallbacks()) {
		t.Errorf("control.fallbacks defaults to %v; want dnsx.DefaultFallbacks %v", fallbacks, dnsx.DefaultFallbacks())
	}
	yaml, err := os.ReadFile("../../probe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range dnsx.PublicResolvers() {
		for _, ip := range p.IPs {
			if got := controlName("https://"+ip.String()+"/dns-query", ""); got != p.ServerName {
				t.Errorf("--control https://%s/dns-query is verified as %q; want %q", ip, got, p.ServerName)
			}
		}
		if doc := p.IPs[0].String() + ": " + p.ServerName; !strings.Contains(string(yaml), doc) {
			t.Errorf("probe.yaml does not document %q", doc)
		}
	}
}
