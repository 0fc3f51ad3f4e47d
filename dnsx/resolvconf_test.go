package dnsx

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDNSReadResolvConf(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		content string
		want    []string
		wantErr string
	}{
		{"typical", "# generated\nsearch lan\nnameserver 127.0.0.53\noptions edns0 trust-ad\n", []string{"127.0.0.53:53"}, ""},
		{"several and IPv6", "nameserver 10.0.0.1\nnameserver ::1\nnameserver fe80::1%eth0\n", []string{"10.0.0.1:53", "[::1]:53", "[fe80::1%eth0]:53"}, ""},
		{"comments and junk", "; old\n#nameserver 1.1.1.1\nnameserver   192.0.2.1   # lab\nnameserver bogus\nnameserver\n nameserver\t192.0.2.2\nnameserver 192.0.2.1\n", []string{"192.0.2.1:53", "192.0.2.2:53"}, ""},
		{"CRLF", "nameserver 192.0.2.3\r\n", []string{"192.0.2.3:53"}, ""},
		{"empty", "", nil, "no nameserver"},
		{"only options", "options ndots:5\n", nil, "no nameserver"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := write(strings.ReplaceAll(tc.name, " ", "_"), tc.content)
			got, err := ReadResolvConf(p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), p) || !errors.Is(err, ErrNoNameservers) {
					t.Errorf("err = %v; want %q naming %s", err, tc.wantErr, p)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("ReadResolvConf = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		p := filepath.Join(dir, "absent.conf")
		if _, err := ReadResolvConf(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("err = %v; want one naming %s", err, p)
		}
	})
}

func FuzzResolvConf(f *testing.F) {
	f.Add([]byte("nameserver 127.0.0.53\noptions edns0\n"))
	f.Add([]byte("nameserver fe80::1%eth0\nnameserver ::ffff:1.2.3.4\n"))
	f.Add([]byte("#x\n;y\nnameserver\t10.0.0.1 # c\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, s := range parseResolvConf(data) {
			ap, err := netip.ParseAddrPort(s)
			if err != nil || ap.Port() != 53 {
				t.Fatalf("server %q is not ip:53", s)
			}
		}
	})
}
