//go:build !linux

package main

import "testing"

// checkPageInBrowser runs on Linux only (a headless Chromium there).
func checkPageInBrowser(t *testing.T, col *collectorProc, domains ...string) {
	t.Skip("the browser test runs on Linux")
}
