package vantage

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	maxminddb "github.com/oschwald/maxminddb-golang/v2"
)

// formats is the list of MMDB formats that errors suggest.
const formats = "want an MMDB file: MaxMind GeoLite2-ASN/-Country/-City, " +
	"DB-IP ASN/Country Lite, or IPinfo's free ASN/Country/Country+ASN/Lite databases"

// DB looks addresses up in local MMDB files: one for the ASN, one for the
// country, either optional. A DB is safe for concurrent use. Its zero value
// and nil have no files and find nothing.
//
// Supported record formats, detected per record rather than from the file's
// metadata, so a renamed or re-packaged file works too:
//
//   - MaxMind GeoLite2-ASN and DB-IP ASN Lite: autonomous_system_number
//     (integer), autonomous_system_organization.
//   - MaxMind GeoLite2-Country/-City and DB-IP Country/City Lite:
//     country.iso_code, else registered_country.iso_code.
//   - IPinfo (free "ASN", "Country", "Country + ASN" and "Lite"): asn as
//     "AS123", as_name or name, country_code, or country when that is a
//     two-letter code (IPinfo Lite spells the country's name there).
//
// The ASN file gives the ASN and network name and the country file the
// country; each file also fills what the other lacks when its records carry
// it (IPinfo's combined databases), so one combined file may be given as
// either.
type DB struct {
	asn     *maxminddb.Reader
	country *maxminddb.Reader
}

// Open opens the MMDB files at asnPath and countryPath; an empty path is
// skipped, and two empty paths give a DB that finds nothing. An error names
// the file and the formats that work.
func Open(asnPath, countryPath string) (*DB, error) {
	db := &DB{}
	var err error
	if asnPath != "" {
		if db.asn, err = openMMDB("ASN", asnPath); err != nil {
			return nil, err
		}
	}
	if countryPath != "" {
		if db.country, err = openMMDB("country", countryPath); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

func openMMDB(kind, path string) (*maxminddb.Reader, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vantage: opening %s database %q: %w (%s)", kind, path, err, formats)
	}
	if r.Metadata.IPVersion != 4 && r.Metadata.IPVersion != 6 {
		r.Close()
		return nil, fmt.Errorf("vantage: opening %s database %q: unsupported ip_version %d (%s)",
			kind, path, r.Metadata.IPVersion, formats)
	}
	return r, nil
}

// Close releases the files. It is safe on nil and more than once, but not
// while a Lookup runs.
func (db *DB) Close() error {
	if db == nil {
		return nil
	}
	var errs []error
	if db.asn != nil {
		errs = append(errs, db.asn.Close())
		db.asn = nil
	}
	if db.country != nil {
		errs = append(errs, db.country.Close())
		db.country = nil
	}
	return errors.Join(errs...)
}

// Lookup returns what the files say about ip, with Method MethodMMDB, or
// MethodUnknown when they say nothing (no file, no record, an IPv6 address
// in an IPv4-only file, an invalid ip, a record that does not decode).
// Errors are not returned because they would carry the address.
func (db *DB) Lookup(ip netip.Addr) Info {
	if db == nil || !ip.IsValid() {
		return Info{Method: MethodUnknown}
	}
	ip = ip.Unmap().WithZone("")
	a := lookupRecord(db.asn, ip)
	c := lookupRecord(db.country, ip)
	out := Info{ASN: a.asn(), Network: a.network()}
	if out.ASN == "" && out.Network == "" {
		out.ASN, out.Network = c.asn(), c.network()
	}
	if out.CC = c.cc(); out.CC == "" {
		out.CC = a.cc()
	}
	out.Method = MethodUnknown
	if out.Known() {
		out.Method = MethodMMDB
	}
	return out
}

// record has every field of every supported format. The types differ
// between formats (country is a map in MaxMind's, a string in IPinfo's), so
// the fields are decoded as any and normalised by the methods below.
type record struct {
	// MaxMind GeoLite2-ASN, DB-IP ASN Lite.
	ASNumber any `maxminddb:"autonomous_system_number"`
	ASOrg    any `maxminddb:"autonomous_system_organization"`
	// IPinfo.
	ASN    any `maxminddb:"asn"`
	ASName any `maxminddb:"as_name"`
	Name   any `maxminddb:"name"`
	// IPinfo Lite: "KZ".
	CountryCode any `maxminddb:"country_code"`
	// MaxMind/DB-IP: {"iso_code": "KZ", ...}; IPinfo Country: "KZ";
	// IPinfo Lite: "Kazakhstan".
	Country any `maxminddb:"country"`
	// MaxMind/DB-IP: {"iso_code": "KZ", ...}.
	RegisteredCountry any `maxminddb:"registered_country"`
}

func lookupRecord(r *maxminddb.Reader, ip netip.Addr) record {
	var rec record
	if r == nil {
		return rec
	}
	res := r.Lookup(ip)
	if res.Err() != nil || !res.Found() {
		return rec
	}
	if err := res.Decode(&rec); err != nil {
		return record{}
	}
	return rec
}

func (r record) asn() string {
	if s, ok := asnFrom(r.ASNumber); ok {
		return s
	}
	s, _ := asnFrom(r.ASN)
	return s
}

// asnFrom accepts an integer or a string ASN ("AS123", "123").
func asnFrom(v any) (string, bool) {
	var s string
	switch n := v.(type) {
	case string:
		s = n
	case uint64:
		s = strconv.FormatUint(n, 10)
	case uint32:
		s = strconv.FormatUint(uint64(n), 10)
	case uint16:
		s = strconv.FormatUint(uint64(n), 10)
	case int32:
		s = strconv.FormatInt(int64(n), 10)
	default:
		return "", false
	}
	asn, err := ParseASN(s)
	return asn, err == nil && asn != ""
}

func (r record) network() string {
	for _, v := range []any{r.ASOrg, r.ASName, r.Name} {
		if s, ok := v.(string); ok {
			if s = cleanName(s); s != "" {
				return s
			}
		}
	}
	return ""
}

func (r record) cc() string {
	for _, v := range []any{r.CountryCode, r.Country, r.RegisteredCountry} {
		var s string
		switch c := v.(type) {
		case string:
			s = c
		case map[string]any:
			s, _ = c["iso_code"].(string)
		}
		if cc, ok := parseCC(s); ok && cc != "" {
			return cc
		}
	}
	return ""
}
