//go:build !windows

package main

// enableTerminalEscapes does nothing: Unix terminals interpret ANSI
// escapes (see winconsole_windows.go).
func enableTerminalEscapes() {}
