package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// plural counts n of a noun in agreement: "1 target", "2 targets".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// isAre is the verb after a count of n: " is" or " are".
func isAre(n int) string {
	if n == 1 {
		return " is"
	}
	return " are"
}

// wrapWords breaks text between words into lines of at most width
// columns, the later ones indented by two spaces; a width of zero or less
// leaves it on one line. A word wider than the line is not cut.
func wrapWords(text string, width int) []string {
	if width <= 0 || textWidth(text) <= width {
		return []string{text}
	}
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		switch {
		case line == "":
			line = w
		case textWidth(line)+1+textWidth(w) > width:
			lines = append(lines, line)
			line = "  " + w
		default:
			line += " " + w
		}
	}
	return append(lines, line)
}

// displayPath is p as a command typed in the current folder reads it:
// relative when under it, else absolute.
func displayPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	wd, err := os.Getwd()
	if err != nil {
		return abs
	}
	if rel, err := filepath.Rel(wd, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return rel
	}
	return abs
}

// absPath is p made absolute (as given if that fails).
func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// shellJoin joins words into a command line for a POSIX shell, quoting
// those that need it.
func shellJoin(words ...string) string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = shellQuote(w)
	}
	return strings.Join(out, " ")
}

// commandLines is a command line for a POSIX shell (words quoted by
// shellJoin), broken between words into lines that fit width columns
// after indent, each but the last ending in a line continuation so that
// a copy pasted into a shell runs as one command; an option stays on the
// line of its value. A width of zero or less (a pipe, a file) keeps one
// whole line. On Windows the continuation is PowerShell's backtick.
func commandLines(width int, indent string, words ...string) []string {
	line := indent + shellJoin(words...)
	if width <= 0 || textWidth(line) <= width {
		return []string{line}
	}
	cont := " \\"
	if runtime.GOOS == "windows" {
		cont = " `"
	}
	next := indent + "    "
	// Units: an option with its value ("-o x") where both fit a line,
	// else one word.
	var units []string
	for i := 0; i < len(words); i++ {
		u := shellQuote(words[i])
		if strings.HasPrefix(words[i], "-") && i+1 < len(words) && !strings.HasPrefix(words[i+1], "-") {
			if pair := u + " " + shellQuote(words[i+1]); textWidth(next+pair+cont) <= width {
				u = pair
				i++
			}
		}
		units = append(units, u)
	}
	var lines []string
	line = indent + units[0]
	for _, u := range units[1:] {
		if textWidth(line)+1+textWidth(u)+len(cont) > width {
			lines = append(lines, line+cont)
			line = next + u
			continue
		}
		line += " " + u
	}
	return append(lines, line)
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// letters, digits and -_./:,=+@%.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,=+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// pathProblem says in plain words why the file at path could not be read
// (err is from opening or reading it): "x does not exist", "x is not
// readable; check its permissions", else "x: " and the system's reason,
// without Go's "open x:" before it.
func pathProblem(path string, err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return path + " does not exist; check the path"
	case errors.Is(err, fs.ErrPermission):
		return path + " is not readable; check its permissions"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return path + ": " + pe.Err.Error()
	}
	return path + ": " + err.Error()
}

// pathError is the usage error of a file given on the command line that
// cannot be read: what it is ("input", "--trust-roots"), and pathProblem;
// stdin adds that "-" reads standard input instead.
func pathError(what, path string, err error, stdin bool) error {
	msg := what + " " + pathProblem(path, err)
	if stdin && errors.Is(err, fs.ErrNotExist) {
		msg += ", or give - to read from stdin"
	}
	return usageError("%s", msg)
}
