package targets

import "strconv"

// Target is one domain to measure, normalised, with where it came from.
type Target struct {
	// Domain is the name in lower-case ASCII (IDNA "xn--" labels for
	// internationalised names), without a trailing dot, e.g.
	// "xn--e1afmkfd.xn--p1ai" for "пример.рф".
	Domain string `json:"domain"`
	// Port is the TCP port given explicitly in the input
	// ("https://x.kz:8443/", "x.kz:8443"). Zero means the run's default
	// port; a URL scheme alone never sets it.
	Port int `json:"port"`
	// Input is the text the target was read from (a line without its
	// comment and surrounding space, a CSV url field, a flag value).
	Input string `json:"input"`
	// Source says where Input was read: "file:line" for a list,
	// "stdin:N" for standard input, "default:N" for the embedded list,
	// "flag" for a name given on the command line, and empty for
	// [Normalize].
	Source string `json:"source"`
}

// String returns the domain, followed by ":port" when Port is set.
func (t Target) String() string {
	if t.Port == 0 {
		return t.Domain
	}
	return t.Domain + ":" + strconv.Itoa(t.Port)
}
