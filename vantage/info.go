package vantage

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// How a vantage [Info] was obtained: the value of [Info.Method].
const (
	// MethodConfigured: every known field came from the configuration
	// (vantage.asn, vantage.cc, vantage.network or the matching flags).
	MethodConfigured = "configured"
	// MethodMMDB: every known field came from a local MMDB lookup of the
	// public address.
	MethodMMDB = "mmdb"
	// MethodMixed: some fields were configured and the others came from the
	// MMDB ([Resolve] documents which win).
	MethodMixed = "configured+mmdb"
	// MethodUnknown: nothing is known; every field is "".
	MethodUnknown = "unknown"
)

// Info says where a measurement was taken from, or where a resolver sits:
// the network, never the address. The zero value means nothing is known;
// [Resolve] and [DB.Lookup] set Method to [MethodUnknown] in that case.
//
// Unknown fields are "". The placeholders "AS0" and "ZZ" that OONI's format
// uses for unknown values belong to the output layer, not here.
type Info struct {
	// ASN is the autonomous system number, "AS" and decimal digits
	// ("AS9198"), or "" when unknown.
	ASN string `json:"asn"`
	// CC is the ISO 3166-1 alpha-2 country code in upper case ("KZ"), or ""
	// when unknown.
	CC string `json:"cc"`
	// Network is the autonomous system's organisation name as the source
	// spells it ("JSC Kazakhtelecom"), or "" when unknown.
	Network string `json:"network"`
	// Method is how the fields were obtained: MethodConfigured, MethodMMDB,
	// MethodMixed or MethodUnknown.
	Method string `json:"method"`
}

// Known reports whether any field is known.
func (i Info) Known() bool { return i.ASN != "" || i.CC != "" || i.Network != "" }

// Configured is what the volunteer stated about a vantage point, from
// config or flags (cmd turns vantage.asn, vantage.cc, vantage.network into
// this). Each field "" means "not configured: look it up". For the resolver
// the same struct is used with the resolver's own settings.
type Configured struct {
	// ASN in any form [ParseASN] accepts ("AS9198", "as9198", "9198").
	// "", "AS0" and "0" mean not configured.
	ASN string
	// CC is a two-letter country code, any case. "" and "ZZ" mean not
	// configured.
	CC string
	// Network is a free-form network name. "" means not configured.
	Network string
}

// ErrInvalidASN is wrapped by [ParseASN] and [Configured.Validate] errors.
var ErrInvalidASN = errors.New("vantage: invalid ASN")

// ErrInvalidCC is wrapped by [Configured.Validate] errors for a bad country.
var ErrInvalidCC = errors.New("vantage: invalid country code")

// ParseASN returns s in the canonical form "AS<number>". It accepts an
// optional "AS" prefix in any case and surrounding spaces. "AS0" and "0"
// parse to "" (unknown), as does "". The number must fit 32 bits (RFC 6793).
func ParseASN(s string) (string, error) {
	t := strings.TrimSpace(s)
	if len(t) >= 2 && strings.EqualFold(t[:2], "AS") {
		t = t[2:]
	}
	if t == "" && strings.TrimSpace(s) == "" {
		return "", nil
	}
	n, err := strconv.ParseUint(t, 10, 32)
	if err != nil { // ParseUint refuses signs and underscores
		return "", fmt.Errorf("%w %q: want AS followed by a number, e.g. AS9198", ErrInvalidASN, s)
	}
	if n == 0 {
		return "", nil
	}
	return "AS" + strconv.FormatUint(n, 10), nil
}

// parseCC returns s as an upper-case two-letter code, "" for "" and "ZZ"
// (unknown), and ok=false when s is not two ASCII letters.
func parseCC(s string) (cc string, ok bool) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if t == "" {
		return "", true
	}
	if len(t) != 2 || t[0] < 'A' || t[0] > 'Z' || t[1] < 'A' || t[1] > 'Z' {
		return "", false
	}
	if t == "ZZ" {
		return "", true
	}
	return t, true
}

// Validate reports a configured ASN or country code that cannot be used;
// cmd calls it when loading the configuration. Resolve ignores such values.
func (c Configured) Validate() error {
	if _, err := ParseASN(c.ASN); err != nil {
		return err
	}
	if _, ok := parseCC(c.CC); !ok {
		return fmt.Errorf("%w %q: want two letters, e.g. KZ", ErrInvalidCC, c.CC)
	}
	return nil
}

// maxNetworkLen bounds a network name, from the config or from an MMDB file.
const maxNetworkLen = 200

// cleanName trims s, replaces control and invalid characters by spaces (a
// name ends up in a terminal table) and bounds its length.
func cleanName(s string) string {
	s = strings.ToValidUTF8(s, " ")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxNetworkLen {
		s = s[:maxNetworkLen]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s = strings.TrimSpace(s)
	}
	return s
}

// Resolve says where a vantage point is, from what was configured and a
// lookup of its public address in db.
//
// Precedence, field by field:
//
//  1. A configured value wins (after normalisation: "as9198" is "AS9198",
//     "kz" is "KZ"). A configured value that does not parse (see
//     [Configured.Validate]) counts as not configured.
//  2. Otherwise the MMDB record for publicIP, when publicIP is valid and db
//     is not nil. The MMDB's network name is used only when its ASN is the
//     one finally recorded, so that a configured ASN is never paired with
//     another AS's name.
//  3. Otherwise the field stays "" (unknown).
//
// Method is MethodConfigured when every known field was configured,
// MethodMMDB when every known field came from the MMDB, MethodMixed when
// both contributed, and MethodUnknown when nothing is known.
//
// publicIP is used for the lookup only; it is not part of the result.
func Resolve(cfg Configured, publicIP netip.Addr, db *DB) Info {
	var conf Info
	conf.ASN, _ = ParseASN(cfg.ASN)
	conf.CC, _ = parseCC(cfg.CC)
	conf.Network = cleanName(cfg.Network)

	var looked Info
	if publicIP.IsValid() && db != nil {
		looked = db.Lookup(publicIP)
	}

	var out Info
	var fromConf, fromDB bool
	pick := func(c, d string) string {
		switch {
		case c != "":
			fromConf = true
			return c
		case d != "":
			fromDB = true
			return d
		}
		return ""
	}
	out.ASN = pick(conf.ASN, looked.ASN)
	out.CC = pick(conf.CC, looked.CC)
	dbNetwork := ""
	if looked.ASN == out.ASN {
		dbNetwork = looked.Network
	}
	out.Network = pick(conf.Network, dbNetwork)
	out.Method = method(fromConf, fromDB)
	return out
}

func method(fromConf, fromDB bool) string {
	switch {
	case fromConf && fromDB:
		return MethodMixed
	case fromConf:
		return MethodConfigured
	case fromDB:
		return MethodMMDB
	}
	return MethodUnknown
}
