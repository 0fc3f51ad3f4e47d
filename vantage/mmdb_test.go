package vantage

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

func openDB(t *testing.T, asnPath, countryPath string) *DB {
	t.Helper()
	db, err := Open(asnPath, countryPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestLookup(t *testing.T) {
	t.Parallel()
	kz := Info{ASN: "AS9198", CC: "KZ", Network: "JSC Kazakhtelecom", Method: MethodMMDB}
	unknown := Info{Method: MethodUnknown}
	tests := []struct {
		name    string
		asn, cc func(testing.TB) string
		ip      string
		want    Info
	}{
		{"maxmind asn and country", maxmindASN, maxmindCountry, kzAddr, kz},
		{"maxmind other network", maxmindASN, maxmindCountry, otherAddr,
			Info{ASN: "AS15169", CC: "US", Network: "GOOGLE", Method: MethodMMDB}},
		{"maxmind ipv6, registered country only", maxmindASN, maxmindCountry, v6Addr, kz},
		{"ipv4-mapped ipv6 is looked up as ipv4", maxmindASN, maxmindCountry, "::ffff:" + kzAddr, kz},
		{"maxmind asn only", maxmindASN, nil, kzAddr,
			Info{ASN: "AS9198", Network: "JSC Kazakhtelecom", Method: MethodMMDB}},
		{"maxmind country only", nil, maxmindCountry, kzAddr, Info{CC: "KZ", Method: MethodMMDB}},
		{"maxmind city, lower-case code", nil, maxmindCity, kzAddr, Info{CC: "KZ", Method: MethodMMDB}},
		{"ipinfo country+asn as asn file", ipinfoCountryASN, nil, kzAddr, kz},
		{"ipinfo country+asn as country file", nil, ipinfoCountryASN, kzAddr, kz},
		{"ipinfo lite: country_code, not the name", ipinfoLite, nil, kzAddr, kz},
		{"ipinfo asn: name", ipinfoASN, nil, otherAddr,
			Info{ASN: "AS15169", Network: "Google LLC", Method: MethodMMDB}},
		{"country file wins the country", ipinfoCountryASN, maxmindCity, kzAddr, kz},
		{"asn file wins the asn", ipinfoASN, ipinfoCountryASN, otherAddr,
			Info{ASN: "AS15169", Network: "Google LLC", Method: MethodMMDB}},
		{"not in the files", maxmindASN, maxmindCountry, noneAddr, unknown},
		{"no files", nil, nil, kzAddr, unknown},
		{"invalid address", maxmindASN, maxmindCountry, "", unknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var asnPath, ccPath string
			if tc.asn != nil {
				asnPath = tc.asn(t)
			}
			if tc.cc != nil {
				ccPath = tc.cc(t)
			}
			db := openDB(t, asnPath, ccPath)
			var ip netip.Addr
			if tc.ip != "" {
				ip = netip.MustParseAddr(tc.ip)
			}
			if diff := cmp.Diff(tc.want, db.Lookup(ip)); diff != "" {
				t.Errorf("Lookup(%s) mismatch (-want +got):\n%s", tc.ip, diff)
			}
		})
	}
}

func TestLookupNilDB(t *testing.T) {
	t.Parallel()
	var db *DB
	if got := db.Lookup(netip.MustParseAddr(kzAddr)); got != (Info{Method: MethodUnknown}) {
		t.Errorf("nil DB Lookup = %+v; want unknown", got)
	}
	if err := db.Close(); err != nil {
		t.Errorf("nil DB Close = %v", err)
	}
}

// An IPv4-only file asked about an IPv6 address answers nothing rather
// than failing (maxminddb returns an error quoting the address).
func TestLookupIPv6InIPv4OnlyFile(t *testing.T) {
	t.Parallel()
	path := writeMMDB(t, "GeoLite2-ASN", 4, map[string]mmdbtype.Map{
		kzNet: {"autonomous_system_number": mmdbtype.Uint32(9198)},
	})
	db := openDB(t, path, "")
	if got := db.Lookup(netip.MustParseAddr(v6Addr)); got.Method != MethodUnknown {
		t.Errorf("Lookup(v6) = %+v; want unknown", got)
	}
	if got := db.Lookup(netip.MustParseAddr(kzAddr)); got.ASN != "AS9198" {
		t.Errorf("Lookup(v4).ASN = %q; want AS9198", got.ASN)
	}
}

// Odd values: wrong types, ASN 0, "ZZ", a name with control characters.
func TestLookupOddRecords(t *testing.T) {
	t.Parallel()
	path := writeMMDB(t, "custom", 6, map[string]mmdbtype.Map{
		kzNet: {
			"autonomous_system_number":       mmdbtype.String("not a number"),
			"asn":                            mmdbtype.Uint32(9198), // number where IPinfo has a string
			"autonomous_system_organization": mmdbtype.Map{"en": mmdbtype.String("a map")},
			"name":                           mmdbtype.String("Evil\x1b[31m Net\n"),
			"country":                        mmdbtype.String("ZZ"),
			"country_code":                   mmdbtype.Uint16(7),
		},
		otherNet: {
			"autonomous_system_number": mmdbtype.Uint32(0),
			"country":                  mmdbtype.Map{"iso_code": mmdbtype.String("Kazakhstan")},
		},
	})
	db := openDB(t, path, "")
	if diff := cmp.Diff(Info{ASN: "AS9198", Network: "Evil [31m Net", Method: MethodMMDB},
		db.Lookup(netip.MustParseAddr(kzAddr))); diff != "" {
		t.Errorf("odd record mismatch (-want +got):\n%s", diff)
	}
	if got := db.Lookup(netip.MustParseAddr(otherAddr)); got != (Info{Method: MethodUnknown}) {
		t.Errorf("AS0 record = %+v; want unknown", got)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "GeoLite2-ASN.mmdb")
	corrupt := filepath.Join(dir, "corrupt.mmdb")
	if err := os.WriteFile(corrupt, []byte("this is not an mmdb file"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := maxmindASN(t)
	tests := []struct {
		name, asn, cc, wantFile string
	}{
		{"missing asn file", missing, "", missing},
		{"corrupt asn file", corrupt, "", corrupt},
		{"corrupt country file", good, corrupt, corrupt},
		{"missing country file", "", missing, missing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, err := Open(tc.asn, tc.cc)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded; want an error")
			}
			msg := err.Error()
			for _, want := range []string{tc.wantFile, "MaxMind", "DB-IP", "IPinfo"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if tc.name == "missing asn file" && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("error %v does not wrap os.ErrNotExist", err)
			}
		})
	}
}

func TestOpenNoFiles(t *testing.T) {
	t.Parallel()
	db := openDB(t, "", "")
	if got := db.Lookup(netip.MustParseAddr(kzAddr)); got.Method != MethodUnknown {
		t.Errorf("Lookup with no files = %+v; want unknown", got)
	}
}

func TestCloseTwice(t *testing.T) {
	t.Parallel()
	db, err := Open(maxmindASN(t), maxmindCountry(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if got := db.Lookup(netip.MustParseAddr(kzAddr)); got.Method != MethodUnknown {
		t.Errorf("Lookup after Close = %+v; want unknown", got)
	}
}
