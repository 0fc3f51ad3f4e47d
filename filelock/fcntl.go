//go:build aix

package filelock

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Lock takes an exclusive fcntl(2) write lock on f without waiting
// (AIX has no flock), or returns ErrLocked when another process
// holds it. The lock is the process's: closing any descriptor of the file
// in this process would release it, so the caller opens no other.
func Lock(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return ErrLocked
	}
	return err
}
