package main

import "fmt"

// doubleClickText is what a volunteer sees who starts the Windows binary
// by double-clicking it (cobra's mousetrap, winconsole_windows.go): the
// window would otherwise flash a usage text and close.
func doubleClickText(exe string) string {
	return fmt.Sprintf(`kzprobe is a command-line program: it runs in a terminal, not by a double-click.

Open PowerShell in this folder (Shift + right-click in the folder, "Open
PowerShell window here", or "Open in Terminal") and type one of:

    .\%[1]s lab       an offline demo, to see what it does
    .\%[1]s run       the measurement
    .\%[1]s --help    everything else
`, exe)
}
