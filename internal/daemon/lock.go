package daemon

import (
	"fmt"
	"os"
	"syscall"
)

// Lock takes an exclusive flock(2) on the file at path, creating the file
// (mode 0600) when it is missing, and waits while another holder, in this
// process or another, has it. The returned function releases the lock and
// closes the file; the lock is released too when the process exits.
func Lock(path string) (unlock func(), err error) {
	return flock(path, syscall.LOCK_EX)
}

// TryLock is [Lock] without the wait: when another holder has the lock, it
// fails at once with an error that wraps syscall.EWOULDBLOCK.
func TryLock(path string) (unlock func(), err error) {
	return flock(path, syscall.LOCK_EX|syscall.LOCK_NB)
}

func flock(path string, how int) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
