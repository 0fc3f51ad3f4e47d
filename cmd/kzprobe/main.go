// Command kzprobe finds TLS interception done with Kazakhstan's government
// root CA (ISCA, and its predecessor Qaznet).
//
// This package only parses flags and configuration, wires the probe's
// parts together and prints; the measurement logic lives in probe/,
// dnsx/ (DNS transports), control/, targets/ and lab/, the bench harness in
// bench/.
package main

import (
	"errors"
	"fmt"
	"os"
)

// Exit codes, one scheme for every command (exitCodesHelp says it to
// the user).
const (
	exitOK      = 0
	exitFailure = 1 // a runtime failure: I/O, nothing read, a target that failed for a local reason
	exitUsage   = 2 // a usage or configuration error: bad flags, arguments, values or files given
	exitFailOn  = 3 // kzprobe run --fail-on: a target got one of the verdicts named
	// exitInterrupted is 128+SIGINT: Ctrl-C or SIGTERM stopped a run.
	exitInterrupted = 130
)

func main() {
	os.Exit(execute(os.Args[1:]))
}

// execute runs the command line and returns the exit code.
func execute(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "kzprobe:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.Is(err, ErrConfig) {
		return exitUsage
	}
	return exitFailure
}

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}
