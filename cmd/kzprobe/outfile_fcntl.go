//go:build aix

package main

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive fcntl(2) write lock on f without waiting
// (AIX has no flock), or returns errOutputLocked when another process
// holds it. The lock is the process's: closing any descriptor of the file
// in this process would release it, and the run opens none other.
func lockFile(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return errOutputLocked
	}
	return err
}
