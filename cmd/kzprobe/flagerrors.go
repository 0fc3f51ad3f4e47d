package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// flagError rewrites an error of flag parsing for a person: an unknown
// flag names the closest known ones ("did you mean --parallel?"), as
// unknown commands and configuration keys do, a bad value says what the
// flag wants instead of Go's strconv error, and each ends with the help
// command. Every such error is a usage error (exit 2).
func flagError(cmd *cobra.Command, err error) error {
	help := fmt.Sprintf(" (see %s --help)", cmd.CommandPath())
	var notExist *pflag.NotExistError
	var invalid *pflag.InvalidValueError
	var required *pflag.ValueRequiredError
	switch {
	case errors.As(err, &notExist):
		given := "--" + notExist.GetSpecifiedName()
		if s := notExist.GetSpecifiedShortnames(); s != "" {
			given = "-" + s
		}
		msg := "unknown flag " + given
		if near := nearFlags(cmd, notExist.GetSpecifiedName(), notExist.GetSpecifiedShortnames()); len(near) > 0 {
			msg += "; did you mean " + strings.Join(near, " or ") + "?"
		}
		return usageError("%s%s", msg, help)
	case errors.As(err, &invalid):
		f := invalid.GetFlag()
		return usageError("%s %q: %s%s", flagName(f), invalid.GetValue(), wantedValue(f), help)
	case errors.As(err, &required):
		return usageError("%s needs a value%s", flagName(required.GetFlag()), help)
	}
	return usageError("%v%s", err, help)
}

// wantedValue says what a flag's value must look like.
func wantedValue(f *pflag.Flag) string {
	switch f.Value.Type() {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "not a whole number"
	case "intSlice", "int32Slice", "int64Slice", "uintSlice":
		return "not whole numbers separated by commas"
	case "float32", "float64":
		return "not a number"
	case "bool":
		return "not true or false"
	case "duration":
		return "not a duration such as 10s, 500ms or 1m30s"
	}
	return "not a valid value"
}

// nearFlags names the flags of cmd closest to an unknown long name (at
// most two edits away, one for a short name, or one that starts with it),
// or for an unknown shorthand the one of the other case.
func nearFlags(cmd *cobra.Command, name, short string) []string {
	type cand struct {
		name string
		d    int
	}
	var cands []cand
	visit := func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		switch {
		case short != "":
			// -X for -x: a shorthand in the other case.
			if f.Shorthand != "" && strings.EqualFold(f.Shorthand, short[:1]) {
				cands = append(cands, cand{"-" + f.Shorthand, 0})
			}
		case name != "":
			d := editDistance(strings.ToLower(name), f.Name)
			if strings.HasPrefix(f.Name, strings.ToLower(name)) && len(name) >= 3 {
				d = min(d, 1)
			}
			// Short names are near every short name: one edit at most.
			if d <= 1 || (d == 2 && len(name) > 4) {
				cands = append(cands, cand{"--" + f.Name, d})
			}
		}
	}
	cmd.Flags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].d != cands[j].d {
			return cands[i].d < cands[j].d
		}
		return cands[i].name < cands[j].name
	})
	var out []string
	for _, c := range cands {
		if len(out) == 3 || (len(out) > 0 && c.d > cands[0].d) {
			break
		}
		if len(out) == 0 || out[len(out)-1] != c.name {
			out = append(out, c.name)
		}
	}
	return out
}
