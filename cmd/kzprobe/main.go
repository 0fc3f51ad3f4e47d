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
	"strings"

	"github.com/spf13/cobra"
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
	enableTerminalEscapes()
	os.Exit(execute(os.Args[1:]))
}

// execute runs the command line and returns the exit code.
func execute(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kzprobe:", err)
	}
	return exitCode(err)
}

// exitCode is the exit code of a command's error (see exitCodesHelp): the
// code an exitError carries, exitUsage for a configuration error,
// exitFailure for any other, exitOK for none.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.Is(err, ErrConfig) {
		return exitUsage
	}
	return exitFailure
}

// exitCodesHelp is the exit-code scheme, as `kzprobe --help` and README
// say it.
const exitCodesHelp = `Exit codes, the same for every command:
  0    done
  1    a runtime failure: a file could not be written, another run holds
       the output file, nothing to work on was read, the control server
       could not listen, the lab's verdicts differ from its scenario, a
       target of kzprobe run failed for a local reason (no control resolver
       answered, out of file descriptors), kzprobe sweep's endpoint failing
       its control SNI (dead, blocked, pin mismatch), kzprobe trace where
       there is no socket error queue (not Linux) or to an address outside
       --allow-net
  2    a usage or configuration error: an unknown command or flag, a wrong
       argument or value, a bad configuration file or key, a file named
       that does not exist or cannot be used, an output folder that does not
       exist, an output that is an input or not empty (without --append or
       --resume)
  3    kzprobe run --fail-on VERDICTS: a target got one of them
  130  interrupted (Ctrl-C, SIGTERM) before the work was done; a server
       (control serve, lab --serve), which runs until stopped, ends with 0`

// usageErrors makes cobra's own errors, on c and every command under it,
// usage errors (exit 2): a flag it cannot parse, a wrong number of
// arguments, an unknown command. They exited 1, like a runtime failure,
// while the same mistake caught by kzprobe itself exited 2.
func usageErrors(c *cobra.Command) {
	c.SetFlagErrorFunc(flagError) // "did you mean", what a value should be
	if !c.Runnable() && c.HasSubCommands() {
		// A command that only groups others (kzprobe, kzprobe completion)
		// printed its help for any word after it, and exited 0: run, it
		// checks its arguments below.
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	args := c.Args
	c.Args = func(cmd *cobra.Command, a []string) error {
		var err error
		switch {
		case args != nil:
			err = args(cmd, a)
		case cmd.HasSubCommands() && len(a) > 0:
			err = fmt.Errorf("unknown command %q for %q", a[0], cmd.CommandPath())
			if cmd.SuggestionsMinimumDistance <= 0 {
				cmd.SuggestionsMinimumDistance = 2 // cobra's default, set where it suggests itself
			}
			if s := cmd.SuggestionsFor(a[0]); len(s) > 0 {
				err = fmt.Errorf("%w (did you mean %s?)", err, strings.Join(s, " or "))
			}
		}
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		return nil
	}
	for _, sub := range c.Commands() {
		usageErrors(sub)
	}
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
