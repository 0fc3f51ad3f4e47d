package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"kzprobe/measurement"
)

// version is stamped at build time by scripts/release.sh with
// -ldflags "-X main.version=v1.2.3". softwareVersion() is kzprobe's one
// version string: --version, `kzprobe version`, bench output and every
// record's software_version all print it, never another string.
var version = ""

// devVersion is the version of a build that was neither stamped nor
// given a version or a commit by the go command (go test, go run,
// go build -buildvcs=false).
const devVersion = "0.1.0-dev"

// softwareVersion returns the stamped version, else what the build
// information knows (versionOf).
func softwareVersion() string {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(version, bi)
}

// versionOf is softwareVersion for a given stamp and build information
// (bi may be nil): the stamp; else the main module's version when the go
// command set one (go install of a tagged module); else devVersion with
// the commit the go command recorded from the checkout, as semver build
// metadata (0.1.0-dev+0123456789ab, .dirty with uncommitted changes);
// else devVersion.
func versionOf(stamped string, bi *debug.BuildInfo) string {
	if stamped != "" {
		return stamped
	}
	if bi == nil {
		return devVersion
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return devVersion
	}
	v := devVersion + "+" + rev[:min(len(rev), 12)]
	if modified == "true" {
		v += ".dirty"
	}
	return v
}

const rootLong = `kzprobe finds TLS interception done with Kazakhstan's government root CA
("Information Security Certification Authority", ISCA, and its predecessor
Qaznet). For each domain it resolves the name with your network's resolver and
with a control resolver the network cannot tamper with (DNS-over-HTTPS pinned
to an IP), hand-shakes like a real browser (uTLS), records the certificate
chain that was presented, and says whether the connection was intercepted.

Three ways to use it:

  Volunteer, inside a network:
      kzprobe run
    measures the 14 domains of the published report, prints a verdict per
    domain and writes measurements-<time>.jsonl to share. Your IP address is
    not written.

  Researcher, rechecking a list after news of new interception:
      kzprobe run -i kz.csv                   (a Citizen Lab CSV or a text list)
      kzprobe run -d regnum.ru -d xakep.ru    (a few suspects)

  Analyst, comparing vantage networks:
      kzprobe analyze measurements/           (intermediates, networks, domains)
      kzprobe compare as1.jsonl as2.jsonl     (domain x network matrix)

Try it offline first: "kzprobe lab" builds a simulated censored network on
loopback and runs the probe against it.

Configuration: flags > KZPROBE_* environment variables > -c probe.yaml >
built-in defaults. See probe.yaml for every key.

` + exitCodesHelp

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "kzprobe",
		Short:         "Detect TLS interception with Kazakhstan's ISCA root CA",
		Long:          rootLong,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       softwareVersion(),
	}
	// --version prints the version string alone, the same string as in the
	// records, so that scripts and bug reports can quote it as is.
	root.SetVersionTemplate("{{.Version}}\n")
	wrapFlagHelp(root)
	root.AddCommand(newRunCmd(), newSweepCmd(), newTraceCmd(), newLabCmd(), newAnalyzeCmd(), newCompareCmd(), newTimelineCmd(), newReportCmd(), newIngestCmd(), newControlCmd(), newCollectorCmd(), newSubmitCmd(), newBenchCmd(), newVersionCmd())
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	strictHelp(root)
	usageErrors(root)
	return root
}

// wrapFlagHelp breaks the flag lists of every command's help between
// words to the terminal's width (80 columns on a pipe), each
// description's later lines under its start: cobra printed a flag and its
// description on one line of up to 150 columns, which an 80-column
// terminal wrapped mid-word.
func wrapFlagHelp(root *cobra.Command) {
	cobra.AddTemplateFunc("wrappedFlagUsages", func(fs *pflag.FlagSet) string {
		return fs.FlagUsagesWrapped(helpWidth())
	})
	tmpl := root.UsageTemplate()
	for _, set := range []string{".LocalFlags", ".InheritedFlags"} {
		tmpl = strings.ReplaceAll(tmpl, set+".FlagUsages", "wrappedFlagUsages "+set)
	}
	root.SetUsageTemplate(tmpl)
}

// helpWidth is the width help is written to: the terminal's, or 80
// columns when stdout is not a terminal.
func helpWidth() int {
	if w := terminalWidth(os.Stdout); w > 0 {
		return w
	}
	return 80
}

// strictHelp makes "kzprobe help TOPIC" a usage error (exit 2, with "did
// you mean") when TOPIC is not a command; cobra's help command printed
// "Unknown help topic" and the root's help, and exited 0.
func strictHelp(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() != "help" {
			continue
		}
		c.Run = nil
		c.RunE = func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || cmd == nil || len(rest) > 0 {
				topic := strings.Join(args, " ")
				if len(rest) > 0 {
					topic = rest[0]
				}
				msg := fmt.Errorf("unknown help topic %q: see kzprobe --help for the commands", topic)
				if cmd != nil {
					if cmd.SuggestionsMinimumDistance <= 0 {
						cmd.SuggestionsMinimumDistance = 2
					}
					if s := cmd.SuggestionsFor(topic); len(s) > 0 {
						msg = fmt.Errorf("unknown help topic %q (did you mean %s?)", topic, strings.Join(s, " or "))
					}
				}
				return &exitError{code: exitUsage, err: msg}
			}
			cmd.InitDefaultHelpFlag()
			cmd.InitDefaultVersionFlag()
			return cmd.Help()
		}
	}
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of kzprobe and of its measurement format",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "kzprobe %s (test %s %s)\n", softwareVersion(), measurement.TestName, measurement.TestVersion)
			return nil
		},
	}
}
