//go:build unix

package state

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockFile takes an exclusive flock on path without waiting. The kernel drops a flock when
// the process ends however it ends, kill -9 included, so a crashed run never leaves a stale
// lock behind (unlike a lock file that exists or not). The holder's pid is written into the
// file only to name it in the message another run gets.
func lockFile(path string) (*os.File, error) {
	// Go opens files close-on-exec, so processes a run starts (connectors) do not inherit
	// the lock and keep it after the run ends.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &lockedError{pid: readPid(f)}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// unlockFile releases the lock. Closing the descriptor releases the flock; the file stays,
// because removing it would let a run lock a file that a third run has just replaced.
func unlockFile(f *os.File) error {
	return f.Close()
}

// readPid reads the pid the holder wrote, 0 when there is none (yet).
func readPid(f *os.File) int {
	b, err := io.ReadAll(io.LimitReader(f, 32))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
