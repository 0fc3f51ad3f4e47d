package main

import (
	"strings"
	"testing"
)

// TestDoubleClickText: a Windows volunteer who double-clicks the binary is
// told the exact command to type, with the file's own name.
func TestDoubleClickText(t *testing.T) {
	got := doubleClickText("kzprobe-windows-amd64.exe")
	for _, want := range []string{`.\kzprobe-windows-amd64.exe run `, "PowerShell", `.\kzprobe-windows-amd64.exe lab `} {
		if !strings.Contains(got, want) {
			t.Errorf("double-click text lacks %q:\n%s", want, got)
		}
	}
	for _, line := range strings.Split(got, "\n") {
		if len(line) > 80 {
			t.Errorf("line wider than a console's 80 columns: %q", line)
		}
	}
}
