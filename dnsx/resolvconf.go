package dnsx

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// maxResolvConfSize bounds how much of a resolv.conf is read.
const maxResolvConfSize = 1 << 20

// ReadResolvConf returns the nameservers of the resolv.conf(5) file at path
// as "ip:53" ("[ipv6]:53"), in file order. Lines other than "nameserver
// ADDR", comments and addresses that do not parse are ignored, as the C
// library does. It is an error when the file cannot be read or lists no
// nameserver; the error names the file.
func ReadResolvConf(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dnsx: reading resolver configuration: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxResolvConfSize))
	if err != nil {
		return nil, fmt.Errorf("dnsx: reading resolver configuration %s: %w", path, err)
	}
	servers := parseResolvConf(data)
	if len(servers) == 0 {
		return nil, fmt.Errorf("%w in %s: add a \"nameserver IP\" line or pass --resolver IP:53", ErrNoNameservers, path)
	}
	return servers, nil
}

// parseResolvConf extracts the nameserver lines of a resolv.conf.
func parseResolvConf(data []byte) []string {
	var out []string
	for line := range strings.Lines(string(data)) {
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		ip, err := netip.ParseAddr(f[1])
		if err != nil {
			continue
		}
		s := netip.AddrPortFrom(ip, 53).String()
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
