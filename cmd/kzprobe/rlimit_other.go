//go:build !unix

package main

// openFileLimit is the most files this process may open: unknown here.
func openFileLimit() (uint64, bool) { return 0, false }
