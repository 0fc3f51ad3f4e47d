//go:build !unix

package analysis_test

import "time"

// cpuTime is unknown here; the cpu-MB/s metric is then not reported.
func cpuTime() time.Duration { return 0 }
