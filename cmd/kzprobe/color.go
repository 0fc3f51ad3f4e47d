package main

import (
	"io"
	"os"

	"golang.org/x/term"

	"kzprobe/measurement"
)

// isTerminal reports whether w, through scrub writers, is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := terminalFile(w)
	return ok && term.IsTerminal(int(f.Fd()))
}

// terminalWidth is the number of columns of the terminal under w, 0 when
// w is not a terminal (a pipe, a file: nothing is cut). A terminal that
// does not say its size counts as 80 columns.
func terminalWidth(w io.Writer) int {
	f, ok := terminalFile(w)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
		return cols
	}
	return 80
}

// colorWanted reports whether text for w may be coloured: w is a
// terminal, and neither --no-color (noColor), NO_COLOR (any non-empty
// value, no-color.org) nor TERM=dumb says otherwise.
func colorWanted(w io.Writer, noColor bool) bool {
	if noColor || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return isTerminal(w)
}

// SGR sequences for the verdicts.
const (
	sgrReset  = "\033[0m"
	sgrRed    = "\033[31m"
	sgrBold   = "\033[1;31m"
	sgrGreen  = "\033[32m"
	sgrYellow = "\033[33m"
	sgrPurple = "\033[35m"
	sgrGrey   = "\033[90m"
)

// verdictColor is the colour of a verdict: red for interception, yellow
// for tampering and blocking, green for ok, grey for down, magenta for
// error (undecided).
func verdictColor(v measurement.Verdict) string {
	switch v {
	case measurement.VerdictMITMISCA, measurement.VerdictSNIInterceptedISCA:
		return sgrBold
	case measurement.VerdictMITMOther, measurement.VerdictSNIInterceptedOther:
		return sgrRed
	case measurement.VerdictDNSTampering, measurement.VerdictTLSBlocking, measurement.VerdictTCPBlocking, measurement.VerdictSNIBlocked:
		return sgrYellow
	case measurement.VerdictOK, measurement.VerdictClean:
		return sgrGreen
	case measurement.VerdictDown:
		return sgrGrey
	case measurement.VerdictError:
		return sgrPurple
	}
	return ""
}

// paintVerdict returns a function colouring text in v's colour, or nil
// when color is off.
func paintVerdict(v measurement.Verdict, color bool) func(string) string {
	c := verdictColor(v)
	if !color || c == "" {
		return nil
	}
	return func(s string) string { return c + s + sgrReset }
}
