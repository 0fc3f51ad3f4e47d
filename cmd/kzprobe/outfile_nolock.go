//go:build !(aix || darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd || solaris || windows)

package main

import "os"

// lockFile does nothing where the system has no file lock kzprobe can
// use (js, wasip1, plan9, hurd): two runs on one output file go unnoticed there.
func lockFile(*os.File) error { return nil }
