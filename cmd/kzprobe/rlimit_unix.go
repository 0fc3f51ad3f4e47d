//go:build unix

package main

import "syscall"

// openFileLimit is the most files this process may open (the soft
// RLIMIT_NOFILE, which Go raises to the hard limit at start); false when
// unknown or unlimited.
func openFileLimit() (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur >= 1<<62 {
		return 0, false
	}
	return uint64(rl.Cur), true
}
