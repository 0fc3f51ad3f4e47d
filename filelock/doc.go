// Package filelock takes an exclusive lock on an open file without
// waiting: flock(2) where there is one, an fcntl(2) write lock on AIX,
// LockFileEx on Windows, nothing where the system has no lock (js,
// wasip1, plan9). The system releases the lock when the file is closed or
// the process ends, kill -9 included, so no stale lock outlives a crash.
//
// kzprobe run locks its output file with it, so that two runs never write
// one file at once; the collector's file store locks its folder.
package filelock

import "errors"

// ErrLocked is returned by Lock when another process holds the lock.
var ErrLocked = errors.New("locked by another process")
