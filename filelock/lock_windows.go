package filelock

import (
	"errors"
	"math"
	"os"

	"golang.org/x/sys/windows"
)

// Lock takes an exclusive LockFileEx lock on f without waiting, or
// returns ErrLocked when another process holds it. Windows releases
// it when the handle is closed or the process ends.
//
// The locked range is one byte far past any real end of file: Windows
// locks are mandatory, and locking the data itself would bar other
// programs (kzprobe analyze, an editor) from reading the file while its
// holder writes it. Only another lock on that byte conflicts.
func Lock(f *os.File) error {
	ol := &windows.Overlapped{Offset: math.MaxUint32, OffsetHigh: math.MaxInt32}
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return ErrLocked
	}
	return err
}
