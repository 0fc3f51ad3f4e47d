package lab

import (
	"errors"
	"strings"
)

// Wildcard sites. A lab holds at most [MaxSites] sites (one /24), but a
// benchmark needs thousands of distinct names. A site whose Domain is
// "*.<zone>", e.g. "*.pass.bench.test", stands for every name under zone
// at any depth ("a.pass.bench.test", "x.y.pass.bench.test", not
// "pass.bench.test" itself): the resolvers answer them as the site, and
// the middlebox applies the site's behaviour to such an SNI, forging a
// leaf for the SNI itself when it intercepts. The origin's leaf is issued
// for the pattern, so it is valid for one-label names under zone, as a
// real wildcard certificate is.
//
// An exact site wins over a wildcard, and a longer wildcard zone over a
// shorter one ("*.a.b.test" over "*.b.test" for "x.a.b.test").

// wildcardPrefix starts a wildcard site's Domain.
const wildcardPrefix = "*."

// canonicalSiteName is canonicalName for a site's Domain, which may also
// be a wildcard "*.<zone>" with at least two labels in zone.
func canonicalSiteName(domain string) (string, error) {
	rest, ok := strings.CutPrefix(domain, wildcardPrefix)
	if !ok {
		return canonicalName(domain)
	}
	if strings.Contains(rest, "*") {
		return "", errors.New("a wildcard is \"*.\" followed by a name, such as *.bench.test")
	}
	zone, err := canonicalName(rest)
	if err != nil {
		return "", err
	}
	return wildcardPrefix + zone, nil
}

// siteIndex returns the index of the site answering for a canonical name:
// the exact site, else the wildcard of the longest enclosing zone.
func (l *Lab) siteIndex(name string) (int, bool) {
	if i, ok := l.byName[name]; ok && !strings.HasPrefix(name, wildcardPrefix) {
		return i, true
	}
	for rest := name; ; {
		_, after, found := strings.Cut(rest, ".")
		if !found || after == "" {
			return 0, false
		}
		if i, ok := l.byName[wildcardPrefix+after]; ok {
			return i, true
		}
		rest = after
	}
}
