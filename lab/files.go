package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Files are the paths [Lab.WriteFiles] wrote.
type Files struct {
	Dir string
	// PublicRoot is the trust anchor for the origins and the control
	// resolver (the probe's trust store in the lab).
	PublicRoot string
	// PublicIntermediate is sent by the origins; written for reference.
	PublicIntermediate string
	// ISCARoot is the lab's interception root (the probe's known ISCA
	// roots in the lab).
	ISCARoot string
	// ISCAIntermediate and ISCAExpiredIntermediate are the interception
	// intermediates (the probe's known intermediates in the lab).
	ISCAIntermediate        string
	ISCAExpiredIntermediate string
	// CorporateRoot is the unrelated TLS-inspection root.
	CorporateRoot string
	// ResolvConf names the local resolver ("nameserver <ip>"); its port,
	// which resolv.conf cannot say, is in a comment.
	ResolvConf string
	// Scenario is the scenario being run, as YAML that LoadScenario reads.
	Scenario string
}

// WriteFiles writes the lab's certificates (PEM), a resolv.conf and the
// scenario into dir, creating it if needed, so that a probe in another
// process can be configured to use the lab. It returns the paths.
func (l *Lab) WriteFiles(dir string) (Files, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("lab: %w", err)
	}
	f := Files{
		Dir:                     dir,
		PublicRoot:              filepath.Join(dir, "public-root.pem"),
		PublicIntermediate:      filepath.Join(dir, "public-intermediate.pem"),
		ISCARoot:                filepath.Join(dir, "isca-root.pem"),
		ISCAIntermediate:        filepath.Join(dir, "isca-intermediate.pem"),
		ISCAExpiredIntermediate: filepath.Join(dir, "isca-expired-intermediate.pem"),
		CorporateRoot:           filepath.Join(dir, "corporate-root.pem"),
		ResolvConf:              filepath.Join(dir, "resolv.conf"),
		Scenario:                filepath.Join(dir, "scenario.yaml"),
	}
	scenario, err := l.Scenario.encode()
	if err != nil {
		return Files{}, fmt.Errorf("lab: encoding scenario: %w", err)
	}
	host := hostAddr(l.Net, hostLocalDNS)
	var resolv strings.Builder
	fmt.Fprintf(&resolv, "# kzprobe lab local resolver, %s (UDP and TCP).\n", l.LocalDNS)
	if l.DNSPort != 53 {
		fmt.Fprintf(&resolv, "# It listens on port %d, which resolv.conf cannot express: give the\n# probe the resolver as %s.\n", l.DNSPort, l.LocalDNS)
	}
	fmt.Fprintf(&resolv, "nameserver %s\n", host)
	writes := []struct {
		path string
		data []byte
	}{
		{f.PublicRoot, l.PKI.PublicRootPEM()},
		{f.PublicIntermediate, l.PKI.PublicIntermediatePEM()},
		{f.ISCARoot, l.PKI.ISCARootPEM()},
		{f.ISCAIntermediate, l.PKI.ISCAIntermediatePEM()},
		{f.ISCAExpiredIntermediate, l.PKI.ISCAExpiredIntermediatePEM()},
		{f.CorporateRoot, l.PKI.CorporateRootPEM()},
		{f.ResolvConf, []byte(resolv.String())},
		{f.Scenario, scenario},
	}
	for _, w := range writes {
		if err := os.WriteFile(w.path, w.data, 0o644); err != nil {
			return Files{}, fmt.Errorf("lab: %w", err)
		}
	}
	return f, nil
}
