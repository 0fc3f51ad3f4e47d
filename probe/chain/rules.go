package chain

import (
	"crypto/x509/pkix"
	"slices"
	"time"
)

// Names used by Kazakhstan's interception PKI, as they appear in the real
// roots (roots/SOURCES.md) and in the OONI report.
const (
	// ISCACommonName is the common name of seven real roots, all with the
	// exact subject C=KZ, O=ISCA, CN=Information Security Certification
	// Authority (and of the 2021 Nur-Sultan root, which adds ST and L). It
	// is also the issuer of every intermediate seen in the wild, and those
	// intermediates' own subject.
	ISCACommonName = "Information Security Certification Authority"
	// ISCACACommonName is the common name of the eighth ISCA root,
	// ee45853e….
	ISCACACommonName = "Information Security Certification Authority CA"
	// QaznetCommonName is the 2016 root that Kazakhtelecom asked users to
	// install in 2015-2019 (5811835e…).
	QaznetCommonName = "Qaznet Trust Network"
	// Qaznet2019IntermediateCommonName is the intermediate under Qaznet
	// Trust Network that issued the forged leaves of July-August 2019
	// (Censored Planet, https://censoredplanet.org/kazakhstan).
	Qaznet2019IntermediateCommonName = "Security Certificate"
)

// Rule names, as they appear in [Interception].Rules.
const (
	RuleISCAIssuerName        = "isca_issuer_name"
	RuleQaznetIssuerName      = "qaznet_issuer_name"
	RuleQaznet2019Forgery     = "qaznet_2019_forgery"
	RuleKnownRootIssuerName   = "known_root_issuer_name"
	RuleISCA75DayIntermediate = "isca_75_day_intermediate"
)

// Rule is a named pattern of the interception PKI that can be checked from
// one presented chain. A match is at least [EvidenceIssuerName]; stronger
// evidence comes from fingerprints and signatures, not from rules.
type Rule struct {
	// Name is the rule's name in [Interception].Rules.
	Name string
	// Description says what the rule checks and why, with the source.
	Description string
	// match reports whether the rule matches, and the name it matched (used
	// as RootName for issuer-name evidence).
	match func(v *view) (string, bool)
}

// rules is the rule table, in the order they are tried and reported. It is
// never modified; Rules hands out copies.
var rules = []Rule{
	{
		Name: RuleISCAIssuerName,
		Description: "a certificate's issuer is an ISCA name: CN=" + ISCACommonName +
			" or CN=" + ISCACACommonName + ", with O=ISCA and C=KZ (other attributes, " +
			"such as the Nur-Sultan root's ST and L, may be present)",
		match: func(v *view) (string, bool) {
			for _, e := range v.entries {
				if isISCAName(e.cert.Issuer) {
					return e.cert.Issuer.CommonName, true
				}
			}
			return "", false
		},
	},
	{
		Name:        RuleQaznetIssuerName,
		Description: "a certificate's issuer is CN=" + QaznetCommonName,
		match: func(v *view) (string, bool) {
			for _, e := range v.entries {
				if e.cert.Issuer.CommonName == QaznetCommonName {
					return QaznetCommonName, true
				}
			}
			return "", false
		},
	},
	{
		Name: RuleQaznet2019Forgery,
		Description: "the 2019 pattern: a leaf issued by CN=" + Qaznet2019IntermediateCommonName +
			", where that intermediate is presented and is issued by CN=" + QaznetCommonName +
			" (by name, or signed by a known root of that name). The forged leaf also copied the " +
			"real leaf's subject and SANs and shifted its validity by about six hours; that needs " +
			"the genuine leaf (from the control) and is not checked here. A leaf issued by " +
			"CN=Security Certificate alone is not a match: the name is too generic.",
		match: func(v *view) (string, bool) {
			for _, leaf := range v.entries {
				if leaf.cert.IsCA || leaf.cert.Issuer.CommonName != Qaznet2019IntermediateCommonName {
					continue
				}
				for _, in := range v.entries {
					if in.cert.Subject.CommonName != Qaznet2019IntermediateCommonName {
						continue
					}
					if in.cert.Issuer.CommonName == QaznetCommonName ||
						(in.signer >= 0 && v.kb.roots[in.signer].Name == QaznetCommonName) {
						return QaznetCommonName, true
					}
				}
			}
			return "", false
		},
	},
	{
		Name: RuleKnownRootIssuerName,
		Description: "a certificate's issuer equals the subject of a root in the knowledge base " +
			"(this is how roots added from the config are matched by name)",
		match: func(v *view) (string, bool) {
			for _, e := range v.entries {
				for _, r := range v.kb.roots {
					if e.issuer == r.Subject {
						return r.Name, true
					}
				}
			}
			return "", false
		},
	},
	{
		Name: RuleISCA75DayIntermediate,
		Description: "a CA certificate issued by an ISCA name is valid for exactly the lifetime " +
			"shared by all seven intermediates of the OONI 2024 report (75 days)",
		match: func(v *view) (string, bool) {
			if v.kb.validityDays <= 0 {
				return "", false
			}
			want := time.Duration(v.kb.validityDays) * 24 * time.Hour
			for _, e := range v.entries {
				if e.cert.IsCA && isISCAName(e.cert.Issuer) && e.cert.NotAfter.Sub(e.cert.NotBefore) == want {
					return e.cert.Issuer.CommonName, true
				}
			}
			return "", false
		},
	},
}

// Rules returns the rule table, in the order rules are tried and reported.
func Rules() []Rule { return slices.Clone(rules) }

// isISCAName reports whether n is one of the ISCA names. Names are compared
// by attribute, not by encoding: the real roots list CN first, the
// Nur-Sultan root lists C first.
func isISCAName(n pkix.Name) bool {
	return (n.CommonName == ISCACommonName || n.CommonName == ISCACACommonName) &&
		slices.Contains(n.Organization, "ISCA") && slices.Contains(n.Country, "KZ")
}

// matchRules runs every rule over v and returns the names of those that
// matched and the name matched by the first.
func matchRules(v *view) (names []string, firstName string) {
	names = []string{}
	for _, r := range rules {
		if name, ok := r.match(v); ok {
			if len(names) == 0 {
				firstName = name
			}
			names = append(names, r.Name)
		}
	}
	return names, firstName
}
