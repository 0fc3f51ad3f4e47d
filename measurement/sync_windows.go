//go:build windows

package measurement

import "golang.org/x/sys/windows"

// unsyncable are the errors of File.Sync (FlushFileBuffers) on Windows
// that only say the output has nothing to flush: ERROR_INVALID_HANDLE for
// the console (documented: console output is not buffered), so
// `kzprobe run -o -` in a cmd.exe or PowerShell window; and
// ERROR_INVALID_FUNCTION for a character device such as NUL. Without
// them the first record written to a console stopped the run with
// "syncing output: The handle is invalid".
var unsyncable = []error{windows.ERROR_INVALID_HANDLE, windows.ERROR_INVALID_FUNCTION}
