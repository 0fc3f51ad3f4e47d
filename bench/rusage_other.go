//go:build !unix

package bench

import "os"

// cpuSeconds is this process's CPU so far: unknown here (0), so `kzprobe
// bench` reports no CPU figures on this system.
func cpuSeconds() float64 { return 0 }

// peakRSSMiB is this process's peak resident set: unknown here (0).
func peakRSSMiB() float64 { return 0 }

// ProcessPeakRSSMiB is the peak resident set of an ended child process:
// unknown here (0).
func ProcessPeakRSSMiB(*os.ProcessState) float64 { return 0 }
