//go:build !windows

package main

// enableTerminalEscapes does nothing: Unix terminals interpret ANSI
// escapes (see console_windows.go).
func enableTerminalEscapes() {}
