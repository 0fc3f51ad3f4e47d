package vantage

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Test networks are documentation prefixes (RFC 5737, RFC 3849); the
// ASNs and names are examples of the shapes real databases hold.
const (
	kzNet     = "192.0.2.0/24"    // "Kazakhtelecom"
	kzAddr    = "192.0.2.7"       // the probe
	otherNet  = "198.51.100.0/24" // a resolver's network elsewhere
	otherAddr = "198.51.100.53"
	v6Net     = "2001:db8::/32"
	v6Addr    = "2001:db8::7"
	noneAddr  = "203.0.113.9" // in no database
)

// writeMMDB builds an MMDB file in t.TempDir() holding recs (CIDR →
// record) and returns its path.
func writeMMDB(t testing.TB, dbType string, ipVersion int, recs map[string]mmdbtype.Map) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            dbType,
		IPVersion:               ipVersion,
		RecordSize:              24,
		IncludeReservedNetworks: true, // documentation prefixes are reserved
	})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range recs {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, rec); err != nil {
			t.Fatalf("insert %s: %v", cidr, err)
		}
	}
	path := filepath.Join(t.TempDir(), dbType+".mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// maxmindASN is a GeoLite2-ASN (and DB-IP ASN Lite) file.
func maxmindASN(t testing.TB) string {
	return writeMMDB(t, "GeoLite2-ASN", 6, map[string]mmdbtype.Map{
		kzNet: {
			"autonomous_system_number":       mmdbtype.Uint32(9198),
			"autonomous_system_organization": mmdbtype.String("JSC Kazakhtelecom"),
		},
		otherNet: {
			"autonomous_system_number":       mmdbtype.Uint32(15169),
			"autonomous_system_organization": mmdbtype.String("GOOGLE"),
		},
		v6Net: {
			"autonomous_system_number":       mmdbtype.Uint32(9198),
			"autonomous_system_organization": mmdbtype.String("JSC Kazakhtelecom"),
		},
	})
}

func isoCountry(cc, name string) mmdbtype.Map {
	return mmdbtype.Map{
		"geoname_id": mmdbtype.Uint32(1522867),
		"iso_code":   mmdbtype.String(cc),
		"names":      mmdbtype.Map{"en": mmdbtype.String(name), "ru": mmdbtype.String(name)},
	}
}

// maxmindCountry is a GeoLite2-Country (and DB-IP Country Lite) file.
func maxmindCountry(t testing.TB) string {
	return writeMMDB(t, "GeoLite2-Country", 6, map[string]mmdbtype.Map{
		kzNet: {
			"continent":          mmdbtype.Map{"code": mmdbtype.String("AS")},
			"country":            isoCountry("KZ", "Kazakhstan"),
			"registered_country": isoCountry("KZ", "Kazakhstan"),
		},
		otherNet: {
			"country":            isoCountry("US", "United States"),
			"registered_country": isoCountry("US", "United States"),
		},
		// Anycast-like: only the registered country is known.
		v6Net: {"registered_country": isoCountry("KZ", "Kazakhstan")},
	})
}

// maxmindCity is a GeoLite2-City file: country plus city, subdivisions.
func maxmindCity(t testing.TB) string {
	return writeMMDB(t, "GeoLite2-City", 6, map[string]mmdbtype.Map{
		kzNet: {
			"city":         mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String("Almaty")}},
			"country":      isoCountry("kz", "Kazakhstan"),
			"location":     mmdbtype.Map{"latitude": mmdbtype.Float64(43.25), "longitude": mmdbtype.Float64(76.95)},
			"subdivisions": mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String("75")}},
		},
	})
}

// ipinfoCountryASN is IPinfo's free "IP to Country + ASN" file.
func ipinfoCountryASN(t testing.TB) string {
	return writeMMDB(t, "ipinfo country_asn.mmdb", 6, map[string]mmdbtype.Map{
		kzNet: {
			"asn":            mmdbtype.String("AS9198"),
			"as_name":        mmdbtype.String("JSC Kazakhtelecom"),
			"as_domain":      mmdbtype.String("telecom.kz"),
			"country":        mmdbtype.String("KZ"),
			"country_name":   mmdbtype.String("Kazakhstan"),
			"continent":      mmdbtype.String("AS"),
			"continent_name": mmdbtype.String("Asia"),
		},
	})
}

// ipinfoLite is IPinfo Lite: country is the name, country_code the code.
func ipinfoLite(t testing.TB) string {
	return writeMMDB(t, "ipinfo_lite.mmdb", 6, map[string]mmdbtype.Map{
		kzNet: {
			"asn":            mmdbtype.String("AS9198"),
			"as_name":        mmdbtype.String("JSC Kazakhtelecom"),
			"as_domain":      mmdbtype.String("telecom.kz"),
			"country_code":   mmdbtype.String("KZ"),
			"country":        mmdbtype.String("Kazakhstan"),
			"continent_code": mmdbtype.String("AS"),
			"continent":      mmdbtype.String("Asia"),
		},
	})
}

// ipinfoASN is IPinfo's free "IP to ASN" file: asn, name, domain.
func ipinfoASN(t testing.TB) string {
	return writeMMDB(t, "ipinfo asn.mmdb", 6, map[string]mmdbtype.Map{
		otherNet: {
			"asn":    mmdbtype.String("AS15169"),
			"name":   mmdbtype.String("Google LLC"),
			"domain": mmdbtype.String("google.com"),
		},
	})
}
