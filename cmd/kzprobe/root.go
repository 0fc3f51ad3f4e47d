package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"

	"kzprobe/measurement"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it comes from the module's build information.
var version = ""

func softwareVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "0.1.0-dev"
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
      kzprobe run -i citizenlab-kz.csv        (Citizen Lab CSV or one domain a line)
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
	root.AddCommand(newRunCmd(), newLabCmd(), newAnalyzeCmd(), newCompareCmd(), newTimelineCmd(), newReportCmd(), newControlCmd(), newBenchCmd(), newVersionCmd())
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	usageErrors(root)
	return root
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
