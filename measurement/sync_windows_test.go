//go:build windows

package measurement

import (
	"os"
	"testing"

	"golang.org/x/sys/windows"
)

// syncFails is an output whose Sync fails with err.
type syncFails struct{ err error }

func (s syncFails) Write(p []byte) (int, error) { return len(p), nil }
func (s syncFails) Sync() error                 { return s.err }

// TestWriterConsoleIsNotAFailure: on Windows, Sync on the console answers
// ERROR_INVALID_HANDLE and on NUL ERROR_INVALID_FUNCTION; a run writing
// to either (-o -, -o NUL) must go on, while a real sync failure still
// stops it.
func TestWriterConsoleIsNotAFailure(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		failure bool
	}{
		{"console", &os.PathError{Op: "sync", Path: "/dev/stdout", Err: windows.ERROR_INVALID_HANDLE}, false},
		{"NUL", &os.PathError{Op: "sync", Path: "NUL", Err: windows.ERROR_INVALID_FUNCTION}, false},
		{"disk full", &os.PathError{Op: "sync", Path: "m.jsonl", Err: windows.ERROR_DISK_FULL}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWriter(syncFails{tc.err}, 0)
			err := w.Write(sampleMeasurement("a.example"))
			if err == nil {
				err = w.Close()
			}
			if (err != nil) != tc.failure {
				t.Errorf("error = %v; want a failure: %v", err, tc.failure)
			}
		})
	}

	// The real NUL device, through a real file.
	f, err := os.OpenFile("NUL", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := NewWriter(f, 0)
	if err := w.Write(sampleMeasurement("a.example")); err != nil {
		t.Fatalf("write to NUL: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close on NUL: %v", err)
	}
}
