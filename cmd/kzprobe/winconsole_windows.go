//go:build windows

package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/sys/windows"
)

func init() {
	// Started from Explorer: say how to run it, and wait for Enter so that
	// the window does not close before the text is read (cobra's default
	// shows "open cmd.exe" for 5 seconds).
	cobra.MousetrapHelpText = doubleClickText(filepath.Base(os.Args[0]))
	cobra.MousetrapDisplayDuration = 0
}

// enableTerminalEscapes asks the Windows console to interpret the ANSI
// escapes kzprobe writes to a terminal (the progress line's "\r\033[K",
// colours). Windows Terminal always does; the classic console (conhost,
// what a cmd.exe or PowerShell window is on Windows 10) does only for a
// program that sets ENABLE_VIRTUAL_TERMINAL_PROCESSING, and prints
// "←[K" otherwise. Every Windows that Go supports (10 and later) has the
// mode. A redirected stdout or stderr (a file, a pipe) is not a console
// and is left alone.
func enableTerminalEscapes() {
	for _, f := range []*os.File{os.Stdout, os.Stderr} {
		h := windows.Handle(f.Fd())
		var mode uint32
		if windows.GetConsoleMode(h, &mode) != nil {
			continue
		}
		if mode&windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING == 0 {
			windows.SetConsoleMode(h, mode|windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING)
		}
	}
}
