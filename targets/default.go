package targets

import (
	_ "embed"
	"strings"
)

// defaultList is the embedded default list; see default.txt for its source.
//
//go:embed default.txt
var defaultList string

// Default returns the embedded default list: the 14 domains of the OONI 2024
// report on TLS interception in Kazakhstan, in the order of default.txt,
// with Source "default:<line>". Each call returns a new slice. The list is
// checked by the package's tests, so it has no invalid lines.
func Default() []Target {
	t, _, _ := ReadAll(NewTextReader(strings.NewReader(defaultList), "default"))
	return t
}

// FromNames normalises names given one by one, such as repeated -d/--domain
// flags, with Source "flag". Duplicates are dropped (the first is kept, in
// order). Each invalid name gives a [*LineError] with File "flag" and Line
// its 1-based position in names, and the others are still returned.
func FromNames(names []string) ([]Target, []error) {
	var (
		out  []Target
		errs []error
		seen = NewDeduper()
	)
	for i, name := range names {
		t, err := Normalize(name)
		if err != nil {
			errs = append(errs, &LineError{File: "flag", Line: i + 1, Input: name, Err: err})
			continue
		}
		t.Source = "flag"
		if !seen.Seen(t) {
			out = append(out, t)
		}
	}
	return out, errs
}
