//go:build !unix

package main

// cpuSeconds is this process's CPU so far: unknown here (0), so `kzprobe
// bench` reports no CPU figures on this system.
func cpuSeconds() float64 { return 0 }

// peakRSSMiB is this process's peak resident set: unknown here (0).
func peakRSSMiB() float64 { return 0 }

// openFileLimit is the most files this process may open: unknown here.
func openFileLimit() (uint64, bool) { return 0, false }
