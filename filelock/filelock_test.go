package filelock

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestLock locks one file through two handles, as two processes
// would: the second fails with ErrLocked until the first is closed.
func TestLock(t *testing.T) {
	if runtime.GOOS == "aix" {
		t.Skip("fcntl locks are the process's: two handles of one process do not conflict")
	}
	path := filepath.Join(t.TempDir(), "m.jsonl")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	first, second := open(), open()
	if err := Lock(first); err != nil {
		t.Fatalf("first lock: %v", err)
	}
	if err := Lock(second); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock while the first is held: %v; want ErrLocked", err)
	}
	if _, err := first.WriteString("{}\n"); err != nil {
		t.Fatalf("writing through the locked handle: %v", err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "{}\n" {
		t.Fatalf("reading the locked file through another handle: %q, %v", data, err)
	}
	first.Close()
	if err := Lock(second); err != nil {
		t.Fatalf("lock after the first handle closed: %v", err)
	}
}
