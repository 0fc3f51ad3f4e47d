package main

import "github.com/spf13/cobra"

func newAnalyzeCmd() *cobra.Command {
	c := notImplemented("analyze", "issue 9")
	c.Use = "analyze FILE|DIR..."
	c.Short = "Rebuild the report's tables from collected measurements (not implemented yet)"
	return c
}

func newCompareCmd() *cobra.Command {
	c := notImplemented("compare", "issue 9")
	c.Use = "compare FILE..."
	c.Short = "Compare verdicts across vantage networks (not implemented yet)"
	return c
}
