package clickhouse

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		want      Config
		err       string
	}{
		{name: "one_server", url: "http://127.0.0.1:8123/kzprobe", want: Config{Hosts: []string{"127.0.0.1:8123"}, Database: "kzprobe"}},
		{name: "default_port_and_database", url: "http://ch.example", want: Config{Hosts: []string{"ch.example:8123"}, Database: "default"}},
		{name: "cluster", url: "https://u:p%40ss@a:8443,b:8443/db?cluster=c1", want: Config{Hosts: []string{"a:8443", "b:8443"}, User: "u", Password: "p@ss", Database: "db", Cluster: "c1", HTTPS: true}},
		{name: "native_port_scheme", url: "tcp://127.0.0.1:9000/db", err: "want http"},
		{name: "bad_database", url: "http://h/db;DROP", err: "letters"},
		{name: "bad_cluster", url: "http://h/db?cluster=a'b", err: "letters"},
		{name: "unknown_parameter", url: "http://h/db?secure=1", err: "unknown parameter"},
		{name: "no_host", url: "http:///db", err: "no host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseURL(tc.url)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseURL(%q) = %v; want an error with %q", tc.url, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.Hosts, ",") != strings.Join(tc.want.Hosts, ",") || got.User != tc.want.User || got.Password != tc.want.Password ||
				got.Database != tc.want.Database || got.Cluster != tc.want.Cluster || got.HTTPS != tc.want.HTTPS {
				t.Errorf("ParseURL(%q) = %+v; want %+v", tc.url, got, tc.want)
			}
		})
	}
}

// FuzzParseURL: any text either fails or gives names that need no quoting
// in SQL and at least one host.
func FuzzParseURL(f *testing.F) {
	f.Add("http://127.0.0.1:8123/kzprobe")
	f.Add("https://u:p@a:1,b:2/db?cluster=c")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseURL(s)
		if err != nil {
			return
		}
		if len(c.Hosts) == 0 || !validName(c.Database) || c.Cluster != "" && !validName(c.Cluster) {
			t.Fatalf("ParseURL(%q) = %+v", s, c)
		}
		for _, h := range c.Hosts {
			if strings.ContainsAny(h, "/?#@") {
				t.Fatalf("ParseURL(%q): host %q", s, h)
			}
		}
	})
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{"KZ": `'KZ'`, `a'b`: `'a\'b'`, `a\b`: `'a\\b'`, "a\x00": `'a\0'`} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s; want %s", in, got, want)
		}
	}
}
