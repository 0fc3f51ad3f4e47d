package vantage

import (
	"encoding/json"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	db := openDB(t, maxmindASN(t), maxmindCountry(t))
	kz := netip.MustParseAddr(kzAddr)
	tests := []struct {
		name string
		cfg  Configured
		ip   netip.Addr
		db   *DB
		want Info
	}{
		{"mmdb only", Configured{}, kz, db,
			Info{ASN: "AS9198", CC: "KZ", Network: "JSC Kazakhtelecom", Method: MethodMMDB}},
		{"all configured, mmdb ignored", Configured{ASN: "as9198", CC: "kz", Network: "Kazakhtelecom (home)"}, kz, db,
			Info{ASN: "AS9198", CC: "KZ", Network: "Kazakhtelecom (home)", Method: MethodConfigured}},
		{"configured without ip or db", Configured{ASN: "29555", CC: "KZ"}, netip.Addr{}, nil,
			Info{ASN: "AS29555", CC: "KZ", Method: MethodConfigured}},
		{"configured cc, mmdb asn and name", Configured{CC: "KZ"}, netip.MustParseAddr(otherAddr), db,
			Info{ASN: "AS15169", CC: "KZ", Network: "GOOGLE", Method: MethodMixed}},
		{"configured asn differs: mmdb name not used", Configured{ASN: "AS29555"}, kz, db,
			Info{ASN: "AS29555", CC: "KZ", Method: MethodMixed}},
		{"configured asn agrees: mmdb name used", Configured{ASN: "AS9198"}, kz, db,
			Info{ASN: "AS9198", CC: "KZ", Network: "JSC Kazakhtelecom", Method: MethodMixed}},
		{"placeholders mean not configured", Configured{ASN: "AS0", CC: "ZZ"}, kz, db,
			Info{ASN: "AS9198", CC: "KZ", Network: "JSC Kazakhtelecom", Method: MethodMMDB}},
		{"invalid configured values are ignored", Configured{ASN: "Kazakhtelecom", CC: "Kazakhstan"}, kz, db,
			Info{ASN: "AS9198", CC: "KZ", Network: "JSC Kazakhtelecom", Method: MethodMMDB}},
		{"no ip", Configured{}, netip.Addr{}, db, Info{Method: MethodUnknown}},
		{"no db", Configured{}, kz, nil, Info{Method: MethodUnknown}},
		{"not in db", Configured{}, netip.MustParseAddr(noneAddr), db, Info{Method: MethodUnknown}},
		{"blank network is not configured", Configured{Network: " \t"}, netip.Addr{}, nil, Info{Method: MethodUnknown}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, Resolve(tc.cfg, tc.ip, tc.db)); diff != "" {
				t.Errorf("Resolve mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// The resolver's network is resolved the same way, from its own address.
func TestResolveResolver(t *testing.T) {
	t.Parallel()
	db := openDB(t, ipinfoASN(t), maxmindCountry(t))
	got := Resolve(Configured{}, netip.MustParseAddr(otherAddr), db)
	want := Info{ASN: "AS15169", CC: "US", Network: "Google LLC", Method: MethodMMDB}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resolver Info mismatch (-want +got):\n%s", diff)
	}
}

func TestParseASN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"AS9198", "AS9198", true},
		{"as9198", "AS9198", true},
		{" 9198 ", "AS9198", true},
		{"AS4294967295", "AS4294967295", true},
		{"", "", true},
		{"AS0", "", true},
		{"0", "", true},
		{"AS", "", false},
		{"AS4294967296", "", false},
		{"AS-1", "", false},
		{"+9198", "", false},
		{"9_198", "", false},
		{"AS 9198", "", false},
		{"Kazakhtelecom", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseASN(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("ParseASN(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidASN) {
				t.Errorf("error %v does not wrap ErrInvalidASN", err)
			}
		})
	}
}

func TestConfiguredValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Configured
		want error
	}{
		{"empty", Configured{}, nil},
		{"full", Configured{ASN: "AS9198", CC: "kz", Network: "anything"}, nil},
		{"bad asn", Configured{ASN: "ASX"}, ErrInvalidASN},
		{"bad cc", Configured{CC: "KAZ"}, ErrInvalidCC},
		{"cc digits", Configured{CC: "7"}, ErrInvalidCC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("Validate() = %v; want %v", err, tc.want)
			}
		})
	}
}

func TestCleanName(t *testing.T) {
	t.Parallel()
	long := ""
	for range 100 {
		long += "ж" // 2 bytes each: the cut must not split one
	}
	tests := []struct{ in, want string }{
		{"  JSC Kazakhtelecom ", "JSC Kazakhtelecom"},
		{"a\x00b\nc", "a b c"},
		{"bad\xffutf8", "bad utf8"},
		{long + "x", long},
	}
	for _, tc := range tests {
		if got := cleanName(tc.in); got != tc.want {
			t.Errorf("cleanName(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestInfoJSON(t *testing.T) {
	t.Parallel()
	got, err := json.Marshal(Info{ASN: "AS9198", CC: "KZ", Network: "JSC Kazakhtelecom", Method: MethodMMDB})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"asn":"AS9198","cc":"KZ","network":"JSC Kazakhtelecom","method":"mmdb"}`
	if string(got) != want {
		t.Errorf("got %s; want %s", got, want)
	}
	got, _ = json.Marshal(Info{Method: MethodUnknown})
	if want := `{"asn":"","cc":"","network":"","method":"unknown"}`; string(got) != want {
		t.Errorf("got %s; want %s", got, want)
	}
}
